#!/usr/bin/env bash
# The tuning sweep of docs/performance.md: `kafka-lab bench` on a fresh embedded
# broker, once per setting, printing a Markdown table of what each run measured.
#
#   scripts/bench-sweep.sh [ENGINE] [MESSAGES]     defaults: tansu 200000
#
# Each row changes one librdkafka property (-X, given to the bench's producer and
# consumer alike) from the crate's bench defaults: linger.ms=20, acks=all, no
# compression, librdkafka's batch and fetch defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

engine="${1:-tansu}"
messages="${2:-200000}"
CACHE="${KAFKA_LAB_CACHE:-$HOME/.cache/kafka-lab}"
export KAFKA_LAB_TANSU="${KAFKA_LAB_TANSU:-$CACHE/tansu/bin/tansu}"
python="$CACHE/venv/bin/python"

cargo build --release --bin kafka-lab >&2
kafka_lab="$PWD/target/release/kafka-lab"
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bootstrap="127.0.0.1:$port"
data="$(mktemp -d)"
"$kafka_lab" broker --engine "$engine" --listen "$bootstrap" --data "$data" --topic sweep:32 >"$data.log" 2>&1 &
broker_pid=$!
trap 'kill "$broker_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$data" "$data.log"' EXIT
for _ in $(seq 1 100); do
  "$kafka_lab" -b "$bootstrap" --broker-timeout-ms 1000 topics list >/dev/null 2>&1 && break
  sleep 0.3
done

settings=(
  ""
  "linger.ms=0" "linger.ms=5" "linger.ms=100"
  "batch.size=16384" "batch.size=131072" "batch.size=4000000"
  "compression.type=lz4" "compression.type=zstd"
  "acks=0" "acks=1"
  "fetch.min.bytes=100000" "queued.min.messages=10000" "queued.min.messages=1000000"
)
results="$data.jsonl"
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
print(f"engine {sys.argv[2]}, {int(sys.argv[3]):,} × 100 B per run, latency at 1,000 msg/s for 5 s\n")
print("| setting | produce msg/s | consume msg/s | latency p50 ms | p99 ms | p99.9 ms |")
print("|---|---|---|---|---|---|")
for r in rows:
    l = r.get("latency") or {}
    print(f"| `{r['setting']}` | {r['produce']['messages_per_second']:,.0f} | {r['consume']['messages_per_second']:,.0f} "
          f"| {l.get('p50_ms', float('nan')):.1f} | {l.get('p99_ms', float('nan')):.1f} | {l.get('p999_ms', float('nan')):.1f} |")
PY
