#!/usr/bin/env bash
# Runs every check kafka-lab has: formatting, clippy, unit and integration tests
# (against real tansu and mock broker processes on loopback), and the
# docker-compose.yml check. Installs what is missing first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
export KAFKA_LAB_TANSU="${KAFKA_LAB_TANSU:-$HOME/.cache/kafka-lab/tansu/bin/tansu}"
venv="${KAFKA_LAB_CACHE:-$HOME/.cache/kafka-lab}/venv"

printf '\n==> cargo fmt --check\n'
cargo fmt --all -- --check

printf '\n==> cargo clippy -- -D warnings\n'
cargo clippy --workspace --all-targets -- -D warnings

printf '\n==> docker-compose.yml (Apache Kafka 3.9, KRaft)\n'
"$venv/bin/python" scripts/check_compose.py docker-compose.yml

printf '\n==> cargo test (unit and integration tests against tansu and mock brokers)\n'
cargo test --workspace
