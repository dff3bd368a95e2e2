#!/usr/bin/env bash
# What fetch settings do to `consume`, on one fresh embedded broker (the fetch
# table of docs/performance.md, session 13): MESSAGES readings in a topic of
# one partition, then one `consume --max MESSAGES --no-csv` (a fresh group each)
# per setting, all settings twice, in turn. Each setting is a list of K=V
# librdkafka properties added with -X; "" is the crate's defaults.
#
#   scripts/fetch-settings.sh ENGINE MESSAGES SETTING...
#   scripts/fetch-settings.sh tansu 200000 "" "fetch.max.bytes=1048576" "fetch.wait.max.ms=1000"
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 3 ] || { sed -n '2,9p' "$0" >&2; exit 2; }
engine="$1"
messages="$2"
shift 2
. scripts/bench-broker.sh
start_bench_broker "$engine" fetched:1
# The mock has the topic from its start; the others create it.
"$kafka_lab" -b "$bootstrap" topics create fetched --partitions 1 >/dev/null 2>&1 || true
"$kafka_lab" -b "$bootstrap" produce --quiet --topic fetched --count "$messages" >/dev/null 2>"$work/stderr" ||
  { cat "$work/stderr" >&2; exit 1; }

echo "| $engine, $messages readings | run | consume s |"
echo "|---|---|---|"
for run in 1 2; do
  for setting in "$@"; do
    properties=()
    for pair in $setting; do properties+=(-X "$pair"); done
    start=$EPOCHREALTIME
    "$kafka_lab" -b "$bootstrap" ${properties[@]+"${properties[@]}"} consume --topic fetched \
      --max "$messages" --no-csv --json --timeout-ms 300000 >/dev/null 2>"$work/stderr" ||
      { echo "consume with '$setting' failed:" >&2; cat "$work/stderr" >&2; exit 1; }
    end=$EPOCHREALTIME
    name="${setting:-the crate defaults}"
    awk -v name="$name" -v run="$run" -v a="$start" -v b="$end" \
      'BEGIN { printf "| %s | %d | %.2f |\n", name, run, b - a }'
  done
done
