#!/usr/bin/env bash
# Fault run (docs/RELIABILITY.md): `courier serve` is killed with SIGKILL
# at random moments, ROUNDS times, while AGENTS real agents download and
# install; it is started again on the same data dir and port each time.
# Then every task must complete with every destination succeeded, no
# attempt may have run its installer twice, and the database must pass
# `PRAGMA integrity_check`. Prints one line per round and a summary;
# exits non-zero on any violation.
#
#   BENCH_COURIER=path/to/courier [BENCH_AGENT=path/to/courier-agent] \
#     ROUNDS=20 AGENTS=10 tests/faults/server-kill.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${BENCH_COURIER:?set BENCH_COURIER to a built courier}"
ROUNDS=${ROUNDS:-20}
AGENTS=${AGENTS:-10}
source bench/courier.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/courier-faults.XXXXXX")
trap 'cs_cleanup; rm -rf "$work"' EXIT

cs_serve "$work/server"
token=$(cs_token)
for i in $(seq "$AGENTS"); do
  cs_agent alone "$work/a$i" "pc-$i" "$token"
done
cs_wait_online "$AGENTS"

# The package: 32 MiB of data and an installer that logs where it runs
# (its folder names the agent, the task and the attempt) as it starts and
# ends, and takes one to three seconds.
mkdir -p "$work/pkg"
head -c $((32 << 20)) /dev/urandom >"$work/pkg/payload.bin"
cat >"$work/pkg/install.sh" <<SH
#!/bin/sh
echo "start \$(pwd)" >>"$work/marks.log"
sleep \$(( (\$\$ % 3) + 1 ))
echo "end \$(pwd)" >>"$work/marks.log"
SH
(cd "$work/pkg" && python3 -c '
import zipfile
with zipfile.ZipFile("../pkg.zip", "w") as z:
    z.write("install.sh"); z.write("payload.bin")')
pkg=$(cs_courier package add "$work/pkg.zip" --install-command "sh install.sh" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

restart() {
  "$BENCH_COURIER" --data "$CS_DATA" serve --listen "$CS_ADDR" >>"$CS_DATA.log" 2>&1 &
  CS_SERVER_PID=$!
  cs_pids+=("$CS_SERVER_PID")
  for _ in $(seq 100); do
    cs_courier status --json 2>/dev/null | grep -q '"listen"' && return 0
    sleep 0.1
  done
  echo "faults: the server did not come back (see $CS_DATA.log)" >&2
  exit 1
}

unfinished() {
  cs_courier task list --json | python3 -c '
import json,sys
print(sum(1 for t in json.load(sys.stdin) if t["status"] in ("running","scheduled")))'
}

start=$(date +%s)
tasks=0
for round in $(seq "$ROUNDS"); do
  if [ "$(unfinished)" = 0 ]; then
    cs_courier task create --package "$pkg" --all >/dev/null
    tasks=$((tasks + 1))
  fi
  sleep "$(python3 -c 'import random; print(round(random.uniform(0.3, 2.5), 2))')"
  kill -9 "$CS_SERVER_PID"
  wait "$CS_SERVER_PID" 2>/dev/null || true
  restart
  echo "round $round: killed and restarted ($tasks tasks so far)"
done

deadline=$(($(date +%s) + 300))
while [ "$(unfinished)" != 0 ]; do
  if [ "$(date +%s)" -gt "$deadline" ]; then
    echo "faults: tasks still unfinished 5 minutes after the last kill" >&2
    cs_courier task list
    exit 1
  fi
  sleep 1
done
took=$(($(date +%s) - start))

cs_courier task list --json >"$work/tasks.json"
for id in $(python3 -c 'import json; [print(t["id"]) for t in json.load(open("'"$work/tasks.json"'"))]'); do
  cs_courier task show "$id" --json >"$work/task-$id.json"
done
kill "$CS_SERVER_PID"
wait "$CS_SERVER_PID" 2>/dev/null || true
integrity=$(python3 -c '
import sqlite3,sys
print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$CS_DATA/courier.db")

python3 - "$work" "$integrity" "$took" "$ROUNDS" "$AGENTS" <<'PY'
import collections, glob, json, os, re, sys
work, integrity, took, rounds, agents = sys.argv[1:6]
bad = []
runs = collections.Counter()
ends = collections.Counter()
for line in open(os.path.join(work, "marks.log")):
    kind, path = line.split(" ", 1)
    m = re.search(r"/a(\d+)/work/(\d+)-(\d+)", path)
    if not m:
        bad.append(f"installer ran outside an attempt folder: {path.strip()}")
        continue
    key = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    (runs if kind == "start" else ends)[key] += 1
twice = {k: n for k, n in runs.items() if n > 1}
if twice:
    bad.append(f"attempts whose installer ran more than once: {twice}")
dests = 0
for f in glob.glob(os.path.join(work, "task-*.json")):
    t = json.load(open(f))
    for d in t["destinations"]:
        dests += 1
        if d["status"] != "succeeded":
            bad.append(f"task {t['id']} {d['name']}: {d['status']} ({d.get('message')})")
        agent = int(d["name"].split("-")[1])
        ran = [k for k in runs if k[0] == agent and k[1] == t["id"]]
        if not ran:
            bad.append(f"task {t['id']} {d['name']}: succeeded but no installer ran")
        if any(k[2] > d["attempt"] for k in ran):
            bad.append(f"task {t['id']} {d['name']}: an installer ran for an attempt the server never recorded")
if integrity != "ok":
    bad.append(f"integrity_check: {integrity}")
print(f"faults: {rounds} kills, {agents} agents, {dests} destinations in "
      f"{len(glob.glob(os.path.join(work, 'task-*.json')))} tasks, "
      f"{sum(runs.values())} installer runs ({sum(ends.values())} ended), "
      f"all finished {took} s after the first task; integrity_check {integrity}")
for b in bad:
    print("VIOLATION:", b)
sys.exit(1 if bad else 0)
PY
