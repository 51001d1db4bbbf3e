#!/usr/bin/env bash
# scale: many agents (the real protocol, from one load process) against
# one `courier serve`; one small package to all of them.
#   full: steps of 1,000, 10,000 and 50,000 agents (SCALE_AGENTS overrides)
#   quick: 300 agents, of which 100 hold long-polls and the rest check in
set -euo pipefail
BENCH=scale
source "$(dirname "$0")/lib.sh"

if [ "$BENCH_QUICK" = 1 ]; then
  agents=${SCALE_AGENTS:-300}
  extra=(--serve-arg --max-polls --serve-arg 100 --serve-arg --checkin-secs --serve-arg 3)
else
  agents=${SCALE_AGENTS:-1000,10000,50000}
  extra=()
fi
out=$("$BENCH_TOOL" scale --courier "$BENCH_COURIER" --agents "$agents" "${extra[@]}")
while read -r tag metric value unit reference; do
  [ "$tag" = ROW ] && row "$metric" "$value" "$unit" "$reference"
done <<<"$out"
done_rows
