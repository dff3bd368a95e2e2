//! Benchmarks: how fast a producer and a consumer move messages through a broker.
//!
//! Throughput is messages (and megabytes) per second for a large batch: the
//! producer queues them all and waits for the last delivery report, the consumer
//! reads them all back from the beginning. Latency is the time from `send` to the
//! consumer's `poll` returning the message, measured at a steady moderate rate
//! (each payload starts with its send time), reported as percentiles: the median
//! (p50) says what is typical, p99 and p99.9 what the slowest messages saw.
//!
//! The throughput producer waits up to `linger.ms=20` to fill batches (small
//! lingers cost throughput dearly on some brokers); the latency producer sends
//! each message at once (`linger.ms=0`). Both use `acks=all`. Every figure
//! printed is measured in the run that prints it.
//!
//! Kafka CLI equivalents: `kafka-producer-perf-test.sh`, `kafka-consumer-perf-test.sh`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::sync::atomic::{AtomicUsize, Ordering};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::config::KafkaSettings;
use crate::display::{AsTable, Table};
use crate::error::{Error, Result};
use crate::offsets;
use crate::produce::send_making_room;

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
fn step(progress: &mut dyn FnMut(Progress<'_>), done: usize, total: usize) {
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
    /// Messages for the throughput runs.
    pub messages: usize,
    /// Bytes per message.
    pub size: usize,
    /// Messages per second for the latency run.
    pub latency_rate: u32,
    /// Length of the latency run.
    pub latency_duration: Duration,
}

impl BenchOptions {
    /// 1,000,000 × 100 B, then 1,000 msg/s for 10 s.
    pub fn new(topic: impl Into<String>) -> Self {
        BenchOptions {
            topic: topic.into(),
            messages: 1_000_000,
            size: 100,
            latency_rate: 1_000,
            latency_duration: Duration::from_secs(10),
        }
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
    /// Bytes per message.
    pub size: usize,
    /// Producing all messages, until the last delivery report.
    pub produce: Throughput,
    /// Consuming them all back from the beginning.
    pub consume: Throughput,
    /// Produce-to-consume latency at a steady rate.
    pub latency: Option<Latency>,
    /// Other clients on the same broker, same topic and messages, when compared.
    pub peers: Vec<PeerFigures>,
}

/// Runs the throughput and latency measurements against `options.topic`.
pub fn run_bench(
    settings: &KafkaSettings,
    options: &BenchOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<BenchReport> {
    let start_offsets = high_watermarks(settings, &options.topic)?;

    progress(Progress::Phase(&format!(
        "producing {} messages of {} B to '{}'",
        options.messages, options.size, options.topic
    )));
    let producer = bench_producer(settings, "20")?;
    let payload = vec![b'x'; options.size.max(16)];
    let started = Instant::now();
    for sent in 1..=options.messages {
        send_waiting_for_room(&producer, settings, &options.topic, &payload)?;
        if sent % 1000 == 0 {
            // Serve delivery reports as they come (kcat does after every
            // message; every 1,000th measured faster here), rather than a
            // million of them at the end.
            producer.poll(Duration::ZERO);
            step(progress, sent, options.messages);
        }
    }
    producer
        .flush(settings.timeout() * 6)
        .map_err(|e| Error::from_client(settings, "flushing the bench producer", e))?;
    let produce = Throughput::new(options.messages, payload.len(), started.elapsed());
    let failed = producer.context().failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(Error::Delivery {
            total: options.messages,
            undelivered: vec![format!("{failed} bench messages failed delivery")],
        });
    }

    // What is there to read back: a broker with a small retention (the mock
    // engine keeps about 40,000 of these) has already dropped the oldest.
    // Read from where the producer started, or from the oldest message still
    // stored if the broker already dropped some.
    let mut read_from = Vec::new();
    let mut expected = 0;
    for (partition, low, high) in offsets::watermarks(settings, &options.topic)? {
        let start = start_offsets
            .iter()
            .find(|(p, _)| *p == partition)
            .map_or(0, |(_, offset)| *offset);
        read_from.push((partition, low.max(start)));
        expected += high - low.max(start);
    }
    let expected = expected.max(0) as usize;
    progress(Progress::Phase(&format!(
        "consuming them back ({expected} still stored)"
    )));
    let consumer = bench_consumer(settings, &options.topic, &read_from)?;
    let started = Instant::now();
    let mut read = 0;
    let mut idle_since = Instant::now();
    while read < expected {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => {
                read += 1;
                idle_since = Instant::now();
                step(progress, read, expected);
            }
            Some(Err(_)) | None if idle_since.elapsed() > settings.timeout() => {
                return Err(Error::Config(format!(
                    "bench: only {read} of {expected} messages came back within {:?} of the last one",
                    settings.timeout()
                )))
            }
            _ => {}
        }
    }
    let consume = Throughput::new(read, payload.len(), started.elapsed());

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
        size: payload.len(),
        produce,
        consume,
        latency,
        peers: Vec::new(),
    })
}

