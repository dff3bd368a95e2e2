"""Reads a topic's watermarks and a group's committed offsets with two Kafka
clients that are not this crate: kafka-python (a pure-Python implementation of
the protocol) and confluent-kafka (Python over librdkafka). Prints one JSON
document, one list per client, each entry shaped like `kafka-lab offsets --json`:

    independent_offsets.py BOOTSTRAP TOPIC GROUP [--kafka-python-api-version 2.3]

Neither client joins the group: they only ask for its committed offsets
(OffsetFetch), as `kafka-consumer-groups.sh --describe` does.
"""

import argparse
import json

from confluent_kafka import Consumer, TopicPartition as ConfluentPartition
from kafka import KafkaConsumer, TopicPartition


def lag(low, high, committed):
    return high - max(committed, low) if committed is not None else high - low


def with_kafka_python(bootstrap, topic, group, api_version):
    options = {"bootstrap_servers": bootstrap, "group_id": group, "enable_auto_commit": False}
    if api_version:
        # librdkafka's mock cluster answers kafka-python's version probe badly.
        options["api_version"] = tuple(int(part) for part in api_version.split("."))
    consumer = KafkaConsumer(**options)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        lows = consumer.beginning_offsets(partitions)
        highs = consumer.end_offsets(partitions)
        rows = []
        for tp in partitions:
            committed = consumer.committed(tp)
            rows.append(row(topic, tp.partition, lows[tp], highs[tp], committed))
        return rows
    finally:
        consumer.close(autocommit=False)


def with_confluent_kafka(bootstrap, topic, group):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = sorted(metadata.topics[topic].partitions)
        committed = consumer.committed([ConfluentPartition(topic, p) for p in partitions], timeout=10)
        rows = []
        for tp in committed:
            low, high = consumer.get_watermark_offsets(ConfluentPartition(topic, tp.partition), timeout=10)
            rows.append(row(topic, tp.partition, low, high, tp.offset if tp.offset >= 0 else None))
        return rows
    finally:
        consumer.close()


def row(topic, partition, low, high, committed):
    return {"topic": topic, "partition": partition, "low": low, "high": high,
            "committed": committed, "lag": lag(low, high, committed)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("--kafka-python-api-version")
    args = parser.parse_args()
    print(json.dumps({
        "kafka-python": with_kafka_python(args.bootstrap, args.topic, args.group, args.kafka_python_api_version),
        "confluent-kafka": with_confluent_kafka(args.bootstrap, args.topic, args.group),
    }, indent=1))


if __name__ == "__main__":
    main()
