//! Test fixtures: a real broker process on a free loopback port, and the
//! `kafka-lab` binary.

#![allow(dead_code)] // each test file uses a different part of this module

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use kafka_lab::broker::{find_engine_binary, EmbeddedBroker, Engine};
use kafka_lab::config::KafkaSettings;
use kafka_lab::produce::{produce_readings, Deliveries, RawProducer};
use kafka_lab::weather::{Reading, WeatherGenerator};

/// An embedded broker of one engine, started for one test and stopped (its data
/// removed) when the test ends.
pub struct TestBroker {
    pub broker: EmbeddedBroker,
}

impl TestBroker {
    /// Starts `engine` with the given topics (name, partitions) already there.
    pub fn start(engine: Engine, topics: &[(&str, i32)]) -> TestBroker {
        if engine.is_program() {
            assert!(
                find_engine_binary(engine).is_some(),
                "the {engine} engine is not installed: run scripts/setup.sh (or set {})",
                engine.binary_variable()
            );
        }
        // A port found free can be taken before the broker binds it (by another
        // test's client, as its own local port): then try another one.
        for attempt in 1.. {
            let mut config = EmbeddedBroker::config_on_free_port(engine).expect("a free port");
            config.kafka_lab_bin = Some(kafka_lab_bin());
            for (topic, partitions) in topics {
                config = config.topic(topic, *partitions);
            }
            match EmbeddedBroker::start(config) {
                Ok(broker) => return TestBroker { broker },
                Err(kafka_lab::Error::Broker(why))
                    if why.contains("already in use") && attempt < 5 =>
                {
                    eprintln!("attempt {attempt}: {why}; trying another port");
                }
                Err(error) => panic!("the broker starts: {error}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// Client settings for this broker (5 s timeouts keep failing tests short).
    pub fn settings(&self) -> KafkaSettings {
        self.broker.settings().with_timeout(Duration::from_secs(5))
    }

    pub fn bootstrap(&self) -> &str {
        self.broker.bootstrap()
    }

    /// Produces `count` readings of the default cities (generator `seed`) to `topic`.
    pub fn produce(&self, topic: &str, seed: u64, count: usize) -> Deliveries {
        let readings = WeatherGenerator::default_cities(seed).take_readings(count);
        produce_readings(&self.settings(), topic, &readings).expect("readings are delivered")
    }

    /// Produces `count` readings stamped 10 seconds apart, the first 10 minutes
    /// ago (for lookups by time), and returns them.
    pub fn produce_spaced(&self, topic: &str, seed: u64, count: i64) -> Vec<Reading> {
        let mut generator = WeatherGenerator::default_cities(seed);
        let base = chrono::Utc::now() - chrono::Duration::minutes(10);
        let readings: Vec<Reading> = (0..count)
            .map(|i| generator.next_reading_at(base + chrono::Duration::seconds(i * 10)))
            .collect();
        produce_readings(&self.settings(), topic, &readings).expect("readings are delivered");
        readings
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.broker.stop();
        let _ = std::fs::remove_dir_all(&self.broker.config().data_dir);
    }
}

/// The `kafka-lab` binary cargo built for these tests.
pub fn kafka_lab_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kafka-lab"))
}

/// Runs `kafka-lab` with `args` in `dir`, with no broker settings from the
/// environment leaking in.
pub fn kafka_lab(dir: &Path, args: &[&str]) -> Output {
    Command::new(kafka_lab_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("KAFKA_LAB_CONFIG")
        .output()
        .expect("kafka-lab runs")
}

/// stdout and stderr of a finished command, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A fresh, empty folder for one test's files.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kafka-lab-test-{name}-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Sends raw values (no key): how a test puts messages on a topic that are not
/// weather readings.
pub fn produce_raw(settings: &KafkaSettings, topic: &str, values: &[Option<&[u8]>]) {
    let mut producer = RawProducer::new(settings).expect("producer");
    for value in values {
        producer.send(topic, None, *value, &[]).expect("send");
    }
    let delivered = producer.flush().expect("every raw value is delivered");
    assert_eq!(delivered.len(), values.len());
}

/// The broker program the tests run: the one `KAFKA_LAB_ENGINE` names (nisshi
/// or tansu), else the installed default (nisshi, then tansu). What an engine
/// can do differs: tests match on it and check each engine's own behaviour.
pub fn program_engine() -> Engine {
    match Engine::from_env_or_installed() {
        Ok(engine) if engine.is_program() => engine,
        _ => Engine::installed_program().unwrap_or_else(|| {
            panic!("no broker program (nisshi or tansu) is installed: run scripts/setup.sh")
        }),
    }
}

/// Defines each listed test once per engine: `program::name` (nisshi or tansu,
/// see [`program_engine`]) and `mock::name`, each calling `name(engine)`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),+ $(,)?) => {
        mod program {
            $(#[test] fn $name() { super::$name(super::common::program_engine()) })+
        }
        mod mock {
            $(#[test] fn $name() { super::$name(kafka_lab::broker::Engine::Mock) })+
        }
    };
}

/// One message as a plain librdkafka consumer sees it.
pub struct RawMessage {
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
}

/// Reads `count` messages of partition 0 from the beginning, without a group
/// commit, through the library's one poll loop: an independent look at a topic.
pub fn read_raw(settings: &KafkaSettings, topic: &str, count: usize) -> Vec<RawMessage> {
    use kafka_lab::client::ConsumerBuilder;
    use kafka_lab::consume::PollLimits;
    use rdkafka::message::{Headers, Message};
    use rdkafka::Offset;

    let mut consumer = ConsumerBuilder::new(settings).build().expect("consumer");
    consumer
        .assign(topic, &[(0, Offset::Beginning)])
        .expect("assign");
    let mut messages = Vec::new();
    let limits = PollLimits {
        max: count,
        timeout: Duration::from_secs(20),
        stop_at_end: false,
    };
    consumer
        .poll_messages(limits, &mut |message| {
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|header| {
                            let value = header
                                .value
                                .map(String::from_utf8_lossy)
                                .unwrap_or_default();
                            (header.key.to_string(), value.to_string())
                        })
                        .collect()
                })
                .unwrap_or_default();
            messages.push(RawMessage {
                value: message.payload().map(<[u8]>::to_vec),
                headers,
            });
        })
        .expect("poll");
    messages
}

/// Runs `kafka-lab -b BOOTSTRAP ARGS...` in `dir`, checks that it exits with
/// `code`, and returns its stderr.
pub fn kafka_lab_fails(dir: &Path, bootstrap: &str, args: &[&str], code: i32) -> String {
    let mut full = vec!["-b", bootstrap];
    full.extend(args);
    let output = kafka_lab(dir, &full);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{args:?}: {}",
        describe(&output)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Sends SIGTERM to `child`, waits for it, checks that it exited 0, and returns
/// its stderr.
pub fn terminate(child: std::process::Child) -> String {
    // SAFETY: kill(2) with a pid we spawned and a valid signal number.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let output = child.wait_with_output().expect("the child exits");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
}

/// The Python of the venv `scripts/setup.sh` makes (it has kafka-python and
/// confluent-kafka): `$KAFKA_LAB_PYTHON`, else `$KAFKA_LAB_CACHE/venv`, else
/// `~/.cache/kafka-lab/venv`.
pub fn venv_python() -> PathBuf {
    let python = std::env::var_os("KAFKA_LAB_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("KAFKA_LAB_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/kafka-lab")
                });
            cache.join("venv/bin/python")
        });
    assert!(
        python.is_file(),
        "{} is missing: run scripts/setup.sh (or set KAFKA_LAB_PYTHON)",
        python.display()
    );
    python
}

/// The repository's `scripts/` folder.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts")
}