/// Sends at a steady rate, each payload stamped with its send time, while a
/// consumer positioned at the end reads them and records the delays.
fn measure_latency(
    settings: &KafkaSettings,
    options: &BenchOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Option<Latency>> {
    // No lingering here: each message goes out at once, as latency-sensitive
    // producers are configured.
    let producer = &bench_producer(settings, "0")?;
    let consumer = bench_consumer(
        settings,
        &options.topic,
        &high_watermarks(settings, &options.topic)?,
    )?;
    let total = (f64::from(options.latency_rate) * options.latency_duration.as_secs_f64()) as usize;
    let interval = Duration::from_secs_f64(1.0 / f64::from(options.latency_rate));
    let mut payload = vec![b'x'; options.size.max(16)];
    let mut samples = Vec::with_capacity(total);
    let started = Instant::now();
    let mut sent = 0;
    let deadline = started + options.latency_duration + settings.timeout();
    while samples.len() < total && Instant::now() < deadline {
        let due = started + interval.mul_f64(sent as f64);
        if sent < total && Instant::now() >= due {
            payload[..16].copy_from_slice(&now_nanos().to_le_bytes());
            send_waiting_for_room(producer, settings, &options.topic, &payload)?;
            producer.poll(Duration::ZERO);
            sent += 1;
            continue;
        }
        if let Some(Ok(message)) = consumer.poll(Duration::from_micros(200)) {
            if let Some(stamp) = message.payload().and_then(|p| p.get(..16)) {
                let sent_at = u128::from_le_bytes(stamp.try_into().unwrap_or([0; 16]));
                samples.push(now_nanos().saturating_sub(sent_at) as f64 / 1e6);
                step(progress, samples.len(), total);
            }
        }
        producer.poll(Duration::ZERO);
    }
    Ok(Latency::from_samples(samples))
}

/// (partition, high watermark) for every partition of `topic`.
fn high_watermarks(settings: &KafkaSettings, topic: &str) -> Result<Vec<(i32, i64)>> {
    Ok(offsets::watermarks(settings, topic)?
        .into_iter()
        .map(|(partition, _, high)| (partition, high))
        .collect())
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Counts failed deliveries: a benchmark that lost messages must say so.
#[derive(Default)]
struct FailureCount {
    failed: AtomicUsize,
}

impl ClientContext for FailureCount {}

impl ProducerContext for FailureCount {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn bench_producer(settings: &KafkaSettings, linger_ms: &str) -> Result<BaseProducer<FailureCount>> {
    let timeout_ms = (settings.timeout() * 6).as_millis().to_string();
    settings
        .client_config_with_defaults(&[
            ("linger.ms", linger_ms),
            ("acks", "all"),
            ("queue.buffering.max.messages", "1000000"),
            ("message.timeout.ms", &timeout_ms),
        ])
        .create_with_context(FailureCount::default())
        .map_err(|e| Error::from_client(settings, "creating the bench producer", e))
}

fn send_waiting_for_room(
    producer: &BaseProducer<FailureCount>,
    settings: &KafkaSettings,
    topic: &str,
    payload: &[u8],
) -> Result<()> {
    let record = BaseRecord::<(), [u8]>::to(topic).payload(payload);
    // The bench fills the queue on purpose: wait for room as long as it takes.
    send_making_room(producer, record, None)
        .map_err(|e| Error::from_client(settings, "bench send", e))
}

fn bench_consumer(
    settings: &KafkaSettings,
    topic: &str,
    start: &[(i32, i64)],
) -> Result<BaseConsumer> {
    let consumer: BaseConsumer = settings
        .client_config_with_defaults(&[
            ("fetch.wait.max.ms", "10"),
            ("auto.offset.reset", "earliest"),
        ])
        .set("group.id", crate::consume::fresh_group_id("bench"))
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| Error::from_client(settings, "creating the bench consumer", e))?;
    let mut tpl = TopicPartitionList::new();
    for (partition, offset) in start {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|e| Error::kafka("bench assignment", e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| Error::from_client(settings, "bench assignment", e))?;
    Ok(consumer)
}

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

/// Runs `kcat -P` and `kcat -C -e` with the bench's count and size.
pub fn kcat_bench(settings: &KafkaSettings, options: &BenchOptions) -> Result<PeerFigures> {
    let size = options.size.max(16);
    let file = std::env::temp_dir().join(format!("kafka-lab-kcat-{}.txt", std::process::id()));
    let mut lines = Vec::with_capacity(options.messages * (size + 1));
    for _ in 0..options.messages {
        lines.extend(std::iter::repeat_n(b'x', size));
        lines.push(b'\n');
    }
    std::fs::write(&file, &lines).map_err(|e| Error::io(&file, e))?;
    let kcat = |args: &[&str]| -> Result<Duration> {
        let started = Instant::now();
        let mut command = std::process::Command::new("kcat");
        command.args(["-b", settings.bootstrap(), "-q"]);
        // The same -X properties as the crate's clients (e.g. a tuning sweep).
        for (key, value) in settings.properties() {
            command.arg("-X").arg(format!("{key}={value}"));
        }
        let output = command
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(|e| {
                Error::Config(format!(
                    "kcat could not be run ({e}): install it (scripts/setup.sh)"
                ))
            })?;
        if !output.status.success() {
            return Err(Error::Config(format!(
                "kcat failed: {}(Debian's kcat talks to the mock engine, not to tansu)",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(started.elapsed())
    };
    let file_arg = file.to_string_lossy().to_string();
    let mut produce_args = vec!["-P", "-t", &options.topic, "-l", &file_arg];
    // The crate's bench producer settings, unless -X changed them.
    for (key, value) in [("linger.ms", "linger.ms=20"), ("acks", "acks=all")] {
        if !settings.properties().contains_key(key) {
            produce_args.extend(["-X", value]);
        }
    }
    let produced = kcat(&produce_args);
    let _ = std::fs::remove_file(&file);
    let produce = Throughput::new(options.messages, size, produced?);

    // kcat reads every partition from its oldest message and stops after as
    // many messages as it wrote, or as the broker still keeps (the mock engine
    // keeps 5 MB per partition). All bench messages have the same size.
    let stored: i64 = offsets::watermarks(settings, &options.topic)?
        .iter()
        .map(|(_, low, high)| high - low)
        .sum();
    let expected = (options.messages as i64).min(stored).max(0) as usize;
    let consumed = kcat(&[
        "-C",
        "-t",
        &options.topic,
        "-o",
        "beginning",
        "-e",
        "-c",
        &expected.to_string(),
    ])?;
    Ok(PeerFigures {
        tool: "kcat".to_string(),
        produce,
        consume: Throughput::new(expected, size, consumed),
    })
}

/// The Python benchmark `--compare-python` runs, embedded so the binary needs
/// no checkout.
const PYTHON_BENCH: &str = include_str!("python_bench.py");

/// Runs the same produce and consume with the Python confluent-kafka client
/// (`python` must have it: the venv `scripts/setup.sh` makes does), on every
/// partition of the topic.
pub fn python_bench(
    settings: &KafkaSettings,
    options: &BenchOptions,
    python: &std::path::Path,
) -> Result<PeerFigures> {
    let script =
        std::env::temp_dir().join(format!("kafka-lab-python-bench-{}.py", std::process::id()));
    std::fs::write(&script, PYTHON_BENCH).map_err(|e| Error::io(&script, e))?;
    let size = options.size.max(16);
    let output = std::process::Command::new(python)
        .arg(&script)
        .args([settings.bootstrap(), &options.topic])
        .args([options.messages.to_string(), size.to_string()])
        .args(
            settings
                .properties()
                .iter()
                .map(|(key, value)| format!("{key}={value}")),
        )
        .output();
    let _ = std::fs::remove_file(&script);
    let output = output.map_err(|e| {
        Error::Config(format!(
            "{} could not be run ({e}): give --python PATH to a Python with confluent-kafka",
            python.display()
        ))
    })?;
    if !output.status.success() {
        return Err(Error::Config(format!(
            "the Python bench failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
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
    let figures: Figures = serde_json::from_slice(&output.stdout).map_err(|e| {
        Error::Config(format!(
            "the Python bench printed no figures ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        ))
    })?;
    let throughput =
        |t: Timed| Throughput::new(t.messages, size, Duration::from_secs_f64(t.seconds));
    Ok(PeerFigures {
        tool: "confluent-kafka (Python)".to_string(),
        produce: throughput(figures.produce),
        consume: throughput(figures.consume),
    })
}

impl AsTable for BenchReport {
    fn as_table(&self) -> Table {
        let mut table = Table::new(&["measure", "messages", "seconds", "msg/s", "MB/s"])
            .with_title(format!(
                "kafka-lab bench: {} × {} B on '{}' at {}",
                self.produce.messages, self.size, self.topic, self.bootstrap
            ));
        let mut rows = vec![
            ("kafka-lab produce".to_string(), self.produce),
            ("kafka-lab consume".to_string(), self.consume),
        ];
        for peer in &self.peers {
            rows.push((format!("{} produce", peer.tool), peer.produce));
            rows.push((format!("{} consume", peer.tool), peer.consume));
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
            table.push_row(vec![
                format!("ratio kafka-lab ÷ {}", peer.tool),
                String::new(),
                String::new(),
                format!(
                    "{:.2} produce, {:.2} consume",
                    self.produce.messages_per_second / peer.produce.messages_per_second,
                    self.consume.messages_per_second / peer.consume.messages_per_second
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
