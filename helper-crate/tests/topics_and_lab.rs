//! Topics, the lab end to end, broker faults and the command line's contract.

mod common;

use std::time::{Duration, Instant};

use common::{describe, kafka_lab, temp_dir, TestBroker};
use kafka_lab::broker::{free_loopback_port, Engine};
use kafka_lab::config::KafkaSettings;
use kafka_lab::consume::{self, fresh_group_id, ConsumeOptions, StartFrom};
use kafka_lab::csv_log::read_csv_log;
use kafka_lab::lab::{run_lab, LabOptions};
use kafka_lab::produce::produce_readings;
use kafka_lab::weather::WeatherGenerator;
use kafka_lab::{offsets, topics, Error};

on_both_engines!(
    lab_runs_end_to_end_and_its_checks_pass,
    topics_list_shows_partitions_and_watermarks,
    broker_command_stops_cleanly_on_sigterm,
);

fn lab_runs_end_to_end_and_its_checks_pass(engine: Engine) {
    let broker = TestBroker::start(engine, &[("weather", 1)]);
    let dir = temp_dir("lab");
    let options = LabOptions {
        csv_path: dir.join("kafka_log.csv"),
        ..LabOptions::default()
    };
    let mut steps = Vec::new();
    let report = run_lab(&broker.settings(), &options, &mut |s| {
        steps.push(s.to_string())
    })
    .unwrap();
    assert_eq!(report.failed_checks(), Vec::<String>::new(), "{report}");
    assert_eq!(steps.len(), 5);

    let c = &report.comparison;
    let earliest = c.find(1, StartFrom::Earliest).unwrap();
    assert_eq!(
        (earliest.read, earliest.first_offset, earliest.last_offset),
        (10, Some(0), Some(9))
    );
    assert_eq!(earliest.committed_after, Some(10));
    let latest = c.find(1, StartFrom::Latest).unwrap();
    assert_eq!(
        (latest.read, latest.committed_after, latest.high_watermark),
        (0, None, 10)
    );
    let latest_again = c.find(2, StartFrom::Latest).unwrap();
    assert_eq!(
        (latest_again.read, latest_again.first_offset),
        (3, Some(10))
    );
    let earliest_again = c.find(2, StartFrom::Earliest).unwrap();
    assert_eq!(
        (earliest_again.read, earliest_again.first_offset),
        (3, Some(10))
    );
    assert_eq!(earliest_again.committed_after, Some(13));
    assert_eq!(read_csv_log(&options.csv_path).unwrap().len(), 10);

    let html = kafka_lab::display::AsTable::as_table(c).to_html();
    assert!(html.contains("<th>auto.offset.reset</th>"), "{html}");
}

fn topics_list_shows_partitions_and_watermarks(engine: Engine) {
    let broker = TestBroker::start(engine, &[("weather", 1), ("preset", 3)]);
    let settings = broker.settings();
    broker.produce("weather", 7, 4);

    match engine {
        Engine::Nisshi | Engine::Tansu => {
            let created = topics::create_topic(&settings, "cities", 3).unwrap();
            assert_eq!(created.partitions.len(), 3);
            let again = topics::create_topic(&settings, "cities", 3).unwrap_err();
            assert!(again.to_string().contains("already exists"), "{again}");
        }
        Engine::Mock => {
            // The mock has no CreateTopics: the error says so at once and says what to do.
            let started = Instant::now();
            let error = topics::create_topic(&settings, "cities", 3).unwrap_err();
            assert!(matches!(error, Error::Unsupported { .. }), "{error}");
            assert!(
                error.to_string().contains("--topic NAME:PARTITIONS"),
                "{error}"
            );
            assert!(started.elapsed() < Duration::from_secs(3));
        }
    }

    let metadata = topics::cluster_metadata(&settings, None, true).unwrap();
    assert_eq!(metadata.brokers.len(), 1);
    assert_eq!(
        metadata.brokers[0].port,
        broker.broker.config().listen.port() as i32
    );
    let names: Vec<&str> = metadata.topics.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"weather") && names.contains(&"preset"),
        "{names:?}"
    );
    let preset = metadata.topics.iter().find(|t| t.name == "preset").unwrap();
    assert_eq!(preset.partitions.len(), 3);

    let weather = topics::describe_topic(&settings, "weather").unwrap();
    assert_eq!(weather.partitions.len(), 1);
    assert_eq!(
        (weather.partitions[0].low, weather.partitions[0].high),
        (Some(0), Some(4))
    );
    assert_eq!(weather.message_count(), Some(4));

    let missing = topics::describe_topic(&settings, "no-such-topic").unwrap_err();
    assert!(matches!(missing, Error::UnknownTopic { .. }), "{missing}");
    assert!(
        !topics::topic_exists(&settings, "no-such-topic").unwrap(),
        "asking must not create it"
    );

    // The CLI's JSON agrees with the library.
    let dir = temp_dir("topics-json");
    let output = kafka_lab(
        &dir,
        &[
            "-b",
            broker.bootstrap(),
            "topics",
            "describe",
            "weather",
            "--json",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["partitions"][0]["high"], 4);
}

