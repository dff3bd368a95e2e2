//! Peers: kcat and the Python confluent-kafka client, on the same readings.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{stored, BenchOptions, Throughput};
use crate::client::{fetch_wait_ms, JOIN_AND_FETCH};
use crate::config::KafkaSettings;
use crate::consume::fresh_group_id;
use crate::error::{Error, Result};

/// Another client's throughput on the same broker, topic, message size and
/// count. kcat and confluent-kafka sit on librdkafka like this crate, so the
/// ratio shows what the crate itself costs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerFigures {
    /// The client, e.g. `kcat 1.7.1` or `confluent-kafka (Python)`.
    pub tool: String,
    /// Producing the messages.
    pub produce: Throughput,
    /// Reading them back.
    pub consume: Throughput,
}

/// Runs `kcat -P` of the same readings (key = city), then `kcat -G` in a fresh
/// group reading `read_back` messages of the topic from `earliest`, as many as
/// the crate's consumer read. The topic then holds the crate's readings and
/// kcat's: reading all of them would spread the group's join over twice the
/// messages and flatter the peer's rate.
pub fn kcat_bench(
    settings: &KafkaSettings,
    options: &BenchOptions,
    read_back: usize,
) -> Result<PeerFigures> {
    let file = readings_file(options)?;
    let value_bytes = options.readings().next_reading().to_json().len();
    // Each run's time, and what it wrote to stdout.
    let kcat = |args: &[&str]| -> Result<(Duration, Vec<u8>)> {
        let started = Instant::now();
        let mut command = std::process::Command::new("kcat");
        command.args(["-b", settings.bootstrap(), "-q"]);
        // The same properties as the crate's clients (e.g. a tuning sweep).
        for (key, value) in settings.properties() {
            command.arg("-X").arg(format!("{key}={value}"));
        }
        let output = command
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
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
    };
    let file_arg = file.to_string_lossy().to_string();
    let mut produce_args = vec!["-P", "-t", &options.topic, "-K:", "-l", &file_arg];
    // The crate's producer settings, unless -X changed them.
    for (key, value) in [
        ("acks", "acks=all"),
        ("enable.idempotence", "enable.idempotence=true"),
    ] {
        if !settings.properties().contains_key(key) {
            produce_args.extend(["-X", value]);
        }
    }
    let produced = kcat(&produce_args).map(|(took, _)| took);
    let _ = std::fs::remove_file(&file);
    let produce = Throughput::new(options.messages, value_bytes, produced?);

    let expected = stored(settings, &options.topic)?.min(read_back);
    let group = fresh_group_id("bench-kcat");
    let count = expected.to_string();
    let consumer_settings: Vec<String> = join_and_fetch(settings)
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    let mut consume_args = vec!["-G", &group, "-X", "auto.offset.reset=earliest"];
    for property in &consumer_settings {
        consume_args.extend(["-X", property]);
    }
    // A dot per message read (`-f .`): what kcat read, counted, not assumed.
    consume_args.extend(["-f", ".", "-e", "-c", &count, &options.topic]);
    let (consumed, dots) = kcat(&consume_args)?;
    Ok(PeerFigures {
        tool: "kcat".to_string(),
        produce,
        consume: Throughput::new(dots.len(), value_bytes, consumed),
    })
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

/// The Python benchmark `--compare-python` runs, embedded so the binary needs
/// no checkout.
const PYTHON_BENCH: &str = include_str!("python_bench.py");

/// Runs the same produce and group consume with the Python confluent-kafka
/// client (`python` must have it: the venv `scripts/setup.sh` makes does),
/// reading back `read_back` messages, as many as the crate's consumer read
/// (see [`kcat_bench`]).
pub fn python_bench(
    settings: &KafkaSettings,
    options: &BenchOptions,
    python: &Path,
    read_back: usize,
) -> Result<PeerFigures> {
    let program = || format!("{} (confluent-kafka bench)", python.display());
    let script = options
        .work_dir
        .join(format!("kafka-lab-python-bench-{}.py", std::process::id()));
    std::fs::write(&script, PYTHON_BENCH).map_err(|e| Error::io(&script, e))?;
    let file = readings_file(options)?;
    let value_bytes = options.readings().next_reading().to_json().len();
    let output = std::process::Command::new(python)
        .arg(&script)
        .args([settings.bootstrap(), &options.topic])
        .arg(&file)
        .arg(fresh_group_id("bench-python"))
        .arg(read_back.to_string())
        .args(
            settings
                .properties()
                .iter()
                .map(|(key, value)| format!("{key}={value}")),
        )
        .args(
            join_and_fetch(settings)
                .into_iter()
                .map(|(key, value)| format!("consumer:{key}={value}")),
        )
        .output();
    let _ = std::fs::remove_file(&script);
    let _ = std::fs::remove_file(&file);
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
    #[derive(serde::Deserialize)]
    struct Figures {
        produce: Timed,
        consume: Timed,
    }
    let figures: Figures = serde_json::from_slice(&output.stdout).map_err(|e| Error::Program {
        program: program(),
        message: format!(
            "printed no figures ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        ),
    })?;
    let throughput =
        |t: Timed| Throughput::new(t.messages, value_bytes, Duration::from_secs_f64(t.seconds));
    Ok(PeerFigures {
        tool: "confluent-kafka (Python)".to_string(),
        produce: throughput(figures.produce),
        consume: throughput(figures.consume),
    })
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
