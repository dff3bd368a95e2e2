#!/usr/bin/env bash
# Opens JupyterLab on KafkaDemo.ipynb with the Rust kernel ready, and the embedded
# broker running on 127.0.0.1:9092 unless a broker already answers at the
# bootstrap address. Ctrl-C stops JupyterLab (and the broker it started).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-notebooks.sh
source scripts/kernel-env.sh
ensure_broker .kafka-lab/broker.log
as_root=()
[ "$(id -u)" -eq 0 ] && as_root=(--allow-root)  # JupyterLab refuses root unless told
"$CACHE/venv/bin/jupyter" lab KafkaDemo.ipynb "${as_root[@]}" "$@"
