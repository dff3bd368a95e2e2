//! The broker dies (SIGKILL) and comes back while a producer and a consumer are
//! running. With a broker program (nisshi, tansu), which keeps its data, nothing is lost and
//! nothing is written twice.

mod common;

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use common::{temp_dir, TestBroker};
use kafka_lab::broker::Engine;
use kafka_lab::consume::{self, fresh_group_id, ConsumeOptions, StartFrom};
use kafka_lab::csv_log::read_csv_log;
use kafka_lab::produce::produce_weather;
use kafka_lab::weather::WeatherGenerator;

#[test]
fn a_broker_restart_mid_produce_and_mid_consume_loses_and_duplicates_nothing() {
    let readings = 600;
    let mut broker = TestBroker::start(common::program_engine(), &[("weather", 1)]);
    // Long enough to ride out the outage: librdkafka retries until this passes.
    let settings = broker.settings().with_timeout(Duration::from_secs(30));
    let dir = temp_dir("restart");
    let csv = dir.join("kafka_log.csv");

    let producer = {
        let settings = settings.clone();
        std::thread::spawn(move || {
            let mut generator = WeatherGenerator::default_cities(5);
            produce_weather(&settings, "weather", &mut generator, readings, Some(150.0))
        })
    };
    let group = fresh_group_id("restart");
    let consumer = {
        let settings = settings.clone();
        let csv = csv.clone();
        let group = group.clone();
        std::thread::spawn(move || {
            let options = ConsumeOptions::new("weather")
                .from(StartFrom::Earliest)
                .group(group)
                .max(readings)
                .timeout(Duration::from_secs(60))
                .follow();
            consume::consume_to_csv(&settings, options, &csv)
        })
    };

    std::thread::sleep(Duration::from_millis(1500));
    broker.broker.kill();
    std::thread::sleep(Duration::from_secs(2));
    broker.broker.restart().unwrap();

    let delivered = producer.join().unwrap().unwrap();
    assert_eq!(delivered.len(), readings, "every reading was delivered");
    // Each reported offset is the reading's place in the send order. A batch
    // written just before the kill whose answer was lost is sent again; the
    // broker refuses the copy as a duplicate (the idempotent producer's
    // sequence numbers) and librdkafka reports it delivered without an offset.
    for (place, delivery) in delivered.0.iter().enumerate() {
        if let Some(offset) = delivery.reported_offset() {
            assert_eq!(offset, place as i64, "no gaps, no duplicates");
        }
    }
    let unreported = delivered.0.iter().filter(|d| d.reported_offset().is_none());
    eprintln!("delivered without an offset: {}", unreported.count());
    // The topic holds each reading once: nothing more than was sent.
    assert_eq!(
        kafka_lab::offsets::watermarks(&settings, "weather").unwrap(),
        vec![(0, 0, readings as i64)]
    );

    let report = consumer.join().unwrap().unwrap();
    eprintln!("consumer: {}", report.summary());
    // Readings the consumer read again after the restart (from its committed
    // offset: at least once) count towards its maximum, so it may stop short:
    // then the group's next run reads the rest, as a user's would.
    if read_csv_log(&csv).unwrap().len() < readings {
        let options = ConsumeOptions::new("weather").group(group).max(readings);
        let rest = consume::consume_to_csv(&settings, options, &csv).unwrap();
        eprintln!("the group's next run: {}", rest.summary());
    }
    let rows = read_csv_log(&csv).unwrap();
    assert_eq!(rows.len(), readings);
    // Row i is reading i at offset i, the unreported offsets included.
    for (place, (row, delivery)) in rows.iter().zip(&delivered.0).enumerate() {
        assert_eq!(
            (row.offset, row.city.as_str(), row.temperature),
            (
                place as i64,
                delivery.reading.city.as_str(),
                delivery.reading.temperature
            )
        );
    }
}

#[test]
fn mock_restart_shows_what_an_in_memory_broker_loses() {
    let mut broker = TestBroker::start(Engine::Mock, &[("weather", 1)]);
    let settings = broker.settings();
    let mut generator = WeatherGenerator::default_cities(6);
    let before = produce_weather(&settings, "weather", &mut generator, 100, None).unwrap();
    assert_eq!(before.offsets().last(), Some(&99));

    broker.broker.kill();
    broker.broker.restart().unwrap();

    // The mock keeps nothing: the topic is back (made at start), empty, and
    // offsets start again at 0. The first 100 readings are gone.
    let after = produce_weather(&settings, "weather", &mut generator, 10, None).unwrap();
    assert_eq!(after.offsets(), (0..10).collect::<Vec<i64>>());
    assert_eq!(
        kafka_lab::offsets::watermarks(&settings, "weather").unwrap(),
        vec![(0, 0, 10)]
    );
}

