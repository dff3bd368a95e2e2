//! `kafka-lab bench` as a smoke test: it completes and its counts match. Timings
//! are printed, never asserted (the full benchmark is `kafka-lab bench`).

mod common;

use std::time::Duration;

use common::{describe, kafka_lab, temp_dir, venv_python, TestBroker};
use kafka_lab::bench::{run_bench, BenchOptions};
use kafka_lab::broker::Engine;

on_both_engines!(bench_of_10000_messages_completes_with_matching_counts);

fn bench_of_10000_messages_completes_with_matching_counts(engine: Engine) {
    let broker = TestBroker::start(engine, &[("bench", 1)]);
    let options = BenchOptions {
        messages: 10_000,
        latency_rate: 200,
        latency_duration: Duration::from_secs(2),
        ..BenchOptions::new("bench")
    };
    let report = run_bench(&broker.settings(), &options, &mut |_| {}).unwrap();
    eprintln!("{report}");
    assert_eq!(report.produce.messages, 10_000);
    // A fresh group reads everything the topic stores, with and without the CSV.
    assert_eq!(report.consume.messages, 10_000);
    assert_eq!(report.consume_to_csv.messages, 10_000);
    let latency = report.latency.expect("latency was measured");
    assert_eq!(latency.messages, 400);
    assert!(latency.p50_ms <= latency.p99_ms && latency.p99_ms <= latency.max_ms);

    // The CLI's JSON carries the same shape. The topic now holds the 10,000
    // readings, the 400 latency messages and the CLI's 1,000 readings: a
    // fresh group reads back as many as were produced, from the start.
    let json = bench_cli(&broker, 1000, &[]);
    assert_eq!(json["produce"]["messages"], 1000);
    assert_eq!(json["consume"]["messages"], 1000);
    assert_eq!(json["consume_to_csv"]["messages"], 1000);
}

/// The peers run on the same broker in the same run: confluent-kafka on the
/// broker program, kcat on the mock (Debian's kcat cannot talk to nisshi or tansu).
#[test]
fn peers_run_on_the_same_broker_and_their_counts_match() {
    for (engine, flag, tool) in [
        (
            common::program_engine(),
            "--compare-python",
            "confluent-kafka (Python)",
        ),
        (Engine::Mock, "--compare-kcat", "kcat"),
    ] {
        let broker = TestBroker::start(engine, &[("bench", 1)]);
        let python = venv_python();
        let json = bench_cli(&broker, 2000, &[flag, "--python", python.to_str().unwrap()]);
        let peer = &json["peers"][0];
        assert_eq!(peer["tool"], tool);
        assert_eq!(json["consume"]["messages"], 2000, "{json}");
        assert_eq!(peer["produce"]["messages"], 2000, "{json}");
        // Both produced before either read back: each group read 2,000 of the
        // 4,000 the topic holds (kcat's counted from its output).
        assert_eq!(peer["consume"]["messages"], 2000, "{json}");
    }
}

/// `kafka-lab bench --topic bench --messages N --latency-rate 0 --json EXTRA...`
/// on `broker`, parsed.
fn bench_cli(broker: &TestBroker, messages: usize, extra: &[&str]) -> serde_json::Value {
    let messages = messages.to_string();
    let mut args = vec!["-b", broker.bootstrap(), "bench", "--topic", "bench"];
    args.extend(["--messages", &messages, "--latency-rate", "0", "--json"]);
    args.extend(extra);
    let output = kafka_lab(&temp_dir("bench-cli"), &args);
    assert!(output.status.success(), "{args:?}: {}", describe(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}
