//! `kafka-lab produce`: readings out, delivery reports printed as they arrive.

use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use chrono::{DateTime, Utc};
use kafka_lab::config::KafkaSettings;
use kafka_lab::produce::{self, Delivery, TimestampType, DELIVERY_COLUMNS};
use kafka_lab::shutdown;
use kafka_lab::weather::{Reading, WeatherGenerator};

use super::RowPrinter;
use crate::args::ProduceArgs;

pub fn run(settings: &KafkaSettings, args: &ProduceArgs) -> anyhow::Result<()> {
    // Ctrl-C or SIGTERM: stop sending, flush what is in flight, report it all.
    shutdown::install();
    // Bad input fails before the header is printed.
    produce::check_rate(args.rate)?;
    let mut generator = WeatherGenerator::for_cities(&args.cities, args.seed)?;
    // Quiet: no header and no rows; failures and the summary still go to stderr.
    let rows = (!args.quiet).then(|| RowPrinter::new(&DELIVERY_COLUMNS, args.json));
    // Paced readings come seconds apart: each row is shown as it lands.
    let rows_per_batch = if args.rate.is_some() { 1 } else { 1_000 };
    let mut offsets_not_reported = 0;
    let (result, printed) = std::thread::scope(|scope| {
        let mut rows = rows.map(|rows| RowsThread::start(scope, rows, &args.topic, rows_per_batch));
        let result = produce::stream_weather(
            settings,
            &args.topic,
            &mut generator,
            args.count,
            args.rate,
            &mut |_, report| {
                // A failed report is listed with the error at the end.
                let Ok(delivery) = report else { return };
                if delivery.reported_offset().is_none() {
                    offsets_not_reported += 1;
                }
                if let Some(rows) = &mut rows {
                    rows.print(delivery);
                }
            },
        );
        (result, rows.map(RowsThread::finish))
    });
    printed.transpose()?;
    let delivered = result?;
    eprintln!("{delivered} reading(s) delivered to '{}'", args.topic);
    if offsets_not_reported > 0 {
        let shown = match (args.quiet, args.json) {
            (true, _) => "",
            (false, true) => " (offset -1 in the JSON)",
            (false, false) => " (offset ?)",
        };
        let acks = settings.properties().get("acks").map(|v| v.trim());
        let why = if matches!(acks, Some("0")) {
            "with acks=0 the broker does not answer"
        } else {
            "each was a retry after a lost answer, which the broker recognised as a \
             duplicate of what it had written, and refused"
        };
        eprintln!("{offsets_not_reported} of them without an offset{shown}: {why}");
    }
    Ok(())
}

/// The rows of a run, made and written on a thread of their own.
///
/// Making a row per report costs about as much as sending the reading it
/// reports. The sending thread, which also serves the reports between sends,
/// only copies each report's fields into a batch; this thread makes the rows
/// and writes them. Measured on the mock, 1,000,000 readings: 0.55x `kcat -P`
/// when a second thread served the reports and printed them, 0.84-0.90x like
/// this (docs/performance.md, session 11).
struct RowsThread<'scope> {
    batch: Batch,
    rows_per_batch: usize,
    full: SyncSender<Batch>,
    empty: Receiver<Batch>,
    printer: ScopedJoinHandle<'scope, std::io::Result<()>>,
}

/// Batches that may wait for the printing thread (64,000 rows, about 5 MB).
/// Beyond them the sends wait: a terminal or a pipe that reads slowly holds up
/// the run rather than fill the memory. With 4, the sends waited for the rows
/// often enough to cost a tenth of the run.
const BATCHES_WAITING: usize = 64;

