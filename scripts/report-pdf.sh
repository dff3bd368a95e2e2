#!/usr/bin/env bash
# Prints an exported notebook (HTML) to PDF with Debian's chromium, headless: no
# TeX, and what the student saw in the browser is what the PDF shows.
#
#   scripts/report-pdf.sh [HTML] [PDF]    defaults: reports/KafkaDemo.html reports/KafkaDemo.pdf
set -euo pipefail
cd "$(dirname "$0")/.."

html="${1:-reports/KafkaDemo.html}"
pdf="${2:-${html%.html}.pdf}"
[ -s "$html" ] || { echo "no report at $html: run scripts/lab.sh first" >&2; exit 1; }
command -v chromium >/dev/null || { echo "chromium is missing: scripts/setup-notebooks.sh installs it" >&2; exit 1; }
rm -f "$pdf"
log="$(mktemp)"
# --no-sandbox: chromium refuses to run as root with its sandbox. The budget lets
# the page finish rendering before it is printed.
if ! timeout 300 chromium --headless --no-sandbox --disable-gpu --no-pdf-header-footer \
  --run-all-compositor-stages-before-draw --virtual-time-budget=10000 \
  --print-to-pdf="$(realpath -m "$pdf")" "file://$(realpath "$html")" 2>"$log" || [ ! -s "$pdf" ]; then
  cat "$log" >&2
  echo "chromium wrote no PDF from $html" >&2
  exit 1
fi
rm -f "$log"
pages=$(grep -aoE '/Type ?/Page([^s]|$)' "$pdf" | wc -l)
printf '%s: %s bytes, %s page(s)\n' "$pdf" "$(stat -c %s "$pdf")" "$pages"
