#!/usr/bin/env bash
# Installs what kafka-lab needs on a fresh Debian/Ubuntu machine, once:
#   - C toolchain and libraries for librdkafka (cmake, OpenSSL, SASL, zlib, curl headers) and kcat
#   - the tansu broker (cargo install, into ~/.cache/kafka-lab/tansu)
#   - a Python venv with the tools the checks use (~/.cache/kafka-lab/venv)
# Safe to re-run: each step is skipped when its result is already there.
set -euo pipefail

CACHE="${KAFKA_LAB_CACHE:-$HOME/.cache/kafka-lab}"
TANSU_VERSION="0.6.0"
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

step "tansu $TANSU_VERSION (the embedded broker engine)"
tansu="$CACHE/tansu/bin/tansu"
if [ -x "$tansu" ] && "$tansu" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  echo "present: $tansu"
else
  echo "building tansu with cargo: 7-11 minutes on 2 cores, once"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql \
    --root "$CACHE/tansu"
fi

step "Python venv for the checks: $CACHE/venv"
venv="$CACHE/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$(dirname "$0")/requirements.txt"
echo "ready"
