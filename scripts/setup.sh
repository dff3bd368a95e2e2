#!/usr/bin/env bash
# Installs what kafka-lab needs on a fresh Debian/Ubuntu machine, once:
#   - C toolchain and libraries for librdkafka (cmake, OpenSSL, SASL, zlib, curl headers) and kcat
#   - the nisshi broker, tansu renamed (cargo install, into ~/.cache/kafka-lab/nisshi)
#   - a Python venv with the tools the checks use (~/.cache/kafka-lab/venv)
# Safe to re-run: each step is skipped when its result is already there.
set -euo pipefail

CACHE="${KAFKA_LAB_CACHE:-$HOME/.cache/kafka-lab}"
# 0.7.0-pre.2: the last nisshi that builds with Rust 1.95 (later ones need 1.96).
NISSHI_VERSION="0.7.0-pre.2"
# libcurl4-openssl-dev: librdkafka 2.12's conf.c includes <curl/curl.h> whenever
# its config.h defines WITH_OAUTHBEARER_OIDC, which a cmake build does even as 0.
APT_PACKAGES=(cmake build-essential pkg-config libssl-dev libsasl2-dev zlib1g-dev libcurl4-openssl-dev kcat python3-venv)

step() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

step "System packages: ${APT_PACKAGES[*]}"
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  echo "all present"
fi

step "nisshi $NISSHI_VERSION (the embedded broker engine; tansu before 0.7)"
nisshi="$CACHE/nisshi/bin/nisshi"
if [ -x "$nisshi" ] && "$nisshi" --version 2>/dev/null | grep -q "$NISSHI_VERSION"; then
  echo "present: $nisshi"
else
  echo "building nisshi with cargo: about 20 minutes on 2 cores, once"
  # SQLite storage only (libsql): the lab needs nothing else, and the default
  # features add Postgres, S3 and schema registries to the build.
  cargo install nisshi --version "$NISSHI_VERSION" --locked --no-default-features --features libsql \
    --root "$CACHE/nisshi"
fi

step "Python venv for the checks: $CACHE/venv"
venv="$CACHE/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$(dirname "$0")/requirements.txt"
echo "ready"
