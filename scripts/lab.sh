#!/usr/bin/env bash
# The main job: installs what is missing, starts the embedded broker if nothing
# answers at the bootstrap address (default 127.0.0.1:9092), executes
# KafkaDemo.ipynb and the chapters headlessly on the Rust kernel, and writes the
# lab report to reports/ (one HTML per notebook). kafka_log.csv is left here.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-notebooks.sh
scripts/notebooks.sh "$@"
printf '\nLab report: %s/reports/KafkaDemo.html (and one HTML per chapter). CSV log: %s/kafka_log.csv\n' "$PWD" "$PWD"
