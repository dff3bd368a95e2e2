# Sourced by notebooks.sh and jupyter.sh: the environment the Rust kernel needs,
# the kafka-lab binary, and ensure_broker, which starts the embedded broker when
# nothing answers at the bootstrap address. Expects to run from the repository root.

CACHE="${KAFKA_LAB_CACHE:-$HOME/.cache/kafka-lab}"
export KAFKA_LAB_NISSHI="${KAFKA_LAB_NISSHI:-$CACHE/nisshi/bin/nisshi}"
export EVCXR_CONFIG_DIR="$CACHE/evcxr-config"
# evcxr loads each cell as a shared library whose relative rpath to Rust's libstd
# is off by one folder when its work folder sits under the same parent as rustup
# (e.g. both under /root): name the folder outright.
export LD_LIBRARY_PATH="$(rustc --print target-libdir)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

printf '\n==> cargo build --release (kafka-lab)\n'
cargo build --release --bin kafka-lab
kafka_lab="$PWD/target/release/kafka-lab"
# Chapter 07 runs kafka-lab as a child process (consumers that crash).
export KAFKA_LAB_BIN="$kafka_lab"

# ensure_broker LOG: uses the broker at $KAFKA_BOOTSTRAP_SERVERS (default
# 127.0.0.1:9092) if one answers; else starts the embedded broker there (data in
# .kafka-lab/ or $KAFKA_LAB_DATA, output to LOG), waits until it answers, and
# stops it when the calling script exits. Exports KAFKA_BOOTSTRAP_SERVERS.
ensure_broker() {
  local log="$1"
  local bootstrap="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}"
  export KAFKA_BOOTSTRAP_SERVERS="$bootstrap"
  if "$kafka_lab" -b "$bootstrap" --broker-timeout-ms 2000 topics list >/dev/null 2>&1; then
    printf '\n==> using the broker at %s\n' "$bootstrap"
    return
  fi
  printf '\n==> starting the embedded broker at %s (log: %s)\n' "$bootstrap" "$log"
  mkdir -p "$(dirname "$log")"
  "$kafka_lab" broker --listen "$bootstrap" > "$log" 2>&1 &
  broker_pid=$!
  trap 'kill "$broker_pid" 2>/dev/null; wait 2>/dev/null' EXIT
  for _ in $(seq 1 100); do
    "$kafka_lab" -b "$bootstrap" --broker-timeout-ms 1000 topics list >/dev/null 2>&1 && return
    kill -0 "$broker_pid" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.3
  done
  echo "the embedded broker did not answer at $bootstrap; see $log" >&2
  exit 1
}