impl<'scope> RowsThread<'scope> {
    fn start(
        scope: &'scope Scope<'scope, '_>,
        rows: RowPrinter,
        topic: &str,
        rows_per_batch: usize,
    ) -> Self {
        let (full, to_print) = std::sync::mpsc::sync_channel(BATCHES_WAITING);
        let (printed, empty) = std::sync::mpsc::channel();
        let topic = topic.to_string();
        let printer = std::thread::Builder::new()
            .name("rows".into())
            .spawn_scoped(scope, move || print_batches(rows, topic, to_print, printed))
            // What `scope.spawn` does too: a system that cannot start a thread
            // cannot run a producer either (librdkafka starts several).
            .expect("the system starts a thread");
        RowsThread {
            batch: Batch::default(),
            rows_per_batch,
            full,
            empty,
            printer,
        }
    }

    /// Copies the fields of `delivery` into the batch, and hands the batch to
    /// the printing thread once it is full.
    fn print(&mut self, delivery: &Delivery) {
        self.batch.add(delivery);
        if self.batch.reports.len() >= self.rows_per_batch {
            self.hand_over();
        }
    }

    fn hand_over(&mut self) {
        // A batch the printing thread is done with, or a new one.
        let next = self.empty.try_recv().unwrap_or_default();
        let full = std::mem::replace(&mut self.batch, next);
        // Fails only if the printing thread has ended (it panicked): `finish`
        // passes its panic on.
        let _ = self.full.send(full);
    }

    /// Hands over what is left and waits until it is printed; returns the
    /// first write that failed, if any.
    fn finish(mut self) -> std::io::Result<()> {
        if !self.batch.reports.is_empty() {
            self.hand_over();
        }
        // No more batches: the printing thread's loop ends.
        drop(self.full);
        self.printer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

/// Reports on their way to the printing thread: what each row shows, and the
/// names of their cities one after the other (nothing allocated per report).
#[derive(Default)]
struct Batch {
    reports: Vec<ReportFields>,
    cities: String,
}

/// What one row shows, but the topic (the same in every row) and the city.
struct ReportFields {
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    timestamp_type: TimestampType,
    taken: DateTime<Utc>,
    temperature: f64,
    /// Where the city's name ends in [`Batch::cities`] (it starts where the
    /// previous one ends).
    city_end: usize,
}

impl Batch {
    fn add(&mut self, delivery: &Delivery) {
        self.cities.push_str(&delivery.reading.city);
        self.reports.push(ReportFields {
            partition: delivery.partition,
            offset: delivery.offset,
            timestamp_ms: delivery.timestamp_ms,
            timestamp_type: delivery.timestamp_type,
            taken: delivery.reading.timestamp,
            temperature: delivery.reading.temperature,
            city_end: self.cities.len(),
        });
    }
}

/// The printing thread: prints each batch's rows as one [`Delivery`] (filled
/// in again for each row), and sends the emptied batch back to be refilled.
fn print_batches(
    mut rows: RowPrinter,
    topic: String,
    to_print: Receiver<Batch>,
    printed: Sender<Batch>,
) -> std::io::Result<()> {
    let mut delivery = Delivery {
        topic,
        partition: 0,
        offset: 0,
        timestamp_ms: None,
        timestamp_type: TimestampType::NotAvailable,
        reading: Reading {
            timestamp: DateTime::<Utc>::UNIX_EPOCH,
            city: String::new(),
            temperature: 0.0,
        },
    };
    for mut batch in to_print {
        let mut city_start = 0;
        for fields in &batch.reports {
            delivery.partition = fields.partition;
            delivery.offset = fields.offset;
            delivery.timestamp_ms = fields.timestamp_ms;
            delivery.timestamp_type = fields.timestamp_type;
            delivery.reading.timestamp = fields.taken;
            delivery.reading.temperature = fields.temperature;
            delivery.reading.city.clear();
            delivery
                .reading
                .city
                .push_str(&batch.cities[city_start..fields.city_end]);
            city_start = fields.city_end;
            rows.print(&delivery);
        }
        // Each batch goes out whole: a paced run's batch is one row.
        rows.flush();
        batch.reports.clear();
        batch.cities.clear();
        // Fails only when the sends are over and nothing will be refilled.
        let _ = printed.send(batch);
    }
    rows.finish()
}
