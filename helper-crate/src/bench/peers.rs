//! Peers: kcat and the Python confluent-kafka client, on the same readings.
//!
//! kcat and confluent-kafka sit on librdkafka like this crate, so the ratios
//! show what the crate itself costs. A fair ratio needs the same work on the
//! same broker in the same state, so [`super::run_plan`] interleaves the
//! clients step by step: the crate produces, then each peer produces the same
//! readings; after one read that is not timed, the crate reads back, then each
//! peer's fresh group reads as many messages from `earliest`. Every consumer
//! then reads the same count from a topic of the same size, and is timed from
//! its creation to the end of its close. Both matter: a group's join is paid
//! once per read, and a broker's fetch can slow as its store grows (nisshi 0.7
//! read 1,000,000 readings at 25,000 msg/s from a topic of 1,000,000 and at
//! 11,700 from one of 2,000,000, with the 1 MiB fetches of the time;
//! docs/performance.md, session 12).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{stored, BenchOptions, Throughput};
use crate::client::{fetch_wait_ms, JOIN_AND_FETCH};
use crate::config::KafkaSettings;
use crate::consume::fresh_group_id;
use crate::error::{Error, Result};

/// Another client run beside the crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// kcat: `kcat -P` of the readings as `city:json` lines, `kcat -G` to read
    /// them back in a group.
    Kcat,
    /// The Python confluent-kafka client, run by this Python (it must have
    /// the package: the venv `scripts/setup.sh` makes does): a producer, and a
    /// group consumer decoding each value.
    Python(PathBuf),
}

/// A peer's throughput on the same broker, topic, message size and count.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerFigures {
    /// The client, e.g. `kcat` or `confluent-kafka (Python)`.
    pub tool: String,
    /// Producing the messages.
    pub produce: Throughput,
    /// Reading them back.
    pub consume: Throughput,
}

impl Peer {
    /// The client's name in the report.
    pub fn name(&self) -> &'static str {
        match self {
            Peer::Kcat => "kcat",
            Peer::Python(_) => "confluent-kafka (Python)",
        }
    }

    /// Produces the bench's readings (key = city) with the crate's producer
    /// settings (acks=all, idempotence) unless the user's settings change them.
    /// The peer keeps librdkafka's `linger.ms` (5 ms): the crate's 1 ms
    /// (`client::producer_config`) is one of the crate's own choices, and
    /// counts in its ratio.
    pub fn produce(&self, settings: &KafkaSettings, options: &BenchOptions) -> Result<Throughput> {
        let file = readings_file(options)?;
        let file_arg = file.to_string_lossy().to_string();
        let run = match self {
            Peer::Kcat => {
                let mut args = vec!["-P", "-t", &options.topic, "-K:", "-l", &file_arg];
                for (key, value) in [
                    ("acks", "acks=all"),
                    ("enable.idempotence", "enable.idempotence=true"),
                ] {
                    if !settings.properties().contains_key(key) {
                        args.extend(["-X", value]);
                    }
                }
                run_kcat(settings, &args).map(|(took, _)| (options.messages, took))
            }
            Peer::Python(python) => run_python(
                python,
                options,
                ["produce", settings.bootstrap(), &options.topic, &file_arg]
                    .map(String::from)
                    .into_iter()
                    .chain(user_properties(settings)),
            ),
        };
        let _ = std::fs::remove_file(&file);
        let (messages, took) = run?;
        Ok(Throughput::new(messages, options.value_bytes(), took))
    }

    /// Reads `count` messages of the topic (fewer if it stores fewer) from
    /// `earliest` in a fresh group, joining and fetching as the crate's
    /// consumer does ([`JOIN_AND_FETCH`]).
    pub fn consume(
        &self,
        settings: &KafkaSettings,
        options: &BenchOptions,
        count: usize,
    ) -> Result<Throughput> {
        let expected = stored(settings, &options.topic)?.min(count);
        let expected_arg = expected.to_string();
        let consumer_settings = join_and_fetch(settings)
            .into_iter()
            .map(|(key, value)| format!("{key}={value}"));
        let (messages, took) = match self {
            Peer::Kcat => {
                let group = fresh_group_id("bench-kcat");
                let properties: Vec<String> = consumer_settings.collect();
                let mut args = vec!["-G", &group, "-X", "auto.offset.reset=earliest"];
                for property in &properties {
                    args.extend(["-X", property]);
                }
                // A dot per message read (`-f .`): what kcat read, counted.
                args.extend(["-f", ".", "-e", "-c", &expected_arg, &options.topic]);
                let (took, dots) = run_kcat(settings, &args)?;
                if dots.len() < expected {
                    return Err(Error::Program {
                        program: "kcat".to_string(),
                        message: format!(
                            "read {} of the {expected} messages asked for before the end of \
                             the partitions",
                            dots.len()
                        ),
                    });
                }
                (dots.len(), took)
            }
            Peer::Python(python) => {
                let group = fresh_group_id("bench-python");
                let args = [
                    "consume",
                    settings.bootstrap(),
                    &options.topic,
                    &group,
                    &expected_arg,
                ]
                .map(String::from)
                .into_iter()
                .chain(user_properties(settings))
                .chain(consumer_settings.map(|property| format!("consumer:{property}")));
                run_python(python, options, args)?
            }
        };
        Ok(Throughput::new(messages, options.value_bytes(), took))
    }
}