#[test]
fn a_broker_that_stays_away_gets_each_undelivered_reading_reported() {
    let mut broker = TestBroker::start(common::program_engine(), &[("weather", 1)]);
    let settings = broker.settings().with_timeout(Duration::from_secs(2));
    let mut producer = kafka_lab::produce::WeatherProducer::new(&settings, "weather").unwrap();
    broker.broker.kill();

    let readings = WeatherGenerator::default_cities(7).take_readings(5);
    let started = std::time::Instant::now();
    for reading in &readings {
        producer.send(reading).unwrap();
    }
    let error = producer.flush().unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
    let kafka_lab::Error::Delivery {
        total,
        delivered,
        undelivered,
    } = &error
    else {
        panic!("expected a delivery error, got {error}");
    };
    assert_eq!(
        (*total, *delivered, undelivered.len()),
        (5, 0, 5),
        "{error}"
    );
    for (line, reading) in undelivered.iter().zip(&readings) {
        assert!(
            line.contains(&reading.city) && line.contains(&reading.timestamp_rfc3339()),
            "{line}"
        );
    }
    assert!(
        error
            .to_string()
            .contains("5 of 5 messages were not delivered"),
        "{error}"
    );
}

/// `produce --quiet` prints no row, but a reading that was not written is
/// still named on stderr and the command still fails.
#[test]
fn a_quiet_produce_still_names_each_reading_not_delivered() {
    let mut broker = TestBroker::start(common::program_engine(), &[("weather", 1)]);
    let dir = temp_dir("quiet-undelivered");
    let child = std::process::Command::new(common::kafka_lab_bin())
        .args(["-b", broker.bootstrap(), "--broker-timeout-ms", "2000"])
        .args(["produce", "--quiet", "--rate", "20", "--count", "60"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kafka-lab runs");
    // About 15 readings are written, then the broker is gone for the rest.
    std::thread::sleep(Duration::from_millis(800));
    broker.broker.kill();
    let output = child.wait_with_output().expect("kafka-lab ends");
    let described = common::describe(&output);
    assert_eq!(output.status.code(), Some(1), "{described}");
    assert!(output.stdout.is_empty(), "{described}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let not_delivered = stderr
        .lines()
        .filter(|line| line.starts_with("not delivered: "))
        .count();
    assert!(
        (1..60).contains(&not_delivered),
        "{not_delivered} named: {described}"
    );
    assert!(
        stderr.contains(&format!("{not_delivered} of 60")),
        "{described}"
    );
}

#[test]
fn a_retry_the_broker_refuses_as_a_duplicate_is_delivered_without_an_offset() {
    // librdkafka's own mock cluster, in this process, answers the first
    // Produce request with DUPLICATE_SEQUENCE_NUMBER: what a broker answers to
    // a retried batch it wrote before the answer was lost (the restart above).
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("weather", 1, 1).unwrap();
    let refuse_next_batch = || {
        mock.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_DUPLICATE_SEQUENCE_NUMBER],
        )
    };
    refuse_next_batch();
    // 100 ms of linger: the 5 readings go in one batch, so one answer.
    let settings =
        kafka_lab::config::KafkaSettings::new(mock.bootstrap_servers()).with("linger.ms", "100");
    let mut generator = WeatherGenerator::default_cities(8);
    let first = produce_weather(&settings, "weather", &mut generator, 5, None).unwrap();
    // librdkafka counts them delivered and numbers them -1, 0, 1, 2, 3 from
    // the answer's -1: none of those is where they are.
    assert_eq!(first.len(), 5);
    let offsets: Vec<Option<i64>> = first.0.iter().map(|d| d.reported_offset()).collect();
    assert_eq!(offsets, vec![None; 5]);
    assert_eq!(first.0[0].cells()[2], "?");
    // (librdkafka trusts the broker: this mock only injected the error and
    // wrote nothing, as the offsets of the next readings show; a real broker
    // answers so only for a batch it has.)
    let next = produce_weather(&settings, "weather", &mut generator, 2, None).unwrap();
    assert_eq!(next.offsets(), vec![0, 1]);

    // The command shows each as `?` and says why.
    refuse_next_batch();
    let bootstrap = mock.bootstrap_servers();
    let args = [
        "-b",
        &bootstrap,
        "-X",
        "linger.ms=100",
        "produce",
        "--count",
        "3",
        "--topic",
        "weather",
    ];
    let output = common::kafka_lab(&temp_dir("duplicate"), &args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{}", common::describe(&output));
    let offset_cells: Vec<&str> = stdout
        .lines()
        .skip(1)
        .filter_map(|row| row.split_whitespace().nth(2))
        .collect();
    assert_eq!(offset_cells, vec!["?"; 3], "{stdout}");
    assert!(
        stderr.contains("3 of them without an offset (offset ?): each was a retry"),
        "{stderr}"
    );
}
