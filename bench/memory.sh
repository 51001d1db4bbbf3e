#!/usr/bin/env bash
# Memory figures of docs/PERFORMANCE.md: peak RSS of registering a 1 GiB
# file, and the RSS of an idle, connected agent. Uses the release binary.
#   bash bench/memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/courier"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

truncate -s 1G "$work/big.img"
/usr/bin/time -f "registration of 1 GiB: peak RSS %M KiB, %e s" \
  "$bin" --data "$work/server" package add "$work/big.img" --folder /srv >/dev/null

port=$((20000 + RANDOM % 20000))
"$bin" --data "$work/server" serve --listen "127.0.0.1:$port" 2>/dev/null &
sleep 1
token=$("$bin" --data "$work/server" token create --auto-approve 2>/dev/null)
"$bin" --data "$work/agent" agent --server "127.0.0.1:$port" --token "$token" --name bench 2>/dev/null &
agent=$!
sleep 5
echo "idle connected agent: $(grep VmRSS /proc/$agent/status | awk '{print $2}') KiB RSS," \
  "of which private (anonymous) $(awk '/^Private_Dirty/ {print $2}' /proc/$agent/smaps_rollup) KiB"
