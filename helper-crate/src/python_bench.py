"""The Python confluent-kafka client (over librdkafka, like kafka-lab) doing what
`kafka-lab bench` does: produce MESSAGES messages of SIZE bytes, then read them
back from where they started on every partition. Prints one JSON object with
both timings.
`kafka-lab bench --compare-python` runs it (it is embedded in the binary).

    python_bench.py BOOTSTRAP TOPIC MESSAGES SIZE [KEY=VALUE ...]
"""

import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def main():
    bootstrap, topic, messages, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    extra = dict(pair.split("=", 1) for pair in sys.argv[5:])
    payload = b"x" * size

    # Where this run's messages will start: each partition's end now.
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "kafka-lab-python-bench-probe"})
    partitions = sorted(probe.list_topics(topic, timeout=10).topics[topic].partitions)
    start = {p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    probe.close()

    failed = 0

    def on_delivery(error, _message):
        nonlocal failed
        if error is not None:
            failed += 1

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all",
                         "queue.buffering.max.messages": 1000000, **extra})
    started = time.monotonic()
    for _ in range(messages):
        while True:
            try:
                producer.produce(topic, payload, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(120)
    produce_seconds = time.monotonic() - started
    if failed:
        sys.exit(f"{failed} messages failed delivery")

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "kafka-lab-python-bench",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "fetch.wait.max.ms": 10, **extra})
    # Read back from where this run started, or from the oldest message still
    # stored where the broker already dropped some.
    assignment, expected = [], 0
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        first = max(low, start[p])
        assignment.append(TopicPartition(topic, p, first))
        expected += high - first
    consumer.assign(assignment)
    started = time.monotonic()
    read = 0
    while read < expected:
        batch = consumer.consume(num_messages=10000, timeout=10)
        if not batch:
            sys.exit(f"only {read} of {expected} messages came back")
        read += sum(1 for m in batch if m.error() is None)
    consume_seconds = time.monotonic() - started
    consumer.close()
    print(json.dumps({"produce": {"messages": messages, "seconds": produce_seconds},
                      "consume": {"messages": read, "seconds": consume_seconds}}))


if __name__ == "__main__":
    main()
