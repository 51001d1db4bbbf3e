#!/usr/bin/env bash
# The agent's memory (docs/PERFORMANCE.md), with a real `courier serve` on
# loopback and real agent processes:
#   idle_rss_kib               courier-agent enrolled and long-polling,
#                              reference: `courier agent` (the full binary)
#                              idle beside it in the same run
#   idle_private_kib           of which private (anonymous, dirty) pages,
#                              reference: the same of `courier agent`
#   peak_rss_kib_unzip         peak RSS (VmHWM) of courier-agent while it
#                              receives and extracts a ZIP that unzips to
#                              2 GiB (quick: 64 MiB), task created to
#                              succeeded; seconds_unzip: that time
#   registration_peak_rss_kib  `courier package add` of a 1 GiB file
#                              (quick: 64 MiB), peak RSS by GNU time
# Run through bench/run (it builds and sets BENCH_*), or by hand with
# BENCH_COURIER, BENCH_AGENT, BENCH_QUICK and BENCH_OUT set.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=agent
source bench/lib.sh
source bench/courier.sh

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  unzip_mib=64 register_mib=64 settle=2
else
  unzip_mib=2048 register_mib=1024 settle=5
fi
if [ ! -x "${BENCH_AGENT:-}" ]; then
  echo "bench/agent: BENCH_AGENT ($BENCH_AGENT) is not built" >&2
  exit 1
fi

# A binary just built has dirty page-cache pages, which smaps counts as
# private to the one process mapping them: write them out first.
sync
work=$(mktemp -d "${TMPDIR:-/tmp}/courier-bench-agent.XXXXXX")
trap 'cs_cleanup; rm -rf "$work"' EXIT

# Registration: a sparse file, so the disk holds nothing; every byte is
# still read, hashed twice and copied into the content store.
truncate -s "${register_mib}M" "$work/big.img"
reg_kib=$(/usr/bin/time -f %M "$BENCH_COURIER" --data "$work/register" \
  package add "$work/big.img" --folder /srv 2>&1 >/dev/null | tail -n 1)
rm -rf "$work/register" "$work/big.img"

cs_serve "$work/server"
token=$(cs_token)
cs_agent alone "$work/alone" alone "$token"
alone=$CS_AGENT_PID
cs_agent full "$work/full" full "$token"
full=$CS_AGENT_PID
cs_wait_online 2
# Enrolled, polled once, then left to settle into its long-poll.
sleep "$settle"
private() { awk '/^Private_Dirty/ { print $2 }' "/proc/$1/smaps_rollup"; }
idle_alone=$(cs_kib "$alone" VmRSS) idle_full=$(cs_kib "$full" VmRSS)
priv_alone=$(private "$alone") priv_full=$(private "$full")
threads_alone=$(cs_kib "$alone" Threads)

# A ZIP of eight entries of zeros: a few MiB on disk, unzip_mib once
# extracted; the agent inflates and CRCs every byte and writes it out.
python3 - "$work/big.zip" "$unzip_mib" <<'EOF'
import sys, zipfile
path, mib = sys.argv[1], int(sys.argv[2])
zero = bytes(1 << 20)
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
    for i in range(8):
        with z.open(f"data/part{i}.bin", "w") as f:
            for _ in range(mib // 8):
                f.write(zero)
EOF
zip_kib=$(($(stat -c %s "$work/big.zip") / 1024))
pkg=$(cs_package "$work/big.zip" --kind file --folder "$work/out")
t0=$(date +%s.%N)
task=$(cs_task "$pkg" alone)
cs_wait_task "$task" 600
t1=$(date +%s.%N)
peak_alone=$(cs_kib "$alone" VmHWM)
placed=$(du -sm "$work/out" | cut -f1)
cs_stop "$alone" "$full"

echo "agent: idle threads $threads_alone; ZIP of $zip_kib KiB unzipped to $placed MiB" >&2
row idle_rss_kib "$idle_alone" KiB "$idle_full"
row idle_private_kib "$priv_alone" KiB "$priv_full"
row peak_rss_kib_unzip "$peak_alone" KiB
row seconds_unzip "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" s
row unzipped_mib "$placed" MiB
row registration_peak_rss_kib "$reg_kib" KiB
row registration_mib "$register_mib" MiB
done_rows
