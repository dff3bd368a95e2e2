# Sourced by bench-sweep.sh, compare-cli.sh, consume-ab.sh, fetch-settings.sh, produce-ab.sh and produce-layers.sh: builds kafka-lab (release) and
# starts a fresh embedded broker for a measurement; write_kcat_lines (below)
# writes the readings it sends as lines for kcat -P, and print_rounds sums up
# rounds alternated with kcat.
#
#   start_bench_broker ENGINE TOPIC:PARTITIONS...
#
# Sets kafka_lab (the binary), bootstrap (a free loopback port) and work (a
# temporary folder, removed with the broker when the calling script exits), and
# waits until the broker answers. Expects to run from the repository root.

cargo build --release --bin kafka-lab >&2
kafka_lab="$PWD/target/release/kafka-lab"

start_bench_broker() {
  local engine="$1" port topic topics=()
  shift
  for topic in "$@"; do topics+=(--topic "$topic"); done
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  bootstrap="127.0.0.1:$port"
  work="$(mktemp -d)"
  "$kafka_lab" broker --engine "$engine" --listen "$bootstrap" --data "$work/data" "${topics[@]}" >"$work/broker.log" 2>&1 &
  broker_pid=$!
  trap 'kill "$broker_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
  for _ in $(seq 1 100); do
    "$kafka_lab" -b "$bootstrap" --broker-timeout-ms 1000 topics list >/dev/null 2>&1 && return
    sleep 0.3
  done
  echo "the $engine broker did not answer at $bootstrap; see $work/broker.log" >&2
  exit 1
}

# write_kcat_lines TOPIC MESSAGES FILE: produces MESSAGES readings to TOPIC and
# writes them, as kafka-lab sent them and in the order it sent them, to FILE as
# key:value lines for `kcat -P -K:` (taken from the delivery reports, which carry
# each reading: the mock keeps only the newest ~5 MB per partition, so they are
# not read back).
#
# The reports come back a partition at a time, so they are put back in the
# order sent: by timestamp, which a burst's simulated clock makes one step
# later for each reading. In report order, kcat sent runs of about 530 readings of
# one city (one partition) where kafka-lab sends the cities in turn, and used
# 6% less CPU for it (docs/performance.md, session 16).
write_kcat_lines() {
  local topic="$1" messages="$2" file="$3"
  "$kafka_lab" -b "$bootstrap" produce --topic "$topic" --count "$messages" --json |
    python3 -c '
import json, sys
readings = [json.loads(line)["reading"] for line in sys.stdin]
readings.sort(key=lambda reading: reading["timestamp"])
for reading in readings:
    print(reading["city"] + ":" + json.dumps(reading, separators=(",", ":")))
' >"$file"
  if [ "$(wc -l <"$file")" -ne "$messages" ]; then
    echo "expected $messages readings for kcat, got $(wc -l <"$file")" >&2
    exit 1
  fi
}

# print_rounds FILE: the summary of commands alternated with kcat round by
# round (produce-ab.sh, consume-ab.sh), from FILE's "ROUND NAME START END"
# lines (one of them named kcat): per name, the median wall time, the median
# over rounds of kcat's wall ÷ its wall (> 1: faster than kcat), and each run.
print_rounds() {
  python3 - "$1" <<'PY'
import statistics, sys
walls = {}
for line in open(sys.argv[1]):
    round_, name, start, end = line.split()
    walls.setdefault(name, {})[round_] = float(end) - float(start)
kcat = walls["kcat"]
for name, times in walls.items():
    ratio = statistics.median(kcat[r] / t for r, t in times.items())
    runs = [round(times[r], 3) for r in sorted(times, key=int)]
    print(f"{name:12s} median {statistics.median(times.values()):.3f} s   kcat/this per round {ratio:.2f}   runs {runs}")
PY
}
