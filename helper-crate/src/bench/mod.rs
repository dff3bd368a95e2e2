//! Benchmarks: how fast readings move through a broker, on the paths users run.
//!
//! Throughput is messages (and megabytes) per second for a large batch: the
//! producer ([`crate::produce::stream_weather`], what `produce --quiet` runs) queues every
//! reading and waits for the last delivery report; the consumer
//! ([`WeatherConsumer`], what `consume` runs) joins a fresh group and reads them
//! back from `earliest` (as many as it sent), once without a CSV log and once writing
//! `kafka_log.csv` (each batch written and fsynced before its commit), after one
//! read that is not timed (the first read after the writes was the slowest in
//! the runs measured, docs/performance.md, session 13). Latency is
//! the time from `send` to the consumer's poll returning the message, measured at
//! a steady moderate rate (each payload starts with its send time), reported as
//! percentiles: the median (p50) says what is typical, p99 and p99.9 what the
//! slowest messages saw.
//!
//! Peers run the same readings on the same broker in the same run, step by step
//! after the crate ([`Peer`]): kcat (`-P` of the readings as `city:json` lines,
//! `-G` to read them in a group) and the Python confluent-kafka client (a
//! producer, and a group consumer decoding each value). kcat and confluent-kafka
//! sit on librdkafka like this crate, so the ratios show what the crate itself
//! costs. Every figure printed is measured in the run that prints it.
//!
//! Kafka CLI equivalents: `kafka-producer-perf-test.sh`, `kafka-consumer-perf-test.sh`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::topic_partition_list::Offset;
use serde::Serialize;

use crate::client::ConsumerBuilder;
use crate::config::KafkaSettings;
use crate::consume::{fresh_group_id, ConsumeOptions, PollLimits, StartFrom, WeatherConsumer};
use crate::csv_log::CsvLog;
use crate::display::{AsTable, Table};
use crate::error::{Error, Result};
use crate::offsets;
use crate::produce::{stream_weather, ReportingProducer};

mod peers;
use crate::weather::{WeatherGenerator, DEFAULT_CITIES};
pub use peers::{Peer, PeerFigures};

/// What a bench run reports while it works: a new phase, or how far the
/// current phase has come (for a progress bar).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A phase starts.
    Phase(&'a str),
    /// `done` of `total` messages of the current phase.
    Step {
        /// Messages done.
        done: usize,
        /// Messages in the phase.
        total: usize,
    },
}

/// Calls `progress` about every percent of `total`.
fn step(progress: &mut (dyn FnMut(Progress<'_>) + Send), done: usize, total: usize) {
    let every = (total / 100).max(1);
    if done.is_multiple_of(every) || done == total {
        progress(Progress::Step { done, total });
    }
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The topic (it must exist; [`run_bench`] does not create it).
    pub topic: String,
    /// Readings for the throughput runs.
    pub messages: usize,
    /// Bytes per message of the latency run (at least 16: it carries its send time).
    pub latency_size: usize,
    /// Messages per second for the latency run.
    pub latency_rate: u32,
    /// Length of the latency run.
    pub latency_duration: Duration,
    /// A folder for the CSV log and the peers' input file.
    pub work_dir: PathBuf,
    /// The seed of the readings (the peers send the same ones).
    pub seed: u64,
}

impl BenchOptions {
    /// 1,000,000 readings, then 100-byte messages at 1,000 msg/s for 10 s.
    pub fn new(topic: impl Into<String>) -> Self {
        BenchOptions {
            topic: topic.into(),
            messages: 1_000_000,
            latency_size: 100,
            latency_rate: 1_000,
            latency_duration: Duration::from_secs(10),
            work_dir: std::env::temp_dir(),
            seed: 42,
        }
    }

    fn readings(&self) -> WeatherGenerator {
        WeatherGenerator::new(&DEFAULT_CITIES, self.seed)
    }

    /// Bytes per reading (its JSON value), for the MB/s of every client.
    fn value_bytes(&self) -> usize {
        self.readings().next_reading().to_json().len()
    }
}

/// One throughput figure.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Throughput {
    /// Messages moved.
    pub messages: usize,
    /// Seconds it took.
    pub seconds: f64,
    /// Messages per second.
    pub messages_per_second: f64,
    /// Megabytes (10^6 bytes of payload) per second.
    pub megabytes_per_second: f64,
}

impl Throughput {
    /// The figure for `messages` of `size` bytes in `elapsed`.
    pub fn new(messages: usize, size: usize, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Throughput {
            messages,
            seconds,
            messages_per_second: messages as f64 / seconds,
            megabytes_per_second: (messages * size) as f64 / seconds / 1e6,
        }
    }
}

/// Produce-to-consume latency percentiles, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Latency {
    /// Messages measured.
    pub messages: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles of `samples` (milliseconds); `None` for no samples.
    pub fn from_samples(mut samples: Vec<f64>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| {
            samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1]
        };
        Some(Latency {
            messages: samples.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: samples[samples.len() - 1],
        })
    }
}

