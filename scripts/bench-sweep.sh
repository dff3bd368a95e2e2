#!/usr/bin/env bash
# The tuning sweep of docs/performance.md: `kafka-lab bench` on a fresh embedded
# broker, once per setting, printing a Markdown table of what each run measured.
#
#   scripts/bench-sweep.sh [ENGINE] [MESSAGES]     defaults: nisshi 200000
#
# Each row changes one librdkafka property (-X, given to the bench's producer and
# consumer alike) from the defaults of the clients `produce` and `consume` build
# (acks=all, enable.idempotence=true, fetch.queue.backoff.ms=0,
# session.timeout.ms=6000, heartbeat.interval.ms=2000, fetch.wait.max.ms by
# engine, linger.ms=1; librdkafka's batch and fetch sizes otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."

engine="${1:-nisshi}"
messages="${2:-200000}"
CACHE="${KAFKA_LAB_CACHE:-$HOME/.cache/kafka-lab}"
export KAFKA_LAB_NISSHI="${KAFKA_LAB_NISSHI:-$CACHE/nisshi/bin/nisshi}"
python="$CACHE/venv/bin/python"

. scripts/bench-broker.sh
start_bench_broker "$engine" sweep:32

settings=(
  ""
  "linger.ms=0" "linger.ms=5" "linger.ms=100"
  "batch.size=16384" "batch.size=131072" "batch.size=4000000"
  "compression.type=lz4" "compression.type=zstd"
  "acks=0" "acks=1"
  "fetch.min.bytes=100000" "queued.min.messages=10000" "queued.min.messages=1000000"
)
results="$work/results.jsonl"
for setting in "${settings[@]}"; do
  echo "--- ${setting:-defaults}" >&2
  args=(-b "$bootstrap" --broker-timeout-ms 20000)
  [ -n "$setting" ] && args+=(-X "$setting")
  # The mock engine cannot create topics at run time: reuse the one made at
  # start, with 32 partitions because it keeps only 5 MB per partition.
  topic_args=()
  [ "$engine" = mock ] && topic_args=(--topic sweep)
  "$kafka_lab" "${args[@]}" bench "${topic_args[@]}" --messages "$messages" \
    --latency-rate 1000 --latency-seconds 5 --json \
    | "$python" -c 'import json,sys; r=json.load(sys.stdin); r["setting"]=sys.argv[1]; print(json.dumps(r))' "${setting:-defaults}" \
    >> "$results"
done

"$python" - "$results" "$engine" "$messages" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"engine {sys.argv[2]}, {int(sys.argv[3]):,} readings per run, latency at 1,000 msg/s for 5 s\n")
print("| setting | produce msg/s | consume msg/s | into CSV msg/s | latency p50 ms | p99 ms | p99.9 ms |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    l = r.get("latency") or {}
    print(f"| `{r['setting']}` | {r['produce']['messages_per_second']:,.0f} | {r['consume']['messages_per_second']:,.0f} "
          f"| {r['consume_to_csv']['messages_per_second']:,.0f} "
          f"| {l.get('p50_ms', float('nan')):.1f} | {l.get('p99_ms', float('nan')):.1f} | {l.get('p999_ms', float('nan')):.1f} |")
PY
