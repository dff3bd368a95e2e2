#!/usr/bin/env bash
# Installs what the notebooks need, once (on top of scripts/setup.sh):
#   - evcxr_jupyter, the Rust Jupyter kernel (cargo install: 10-25 minutes on 2 cores, once)
#   - the kernel spec "rust", and an evcxr config with a compilation cache
#   - JupyterLab, nbclient and nbconvert (in the venv made by setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${KAFKA_LAB_CACHE:-$HOME/.cache/kafka-lab}"
EVCXR_VERSION="0.22.0"

scripts/setup.sh

# Debian's chromium: prints the lab report to PDF (scripts/lab.sh --pdf) and runs
# JupyterLab in a real browser for scripts/browser_test.py (through playwright,
# which then downloads no browser of its own).
if ! command -v chromium >/dev/null 2>&1; then
  printf '\n==> chromium (PDF export and the JupyterLab browser test)\n'
  as_root=(); [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core
fi

printf '\n==> evcxr_jupyter %s (the Rust kernel)\n' "$EVCXR_VERSION"
evcxr="$CACHE/evcxr/bin/evcxr_jupyter"
if [ -x "$evcxr" ] && [ "$(cat "$CACHE/evcxr/version" 2>/dev/null)" = "$EVCXR_VERSION" ]; then
  echo "present: $evcxr"
else
  echo "building evcxr_jupyter with cargo: 10-25 minutes on 2 cores, once"
  cargo install evcxr_jupyter --version "$EVCXR_VERSION" --locked --root "$CACHE/evcxr"
  echo "$EVCXR_VERSION" > "$CACHE/evcxr/version"
fi
"$evcxr" --install >/dev/null
echo "kernel 'rust' registered"

# evcxr reads init.evcxr from EVCXR_CONFIG_DIR at every kernel start:
# cache compiled crates across kernels, and skip optimisation (faster builds).
mkdir -p "$CACHE/evcxr-config"
printf ':cache 4096\n:opt 0\n' > "$CACHE/evcxr-config/init.evcxr"
echo "evcxr config: $CACHE/evcxr-config/init.evcxr"
