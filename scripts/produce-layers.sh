#!/usr/bin/env bash
# Where the time of `kafka-lab produce` goes, against kcat -P, on one fresh mock
# broker, same run. Each row adds one layer to kcat's loop:
#   kcat -P                      kcat (system librdkafka), ready-made lines
#   C loop, system librdkafka    kcat's loop (scripts/produce-layers/kcat_loop.c)
#   C loop, bundled librdkafka   the same loop on the librdkafka rust-rdkafka bundles
#   ..., mimalloc, ...           that loop with kafka-lab's allocator, then polled
#                                as kafka-lab polls (every 1,000; reports as events)
#   Rust, lines, topic handle    benches/produce_layers.rs lines-by-handle
#   Rust, lines, topic name      ... lines-by-name (rust-rdkafka's send)
#   Rust, generated readings     ... generated-by-handle (make, encode, timestamp)
#   ..., kafka-lab's settings    the Rust layers with the command's producer settings
#   kafka-lab produce --quiet    the command: plus a delivery report per reading
#   kafka-lab produce            plus a printed row per reading
# Prints a Markdown table: median wall-clock seconds, CPU seconds of the client and
# of the broker (the mock runs in its own process, on the same 2 cores) of RUNS runs.
# The C rows need gcc; the system-librdkafka row needs kcat's library (built
# against the bundled headers: the calls it makes are the same in both).
#
#   scripts/produce-layers.sh [MESSAGES] [RUNS]     defaults: 1000000 3
set -euo pipefail
cd "$(dirname "$0")/.."

messages="${1:-1000000}"
runs="${2:-3}"
for tool in kcat /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "produce-layers needs $tool" >&2; exit 1; }
done
. scripts/bench-broker.sh
start_bench_broker mock cli:32

# The bench program itself (not through cargo, which would add its own start-up),
# and the folders where this build's rdkafka-sys put librdkafka and its
# libmimalloc-sys put mimalloc (for the C loop).
cargo build --release --bench produce_layers --message-format=json >"$work/cargo.json"
read -r bench rdkafka_out mimalloc_out < <(python3 - "$work/cargo.json" <<'PY'
import json, sys
bench = rdkafka = mimalloc = ""
for message in map(json.loads, open(sys.argv[1])):
    if message.get("target", {}).get("name") == "produce_layers" and message.get("executable"):
        bench = message["executable"]
    if message.get("reason") == "build-script-executed":
        if "rdkafka-sys" in message["package_id"]:
            rdkafka = message["out_dir"]
        if "libmimalloc-sys" in message["package_id"]:
            mimalloc = message["out_dir"]
print(bench, rdkafka or "-", mimalloc or "-")
PY
)

# The readings, as key:value lines for kcat and the loops that read lines.
write_kcat_lines cli "$messages" "$work/readings.txt"

# kcat's loop in C, against both libraries, when a compiler is here.
c_loops=()
if command -v gcc >/dev/null && [ -d "$rdkafka_out/include" ]; then
  system_lib=$(ls /usr/lib/*/librdkafka.so.1 2>/dev/null | head -1 || true)
  if [ -n "$system_lib" ] &&
    gcc -O2 -I"$rdkafka_out/include" scripts/produce-layers/kcat_loop.c "$system_lib" \
      -o "$work/c-system" 2>"$work/gcc.log"; then
    c_loops+=("C loop, system librdkafka:$work/c-system")
  fi
  zstd=$(ls target/release/build/zstd-sys-*/out/libzstd.a 2>/dev/null | head -1 || true)
  if gcc -O2 -I"$rdkafka_out/include" scripts/produce-layers/kcat_loop.c "$rdkafka_out/lib/librdkafka.a" \
    ${zstd:+"$zstd"} -lssl -lcrypto -lz -lsasl2 -lpthread -lm -ldl -o "$work/c-bundled" 2>>"$work/gcc.log"; then
    c_loops+=("C loop, bundled librdkafka:$work/c-bundled")
  fi
  # The same loop with mimalloc as its malloc, as the kafka-lab binary has
  # (the static library that this build's libmimalloc-sys made).
  mimalloc="$mimalloc_out/libmimalloc.a"
  if [ -f "$mimalloc" ] &&
    gcc -O2 -I"$rdkafka_out/include" scripts/produce-layers/kcat_loop.c       -Wl,--whole-archive "$mimalloc" -Wl,--no-whole-archive "$rdkafka_out/lib/librdkafka.a"       ${zstd:+"$zstd"} -lssl -lcrypto -lz -lsasl2 -lpthread -lm -ldl -o "$work/c-mimalloc" 2>>"$work/gcc.log"; then
    mimalloc_loop="$work/c-mimalloc"
  fi
  if [ "${#c_loops[@]}" -lt 2 ]; then
    echo "a C loop did not build; its row is left out:" >&2
    cat "$work/gcc.log" >&2
  fi
