#!/usr/bin/env bash
# Produce commands against kcat, alternated round by round on one fresh mock
# broker (32 partitions): each round runs `kcat -P` of N readings and each
# named command once, the order turned by one place every round (a run's place
# in the round matters on this machine). Prints, per name, the median wall time
# and the median over rounds of kcat's wall ÷ its wall (> 1: faster than kcat).
# The machine has fast and slow minutes: only figures of the same rounds compare.
#
#   scripts/produce-ab.sh N ROUNDS NAME=COMMAND...
#
# In COMMAND, BOOT is the broker's address and COUNT is N; the topic is `cli`.
# COMMAND is split on spaces (no quoting) and run through `env`, so it may
# start with VAR=value. This script builds target/release/kafka-lab first:
# compare another build from a copy of its binary kept elsewhere.
#   scripts/produce-ab.sh 1000000 15 \
#     "quiet=target/release/kafka-lab -b BOOT produce --quiet --topic cli --count COUNT" \
#     "linger5=target/release/kafka-lab -b BOOT -X linger.ms=5 produce --quiet --topic cli --count COUNT"
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

usage() { sed -n '2,17p' "$0" >&2; exit 2; }
[ $# -ge 3 ] || usage
messages="$1"
rounds="$2"
shift 2
[[ $messages =~ ^[1-9][0-9]*$ && $rounds =~ ^[1-9][0-9]*$ ]] || usage
for spec in "$@"; do
  name="${spec%%=*}"
  [[ $spec == *=* && $name =~ ^[A-Za-z0-9_.-]+$ && $name != kcat ]] ||
    { echo "not NAME=COMMAND (NAME: letters, digits, _.-; not kcat): $spec" >&2; exit 2; }
done
command -v kcat >/dev/null || { echo "kcat is needed (apt-get install kafkacat)" >&2; exit 1; }
. scripts/bench-broker.sh
start_bench_broker mock cli:32
write_kcat_lines cli "$messages" "$work/lines.txt"

specs=("kcat=kcat -b BOOT -P -t cli -K: -X acks=all -X enable.idempotence=true -l $work/lines.txt" "$@")
for ((round = 0; round < rounds; round++)); do
  for ((i = 0; i < ${#specs[@]}; i++)); do
    spec="${specs[(i + round) % ${#specs[@]}]}"
    name="${spec%%=*}"
    command="${spec#*=}"
    command="${command//BOOT/$bootstrap}"
    command="${command//COUNT/$messages}"
    start=$EPOCHREALTIME
    # Split on purpose: COMMAND is a command line.
    # shellcheck disable=SC2086
    env $command >/dev/null 2>"$work/stderr" || { echo "$name failed:" >&2; cat "$work/stderr" >&2; exit 1; }
    end=$EPOCHREALTIME
    echo "$round $name $start $end" >>"$work/times"
  done
done

print_rounds "$work/times"
