#!/usr/bin/env bash
# Console on a big, busy task (docs/PERFORMANCE.md, "Console on a busy
# task"): examples/console_bench seeds a data dir with one task of N
# destinations, starts the server core on it as a standalone console does,
# and drives the console (its App and backend thread) over the admin
# socket while CHANGES rows change between refreshes; it counts the bytes
# on the socket. Run twice: N and N/10 with the same CHANGES, to show the
# bytes a refresh moves do not depend on the task's size.
#   BENCH_QUICK=1: debug build, 30,000 / 3,000 rows, 300 changes a refresh
#   BENCH_QUICK=0: release build, 100,000 / 10,000 rows, 1,000 changes
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=console
source bench/lib.sh

quick=${BENCH_QUICK:-1}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(pwd)/target}"
if [ "$quick" = 1 ]; then
  profile=dev dir=debug size=30000 changes=300 ticks=6
else
  profile=release dir=release size=100000 changes=1000 ticks=10
fi
cargo build --locked --quiet --profile "$profile" --example console_bench
tool="$CARGO_TARGET_DIR/$dir/examples/console_bench"

run() { # ROWS: prints "metric value unit [reference]" lines
  "$tool" "$1" "$ticks" "$changes" | sed -n 's/^ROW //p'
}

small=$((size / 10))
big_out=$(run "$size")
small_out=$(run "$small")
get() { awk -v m="$2" '$1 == m { print $2 }' <<<"$1"; }
ref() { awk -v m="$2" '$1 == m { print $4 }' <<<"$1"; }

row frame_ms "$(get "$big_out" frame_ms)" ms
row update_ms "$(get "$big_out" update_ms)" ms
row update_median_ms "$(get "$big_out" update_median_ms)" ms
row first_frame_ms "$(get "$big_out" first_frame_ms)" ms
row first_detail_ms "$(get "$big_out" first_detail_ms)" ms
# Reference: the whole task, as each busy second fetched it before.
row bytes_per_second "$(get "$big_out" bytes_per_refresh)" bytes "$(ref "$big_out" bytes_per_refresh)"
row bytes_per_second_tenth "$(get "$small_out" bytes_per_refresh)" bytes "$(get "$big_out" bytes_per_refresh)"
row refresh_ms "$(get "$big_out" refresh_ms)" ms "$(ref "$big_out" refresh_ms)"
row rows_changed_per_second "$(get "$big_out" rows_changed_per_refresh)" rows
row open_task_bytes "$(get "$big_out" open_task_bytes)" bytes
row fleet_list_bytes "$(get "$big_out" fleet_list_bytes)" bytes
done_rows