#[test]
fn a_delete_that_would_wipe_every_topic_is_refused_unless_accepted() {
    let broker = TestBroker::start(common::program_engine(), &[]);
    let settings = broker.settings();
    topics::create_topic(&settings, "keep", 1).unwrap();
    topics::create_topic(&settings, "short-lived", 2).unwrap();
    broker.produce("keep", 1, 5);

    // Refused: the user's other topic would go with it.
    let dir = temp_dir("delete");
    let stderr = common::kafka_lab_fails(
        &dir,
        broker.bootstrap(),
        &["topics", "delete", "short-lived"],
        2,
    );
    assert!(stderr.contains("deletes every topic"), "{stderr}");
    assert!(stderr.contains("--accept-wiping-the-broker"), "{stderr}");
    assert!(topics::topic_exists(&settings, "short-lived").unwrap());
    assert_eq!(
        topics::describe_topic(&settings, "keep")
            .unwrap()
            .message_count(),
        Some(5)
    );

    // Accepted: the engine still wipes everything. When a nisshi (or tansu)
    // version stops doing that, this fails: lift the refusal for that version.
    topics::delete_topic(&settings, "short-lived", true).unwrap();
    assert!(!topics::topic_exists(&settings, "short-lived").unwrap());
    assert!(
        !topics::topic_exists(&settings, "keep").unwrap(),
        "the engine deleted the other topic too (the reason for the refusal)"
    );
}

#[test]
fn the_broker_program_keeps_messages_and_committed_offsets_across_a_kill() {
    let mut broker = TestBroker::start(common::program_engine(), &[("weather", 1)]);
    let settings = broker.settings();
    let readings = WeatherGenerator::default_cities(8).take_readings(10);
    produce_readings(&settings, "weather", &readings).unwrap();
    let group = fresh_group_id("restart");
    let options = ConsumeOptions::new("weather")
        .from(StartFrom::Earliest)
        .group(&group)
        .max(6);
    assert_eq!(
        consume::consume(&settings, options.clone())
            .unwrap()
            .count(),
        6
    );

    broker.broker.kill();
    assert!(!broker.broker.is_running());
    broker.broker.restart().unwrap();

    let watermarks = offsets::watermarks(&settings, "weather").unwrap();
    assert_eq!(watermarks, vec![(0, 0, 10)]);
    assert_eq!(
        offsets::committed_offsets(&settings, &group, "weather").unwrap(),
        vec![(0, Some(6))]
    );
    let rest = consume::consume(&settings, options.max(100)).unwrap();
    assert_eq!(rest.offsets(), vec![6, 7, 8, 9]);
    assert_eq!(rest.records[0].reading, readings[6]);
}

#[test]
fn an_unreachable_broker_is_reported_within_the_timeout() {
    let port = free_loopback_port().unwrap();
    let address = format!("127.0.0.1:{port}");
    let settings = KafkaSettings::new(&address).with_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let error = topics::list_topics(&settings).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(error, Error::BrokerUnreachable { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&address) && message.contains("kafka-lab broker"),
        "{message}"
    );

    let dir = temp_dir("unreachable");
    for args in [
        vec!["topics", "list"],
        vec!["consume", "--max", "1"],
        vec!["produce", "--count", "1"],
        vec!["offsets"],
    ] {
        let started = Instant::now();
        let mut full = vec!["--broker-timeout-ms", "2000"];
        full.extend(args.iter());
        let stderr = common::kafka_lab_fails(&dir, &address, &full, 1);
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{args:?} took {:?}",
            started.elapsed()
        );
        assert!(stderr.contains(&address), "{args:?}: {stderr}");
    }
    assert!(
        !dir.join("kafka_log.csv").exists(),
        "nothing is written when the broker is down"
    );
}

