#!/usr/bin/env bash
# Fan-out (docs/PERFORMANCE.md): one package of random bytes to N agents
# on loopback, each downloading it into its own data dir (verified chunk by
# chunk, synced, checked whole) and running its command (`true`), timed
# from `task create` to every destination succeeded. Beside it, in the
# same run and interleaved round by round, nginx from Debian (sendfile on)
# serves the same file to N concurrent curl clients, each writing its own
# copy to disk: over TLS 1.3, and plain.
#
#   FANOUT_SIZE_MIB  package size (default 256; up to 1024)
#   FANOUT_AGENTS    agents and curl clients (default 20)
#   FANOUT_ROUNDS    rounds (default 3); figures are medians
#   FANOUT_PROFILE   a directory: the first courier round runs under
#                    `perf record -g`, agents and server apart
#                    (agents.data, server.data, and a summary of each)
# Quick (BENCH_QUICK=1): 16 MiB to 4 agents, 1 round.
#
# Rows: seconds_tls_ratio (courier, reference nginx over TLS 1.3: the one
# that decides), seconds_plain_ratio (reference nginx plain), and the raw
# seconds of each.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=fanout
source bench/lib.sh
source bench/courier.sh

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  size=${FANOUT_SIZE_MIB:-16} agents=${FANOUT_AGENTS:-4} rounds=${FANOUT_ROUNDS:-1}
else
  size=${FANOUT_SIZE_MIB:-256} agents=${FANOUT_AGENTS:-20} rounds=${FANOUT_ROUNDS:-3}
fi
if [ "$size" -gt 1024 ] || [ "$size" -lt 1 ]; then
  echo "bench/fanout: FANOUT_SIZE_MIB must be 1…1024 (registration refuses more than 1 GiB)" >&2
  exit 2
fi

# nginx and curl from Debian, installed when missing (the bench runs as
# root on a disposable machine).
if ! command -v nginx >/dev/null || ! command -v curl >/dev/null; then
  echo "bench/fanout: installing nginx-light and curl" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends nginx-light curl >&2
fi
nginx_bin=$(command -v nginx)

work=$(mktemp -d "${TMPDIR:-/tmp}/courier-bench-fanout.XXXXXX")
nginx_pid=""
stop_nginx() {
  [ -z "$nginx_pid" ] || { kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; }
  nginx_pid=""
}
trap 'stop_nginx; cs_cleanup; rm -rf "$work"' EXIT

now() { date +%s.%N; }
# cpu_of PID…: user + system CPU seconds the processes have used so far.
tck=$(getconf CLK_TCK)
cpu_of() {
  local p t=0
  for p in "$@"; do
    # Fields 14 and 15 of /proc/PID/stat (after the command's parentheses).
    t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
  done
  awk -v t="$t" -v k="$tck" 'BEGIN { printf "%.2f", t / k }'
}
# children_cpu PID: user + system CPU seconds of the children PID waited for.
children_cpu() {
  sed 's/.*) //' "/proc/$1/stat" | awk -v k="$tck" '{ printf "%.2f", ($14 + $15) / k }'
}
# children_of PID: its children's PIDs.
children_of() {
  local f
  for f in /proc/[0-9]*/stat; do
    sed 's/.*) //' "$f" 2>/dev/null | awk -v p="$1" -v f="$f" '$2 == p { split(f, a, "/"); print a[3] }'
  done
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# --- nginx: TLS 1.3 and plain on two loopback ports, serving $work/www.
mkdir -p "$work/nginx" "$work/www"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -keyout "$work/nginx/key.pem" -out "$work/nginx/cert.pem" 2>/dev/null
tls_port=$((20000 + RANDOM % 30000)) plain_port=$((20000 + RANDOM % 30000))
cat >"$work/nginx/nginx.conf" <<EOF
user root;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  client_body_temp_path $work/nginx/tmp;
  server {
    listen 127.0.0.1:$tls_port ssl;
    ssl_certificate $work/nginx/cert.pem;
    ssl_certificate_key $work/nginx/key.pem;
    ssl_protocols TLSv1.3;
    root $work/www;
  }
  server {
    listen 127.0.0.1:$plain_port;
    root $work/www;
  }
}
EOF
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
for _ in $(seq 50); do
  # Any answer (a 404 for /) means it listens.
  curl -s -o /dev/null "http://127.0.0.1:$plain_port/" && break
  sleep 0.1
done

# nginx_round URL: N curl clients at once, each writing its own copy;
# prints the seconds until all ended, then until `sync` put them on disk
# (what courier's agents do before they report), then the CPU seconds
# nginx's workers and the curl clients used.
nginx_round() {
  local url=$1 i pids=() t0 t1 t2 w0 w1 c0 c1 workers me=$BASHPID
  rm -rf "$work/curl"
  for i in $(seq "$agents"); do mkdir -p "$work/curl/$i"; done
  mapfile -t workers < <(children_of "$nginx_pid")
  w0=$(cpu_of "${workers[@]}") c0=$(children_cpu "$me")
  t0=$(now)
  for i in $(seq "$agents"); do
    curl -skf --tlsv1.3 -o "$work/curl/$i/file" "$url" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i"; done
  t1=$(now)
  w1=$(cpu_of "${workers[@]}") c1=$(children_cpu "$me")
  sync
  t2=$(now)
  for i in $(seq "$agents"); do
    [ "$(stat -c %s "$work/curl/$i/file")" = $((size << 20)) ] || { echo "bench/fanout: curl $i got a short file" >&2; return 1; }
  done
  rm -rf "$work/curl"
  echo "$(elapsed "$t0" "$t1") $(elapsed "$t0" "$t2") $(elapsed "$(awk -v a="$w0" -v b="$c0" 'BEGIN { print a + b }')" "$(awk -v a="$w1" -v b="$c1" 'BEGIN { print a + b }')")"
}

