#!/usr/bin/env bash
# The commands users run, against kcat, on one fresh mock broker, same run:
#   kafka-lab produce --count N          vs  kcat -P -K: -l FILE (the same readings, in the same order)
#   kafka-lab produce --quiet --count N  vs  the same kcat run (neither prints a row)
#   kafka-lab consume --group G --no-csv vs  kcat -G G -e (a fresh group each, from earliest)
#   kafka-lab consume --group G --csv F  vs  the same kcat -G run
# The consumes read a topic of their own holding N readings: the mock keeps
# at most 5 MB (and 100,000 messages) per partition, and the three cities'
# keys fill three partitions only, so they come from 64 stations, whose keys
# spread them over most of the 32 partitions.
# Wall-clock seconds of each whole command (group join included), and ratios
# (> 1: kafka-lab faster), printed as Markdown rows.
#
# Each run first runs the three produce commands in ROUNDS rounds, the order
# turned by one place every round, and shows their median times and the median
# of the per-round ratios; then the three consumes, once each. A produce of
# 200,000 readings takes under a tenth of a second, and on this machine one
# such run can take a third longer than the next for no reason of its own
# (docs/performance.md, sessions 14-16): one round per run was mostly noise.
#
#   scripts/compare-cli.sh [MESSAGES] [RUNS] [ROUNDS]     defaults: 200000 3 5
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

messages="${1:-200000}"
runs="${2:-3}"
rounds="${3:-5}"
[[ $messages =~ ^[1-9][0-9]*$ && $runs =~ ^[1-9][0-9]*$ && $rounds =~ ^[1-9][0-9]*$ ]] ||
  { sed -n '2,17p' "$0" >&2; exit 2; }
command -v kcat >/dev/null || { echo "kcat is needed (apt-get install kafkacat)" >&2; exit 1; }
. scripts/bench-broker.sh
# 32 partitions: the mock keeps 5 MB per partition.
start_bench_broker mock cli:32 read:32

# seconds COMMAND...: wall-clock seconds of one run, output discarded; a
# failure stops the script with the command's error output. Bash's own
# microsecond clock: a `date` process on each side would add its own start.
seconds() {
  local start end
  start=$EPOCHREALTIME
  "$@" >/dev/null 2>"$work/stderr" || { echo "failed: $*" >&2; cat "$work/stderr" >&2; exit 1; }
  end=$EPOCHREALTIME
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}
ratio() { awk -v ours="$1" -v theirs="$2" 'BEGIN { printf "%.2f", theirs / ours }'; }
# median NUMBER...
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# The readings kcat sends: the same as kafka-lab's, in the order it sends them.
write_kcat_lines cli "$messages" "$work/readings.txt"
# The topic the consumes read: N readings of 64 stations.
stations=$(seq -f 'Station%02g' 1 64 | paste -sd, -)
"$kafka_lab" -b "$bootstrap" produce --quiet --topic read --count "$messages" --cities "$stations" 2>/dev/null

echo "| run | kafka-lab produce s | produce --quiet s | kcat -P s | ratio | ratio quiet | kafka-lab consume s | with CSV s | kcat -G s | ratio | ratio with CSV |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
# The order of the produce commands turns by one place every round, so that
# each runs first, second and third as often: a command's place in a round
# can change its time on this machine (docs/performance.md, session 14).
produce_order=(rows quiet kcat)
round=0
for run in $(seq 1 "$runs"); do
  p=() q=() k=() pr=() qr=()
  for _ in $(seq 1 "$rounds"); do
    for ((i = 0; i < 3; i++)); do
      case "${produce_order[(i + round) % 3]}" in
        rows) rows=$(seconds "$kafka_lab" -b "$bootstrap" produce --topic cli --count "$messages") ;;
        quiet) quiet=$(seconds "$kafka_lab" -b "$bootstrap" produce --quiet --topic cli --count "$messages") ;;
        kcat) kcat=$(seconds kcat -b "$bootstrap" -P -t cli -K: -X acks=all -X enable.idempotence=true -l "$work/readings.txt") ;;
      esac
    done
    round=$((round + 1))
    p+=("$rows") q+=("$quiet") k+=("$kcat")
    pr+=("$(ratio "$rows" "$kcat")") qr+=("$(ratio "$quiet" "$kcat")")
  done
  c=$(seconds "$kafka_lab" -b "$bootstrap" consume --topic read --group "read-$run-a" --no-csv --max 100000000)
  f=$(seconds "$kafka_lab" -b "$bootstrap" consume --topic read --group "read-$run-b" --csv "$work/kafka_log-$run.csv" --max 100000000)
  g=$(seconds kcat -b "$bootstrap" -G "read-$run-k" -X auto.offset.reset=earliest -e -q read)
  printf '| %s | %.3f | %.3f | %.3f | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %s |\n' "$run" \
    "$(median "${p[@]}")" "$(median "${q[@]}")" "$(median "${k[@]}")" "$(median "${pr[@]}")" "$(median "${qr[@]}")" \
    "$c" "$f" "$g" "$(ratio "$c" "$g")" "$(ratio "$f" "$g")"
done
echo
echo "produce: the median of $rounds rounds per run (ratios: the median of the per-round ratios)"
read=$(($(wc -l < "$work/kafka_log-1.csv") - 1))
echo "read per consume: $read readings (the CSV's lines but its header)"
if [ "$read" -ne "$messages" ]; then
  echo "the consumes read $read readings, not $messages: the mock dropped some (a partition over 5 MB or 100,000 messages)" >&2
  exit 1
fi
