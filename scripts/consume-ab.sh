#!/usr/bin/env bash
# The consume commands against kcat -G, alternated round by round on one fresh
# mock broker that holds N readings of 64 stations in a 32-partition topic:
# each round runs `kafka-lab consume --no-csv`, `kafka-lab consume --csv` and
# `kcat -G -e`, each in a fresh group from the earliest offset, the order turned
# by one place every round. Prints, per command, the median wall time and the
# median over rounds of kcat's wall ÷ its wall (> 1: faster than kcat). A
# group's join is in every figure (about 3 s on each side).
#
#   scripts/consume-ab.sh N ROUNDS          e.g. scripts/consume-ab.sh 1000000 6
#
# N: up to about 1,100,000 (the mock keeps 5 MiB of batches per partition; see
# scripts/compare-cli.sh). Each kafka-lab consume must read N, or the script fails.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

[ $# -eq 2 ] && [[ $1 =~ ^[1-9][0-9]*$ && $2 =~ ^[1-9][0-9]*$ ]] || { sed -n '2,13p' "$0" >&2; exit 2; }
messages="$1"
rounds="$2"
command -v kcat >/dev/null || { echo "kcat is needed (apt-get install kafkacat)" >&2; exit 1; }
. scripts/bench-broker.sh
start_bench_broker mock read:32
stations=$(seq -f 'Station%02g' 1 64 | paste -sd, -)
"$kafka_lab" -b "$bootstrap" produce --quiet --topic read --count "$messages" --cities "$stations" >/dev/null

order=(no-csv csv kcat)
for round in $(seq 0 $((rounds - 1))); do
  for place in 0 1 2; do
    name="${order[(place + round) % 3]}"
    group="read-$round-$name"
    start=$EPOCHREALTIME
    case "$name" in
      no-csv) "$kafka_lab" -b "$bootstrap" consume --topic read --group "$group" --no-csv --max 100000000 ;;
      csv) rm -f "$work/kafka_log.csv"
        "$kafka_lab" -b "$bootstrap" consume --topic read --group "$group" --csv "$work/kafka_log.csv" --max 100000000 ;;
      kcat) kcat -b "$bootstrap" -G "$group" -X auto.offset.reset=earliest -e -q read ;;
    esac >/dev/null 2>"$work/stderr" || { echo "$name failed:" >&2; cat "$work/stderr" >&2; exit 1; }
    end=$EPOCHREALTIME
    case "$name" in
      no-csv) read_count=$(sed -n 's/.*read \([0-9]*\) reading(s).*/\1/p' "$work/stderr" | tail -1) ;;
      csv) read_count=$(($(wc -l <"$work/kafka_log.csv") - 1)) ;;
      kcat) read_count="$messages" ;; # not counted: printing it would change what is timed
    esac
    [ "${read_count:-0}" -eq "$messages" ] ||
      { echo "consume $name read ${read_count:-nothing} readings, not $messages" >&2; exit 1; }
    echo "$round $name $start $end" >>"$work/times"
  done
done

print_rounds "$work/times"
