//! Delivery guarantees against a real broker: a consumer process killed in the
//! middle of a batch under each commit strategy, and what the broker does with
//! transactions.

mod common;

use std::time::Duration;

use common::{kafka_lab_bin, TestBroker};
use kafka_lab::broker::Engine;
use kafka_lab::client::IsolationLevel;
use kafka_lab::consume::fresh_group_id;
use kafka_lab::delivery::{self, CommitStrategy, EosOptions, Isolation};
use kafka_lab::weather::WeatherGenerator;
use kafka_lab::Error;

on_both_engines!(
    a_crash_mid_batch_loses_or_repeats_readings_as_each_strategy_predicts,
    transactions_are_isolated_or_the_gap_is_reported,
    exactly_once_averages_after_a_crash_or_the_gap_is_reported,
);

fn a_crash_mid_batch_loses_or_repeats_readings_as_each_strategy_predicts(engine: Engine) {
    let broker = TestBroker::start(engine, &[("weather", 1)]);
    broker.produce("weather", 11, 40);
    let settings = broker.settings();
    let demo = |strategy| {
        delivery::crash_demo(&settings, &kafka_lab_bin(), "weather", strategy, 15, 10)
            .unwrap_or_else(|e| panic!("{strategy}: {e}"))
    };

    // Batches of 10; the process dies after the 15th reading, mid-way through
    // the second batch (offsets 10-19).
    let before = demo(CommitStrategy::CommitBeforeProcessing);
    assert_eq!(before.crashed_after, 15);
    assert_eq!(
        (before.lost, before.duplicated),
        (5, 0),
        "offsets 15-19 were committed but never processed: {before:?}"
    );
    assert_eq!(before.processed_after_restart, 20);

    let after = demo(CommitStrategy::CommitAfterProcessing);
    assert_eq!(
        (after.lost, after.duplicated),
        (0, 5),
        "offsets 10-14 were processed but not committed: {after:?}"
    );
    assert_eq!(after.processed_after_restart, 30);

    let stored = demo(CommitStrategy::StoreAfterProcessing);
    assert_eq!(stored.lost, 0, "{stored:?}");
    assert!(
        stored.duplicated < stored.crashed_after,
        "background commits of stored offsets bound the repeats: {stored:?}"
    );
    assert_eq!(stored.processed_after_restart, 40 - 15 + stored.duplicated);
}

fn transactions_are_isolated_or_the_gap_is_reported(engine: Engine) {
    let broker = TestBroker::start(engine, &[("txn", 1)]);
    let mut generator = WeatherGenerator::default_cities(12);
    let committed = generator.take_readings(3);
    let aborted = generator.take_readings(3);
    let demo =
        delivery::transactions_demo(&broker.settings(), "txn", &committed, &aborted).unwrap();
    match (&demo.isolation, engine) {
        (Isolation::Unsupported(why), Engine::Tansu) => {
            assert!(why.contains("transactions ("), "{why}");
            println!("tansu: {why}");
        }
        // nisshi 0.7.0-pre.2 hides an open transaction from read_committed
        // (the last stable offset) but never tells the client which
        // transactions were aborted, so their readings are delivered.
        (Isolation::NotIsolated, Engine::Mock | Engine::Nisshi) => {
            assert_eq!(demo.read_uncommitted_saw, (3, 3));
            assert_eq!(demo.read_committed_saw, (3, 3), "{demo}");
        }
        (Isolation::Isolated, _) => {
            assert_eq!(demo.read_committed_saw, (3, 0));
            assert_eq!(demo.read_uncommitted_saw, (3, 3));
        }
        (other, _) => panic!("{engine:?} changed its transaction support: {other:?}\n{demo}"),
    }
}

fn exactly_once_averages_after_a_crash_or_the_gap_is_reported(engine: Engine) {
    let broker = TestBroker::start(engine, &[("weather", 1), ("averages", 1)]);
    broker.produce("weather", 13, 30);
    let settings = broker.settings();
    let options = EosOptions {
        input: "weather".to_string(),
        output: "averages".to_string(),
        group: fresh_group_id("eos"),
        transactional_id: fresh_group_id("eos-txn"),
        batch: 10,
        crash_after: Some(15),
        timeout: Duration::from_secs(30),
    };
    let options_group = options.group.clone();
    let first = delivery::exactly_once_averages(&settings, &options);
    match (first, engine) {
        (Err(Error::Unsupported { what, hint, .. }), Engine::Tansu) => {
            assert!(what.starts_with("transactions ("), "{what}: {hint}");
            println!("tansu: {what}: {hint}");
        }
        (Ok(first), _) => {
            assert!(first.crashed);
            assert_eq!((first.processed, first.transactions), (15, 1));
            let second = delivery::exactly_once_averages(
                &settings,
                &EosOptions {
                    crash_after: None,
                    ..options
                },
            );
            let second = match (second, engine) {
                // nisshi 0.7.0-pre.2 commits transactions, offsets included,
                // but after a restart with the same transactional.id (the
                // fencing of the crashed producer) its first offsets fail.
                (Err(Error::Unsupported { what, hint, .. }), Engine::Nisshi) => {
                    assert!(
                        what.contains("send_offsets_to_transaction"),
                        "{what}: {hint}"
                    );
                    println!("nisshi: {what}: {hint}");
                    return;
                }
                (second, _) => second.unwrap(),
            };
            assert!(!second.crashed);
            let check = delivery::check_averages(
                &settings,
                "weather",
                "averages",
                IsolationLevel::ReadCommitted,
            )
            .unwrap();
            let group_offset =
                kafka_lab::offsets::committed_offsets(&settings, &options_group, "weather")
                    .unwrap();
            println!("{engine:?}: second run {second:?}; group offsets {group_offset:?}\n{check}");
            match engine {
                Engine::Mock => {
                    // The mock accepts TxnOffsetCommit but stores nothing, so the
                    // restart reads from the beginning again, and read_committed
                    // still sees the abandoned transaction's averages, which the
                    // restart counts on from: 45 averages for 30 readings.
                    assert_eq!(group_offset, vec![(0, None)]);
                    assert_eq!(second.processed, 30);
                    assert_eq!((check.messages, check.input_readings), (45, 30), "{check}");
                    assert!(!check.exactly_once());
                }
                Engine::Nisshi | Engine::Tansu => {
                    assert_eq!(
                        second.processed, 20,
                        "resumed after the committed transaction"
                    );
                    assert!(check.exactly_once(), "{check}");
                }
            }
        }
        (Err(e), _) => panic!("{engine:?}: {e}"),
    }
}
