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
    small_pages_only();
    // Ctrl-C or SIGTERM: stop sending, flush what is in flight, report it all.
    shutdown::install();
    // Bad input fails before the header is printed.
    produce::check_rate(args.rate)?;
    let mut generator = WeatherGenerator::for_cities(&args.cities, args.seed)?;
    // Quiet: no header and no rows; failures and the summary still go to stderr.
    let rows = (!args.quiet).then(|| RowPrinter::new(&DELIVERY_COLUMNS, args.json));
    // A burst's reports are served a thousand at a time: so are their rows.
    // Paced ones go out about every 10 ms at most: one row at a time up to 100
    // readings a second, each shown as it lands.
    let rows_per_batch = args
        .rate
        .map_or(1_000, |rate| ((rate / 100.0) as usize).clamp(1, 1_000));
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
                let Ok(delivery) = report else {
                    return;
                };
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
    // A stop or an undelivered reading matters more than a closed stdout.
    let delivered = result?;
    printed.transpose()?;
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

/// Transparent huge pages off for this process (not inherited by anything:
/// `produce` starts no program). mimalloc asks the kernel for them
/// (`MADV_HUGEPAGE`), and the first touch of each 2 MB page zeroes all of it,
/// however little the program then uses: perf put that zeroing at a fifth of
/// the sending thread on the project's 2-core virtual machine. Without it,
/// `produce --quiet` of 1,000,000 readings ran at 0.89x kcat's speed instead of
/// 0.85x, in the same runs (docs/performance.md, session 11).
fn small_pages_only() {
    #[cfg(target_os = "linux")]
    // SAFETY: takes plain integers and touches no memory of this program. A
    // kernel without the option refuses it, which changes nothing.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
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
    /// Taken when joined: early if the thread ended (panicked) mid-run.
    printer: Option<ScopedJoinHandle<'scope, std::io::Result<()>>>,
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
            printer: Some(printer),
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
        if self.full.send(full).is_err() {
            // Only a panic ends the printing thread early: pass it on now,
            // rather than send the rest of the count with nothing printed.
            let _ = join_printer(&mut self.printer);
        }
    }

    /// Hands over what is left and waits until it is printed; returns the
    /// first write that failed, if any.
    fn finish(mut self) -> std::io::Result<()> {
        if !self.batch.reports.is_empty() {
            self.hand_over();
        }
        let RowsThread {
            full, mut printer, ..
        } = self;
        // No more batches: the printing thread's loop ends.
        drop(full);
        join_printer(&mut printer)
    }
}

/// Waits for the printing thread (unless already joined) and passes its panic
/// on; returns the first write that failed, if any.
fn join_printer(
    printer: &mut Option<ScopedJoinHandle<'_, std::io::Result<()>>>,
) -> std::io::Result<()> {
    match printer.take().map(ScopedJoinHandle::join) {
        Some(Ok(printed)) => printed,
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        None => Ok(()),
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
