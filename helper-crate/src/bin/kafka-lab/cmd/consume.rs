//! `kafka-lab consume`: readings in, printed as they arrive, appended to the CSV log.

use std::time::Duration;

use anyhow::Context;
use kafka_lab::config::KafkaSettings;
use kafka_lab::consume::{self, ConsumeOptions, WeatherConsumer, RECORD_COLUMNS};
use kafka_lab::csv_log::CsvLog;
use kafka_lab::shutdown;

use super::RowPrinter;
use crate::args::ConsumeArgs;

pub fn run(settings: &KafkaSettings, args: &ConsumeArgs) -> anyhow::Result<()> {
    shutdown::install();
    // The consumer first: bad settings or a missing topic fail before the CSV is touched.
    let mut consumer = WeatherConsumer::new(settings, options(args))?;
    eprintln!(
        "consuming '{}' from {} in {}",
        args.topic,
        args.from,
        consumer
            .group_id()
            .map_or("no group".to_string(), |g| format!("group {g}"))
    );
    let mut csv = if args.no_csv {
        None
    } else {
        Some(open_csv(args)?)
    };

    let mut rows = RowPrinter::new(&RECORD_COLUMNS, args.json);
    let mut print_batch = |records: &[consume::ConsumedRecord]| {
        records.iter().for_each(|record| rows.print(record));
        rows.flush();
    };
    let result = consumer.run(csv.as_mut(), &mut print_batch);
    rows.finish()
        .context("writing the readings to standard output")?;
    // A read that failed still says what it read, wrote and committed first.
    let (report, error) = match result {
        Ok(report) => (Some(report), None),
        Err(error) => (consumer.take_unfinished(), Some(error)),
    };
    for event in consumer.take_events() {
        eprintln!("group event: {event}");
    }
    if let Some(report) = &report {
        print_report(report);
    }
    if let Some(csv) = &csv {
        eprintln!("{} now holds {} rows", csv.path().display(), csv.len());
    }
    match error {
        Some(error) => Err(anyhow::Error::new(error).context("consuming")),
        None => Ok(()),
    }
}

/// The run's group events, poison pills and summary, on stderr.
fn print_report(report: &consume::ConsumeReport) {
    for event in &report.events {
        eprintln!("group event: {event}");
    }
    for pill in &report.poison {
        eprintln!(
            "poison pill skipped at {}[{}]@{}: {} [{}]",
            pill.topic, pill.partition, pill.offset, pill.reason, pill.first_bytes
        );
    }
    eprintln!("{}", report.summary());
}

/// The read the flags ask for.
fn options(args: &ConsumeArgs) -> ConsumeOptions {
    let mut options = ConsumeOptions {
        // Rows are printed and written as they arrive; the report need not keep
        // them, nor ask for the positions at the end, which are not printed.
        keep_records: false,
        positions_at_end: false,
        ..ConsumeOptions::new(&args.topic)
            .from(args.from)
            .max(args.max)
            .timeout(Duration::from_millis(args.timeout_ms))
            .batch_size(args.batch as usize)
    };
    if !args.no_group {
        let group = args
            .group
            .clone()
            .unwrap_or_else(|| consume::fresh_group_id("consume"));
        options = options.group(group);
    }
    if args.commit {
        options = options.commit(true);
    }
    if let Some(partition) = args.partition {
        options = options.partition(partition);
    }
    if args.follow {
        options = options.follow();
    }
    if let Some(topic) = &args.dead_letter {
        options = options.dead_letter(topic);
    }
    options
}

/// The CSV log, saying so when it cut off a partial last line.
fn open_csv(args: &ConsumeArgs) -> anyhow::Result<CsvLog> {
    let log = CsvLog::open(&args.csv)?;
    if log.truncated_bytes() > 0 {
        eprintln!(
            "{}: removed a partial last line ({} bytes) left by an interrupted run",
            args.csv.display(),
            log.truncated_bytes()
        );
    }
    Ok(log)
}
