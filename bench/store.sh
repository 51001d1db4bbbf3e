#!/usr/bin/env bash
# store: destination state transitions per second through the server's
# write path, and the p99 from a report's submission to its
# acknowledgement; group commit with synchronous=FULL (what the server
# runs) and NORMAL, against a commit per report (the reference).
set -euo pipefail
BENCH=store
source "$(dirname "$0")/lib.sh"

if [ "$BENCH_QUICK" = 1 ]; then
  args=(--destinations 1000 --clients 50 --rounds 1)
else
  args=(--destinations 20000 --clients 200 --rounds 3)
fi
out=$("$BENCH_TOOL" store "${args[@]}")
while read -r tag metric value unit reference; do
  [ "$tag" = ROW ] && row "$metric" "$value" "$unit" "$reference"
done <<<"$out"
done_rows