/// Runs kcat with the user's properties (e.g. a tuning sweep's) and `args`;
/// returns how long it took and what it wrote to stdout.
fn run_kcat(settings: &KafkaSettings, args: &[&str]) -> Result<(Duration, Vec<u8>)> {
    let started = Instant::now();
    let mut command = Command::new("kcat");
    command.args(["-b", settings.bootstrap(), "-q"]);
    for (key, value) in settings.properties() {
        command.arg("-X").arg(format!("{key}={value}"));
    }
    let output = command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::Program {
            program: "kcat".to_string(),
            message: format!("could not be run ({e}): install it (scripts/setup.sh)"),
        })?;
    if !output.status.success() {
        return Err(Error::Program {
            program: "kcat".to_string(),
            message: format!(
                "{} (Debian's kcat talks to the mock engine, not to nisshi or tansu)",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok((started.elapsed(), output.stdout))
}

/// The Python benchmark, embedded so the binary needs no checkout.
const PYTHON_BENCH: &str = include_str!("python_bench.py");

/// Runs one step of the Python benchmark with `args`; returns the messages it
/// moved and the seconds it took, as it measured them.
fn run_python(
    python: &Path,
    options: &BenchOptions,
    args: impl Iterator<Item = String>,
) -> Result<(usize, Duration)> {
    let program = || format!("{} (confluent-kafka bench)", python.display());
    let script = options
        .work_dir
        .join(format!("kafka-lab-python-bench-{}.py", std::process::id()));
    std::fs::write(&script, PYTHON_BENCH).map_err(|e| Error::io(&script, e))?;
    let output = Command::new(python).arg(&script).args(args).output();
    let _ = std::fs::remove_file(&script);
    let output = output.map_err(|e| Error::Program {
        program: program(),
        message: format!("could not be run ({e}): give a Python with confluent-kafka"),
    })?;
    if !output.status.success() {
        return Err(Error::Program {
            program: program(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    #[derive(serde::Deserialize)]
    struct Timed {
        messages: usize,
        seconds: f64,
    }
    let timed: Timed = serde_json::from_slice(&output.stdout).map_err(|e| Error::Program {
        program: program(),
        message: format!(
            "printed no figures ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        ),
    })?;
    Ok((timed.messages, Duration::from_secs_f64(timed.seconds)))
}

/// The user's client properties as `KEY=VALUE` arguments.
fn user_properties(settings: &KafkaSettings) -> impl Iterator<Item = String> + '_ {
    settings
        .properties()
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
}

/// The crate's consumer settings for joining and fetching ([`JOIN_AND_FETCH`])
/// where the user's settings leave them: a peer's consumer joins its group and
/// fetches as the crate's does (on nisshi, both decide the speed).
fn join_and_fetch(settings: &KafkaSettings) -> Vec<(&'static str, &'static str)> {
    JOIN_AND_FETCH
        .into_iter()
        .filter(|(key, _)| !settings.properties().contains_key(*key))
        .map(|(key, value)| match key {
            // The engine's wait, as the crate's consumers get it when built.
            "fetch.wait.max.ms" => (key, fetch_wait_ms(settings)),
            _ => (key, value),
        })
        .collect()
}

/// The bench's readings as `city:json` lines, the input of the peers.
fn readings_file(options: &BenchOptions) -> Result<PathBuf> {
    use std::io::Write;
    let path = options.work_dir.join(format!(
        "kafka-lab-bench-readings-{}.txt",
        std::process::id()
    ));
    let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
    let mut out = std::io::BufWriter::new(file);
    let mut readings = options.readings();
    for _ in 0..options.messages {
        let reading = readings.next_reading();
        writeln!(out, "{}:{}", reading.key(), reading.to_json())
            .map_err(|e| Error::io(&path, e))?;
    }
    out.flush().map_err(|e| Error::io(&path, e))?;
    Ok(path)
}
