"""Checks docker-compose.yml without a Docker engine: Apache Kafka 3.9.0 in
KRaft mode, a single node reachable on localhost:9092 with replication factor 1
for the internal topics, and a `cluster` profile of three brokers whose host
ports and advertised listeners agree."""

import sys

import yaml

IMAGE = "apache/kafka:3.9.0"
failures = []


def check(ok, claim):
    print(("ok   " if ok else "FAIL ") + claim)
    if not ok:
        failures.append(claim)


def host_port(service):
    """The host side of the mapping to the container's 9092."""
    for mapping in service.get("ports", []):
        host, _, container = str(mapping).rpartition(":")
        if container == "9092":
            return host
    return None


def kraft_settings_ok(env):
    return (
        env.get("KAFKA_PROCESS_ROLES") == "broker,controller"
        and env.get("KAFKA_CONTROLLER_LISTENER_NAMES") == "CONTROLLER"
        and "CONTROLLER://:9093" in env.get("KAFKA_LISTENERS", "")
        and "PLAINTEXT_HOST://:9092" in env.get("KAFKA_LISTENERS", "")
    )


def main(path):
    with open(path, encoding="utf-8") as handle:
        compose = yaml.safe_load(handle)
    services = compose.get("services", {})

    single = services.get("kafka", {})
    env = single.get("environment", {})
    check(single.get("image") == IMAGE, f"service kafka runs {IMAGE}")
    check("profiles" not in single, "service kafka starts with a plain `docker compose up`")
    check(kraft_settings_ok(env), "service kafka is a KRaft broker+controller listening on 9092")
    check(host_port(single) == "9092", "service kafka publishes port 9092")
    check(
        "PLAINTEXT_HOST://localhost:9092" in env.get("KAFKA_ADVERTISED_LISTENERS", ""),
        "service kafka advertises localhost:9092 to clients on the host",
    )
    check(env.get("KAFKA_CONTROLLER_QUORUM_VOTERS") == "1@kafka:9093", "single node votes for itself")
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        check(str(env.get(key)) == "1", f"single node sets {key}=1")

    brokers = {name: s for name, s in services.items() if "cluster" in s.get("profiles", [])}
    check(sorted(brokers) == ["kafka-1", "kafka-2", "kafka-3"], "profile cluster has kafka-1..3")
    node_ids, ports, cluster_ids = set(), set(), set()
    for name, service in sorted(brokers.items()):
        env = service.get("environment", {})
        port = host_port(service)
        node_ids.add(str(env.get("KAFKA_NODE_ID")))
        ports.add(port)
        cluster_ids.add(env.get("CLUSTER_ID"))
        check(service.get("image") == IMAGE, f"{name} runs {IMAGE}")
        check(kraft_settings_ok(env), f"{name} is a KRaft broker+controller")
        check(
            f"PLAINTEXT_HOST://localhost:{port}" in env.get("KAFKA_ADVERTISED_LISTENERS", ""),
            f"{name} advertises the host port it publishes ({port})",
        )
        check(
            env.get("KAFKA_CONTROLLER_QUORUM_VOTERS")
            == "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093",
            f"{name} knows all three controllers",
        )
        check(str(env.get("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR")) == "3", f"{name} replicates offsets 3 times")
    check(node_ids == {"1", "2", "3"}, "cluster node ids are 1, 2, 3")
    check(len(ports) == 3 and "9092" not in ports, "cluster host ports are distinct from the single node's")
    check(len(cluster_ids) == 1 and None not in cluster_ids, "cluster brokers share one CLUSTER_ID")

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("docker-compose.yml: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docker-compose.yml"))
