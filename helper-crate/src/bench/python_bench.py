"""The Python confluent-kafka client (over librdkafka, like kafka-lab) doing what
`kafka-lab bench` does, one step per run:

    python_bench.py produce BOOTSTRAP TOPIC FILE [KEY=VALUE ...]
        produce the readings of FILE (`city:json` lines, key = city), as the
        crate's producer does (acks=all, idempotence), until the last report;
    python_bench.py consume BOOTSTRAP TOPIC GROUP COUNT [KEY=VALUE ...] [consumer:KEY=VALUE ...]
        read COUNT messages (at most what the topic stores) from `earliest` as a
        fresh group GROUP, decoding each value as JSON, as a Python lab consumer
        does; timed from the consumer's creation to the end of its close.

Prints one JSON object: {"messages": N, "seconds": S}.
KEY=VALUE properties go to the client, consumer:KEY=VALUE ones to the consumer only.
`kafka-lab bench --compare-python` runs it (it is embedded in the binary).
"""

import json
import sys
import time

from confluent_kafka import Consumer, Producer


def produce(bootstrap, topic, path, extra):
    with open(path, "rb") as lines:
        readings = [line.rstrip(b"\n").split(b":", 1) for line in lines]
    failed = 0

    def on_delivery(error, _message):
        nonlocal failed
        if error is not None:
            failed += 1

    # The crate's producer defaults: acks=all, idempotence.
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         **extra})
    started = time.monotonic()
    for key, value in readings:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
    unflushed = producer.flush(120)
    seconds = time.monotonic() - started
    if unflushed:
        sys.exit(f"{unflushed} messages without a delivery report after 120 s")
    if failed:
        sys.exit(f"{failed} messages failed delivery")
    return len(readings), seconds


def consume(bootstrap, topic, group, count, extra):
    # Timed from the consumer's creation, as kafka-lab's; COUNT is at most what
    # the topic stores (kafka-lab looked).
    started = time.monotonic()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": True, **extra})
    expected = count
    consumer.subscribe([topic])
    read = 0
    idle_since = time.monotonic()
    while read < expected:
        batch = consumer.consume(num_messages=10000, timeout=1)
        if not batch:
            if time.monotonic() - idle_since > 30:
                sys.exit(f"only {read} of {expected} messages came back")
            continue
        idle_since = time.monotonic()
        for message in batch:
            if message.error() is not None:
                continue
            try:
                json.loads(message.value())
            except ValueError:
                pass  # not a reading (e.g. a latency probe): skipped, as kafka-lab does
            read += 1
            if read == expected:
                break
    consumer.close()  # its last commit, and leaving the group, as kafka-lab's close
    seconds = time.monotonic() - started
    return read, seconds


def main():
    step, bootstrap, topic = sys.argv[1:4]
    if step == "produce":
        path, rest = sys.argv[4], sys.argv[5:]
    elif step == "consume":
        group, count, rest = sys.argv[4], int(sys.argv[5]), sys.argv[6:]
    else:
        sys.exit(f"unknown step {step!r}: produce or consume")
    pairs = [pair.split("=", 1) for pair in rest]
    extra = {key: value for key, value in pairs if not key.startswith("consumer:")}
    if step == "produce":
        messages, seconds = produce(bootstrap, topic, path, extra)
    else:
        extra.update({key[len("consumer:"):]: value for key, value in pairs
                      if key.startswith("consumer:")})
        messages, seconds = consume(bootstrap, topic, group, count, extra)
    print(json.dumps({"messages": messages, "seconds": seconds}))


if __name__ == "__main__":
    main()
