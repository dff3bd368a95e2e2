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

source scripts/kernel-env.sh
# One persistent evcxr work folder, so the helper crate and its C library
# (librdkafka) are compiled once, not once per notebook. Notebooks run one after
# another, so they never share it at the same time.
export EVCXR_TMPDIR="$CACHE/evcxr-work"
mkdir -p "$EVCXR_TMPDIR"

notebooks=("$@")
if [ ${#notebooks[@]} -eq 0 ]; then
  notebooks=(KafkaDemo.ipynb notebooks/0*.ipynb)
fi

ensure_broker reports/broker.log

printf '\n==> executing %d notebook(s) on the Rust kernel\n' "${#notebooks[@]}"
"$CACHE/venv/bin/python" scripts/run_notebooks.py --reports reports --show "earliest vs latest" "${notebooks[@]}"