#[test]
fn bad_usage_exits_2_with_a_one_line_reason_and_writes_nothing() {
    let dir = temp_dir("usage");
    let port = free_loopback_port().unwrap().to_string();
    let address = format!("127.0.0.1:{port}");
    for (args, expected) in [
        (
            vec!["consume", "--from", "soon"],
            "expected earliest, latest",
        ),
        (
            vec!["-X", "no.such.property=1", "consume"],
            "no.such.property",
        ),
        (
            vec!["-X", "novalue", "topics", "list"],
            "expected key=value",
        ),
        (
            vec!["consume", "--topic", "bad topic!"],
            "not a valid topic name",
        ),
        (vec!["produce", "--count", "ten"], "invalid value 'ten'"),
        (
            vec!["broker", "--engine", "kafka"],
            "[possible values: nisshi, tansu, mock]",
        ),
    ] {
        let stderr = common::kafka_lab_fails(&dir, &address, &args, 2);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing was written"
    );
}

fn broker_command_stops_cleanly_on_sigterm(engine: Engine) {
    let dir = temp_dir("sigterm");
    let listen = format!("127.0.0.1:{}", free_loopback_port().unwrap());
    let child = std::process::Command::new(common::kafka_lab_bin())
        .args([
            "broker",
            "--engine",
            &engine.to_string(),
            "--listen",
            &listen,
        ])
        .args([
            "--data",
            dir.join("data").to_str().unwrap(),
            "--topic",
            "weather:2",
        ])
        .env("KAFKA_LAB_BIN", common::kafka_lab_bin())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let settings = KafkaSettings::new(&listen).with_timeout(Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(30);
    let info = loop {
        match topics::describe_topic(&settings, "weather") {
            Ok(info) => break info,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => panic!("the broker never answered: {e}"),
        }
    };
    assert_eq!(info.partitions.len(), 2, "--topic weather:2 was created");

    let stderr = common::terminate(child);
    assert!(
        stderr.contains(&format!("engine {engine}")) && stderr.contains(&listen),
        "{stderr}"
    );
    assert!(stderr.contains("kafka-lab broker: stopped"), "{stderr}");
    assert!(
        !kafka_lab::broker::is_reachable(&listen, Duration::from_millis(300)),
        "nothing listens at {listen} after the stop"
    );
}

#[test]
fn the_mock_answers_the_first_request_on_a_new_connection_at_once() {
    use std::io::{Read, Write};
    // kafka-lab serves the mock cluster at its address through a forwarder.
    // It used to look for new connections every 20 ms, so the first request
    // on each connection waited up to 20 ms (librdkafka 2.12 opens two before
    // its first send): twenty connections waited 200-400 ms in all; now 3-40.
    let broker = TestBroker::start(Engine::Mock, &[]);
    // ApiVersions v0: size 11, api key 18, version 0, correlation id 1, client id "t".
    const API_VERSIONS: [u8; 15] = [0, 0, 0, 11, 0, 18, 0, 0, 0, 0, 0, 1, 0, 1, b't'];
    let mut waited = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let mut connection = std::net::TcpStream::connect(broker.bootstrap()).unwrap();
        connection.write_all(&API_VERSIONS).unwrap();
        let mut size = [0u8; 4];
        connection.read_exact(&mut size).unwrap();
        waited += started.elapsed();
        let mut answer = vec![0u8; u32::from_be_bytes(size) as usize];
        connection.read_exact(&mut answer).unwrap();
        assert_eq!(answer[..4], [0, 0, 0, 1], "the answer to correlation id 1");
    }
    assert!(
        waited < Duration::from_millis(200),
        "twenty first answers took {waited:?} in all"
    );
}
