#!/usr/bin/env bash
# Opens JupyterLab on KafkaDemo.ipynb with the Rust kernel ready, and the embedded
# broker running on 127.0.0.1:9092 unless a broker already answers at the
# bootstrap address. Ctrl-C stops JupyterLab (and the broker it started).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${KAFKA_LAB_CACHE:-$HOME/.cache/kafka-lab}"
scripts/setup-notebooks.sh
cargo build --release --bin kafka-lab
kafka_lab="$PWD/target/release/kafka-lab"
export KAFKA_LAB_TANSU="${KAFKA_LAB_TANSU:-$CACHE/tansu/bin/tansu}"
export EVCXR_CONFIG_DIR="$CACHE/evcxr-config"
# See scripts/notebooks.sh: evcxr's relative rpath to libstd can miss.
export LD_LIBRARY_PATH="$(rustc --print target-libdir)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

bootstrap="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}"
if ! "$kafka_lab" -b "$bootstrap" --broker-timeout-ms 2000 topics list >/dev/null 2>&1; then
  echo "starting the embedded broker at $bootstrap (log: .kafka-lab/broker.log)"
  mkdir -p .kafka-lab
  "$kafka_lab" broker --listen "$bootstrap" > .kafka-lab/broker.log 2>&1 &
  broker_pid=$!
  trap 'kill "$broker_pid" 2>/dev/null; wait 2>/dev/null' EXIT
fi
export KAFKA_BOOTSTRAP_SERVERS="$bootstrap"
as_root=()
[ "$(id -u)" -eq 0 ] && as_root=(--allow-root)  # JupyterLab refuses root unless told
"$CACHE/venv/bin/jupyter" lab KafkaDemo.ipynb "${as_root[@]}" "$@"
