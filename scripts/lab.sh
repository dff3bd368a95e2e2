#!/usr/bin/env bash
# The main job: installs what is missing, starts the embedded broker if nothing
# answers at the bootstrap address (default 127.0.0.1:9092), executes
# KafkaDemo.ipynb and the chapters headlessly on the Rust kernel, and writes the
# lab report to reports/ (one HTML per notebook). kafka_log.csv is left here.
#
#   scripts/lab.sh [--pdf] [NOTEBOOK...]
#
# --pdf also prints reports/KafkaDemo.html to reports/KafkaDemo.pdf with Debian's
# chromium (headless, no TeX).
set -euo pipefail
cd "$(dirname "$0")/.."

pdf=false
if [ "${1:-}" = "--pdf" ]; then
  pdf=true
  shift
fi

scripts/setup-notebooks.sh
scripts/notebooks.sh "$@"
printf '\nLab report: %s/reports/KafkaDemo.html (and one HTML per chapter). CSV log: %s/kafka_log.csv\n' "$PWD" "$PWD"

if $pdf; then
  printf '\n==> reports/KafkaDemo.pdf (chromium --headless --print-to-pdf)\n'
  scripts/report-pdf.sh reports/KafkaDemo.html reports/KafkaDemo.pdf
fi