fi

# kafka-lab's producer settings beyond acks=all and idempotence (client/mod.rs,
# producer_config), as key=value words.
kafka_lab_settings="message.timeout.ms=10000 enable.sparse.connections=false allow.auto.create.topics=false linger.ms=1"

# broker_cpu: the broker process's user + system CPU time so far, in clock ticks.
broker_cpu() { awk '{ print $14 + $15 }' "/proc/$broker_pid/stat"; }
ticks=$(getconf CLK_TCK)

# timed NAME COMMAND...: appends "NAME<TAB>wall<TAB>cpu<TAB>broker cpu" of one run
# to $work/times.
# The wall clock from bash's own microsecond clock (time's %e has only
# hundredths of a second, a seventh of kcat's 0.077 s at 200,000; a `date` process
# on each side would add its own start).
timed() {
  local name="$1" before start end
  shift
  before=$(broker_cpu)
  start=$EPOCHREALTIME
  /usr/bin/time -f "%U %S" -o "$work/one" "$@" >/dev/null 2>"$work/stderr" ||
    { echo "$name failed:" >&2; cat "$work/stderr" >&2; exit 1; }
  end=$EPOCHREALTIME
  awk -v n="$name" -v s="$start" -v e="$end" -v b="$(( $(broker_cpu) - before ))" -v t="$ticks" \
    '{ printf "%s\t%.3f\t%.2f\t%.2f\n", n, e - s, $1 + $2, b / t }' "$work/one" >>"$work/times"
}
: >"$work/times"
for _ in $(seq 1 "$runs"); do
  timed "kcat -P" kcat -b "$bootstrap" -P -t cli -K: -X acks=all -X enable.idempotence=true -l "$work/readings.txt"
  for loop in ${c_loops[@]+"${c_loops[@]}"}; do
    timed "${loop%%:*}" "${loop#*:}" "$bootstrap" cli "$work/readings.txt"
  done
  # The bundled library's loop, step by step towards how kafka-lab uses it:
  # its allocator, a poll every 1,000 sends, reports as events (rust-rdkafka),
  # its producer settings (client/mod.rs, producer_config).
  if [ -n "${mimalloc_loop:-}" ]; then
    timed "C loop, bundled librdkafka, mimalloc" "$mimalloc_loop" "$bootstrap" cli "$work/readings.txt"
    timed "... and a poll every 1,000 messages" env POLL_EVERY=1000 "$mimalloc_loop" \
      "$bootstrap" cli "$work/readings.txt"
    timed "... and reports as events" env POLL_EVERY=1000 EVENTS=1 "$mimalloc_loop" \
      "$bootstrap" cli "$work/readings.txt"
    timed "... and kafka-lab's producer settings" env POLL_EVERY=1000 EVENTS=1 "$mimalloc_loop" \
      "$bootstrap" cli "$work/readings.txt" ${kafka_lab_settings//=/ }
  fi
  timed "Rust, lines, topic handle" "$bench" "$bootstrap" cli "$messages" lines-by-handle "$work/readings.txt"
  timed "Rust, lines, topic name" "$bench" "$bootstrap" cli "$messages" lines-by-name "$work/readings.txt"
  timed "Rust, generated readings" "$bench" "$bootstrap" cli "$messages" generated-by-handle
  # The Rust layers with kafka-lab's producer settings, beside the C loop's row.
  timed "Rust, lines, topic handle, kafka-lab's settings" "$bench" "$bootstrap" cli "$messages" \
    lines-by-handle "$work/readings.txt" $kafka_lab_settings
  timed "Rust, generated readings, kafka-lab's settings" "$bench" "$bootstrap" cli "$messages" \
    generated-by-handle $kafka_lab_settings
  timed "kafka-lab produce --quiet" "$kafka_lab" -b "$bootstrap" produce --quiet --topic cli --count "$messages"
  timed "kafka-lab produce" "$kafka_lab" -b "$bootstrap" produce --topic cli --count "$messages"
done

# The last column: what the wall clock would be if the two cores were busy the
# whole run with the client's and the broker's CPU time and nothing else.
echo "| $messages messages, $runs runs | median wall s | median CPU s | broker CPU s | (CPU + broker) ÷ 2 cores | kcat's wall ÷ this |"
echo "|---|---|---|---|---|---|"
python3 - "$work/times" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, wall, cpu, broker = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append((float(wall), float(cpu), float(broker)))
kcat = statistics.median(run[0] for run in rows["kcat -P"])
for name, runs in rows.items():
    wall, cpu, broker = (statistics.median(run[i] for run in runs) for i in range(3))
    print(f"| {name} | {wall:.3f} | {cpu:.2f} | {broker:.2f} | {(cpu + broker) / 2:.2f} | {kcat / wall:.2f} |")
PY
