//! Offsets, partitions and consumer groups against a real broker: lag as the
//! Kafka tools report it, moving a group's offsets, keys and partitions, and two
//! members sharing a topic.

mod common;

use std::time::Duration;

use common::{describe, kafka_lab, scripts_dir, temp_dir, venv_python, TestBroker};
use kafka_lab::broker::Engine;
use kafka_lab::consume::{self, fresh_group_id, ConsumeOptions, StartFrom, WeatherConsumer};
use kafka_lab::groups::{self, Assignor, GroupRunOptions, OrderCheck, Placements, SPREAD_CITIES};
use kafka_lab::offsets;
use kafka_lab::produce::{produce_readings, Deliveries};
use kafka_lab::weather::WeatherGenerator;
use kafka_lab::Error;

on_both_engines!(
    offsets_json_gives_watermarks_committed_and_lag_per_partition,
    independent_clients_report_the_same_offsets_as_kafka_lab,
    a_group_is_moved_to_earliest_latest_an_offset_and_a_time,
    moving_a_group_with_a_member_is_refused_where_the_broker_tells,
    keys_keep_their_partition_and_order_holds_only_within_a_partition,
    two_members_share_three_partitions_and_the_survivor_takes_over,
);

/// Produces `count` readings of the six spread cities (all three partitions).
fn produce_spread(broker: &TestBroker, topic: &str, seed: u64, count: usize) -> Deliveries {
    let readings = WeatherGenerator::new(&SPREAD_CITIES, seed).take_readings(count);
    produce_readings(&broker.settings(), topic, &readings).expect("delivered")
}

/// Reads `max` readings of `weather3` in `group`, from the earliest, committing.
fn read_in_group(broker: &TestBroker, group: &str, max: usize) -> consume::ConsumeReport {
    consume::consume(
        &broker.settings(),
        ConsumeOptions::new("weather3")
            .from(StartFrom::Earliest)
            .group(group)
            .max(max),
    )
    .unwrap()
}

/// `kafka-lab offsets --topic weather3 --group GROUP EXTRA...`: its stdout.
fn offsets_cli(dir: &std::path::Path, broker: &TestBroker, group: &str, extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["-b", broker.bootstrap(), "offsets", "--topic", "weather3"];
    args.extend(["--group", group]);
    args.extend(extra);
    let output = kafka_lab(dir, &args);
    assert!(output.status.success(), "{}", describe(&output));
    output.stdout
}

/// `kafka-lab offsets --topic weather3 --group GROUP --json`, parsed.
fn offsets_json(dir: &std::path::Path, broker: &TestBroker, group: &str) -> serde_json::Value {
    serde_json::from_slice(&offsets_cli(dir, broker, group, &["--json"])).unwrap()
}

fn offsets_json_gives_watermarks_committed_and_lag_per_partition(engine: Engine) {
    let broker = TestBroker::start(engine, &[("weather3", 3)]);
    let settings = broker.settings();
    produce_spread(&broker, "weather3", 1, 30);
    let group = fresh_group_id("lag");
    let read = read_in_group(&broker, &group, 12);
    assert_eq!(read.count(), 12);

    let dir = temp_dir("offsets-json");
    let rows = offsets_json(&dir, &broker, &group);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "one object per partition");
    let committed = offsets::committed_offsets(&settings, &group, "weather3").unwrap();
    let mut total_lag = 0;
    let mut total_high = 0;
    for (row, (partition, committed)) in rows.iter().zip(&committed) {
        for key in ["topic", "partition", "low", "high", "committed", "lag"] {
            assert!(row.get(key).is_some(), "{key} missing in {row}");
        }
        assert_eq!(row["topic"], "weather3");
        assert_eq!(row["partition"].as_i64(), Some(i64::from(*partition)));
        let high = row["high"].as_i64().unwrap();
        let low = row["low"].as_i64().unwrap();
        assert_eq!(row["committed"].as_i64(), *committed);
        assert_eq!(
            row["lag"].as_i64().unwrap(),
            high - committed.unwrap_or(low),
            "lag = high - committed (or - low): {row}"
        );
        total_lag += row["lag"].as_i64().unwrap();
        total_high += high;
    }
    assert_eq!(total_high, 30);
    assert_eq!(total_lag, 30 - 12, "the group has 18 readings left");

    let text = offsets_cli(&dir, &broker, &group, &[]);
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("total lag 18"), "{text}");
}