/// Everything one bench run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    /// The broker.
    pub bootstrap: String,
    /// The topic.
    pub topic: String,
    /// Bytes per reading (the JSON value).
    pub value_bytes: usize,
    /// Producing the readings, until the last delivery report.
    pub produce: Throughput,
    /// Reading as many back in a fresh group, without a CSV log.
    pub consume: Throughput,
    /// The same into a new `kafka_log.csv`.
    pub consume_to_csv: Throughput,
    /// Produce-to-consume latency at a steady rate.
    pub latency: Option<Latency>,
    /// Other clients on the same broker, same topic and readings, when compared.
    pub peers: Vec<PeerFigures>,
}

/// Runs the throughput and latency measurements against `options.topic`.
pub fn run_bench(
    settings: &KafkaSettings,
    options: &BenchOptions,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<BenchReport> {
    measure(settings, options, &[], progress)
}

/// The measurements, each step run by the crate and then by each peer, so
/// that every client meets the broker in the same state (see [`Peer`]):
/// produce, read back (after one read that is not timed; the crate twice:
/// without and with the CSV), then the crate's latency.
fn measure(
    settings: &KafkaSettings,
    options: &BenchOptions,
    peers: &[Peer],
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<BenchReport> {
    let (produce, peers_produce) = produce_readings(settings, options, peers, progress)?;
    let (consume, consume_to_csv) = read_back(settings, options, progress)?;
    let mut peer_figures = Vec::new();
    for (peer, produce) in peers.iter().zip(peers_produce) {
        progress(Progress::Phase(&format!(
            "{}: reading {} back in a fresh group",
            peer.name(),
            consume.messages
        )));
        peer_figures.push(PeerFigures {
            tool: peer.name().to_string(),
            produce,
            consume: peer.consume(settings, options, consume.messages)?,
        });
    }

    let latency = if options.latency_rate > 0 && !options.latency_duration.is_zero() {
        progress(Progress::Phase(&format!(
            "latency: {} msg/s for {:?}",
            options.latency_rate, options.latency_duration
        )));
        measure_latency(settings, options, progress)?
    } else {
        None
    };
    Ok(BenchReport {
        bootstrap: settings.bootstrap().to_string(),
        topic: options.topic.clone(),
        value_bytes: options.value_bytes(),
        produce,
        consume,
        consume_to_csv,
        latency,
        peers: peer_figures,
    })
}

/// Produces the bench's readings as `produce` sends them (delivery reports
/// included), then has each peer produce the same readings: the crate's
/// throughput, and each peer's.
fn produce_readings(
    settings: &KafkaSettings,
    options: &BenchOptions,
    peers: &[Peer],
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<(Throughput, Vec<Throughput>)> {
    let value_bytes = options.value_bytes();
    progress(Progress::Phase(&format!(
        "producing {} readings ({value_bytes} B) to '{}'",
        options.messages, options.topic
    )));
    let total = options.messages;
    let mut reported = 0;
    let started = Instant::now();
    stream_weather(
        settings,
        &options.topic,
        &mut options.readings(),
        total,
        None,
        &mut |_, _| {
            reported += 1;
            step(progress, reported, total);
        },
    )?;
    let produce = Throughput::new(total, value_bytes, started.elapsed());
    let mut peers_produce = Vec::new();
    for peer in peers {
        progress(Progress::Phase(&format!(
            "{}: producing the same {total} readings",
            peer.name()
        )));
        peers_produce.push(peer.produce(settings, options)?);
    }
    Ok((produce, peers_produce))
}

/// Reads the readings back as `consume` does, in a fresh group each time:
/// once not timed, then timed without and with a CSV log.
fn read_back(
    settings: &KafkaSettings,
    options: &BenchOptions,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<(Throughput, Throughput)> {
    let value_bytes = options.value_bytes();
    // The first read after the writes was the slowest in the runs measured
    // (tansu 0.6, 1,000,000 readings: 29.9 s, then 28.1 and 28.4 s for the
    // two reads after it): one read first, not timed, so that every timed
    // read, the crate's and each peer's, meets a store that was read before.
    consume_back(
        settings,
        options,
        None,
        value_bytes,
        progress,
        "warm-up read, not timed",
    )?;
    let consume = consume_back(settings, options, None, value_bytes, progress, "read")?;
    let csv_path = options
        .work_dir
        .join(format!("kafka-lab-bench-{}.csv", std::process::id()));
    let consume_to_csv = consume_back(
        settings,
        options,
        Some(&csv_path),
        value_bytes,
        progress,
        "read into a CSV log",
    );
    let _ = std::fs::remove_file(&csv_path);
    Ok((consume, consume_to_csv?))
}

/// A whole bench run: which topic (a new one unless given), and which peers
/// run the same readings after the crate.
#[derive(Clone, Debug)]
pub struct BenchPlan {
    /// What to measure; `options.topic` is used when `create_partitions` is `None`.
    pub options: BenchOptions,
    /// Create a new topic of this many partitions for the run, and delete it after.
    pub create_partitions: Option<i32>,
    /// Run kcat too.
    pub kcat: bool,
    /// Run the Python confluent-kafka client too, with this Python.
    pub python: Option<PathBuf>,
}

impl BenchPlan {
    /// A new topic `kafka-lab-bench-<time>`, of `partitions` partitions.
    pub fn on_new_topic(partitions: i32) -> Self {
        let topic = format!(
            "kafka-lab-bench-{}",
            chrono::Utc::now().format("%Y%m%d%H%M%S")
        );
        BenchPlan {
            options: BenchOptions::new(topic),
            create_partitions: Some(partitions),
            kcat: false,
            python: None,
        }
    }
}

impl BenchPlan {
    /// The same plan on an existing `topic`, which it neither creates nor deletes.
    pub fn with_topic(mut self, topic: &str) -> Self {
        self.options.topic = topic.to_string();
        self.create_partitions = None;
        self
    }
}

/// Runs a [`BenchPlan`]: creates its topic if asked, measures the crate and
/// its peers step by step on that topic, and deletes a topic it created.
pub fn run_plan(
    settings: &KafkaSettings,
    plan: &BenchPlan,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<BenchReport> {
    let options = &plan.options;
    if let Some(partitions) = plan.create_partitions {
        crate::topics::create_topic(settings, &options.topic, partitions)?;
    }
    let mut peers = Vec::new();
    if plan.kcat {
        peers.push(Peer::Kcat);
    }
    if let Some(python) = &plan.python {
        peers.push(Peer::Python(python.clone()));
    }
    let report = measure(settings, options, &peers, progress);
    if plan.create_partitions.is_some() {
        // Best effort: the figures matter more than the clean-up. Never on an
        // engine where the delete would take the user's topics with it.
        if let Err(error) = crate::topics::delete_topic(settings, &options.topic, false) {
            progress(Progress::Phase(&format!(
                "kept the topic '{}': {error}",
                options.topic
            )));
        }
    }
    report
}

/// Messages the topic stores now: what a fresh group reads from `earliest`.
/// A broker with a small retention (the mock engine keeps 5 MB per partition)
/// may have dropped the oldest.
fn stored(settings: &KafkaSettings, topic: &str) -> Result<usize> {
    let stored: i64 = offsets::watermarks(settings, topic)?
        .iter()
        .map(|(_, low, high)| high - low)
        .sum();
    Ok(stored.max(0) as usize)
}

/// Reads back as many messages as the bench produced (fewer if the topic
/// stores fewer: the mock keeps 5 MB a partition), the first ones of the
/// topic, as a fresh group from `earliest`, as `consume` does, into a new CSV
/// log when `csv` is given. `purpose` names the read in progress and errors.
fn consume_back(
    settings: &KafkaSettings,
    options: &BenchOptions,
    csv: Option<&Path>,
    value_bytes: usize,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
    purpose: &str,
) -> Result<Throughput> {
    let expected = stored(settings, &options.topic)?.min(options.messages);
    progress(Progress::Phase(&format!(
        "{purpose}: consuming {expected} back in a fresh group{}",
        csv.map_or(String::new(), |path| format!(" into {}", path.display()))
    )));
    let read_options = ConsumeOptions {
        keep_records: false,
        positions_at_end: false,
        ..ConsumeOptions::new(&options.topic)
            .group(fresh_group_id("bench"))
            .from(StartFrom::Earliest)
            .max(expected.max(1))
            .timeout(settings.timeout() * 30)
    };
    let started = Instant::now();
    let mut consumer = WeatherConsumer::new(settings, read_options)?;
    let mut log = match csv {
        Some(path) => Some(CsvLog::open(path)?),
        None => None,
    };
    let mut read = 0;
    let report = consumer.run(log.as_mut(), &mut |records| {
        read += records.len();
        step(progress, read, expected);
    })?;
    // The close (leaving the group) counts, as it does for a user's `consume`
    // and in the peers' figures.
    drop(consumer);
    let elapsed = started.elapsed();
    let messages = report.read + report.poison.len();
    if messages < expected {
        return Err(Error::Timeout {
            what: format!("{purpose}: reading back all {expected} messages (read {messages})"),
            waited: elapsed,
            hint: Some(format!("stopped: {}", report.stopped.describe())),
        });
    }
    Ok(Throughput::new(messages, value_bytes, elapsed))
}

/// Sends at a steady rate, each payload stamped with its send time, while a
/// consumer positioned at the end reads them and records the delays.
fn measure_latency(
    settings: &KafkaSettings,
    options: &BenchOptions,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<Option<Latency>> {
    // No lingering here: each message goes out at once, as latency-sensitive
    // producers are configured.
    let producer = ReportingProducer::<()>::new(settings, &[("linger.ms", "0")])?;
    let ends: Vec<(i32, Offset)> = offsets::watermarks(settings, &options.topic)?
        .into_iter()
        .map(|(partition, _, high)| (partition, Offset::Offset(high)))
        .collect();
    // Small, quick fetches: a latency-sensitive consumer does not wait to fill
    // a response (on nisshi 0.7, 16 KiB took p50 from 375 ms to 13 ms).
    let mut consumer = ConsumerBuilder::new(settings)
        .set("fetch.wait.max.ms", "10")
        .set("fetch.max.bytes", "16384")
        .set("message.max.bytes", "16384")
        .set("enable.partition.eof", "false")
        .build()?;
    consumer.assign(&options.topic, &ends)?;
    let total = (f64::from(options.latency_rate) * options.latency_duration.as_secs_f64()) as usize;
    let interval = Duration::from_secs_f64(1.0 / f64::from(options.latency_rate));
    let mut payload = vec![b'x'; options.latency_size.max(16)];
    let mut samples = Vec::with_capacity(total);
    let started = Instant::now();
    let mut sent = 0;
    let deadline = started + options.latency_duration + settings.timeout();
    let limits = PollLimits {
        max: 1,
        timeout: Duration::from_micros(200),
        stop_at_end: false,
    };
    while samples.len() < total && Instant::now() < deadline {
        let due = started + interval.mul_f64(sent as f64);
        if sent < total && Instant::now() >= due {
            payload[..16].copy_from_slice(&now_nanos().to_le_bytes());
            let record =
                BaseRecord::<(), [u8], _>::with_opaque_to(&options.topic, producer.opaque(()))
                    .payload(&payload[..]);
            producer.send(record)?;
            producer.take_reports();
            sent += 1;
            continue;
        }
        consumer.poll_messages(limits, &mut |message| {
            if let Some(stamp) = message.payload().and_then(|p| p.get(..16)) {
                let sent_at = u128::from_le_bytes(stamp.try_into().unwrap_or([0; 16]));
                samples.push(now_nanos().saturating_sub(sent_at) as f64 / 1e6);
            }
        })?;
        step(progress, samples.len(), total);
    }
    Ok(Latency::from_samples(samples))
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

impl AsTable for BenchReport {
    fn as_table(&self) -> Table {
        let mut table = Table::new(&["measure", "messages", "seconds", "msg/s", "MB/s"])
            .with_title(format!(
                "kafka-lab bench: {} readings × {} B on '{}' at {}",
                self.produce.messages, self.value_bytes, self.topic, self.bootstrap
            ));
        let mut rows = vec![
            ("kafka-lab produce".to_string(), self.produce),
            ("kafka-lab consume (group)".to_string(), self.consume),
            (
                "kafka-lab consume (group) into CSV".to_string(),
                self.consume_to_csv,
            ),
        ];
        for peer in &self.peers {
            rows.push((format!("{} produce", peer.tool), peer.produce));
            rows.push((format!("{} consume (group)", peer.tool), peer.consume));
        }
        for (name, t) in rows {
            table.push_row(vec![
                name,
                t.messages.to_string(),
                format!("{:.2}", t.seconds),
                format!("{:.0}", t.messages_per_second),
                format!("{:.1}", t.megabytes_per_second),
            ]);
        }
        for peer in &self.peers {
            let ratio = |ours: Throughput, theirs: Throughput| {
                ours.messages_per_second / theirs.messages_per_second
            };
            table.push_row(vec![
                format!("ratio kafka-lab ÷ {}", peer.tool),
                String::new(),
                String::new(),
                format!(
                    "{:.2} produce, {:.2} consume, {:.2} consume into CSV",
                    ratio(self.produce, peer.produce),
                    ratio(self.consume, peer.consume),
                    ratio(self.consume_to_csv, peer.consume)
                ),
                String::new(),
            ]);
        }
        table.footer = Some(match &self.latency {
            Some(l) => format!(
                "latency over {} messages: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
                l.messages, l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms
            ),
            None => "latency not measured".to_string(),
        });
        table
    }
}

crate::shown_as_table!(BenchReport);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_samples() {
        let samples: Vec<f64> = (1..=1000).map(f64::from).collect();
        let l = Latency::from_samples(samples).unwrap();
        assert_eq!(
            (l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms),
            (500.0, 990.0, 999.0, 1000.0)
        );
        assert_eq!(Latency::from_samples(vec![]), None);
        assert_eq!(Latency::from_samples(vec![3.0]).unwrap().p999_ms, 3.0);
    }

    #[test]
    fn throughput_divides_by_time() {
        let t = Throughput::new(1000, 100, Duration::from_millis(500));
        assert_eq!(
            (t.messages_per_second, t.megabytes_per_second),
            (2000.0, 0.2)
        );
    }
}
