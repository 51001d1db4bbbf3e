# Shared by the bench/*.sh scripts (sourced, not run).
# row METRIC VALUE UNIT [REFERENCE]: one figure of $BENCH (ratio =
# value / reference when a reference is given); done_rows writes them to
# $BENCH_OUT/$BENCH.json and prints them.

rows=()

row() {
  local metric=$1 value=$2 unit=$3 reference=${4:-}
  if [ -n "$reference" ]; then
    local ratio
    ratio=$(awk -v v="$value" -v r="$reference" 'BEGIN { if (r == 0) print "null"; else printf "%.3f", v / r }')
    rows+=("{\"benchmark\":\"$BENCH\",\"metric\":\"$metric\",\"value\":$value,\"unit\":\"$unit\",\"reference\":$reference,\"ratio\":$ratio}")
    printf '%-8s %-32s %12s %-8s reference %s  ratio %s\n' "$BENCH" "$metric" "$value" "$unit" "$reference" "$ratio" >&2
  else
    rows+=("{\"benchmark\":\"$BENCH\",\"metric\":\"$metric\",\"value\":$value,\"unit\":\"$unit\"}")
    printf '%-8s %-32s %12s %s\n' "$BENCH" "$metric" "$value" "$unit" >&2
  fi
}

done_rows() {
  local out="$BENCH_OUT/$BENCH.json" i
  {
    echo "["
    for i in "${!rows[@]}"; do
      if [ "$i" -lt $((${#rows[@]} - 1)) ]; then echo "  ${rows[$i]},"; else echo "  ${rows[$i]}"; fi
    done
    echo "]"
  } >"$out"
}

# median of the numbers given as arguments
median() {
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
