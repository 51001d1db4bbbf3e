# Shared by bench/agent.sh and bench/fanout.sh (sourced, not run): a real
# `courier serve` on loopback, real agent processes, tasks followed through
# `courier task show --json`. Needs BENCH_COURIER; BENCH_AGENT is used
# when it exists. Every process started here is killed by cs_cleanup.

cs_pids=()

# cs_serve DIR: starts `courier serve` on a free loopback port; sets
# CS_DATA (its data dir), CS_ADDR (where agents connect) and
# CS_SERVER_PID.
cs_serve() {
  CS_DATA=$1
  local port i
  for i in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 30000))
    "$BENCH_COURIER" --data "$CS_DATA" serve --listen "127.0.0.1:$port" >"$CS_DATA.log" 2>&1 &
    cs_pids+=($!)
    for _ in $(seq 50); do
      if "$BENCH_COURIER" --data "$CS_DATA" status --json 2>/dev/null | grep -q "\"listen\": \"127.0.0.1:$port\""; then
        CS_ADDR="127.0.0.1:$port" CS_SERVER_PID=${cs_pids[-1]}
        return 0
      fi
      kill -0 "${cs_pids[-1]}" 2>/dev/null || break
      sleep 0.1
    done
    kill "${cs_pids[-1]}" 2>/dev/null || true
  done
  echo "bench: courier serve did not start (see $CS_DATA.log)" >&2
  return 1
}

# cs_courier ARGS…: a courier command on the server's data dir.
cs_courier() { "$BENCH_COURIER" --data "$CS_DATA" "$@"; }

# cs_token: an auto-approving enrolment token, on stdout.
cs_token() { cs_courier token create --auto-approve 2>/dev/null; }

# cs_agent KIND DIR NAME TOKEN: starts an agent in the background (KIND
# "alone": BENCH_AGENT, falling back to the full binary when it does not
# exist; "full": `courier agent`); sets CS_AGENT_PID.
cs_agent() {
  local kind=$1 dir=$2 name=$3 token=$4
  local flags=(--server "$CS_ADDR" --token "$token" --name "$name")
  if [ "$kind" = alone ] && [ -x "${BENCH_AGENT:-}" ]; then
    "$BENCH_AGENT" --data "$dir" "${flags[@]}" >"$dir.log" 2>&1 &
  else
    "$BENCH_COURIER" --data "$dir" agent "${flags[@]}" >"$dir.log" 2>&1 &
  fi
  CS_AGENT_PID=$!
  cs_pids+=("$CS_AGENT_PID")
}

# cs_wait_online N: waits (up to 60 s) until N destinations are online.
cs_wait_online() {
  local want=$1 online
  for _ in $(seq 600); do
    online=$(cs_courier dest list --json | jq '[.[] | select(.status == "online")] | length')
    [ "$online" -ge "$want" ] && return 0
    sleep 0.1
  done
  echo "bench: only $online of $want agents came online" >&2
  return 1
}

# cs_package ARGS…: `package add ARGS --json`; prints the package id.
cs_package() { cs_courier package add "$@" --json | jq -r .id; }

# cs_task PACKAGE DESTS: creates the task now; prints its id.
cs_task() { cs_courier task create --package "$1" --to "$2" --json 2>/dev/null | jq -r .id; }

# cs_wait_task ID TIMEOUT_S: `courier task wait` (one process, one
# connection, asking for changes every 100 ms: a poller that spawned
# processes would take CPU from the round it times); fails, saying why,
# when a destination fails, the server ends or time runs out.
cs_wait_task() {
  local id=$1 limit=$2
  if cs_courier task wait "$id" --timeout "${limit}s" >/dev/null; then
    return 0
  fi
  if ! kill -0 "$CS_SERVER_PID" 2>/dev/null; then
    echo "bench: courier serve ended before task $id did (see $CS_DATA/logs/server.log)" >&2
  else
    cs_courier task show "$id" --json | jq -c '.destinations[] | select(.status != "succeeded") | {name, status, message}' | head -20 >&2
  fi
  return 1
}

# cs_kib PID FIELD: a /proc/PID/status figure (VmRSS, VmHWM), in KiB.
cs_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# cs_stop PID…: SIGTERM, then wait for each to end.
cs_stop() {
  local p
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

cs_cleanup() {
  if [ ${#cs_pids[@]} -gt 0 ]; then
    kill "${cs_pids[@]}" 2>/dev/null || true
    wait "${cs_pids[@]}" 2>/dev/null || true
  fi
  cs_pids=()
}
