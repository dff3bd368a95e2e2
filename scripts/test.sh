#!/usr/bin/env bash
# Runs every check kafka-lab has: formatting, clippy, unit and integration tests
# (against real nisshi and mock broker processes on loopback), the
# docker-compose.yml check, and every notebook executed headlessly on a fresh
# broker, then KafkaDemo.ipynb run in JupyterLab itself by a headless browser.
# Installs what is missing first (scripts/setup-notebooks.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${KAFKA_LAB_CACHE:-$HOME/.cache/kafka-lab}"
export KAFKA_LAB_NISSHI="${KAFKA_LAB_NISSHI:-$CACHE/nisshi/bin/nisshi}"
scripts/setup-notebooks.sh
venv="$CACHE/venv"

printf '\n==> cargo fmt --check\n'
cargo fmt --all -- --check

printf '\n==> cargo clippy -- -D warnings\n'
cargo clippy --workspace --all-targets --all-features -- -D warnings

printf '\n==> docker-compose.yml (Apache Kafka 3.9, KRaft)\n'
"$venv/bin/python" scripts/check_compose.py docker-compose.yml

printf '\n==> cargo test (unit and integration tests against nisshi and mock brokers)\n'
cargo test --workspace --all-features

printf '\n==> notebooks, executed on a fresh embedded broker\n'
# A free loopback port and an empty data folder: the notebooks must pass on a
# broker that has never seen them, whatever runs on 9092.
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KAFKA_LAB_DATA="$(mktemp -d)" KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$port" scripts/notebooks.sh

printf '\n==> the lab report as PDF (what scripts/lab.sh --pdf does)\n'
scripts/report-pdf.sh reports/KafkaDemo.html reports/KafkaDemo.pdf

printf '\n==> JupyterLab in a real browser (headless chromium): Run All, then the consumers re-run\n'
"$venv/bin/python" scripts/browser_test.py