fn independent_clients_report_the_same_offsets_as_kafka_lab(engine: Engine) {
    let broker = TestBroker::start(engine, &[("weather3", 3)]);
    produce_spread(&broker, "weather3", 2, 30);
    let group = fresh_group_id("independent");
    read_in_group(&broker, &group, 17);
    let dir = temp_dir("independent");
    let ours = offsets_json(&dir, &broker, &group);

    let mut python = std::process::Command::new(venv_python());
    python
        .arg(scripts_dir().join("independent_offsets.py"))
        .args([broker.bootstrap(), "weather3", &group]);
    if engine == Engine::Mock {
        python.args(["--kafka-python-api-version", "2.3"]);
    }
    let theirs = python.output().unwrap();
    assert!(theirs.status.success(), "{}", describe(&theirs));
    let theirs: serde_json::Value = serde_json::from_slice(&theirs.stdout).unwrap();
    for client in ["kafka-python", "confluent-kafka"] {
        assert_eq!(
            theirs[client], ours,
            "{client} disagrees with kafka-lab offsets"
        );
    }
    let lag: i64 = ours
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["lag"].as_i64().unwrap())
        .sum();
    assert_eq!(lag, 13, "30 produced, 17 read and committed");
}

fn a_group_is_moved_to_earliest_latest_an_offset_and_a_time(engine: Engine) {
    let broker = TestBroker::start(engine, &[("weather", 1)]);
    let settings = broker.settings();
    let readings = broker.produce_spaced("weather", 3, 10);
    let group = fresh_group_id("reset");
    let committed = || offsets::committed_offsets(&settings, &group, "weather").unwrap();

    let dry =
        offsets::reset_offsets(&settings, &group, "weather", StartFrom::Offset(4), false).unwrap();
    assert_eq!(dry.after(0), Some(4));
    assert_eq!(committed(), vec![(0, None)], "a dry run commits nothing");

    for (to, expected) in [
        (StartFrom::Offset(4), 4),
        (StartFrom::Latest, 10),
        (StartFrom::Earliest, 0),
        (StartFrom::Offset(99), 10),
    ] {
        let reset = offsets::reset_offsets(&settings, &group, "weather", to, true).unwrap();
        assert_eq!(reset.after(0), Some(expected), "{to}");
        assert_eq!(committed(), vec![(0, Some(expected))], "{to}");
    }

    // The CLI, like kafka-consumer-groups.sh --reset-offsets --to-datetime ... --execute.
    let at = readings[6].timestamp.timestamp_millis();
    let dir = temp_dir("reset");
    let output = kafka_lab(
        &dir,
        &[
            "-b",
            broker.bootstrap(),
            "offsets",
            "--topic",
            "weather",
            "--group",
            &group,
            "--reset-to",
            &format!("@{at}"),
            "--execute",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let expected = match engine {
        Engine::Nisshi | Engine::Tansu => 6,
        // The mock answers every lookup by time with the end of the partition.
        Engine::Mock => 10,
    };
    assert_eq!(committed(), vec![(0, Some(expected))]);

    // The group's next member starts where the reset put it.
    let read = consume::consume(
        &settings,
        ConsumeOptions::new("weather")
            .from(StartFrom::Earliest)
            .group(&group),
    )
    .unwrap();
    assert_eq!(read.count(), 10 - expected as usize);
}

fn moving_a_group_with_a_member_is_refused_where_the_broker_tells(engine: Engine) {
    let broker = TestBroker::start(engine, &[("weather", 1)]);
    let settings = broker.settings();
    broker.produce("weather", 4, 5);
    let group = fresh_group_id("busy");
    let mut member = WeatherConsumer::new(
        &settings,
        ConsumeOptions::new("weather")
            .from(StartFrom::Earliest)
            .group(&group)
            .follow(),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut read = 0;
    while read < 5 && std::time::Instant::now() < deadline {
        let batch = member.poll_batch(5, Duration::from_millis(500)).unwrap();
        member.commit(&batch).unwrap();
        read += batch.records.len();
    }
    assert_eq!(read, 5);

    let reset = offsets::reset_offsets(&settings, &group, "weather", StartFrom::Earliest, true);
    match engine {
        // nisshi describes the group (DescribeGroups) and sees its member.
        Engine::Mock | Engine::Nisshi => {
            let error = reset.unwrap_err();
            assert!(matches!(error, Error::GroupActive { .. }), "{error}");
            assert!(error.to_string().contains("Stop its consumers"), "{error}");
            assert_eq!(
                offsets::committed_offsets(&settings, &group, "weather").unwrap(),
                vec![(0, Some(5))],
                "the refused reset changed nothing"
            );
        }
        // tansu 0.6 neither describes groups nor refuses a commit from outside
        // an active group: the move happens, and the report says it was not checked.
        Engine::Tansu => {
            let reset = reset.unwrap();
            assert!(
                reset.membership.starts_with("not verified"),
                "{}",
                reset.membership
            );
            assert!(reset.to_string().contains("not verified"), "{reset}");
        }
    }
    drop(member);
}

fn keys_keep_their_partition_and_order_holds_only_within_a_partition(engine: Engine) {
    let broker = TestBroker::start(engine, &[("weather3", 3)]);
    let first = produce_spread(&broker, "weather3", 7, 24);
    let second = produce_spread(&broker, "weather3", 8, 24);
    let placements = Placements::from_deliveries(&first, 3);
    assert!(placements.stable_and_predicted(&first));
    assert!(
        placements.stable_and_predicted(&second),
        "a second run puts every city on the same partition"
    );
    for city in ["Toronto", "Guangzhou", "Fuzhou"] {
        assert_eq!(
            placements.partition_of(city),
            Some(2),
            "{city}: the hot partition"
        );
    }
    assert_eq!(placements.partition_of("Vancouver"), Some(0));
    assert_eq!(placements.partition_of("Montreal"), Some(1));
    assert_eq!(
        placements.readings_per_partition(),
        vec![(0, 8), (1, 4), (2, 12)]
    );

    let read =
        consume::consume(&broker.settings(), ConsumeOptions::new("weather3").max(100)).unwrap();
    assert_eq!(read.count(), 48);
    let mut sent = first.clone();
    sent.0.extend(second.0);
    let order = OrderCheck::compare(&sent, &read.records);
    assert!(order.every_partition_in_order(), "{order:?}");
    assert!(
        !order.across_partitions,
        "readings were sent round-robin over three partitions and read partition by partition"
    );
}

fn two_members_share_three_partitions_and_the_survivor_takes_over(engine: Engine) {
    let broker = TestBroker::start(engine, &[("weather3", 3)]);
    produce_spread(&broker, "weather3", 9, 60);
    for assignor in [Assignor::Range, Assignor::CooperativeSticky] {
        let options = GroupRunOptions::new("weather3", fresh_group_id("pair")).assignor(assignor);
        let run = groups::two_members(&broker.settings(), &options).unwrap();
        let held: Vec<usize> = run.shared.iter().map(|(_, p)| p.len()).collect();
        assert_eq!(held.iter().sum::<usize>(), 3, "{assignor:?}: {run}");
        assert!(held.contains(&2) && held.contains(&1), "2 + 1: {run}");
        assert_eq!(run.after_b_left, vec![0, 1, 2], "A took over: {run}");
        assert!(run.read_by("B") >= 1, "{run}");
        assert_eq!(run.expected, 60);
        assert_eq!((run.missing, run.duplicates), (0, 0), "{run}");
        let revoked: Vec<&str> = run
            .timeline
            .iter()
            .filter(|e| e.member == "A" && e.event.starts_with("revoked"))
            .map(|e| e.event.as_str())
            .collect();
        assert!(
            !revoked.is_empty(),
            "A gave partitions up when B joined: {run}"
        );
        if assignor == Assignor::CooperativeSticky {
            // Incremental: A only gives up what moves to B, never all three.
            assert!(revoked.iter().all(|e| !e.contains("[0, 1, 2]")), "{run}");
        }
    }
}
