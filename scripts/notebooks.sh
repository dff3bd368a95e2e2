#!/usr/bin/env bash
# Executes the lab's notebooks headlessly against a real broker and writes the
# lab report: reports/<notebook>.html (and the executed .ipynb). Starts the
# embedded broker on 127.0.0.1:9092 when nothing answers at the bootstrap address,
# and stops it at the end. Fails if any cell fails or any assertion in a cell fails.
#
#   scripts/notebooks.sh                      all notebooks
#   scripts/notebooks.sh notebooks/04-*.ipynb one of them
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${KAFKA_LAB_CACHE:-$HOME/.cache/kafka-lab}"
export KAFKA_LAB_TANSU="${KAFKA_LAB_TANSU:-$CACHE/tansu/bin/tansu}"
export EVCXR_CONFIG_DIR="$CACHE/evcxr-config"
# One persistent evcxr work folder, so the helper crate and its C library
# (librdkafka) are compiled once, not once per notebook. Notebooks run one after
# another, so they never share it at the same time.
export EVCXR_TMPDIR="$CACHE/evcxr-work"
mkdir -p "$EVCXR_TMPDIR"
# evcxr loads each cell as a shared library whose relative rpath to Rust's libstd
# is off by one folder when its work folder sits under the same parent as rustup
# (e.g. both under /root): name the folder outright.
export LD_LIBRARY_PATH="$(rustc --print target-libdir)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

notebooks=("$@")
if [ ${#notebooks[@]} -eq 0 ]; then
  notebooks=(KafkaDemo.ipynb notebooks/0*.ipynb)
fi

printf '\n==> cargo build --release (kafka-lab)\n'
cargo build --release --bin kafka-lab
kafka_lab="$PWD/target/release/kafka-lab"

bootstrap="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}"
if "$kafka_lab" -b "$bootstrap" --broker-timeout-ms 2000 topics list >/dev/null 2>&1; then
  printf '\n==> using the broker at %s\n' "$bootstrap"
else
  # The embedded broker keeps its data in .kafka-lab/ (or $KAFKA_LAB_DATA).
  printf '\n==> starting the embedded broker at %s\n' "$bootstrap"
  mkdir -p reports
  "$kafka_lab" broker --listen "$bootstrap" > reports/broker.log 2>&1 &
  broker_pid=$!
  trap 'kill "$broker_pid" 2>/dev/null; wait 2>/dev/null' EXIT
  for _ in $(seq 1 100); do
    "$kafka_lab" -b "$bootstrap" --broker-timeout-ms 1000 topics list >/dev/null 2>&1 && break
    kill -0 "$broker_pid" 2>/dev/null || { cat reports/broker.log; exit 1; }
    sleep 0.3
  done
fi
export KAFKA_BOOTSTRAP_SERVERS="$bootstrap"

printf '\n==> executing %d notebook(s) on the Rust kernel\n' "${#notebooks[@]}"
"$CACHE/venv/bin/python" scripts/run_notebooks.py --reports reports --show "earliest vs latest" "${notebooks[@]}"
