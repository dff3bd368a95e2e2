#!/usr/bin/env bash
# The commands users run, against kcat, on one fresh mock broker, same run:
#   kafka-lab produce --count N          vs  kcat -P -K: -l FILE (the same readings, in the same order)
#   kafka-lab produce --quiet --count N  vs  the same kcat run (neither prints a row)
#   kafka-lab consume --group G --no-csv vs  kcat -G G -e (a fresh group each, from earliest)
#   kafka-lab consume --group G --csv F  vs  the same kcat -G run
# Wall-clock seconds of each whole command (group join included), and ratios
# (> 1: kafka-lab faster), printed as Markdown rows.
#
# Each run (a row) first runs the three produce commands in ROUNDS rounds, the
# order turned by one place every round, and shows their median times and the
# median of the per-round ratios; then the three consumes, once each. A produce
# of 200,000 readings takes under a tenth of a second, and on this machine one
# such run can take a third longer than the next for no reason of its own
# (docs/performance.md, sessions 14-16): one round per run was mostly noise.
#
#   scripts/compare-cli.sh [MESSAGES] [RUNS] [ROUNDS]     defaults: 200000 3 6
#
# The consumes read a topic of their own, `read`, holding N readings: the mock
# keeps at most 5 MiB of batches per partition, and the three cities' keys use
# three partitions only. Its readings come from 64 stations, whose keys
# librdkafka's partitioner spreads over all 32 partitions, 1 to 3 stations
# each: up to about 1,100,000 readings (3/64 of them, ~95 bytes each, in the
# fullest partition) fit. Each kafka-lab consume must read N, or the script
# fails; kcat's count is not checked (printing it would change what is timed).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

messages="${1:-200000}"
runs="${2:-3}"
rounds="${3:-6}"
[[ $messages =~ ^[1-9][0-9]*$ && $runs =~ ^[1-9][0-9]*$ && $rounds =~ ^[1-9][0-9]*$ ]] ||
  { sed -n '2,25p' "$0" >&2; exit 2; }
command -v kcat >/dev/null || { echo "kcat is needed (apt-get install kafkacat)" >&2; exit 1; }
. scripts/bench-broker.sh
start_bench_broker mock cli:32 read:32

# seconds COMMAND...: wall-clock seconds of one run, its output discarded but
# its error output kept in $work/stderr; a failure stops the script and shows
# it. Bash's own microsecond clock: a `date` process on each side would add
# its own start.
seconds() {
  local start end
  start=$EPOCHREALTIME
  "$@" >/dev/null 2>"$work/stderr" || { echo "failed: $*" >&2; cat "$work/stderr" >&2; exit 1; }
  end=$EPOCHREALTIME
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}
# ratio OURS THEIRS: kcat's seconds over ours, unrounded (medians come later).
ratio() { awk -v ours="$1" -v theirs="$2" 'BEGIN { printf "%.4f", theirs / ours }'; }
# median NUMBER...
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# expect_read CSV|-: fails unless the last consume read N readings (its CSV's
# lines but the header, or what it said on its error output).
expect_read() {
  local count
  if [ "$1" = - ]; then
    count=$(sed -n 's/.*read \([0-9]*\) reading(s).*/\1/p' "$work/stderr" | tail -1)
  else
    count=$(($(wc -l <"$1") - 1))
  fi
  if [ "${count:-0}" -ne "$messages" ]; then
    echo "a consume read ${count:-nothing} readings, not $messages (over 5 MiB in a partition of the mock?):" >&2
    cat "$work/stderr" >&2
    exit 1
  fi
}

# The readings kcat sends: the same as kafka-lab's, in the order it sends them.
write_kcat_lines cli "$messages" "$work/readings.txt"
# The topic the consumes read: N readings of 64 stations.
stations=$(seq -f 'Station%02g' 1 64 | paste -sd, -)
"$kafka_lab" -b "$bootstrap" produce --quiet --topic read --count "$messages" --cities "$stations" >/dev/null

echo "| run | kafka-lab produce s | produce --quiet s | kcat -P s | ratio | ratio quiet | kafka-lab consume s | with CSV s | kcat -G s | ratio | ratio with CSV |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
# The order of the produce commands turns by one place every round, so that
# over three rounds each runs first, second and third once: a command's place
# in a round can change its time on this machine (docs/performance.md,
# session 14).
produce_order=(rows quiet kcat)
for run in $(seq 1 "$runs"); do
  rows_seconds=() quiet_seconds=() kcat_seconds=() rows_ratios=() quiet_ratios=()
  for round in $(seq 0 $((rounds - 1))); do
    for place in 0 1 2; do
      case "${produce_order[(place + round) % 3]}" in
        rows) rows=$(seconds "$kafka_lab" -b "$bootstrap" produce --topic cli --count "$messages") ;;
        quiet) quiet=$(seconds "$kafka_lab" -b "$bootstrap" produce --quiet --topic cli --count "$messages") ;;
        kcat) kcat=$(seconds kcat -b "$bootstrap" -P -t cli -K: -X acks=all -X enable.idempotence=true -l "$work/readings.txt") ;;
      esac
    done
    rows_seconds+=("$rows") quiet_seconds+=("$quiet") kcat_seconds+=("$kcat")
    rows_ratios+=("$(ratio "$rows" "$kcat")") quiet_ratios+=("$(ratio "$quiet" "$kcat")")
  done
  consume=$(seconds "$kafka_lab" -b "$bootstrap" consume --topic read --group "read-$run-a" --no-csv --max 100000000)
  expect_read -
  into_csv=$(seconds "$kafka_lab" -b "$bootstrap" consume --topic read --group "read-$run-b" --csv "$work/kafka_log-$run.csv" --max 100000000)
  expect_read "$work/kafka_log-$run.csv"
  kcat_group=$(seconds kcat -b "$bootstrap" -G "read-$run-k" -X auto.offset.reset=earliest -e -q read)
  printf '| %s | %.3f | %.3f | %.3f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n' "$run" \
    "$(median "${rows_seconds[@]}")" "$(median "${quiet_seconds[@]}")" "$(median "${kcat_seconds[@]}")" \
    "$(median "${rows_ratios[@]}")" "$(median "${quiet_ratios[@]}")" \
    "$consume" "$into_csv" "$kcat_group" "$(ratio "$consume" "$kcat_group")" "$(ratio "$into_csv" "$kcat_group")"
done
echo
echo "produce: the median of $rounds rounds per run (ratios: the median of the per-round ratios);"
echo "each kafka-lab consume read $messages readings"
