# Sourced by bench-sweep.sh and compare-cli.sh: builds kafka-lab (release) and
# starts a fresh embedded broker for a measurement.
#
#   start_bench_broker ENGINE TOPIC:PARTITIONS
#
# Sets kafka_lab (the binary), bootstrap (a free loopback port) and work (a
# temporary folder, removed with the broker when the calling script exits), and
# waits until the broker answers. Expects to run from the repository root.

cargo build --release --bin kafka-lab >&2
kafka_lab="$PWD/target/release/kafka-lab"

start_bench_broker() {
  local engine="$1" topic="$2" port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  bootstrap="127.0.0.1:$port"
  work="$(mktemp -d)"
  "$kafka_lab" broker --engine "$engine" --listen "$bootstrap" --data "$work/data" --topic "$topic" >"$work/broker.log" 2>&1 &
  broker_pid=$!
  trap 'kill "$broker_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
  for _ in $(seq 1 100); do
    "$kafka_lab" -b "$bootstrap" --broker-timeout-ms 1000 topics list >/dev/null 2>&1 && return
    sleep 0.3
  done
  echo "the $engine broker did not answer at $bootstrap; see $work/broker.log" >&2
  exit 1
}
