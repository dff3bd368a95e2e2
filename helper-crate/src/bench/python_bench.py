"""The Python confluent-kafka client (over librdkafka, like kafka-lab) doing what
`kafka-lab bench` does: produce the readings of FILE (`city:json` lines, key =
city), then read COUNT messages of the topic back as a fresh group GROUP from
`earliest` (as many as kafka-lab's consumer read: the topic holds kafka-lab's
readings too), decoding each value as JSON, as a Python lab consumer does.
Prints one JSON object with both timings.
`kafka-lab bench --compare-python` runs it (it is embedded in the binary).

    python_bench.py BOOTSTRAP TOPIC FILE GROUP COUNT [KEY=VALUE ...] [consumer:KEY=VALUE ...]

KEY=VALUE properties go to both clients, consumer:KEY=VALUE ones to the consumer.
"""

import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def main():
    bootstrap, topic, path, group, count = sys.argv[1:6]
    pairs = [pair.split("=", 1) for pair in sys.argv[6:]]
    extra = {key: value for key, value in pairs if not key.startswith("consumer:")}
    consumer_extra = {key[len("consumer:"):]: value for key, value in pairs
                      if key.startswith("consumer:")}
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
    producer.flush(120)
    produce_seconds = time.monotonic() - started
    if failed:
        sys.exit(f"{failed} messages failed delivery")

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": True, **extra,
                         **consumer_extra})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    expected = 0
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        expected += high - low
    expected = min(expected, int(count))
    started = time.monotonic()
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
        for message in batch[:expected - read]:
            if message.error() is None:
                try:
                    json.loads(message.value())
                except ValueError:
                    pass  # not a reading (e.g. a latency probe): skipped, as kafka-lab does
                read += 1
    consume_seconds = time.monotonic() - started
    consumer.close()
    print(json.dumps({"produce": {"messages": len(readings), "seconds": produce_seconds},
                      "consume": {"messages": read, "seconds": consume_seconds}}))


if __name__ == "__main__":
    main()