# --- courier: a server and N agents, each with its own data dir.
cs_serve "$work/server"
server_pid=$CS_SERVER_PID
token=$(cs_token)
names=() agent_pids=()
for i in $(seq "$agents"); do
  cs_agent alone "$work/agent$i" "a$i" "$token"
  names+=("a$i") agent_pids+=("$CS_AGENT_PID")
done
cs_wait_online "$agents"
dests=$(IFS=,; echo "${names[*]}")
agent_kind=$([ -x "${BENCH_AGENT:-}" ] && echo courier-agent || echo "courier agent")

# courier_round FILE: registers it, distributes it to every agent, prints
# the seconds from task create to all succeeded and the CPU seconds the
# server and the agents used meanwhile; then frees the disk.
courier_round() {
  local file=$1 pkg task t0 t1 i u0 u1
  pkg=$(cs_package "$file" --kind install --install-command true --name "fanout-$RANDOM")
  local perf=()
  if [ -n "${FANOUT_PROFILE:-}" ] && [ ! -e "$FANOUT_PROFILE/agents.data" ]; then
    mkdir -p "$FANOUT_PROFILE"
    perf record -g -q -o "$FANOUT_PROFILE/agents.data" -p "$(IFS=,; echo "${agent_pids[*]}")" 2>/dev/null &
    perf+=($!)
    perf record -g -q -o "$FANOUT_PROFILE/server.data" -p "$server_pid" 2>/dev/null &
    perf+=($!)
    sleep 1
  fi
  u0=$(cpu_of "$server_pid" "${agent_pids[@]}")
  t0=$(now)
  task=$(cs_task "$pkg" "$dests")
  cs_wait_task "$task" 1200
  t1=$(now)
  u1=$(cpu_of "$server_pid" "${agent_pids[@]}")
  if [ ${#perf[@]} -gt 0 ]; then
    kill -INT "${perf[@]}"
    wait "${perf[@]}" 2>/dev/null || true
  fi
  cs_courier task rm "$task" >/dev/null
  cs_courier package rm "$pkg" >/dev/null 2>&1 || true
  for i in $(seq "$agents"); do rm -rf "$work/agent$i/cache/"* "$work/agent$i/work/"*; done
  echo "$(elapsed "$t0" "$t1") $(elapsed "$u0" "$u1")"
}

echo "fanout: $size MiB to $agents agents ($agent_kind), $rounds round(s); nginx $("$nginx_bin" -v 2>&1 | sed 's/.*\///')" >&2
c_s=() tls_s=() plain_s=() tls_synced=() plain_synced=() c_cpu=() tls_cpu=() plain_cpu=()
for r in $(seq "$rounds"); do
  # New random bytes every round: nothing is cached on an agent, and
  # nginx serves the very same file.
  # Each side starts with nothing dirty in the page cache: what the one
  # before wrote is on disk first.
  head -c "$((size << 20))" /dev/urandom >"$work/www/file"
  sync
  read -r c cc <<<"$(courier_round "$work/www/file")"
  sync
  read -r t ts tc <<<"$(nginx_round "https://127.0.0.1:$tls_port/file")"
  read -r p ps pc <<<"$(nginx_round "http://127.0.0.1:$plain_port/file")"
  echo "fanout: round $r: courier $c s ($cc CPU s), nginx TLS $t s ($ts s synced; $tc CPU s), nginx plain $p s ($ps s synced; $pc CPU s)" >&2
  c_s+=("$c") tls_s+=("$t") plain_s+=("$p") tls_synced+=("$ts") plain_synced+=("$ps")
  c_cpu+=("$cc") tls_cpu+=("$tc") plain_cpu+=("$pc")
done

courier=$(median "${c_s[@]}") tls=$(median "${tls_s[@]}") plain=$(median "${plain_s[@]}")
row seconds_tls_ratio "$courier" s "$tls"
row seconds_plain_ratio "$courier" s "$plain"
row courier_seconds "$courier" s
row nginx_tls_seconds "$tls" s
row nginx_plain_seconds "$plain" s
# Informative: nginx's clients' copies on disk too, as courier's are.
row seconds_tls_synced_ratio "$courier" s "$(median "${tls_synced[@]}")"
row seconds_plain_synced_ratio "$courier" s "$(median "${plain_synced[@]}")"
# Informative: CPU seconds a round (courier: server and agents; nginx:
# its workers and the curl clients), what 2 cores have to get through.
row cpu_seconds_tls_ratio "$(median "${c_cpu[@]}")" s "$(median "${tls_cpu[@]}")"
row cpu_seconds_plain_ratio "$(median "${c_cpu[@]}")" s "$(median "${plain_cpu[@]}")"
row courier_mib_per_s "$(awk -v s="$size" -v n="$agents" -v t="$courier" 'BEGIN { printf "%.1f", s * n / t }')" MiB/s
row size_mib "$size" MiB
row agents "$agents" count
done_rows

if [ -n "${FANOUT_PROFILE:-}" ] && [ -e "$FANOUT_PROFILE/agents.data" ]; then
  for who in agents server; do
    perf report -i "$FANOUT_PROFILE/$who.data" --no-children --sort dso,symbol \
      --percent-limit 0.5 --stdio -g none 2>/dev/null | grep -v '^$' | head -80 >"$FANOUT_PROFILE/$who.txt" || true
  done
  echo "fanout: profiles in $FANOUT_PROFILE (agents.txt, server.txt)" >&2
fi
