#!/usr/bin/env bash
# The lab end to end on the embedded broker: installs what is missing, builds
# kafka-lab, starts the broker if nothing answers at the bootstrap address
# (default 127.0.0.1:9092), runs `kafka-lab lab` and leaves kafka_log.csv here.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
export KAFKA_LAB_TANSU="${KAFKA_LAB_TANSU:-$HOME/.cache/kafka-lab/tansu/bin/tansu}"

printf '\n==> cargo build --release\n'
cargo build --release --bin kafka-lab

printf '\n==> kafka-lab lab\n'
target/release/kafka-lab lab "$@"
