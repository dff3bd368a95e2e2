//! Where the time of `kafka-lab produce` goes, layer by layer, against `kcat -P`.
//!
//! `kcat -P -K: -l FILE` reads ready-made `key:value` lines and hands each to
//! librdkafka with a topic handle. `kafka-lab produce` makes each reading,
//! encodes it as JSON, stamps it with the reading's time, sends it by topic
//! name (rust-rdkafka's `BaseProducer::send`) and keeps a delivery report per
//! reading. This program sends the same messages with one layer at a time, so
//! each layer's cost is measured, not guessed:
//!
//! - `lines-by-handle`: kcat's loop in Rust: the lines of FILE, a topic handle
//!   (`rd_kafka_topic_t`), no per-message report kept;
//! - `lines-by-name`: the same through rust-rdkafka's `send`, which copies the
//!   topic name into a `CString` and has librdkafka look the topic up (under a
//!   write lock) on every send;
//! - `generated-by-handle`: readings made and encoded on the sending thread
//!   (as `produce` does for a paced run; a burst makes them on a thread of
//!   its own, and names each city by its place in a list rather than a
//!   `String`), with their own timestamps, sent with a topic handle, no
//!   report kept.
//!
//! `scripts/produce-layers.sh` runs these beside kcat, a C copy of kcat's loop
//! and `kafka-lab produce` on one mock broker and prints the table that
//! docs/performance.md quotes. Not a test: it prints what it measured.
//!
//! Arguments of the form `key=value` after the mode are librdkafka settings
//! for the producer (as `kafka-lab -X`), so that a layer can run with
//! kafka-lab's own settings.
//!
//!   cargo bench --bench produce_layers -- BOOTSTRAP TOPIC COUNT MODE [FILE] [KEY=VALUE]...

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use kafka_lab::produce::topic_handle::TopicHandle;
use kafka_lab::weather::WeatherGenerator;

/// The allocator `kafka-lab` runs on (mimalloc, also as `malloc` for
/// librdkafka), so that each layer is measured as the command would run it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.is_empty() {
        // `cargo bench` with no arguments: there is no broker to measure against.
        eprintln!("produce_layers needs a broker: run scripts/produce-layers.sh");
        return Ok(());
    }
    let [bootstrap, topic, count, mode, rest @ ..] = args.as_slice() else {
        bail!("usage: produce_layers BOOTSTRAP TOPIC COUNT MODE [FILE] [KEY=VALUE]...");
    };
    let count: usize = count.parse().context("COUNT")?;
    let (settings, file): (Vec<&String>, Vec<&String>) = rest.iter().partition(|a| a.contains('='));
    let lines = match file.first() {
        Some(&file) => std::fs::read_to_string(file).with_context(|| file.clone())?,
        None => String::new(),
    };
    let records: Vec<(&str, &str)> = lines
        .lines()
        .take(count)
        .filter_map(|line| line.split_once(':'))
        .collect();
    let producer = connect(bootstrap, topic, &settings)?;
    let (cpu_before, started) = (cpu_seconds(), Instant::now());
    let sent = match mode.as_str() {
        "lines-by-name" => lines_by_name(&producer, topic, &records)?,
        "lines-by-handle" => {
            let mut sender = HandleSender::new(&producer, topic)?;
            for (key, value) in &records {
                sender.send(key.as_bytes(), value.as_bytes(), 0)?;
            }
            records.len()
        }
        "generated-by-handle" => generated_by_handle(&producer, topic, count)?,
        other => bail!("unknown mode {other}"),
    };
    while producer.in_flight_count() > 0 {
        producer.poll(Duration::from_millis(1));
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{mode}: {sent} messages in {seconds:.3} s ({:.0} msg/s), {:.2} CPU s",
        sent as f64 / seconds,
        cpu_seconds() - cpu_before
    );
    Ok(())
}

/// A producer with `kafka-lab produce`'s delivery settings, ready to send: the
/// metadata is asked twice so that the producer id does not wait for
/// librdkafka's 500 ms retry timer (see `ReportingProducer::connect_to`).
fn connect(bootstrap: &str, topic: &str, settings: &[&String]) -> Result<BaseProducer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true");
    for setting in settings {
        if let Some((key, value)) = setting.split_once('=') {
            config.set(key, value);
        }
    }
    let producer: BaseProducer = config.create()?;
    for _ in 0..2 {
        producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))?;
    }
    Ok(producer)
}

fn lines_by_name(producer: &BaseProducer, topic: &str, records: &[(&str, &str)]) -> Result<usize> {
    for (sent, (key, value)) in records.iter().enumerate() {
        let mut record = BaseRecord::to(topic).key(*key).payload(*value);
        while let Err((error, returned)) = producer.send(record) {
            if error.rdkafka_error_code() != Some(RDKafkaErrorCode::QueueFull) {
                return Err(error.into());
            }
            record = returned;
            producer.poll(Duration::from_millis(5));
        }
        serve_reports_now_and_then(producer, sent);
    }
    Ok(records.len())
}

fn generated_by_handle(producer: &BaseProducer, topic: &str, count: usize) -> Result<usize> {
    let mut sender = HandleSender::new(producer, topic)?;
    let mut generator = WeatherGenerator::default_cities(1);
    generator.simulate_time(count);
    let mut value = Vec::with_capacity(128);
    for _ in 0..count {
        let reading = generator.next_reading();
        value.clear();
        reading.write_json(&mut value);
        let timestamp = reading.timestamp.timestamp_millis();
        sender.send(reading.key().as_bytes(), &value, timestamp)?;
    }
    Ok(count)
}

/// Delivery reports are served (and dropped) once every 1,000 sends, as
/// `ReportingProducer` does when it serves its own.
fn serve_reports_now_and_then(producer: &BaseProducer, sent: usize) {
    if sent.is_multiple_of(1000) {
        producer.poll(Duration::ZERO);
    }
}

/// The crate's topic handle, with the queue-full wait of kcat's loop.
struct HandleSender<'a> {
    producer: &'a BaseProducer,
    handle: TopicHandle,
    sent: usize,
}

impl<'a> HandleSender<'a> {
    fn new(producer: &'a BaseProducer, topic: &str) -> Result<Self> {
        // SAFETY: the sender borrows the producer, so the handle (one of its
        // fields) is dropped before it, and it sends only through it.
        let handle = unsafe { TopicHandle::new(producer.client(), topic) };
        Ok(HandleSender {
            producer,
            handle: handle
                .map_err(|code| anyhow::anyhow!("no topic handle for {topic}: {code}"))?,
            sent: 0,
        })
    }

    /// Queues one message (copied by librdkafka), waiting while the queue is
    /// full; a timestamp of 0 means "now".
    fn send(&mut self, key: &[u8], value: &[u8], timestamp: i64) -> Result<()> {
        while let Err((code, ())) = self.handle.send(self.producer, key, value, timestamp, ()) {
            if code != RDKafkaErrorCode::QueueFull {
                bail!("not queued: {code}");
            }
            self.producer.poll(Duration::from_millis(5));
        }
        serve_reports_now_and_then(self.producer, self.sent);
        self.sent += 1;
        Ok(())
    }
}

/// User plus system CPU seconds of this process so far (Linux), or 0.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name: utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
