#!/usr/bin/env bash
# The commands users run, against kcat, on one fresh mock broker, same run:
#   kafka-lab produce --count N          vs  kcat -P -K: -l FILE (the same readings)
#   kafka-lab produce --quiet --count N  vs  the same kcat run (neither prints a row)
#   kafka-lab consume --group G --no-csv vs  kcat -G G -e (a fresh group each, from earliest)
#   kafka-lab consume --group G --csv F  vs  the same kcat -G run
# Wall-clock seconds of each whole command (group join included), and ratios
# (> 1: kafka-lab faster), printed as Markdown rows. The produce commands take
# turns at running first (below).
#
#   scripts/compare-cli.sh [MESSAGES] [RUNS]     defaults: 200000 3
set -euo pipefail
cd "$(dirname "$0")/.."

messages="${1:-200000}"
runs="${2:-3}"
. scripts/bench-broker.sh
# 32 partitions: the mock keeps 5 MB per partition.
start_bench_broker mock cli:32

seconds() { # seconds COMMAND...: wall-clock seconds of one run, output discarded
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}
ratio() { awk -v ours="$1" -v theirs="$2" 'BEGIN { printf "%.2f", theirs / ours }'; }

# The readings kcat sends: the same as kafka-lab's.
write_kcat_lines cli "$messages" "$work/readings.txt"

echo "| run | kafka-lab produce s | produce --quiet s | kcat -P s | ratio | ratio quiet | kafka-lab consume s | with CSV s | kcat -G s | ratio | ratio with CSV |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
# The three produce commands run in an order turned by one place each run, so
# that over three runs each has run first, second and third: on this machine a
# command's place in a round can change its time (docs/performance.md,
# session 14), and a fixed order would hand that to the same command each run.
produce_order=(rows quiet kcat)
for run in $(seq 1 "$runs"); do
  for ((i = 0; i < 3; i++)); do
    case "${produce_order[(i + run) % 3]}" in
      rows) p=$(seconds "$kafka_lab" -b "$bootstrap" produce --topic cli --count "$messages") ;;
      quiet) q=$(seconds "$kafka_lab" -b "$bootstrap" produce --quiet --topic cli --count "$messages") ;;
      kcat) k=$(seconds kcat -b "$bootstrap" -P -t cli -K: -X acks=all -X enable.idempotence=true -l "$work/readings.txt") ;;
    esac
  done
  c=$(seconds "$kafka_lab" -b "$bootstrap" consume --topic cli --group "cli-$run-a" --no-csv --max 100000000)
  f=$(seconds "$kafka_lab" -b "$bootstrap" consume --topic cli --group "cli-$run-b" --csv "$work/kafka_log-$run.csv" --max 100000000)
  g=$(seconds kcat -b "$bootstrap" -G "cli-$run-k" -X auto.offset.reset=earliest -e -q cli)
  printf '| %s | %.2f | %.2f | %.2f | %s | %s | %.2f | %.2f | %.2f | %s | %s |\n' "$run" "$p" "$q" "$k" "$(ratio "$p" "$k")" "$(ratio "$q" "$k")" "$c" "$f" "$g" "$(ratio "$c" "$g")" "$(ratio "$f" "$g")"
done
echo
echo "stored and read per consume: $(wc -l < "$work/kafka_log-1.csv") CSV lines (header included)"
