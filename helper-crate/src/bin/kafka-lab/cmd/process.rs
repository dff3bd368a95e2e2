//! `kafka-lab process`: a group member with a commit strategy, one JSON line per
//! processed reading; `--crash-after N` makes it die mid-batch (chapter 07).

use std::io::Write;

use kafka_lab::config::KafkaSettings;
use kafka_lab::delivery::{self, ProcessOptions};

pub fn run(settings: &KafkaSettings, options: &ProcessOptions) -> anyhow::Result<()> {
    let mut processed = 0;
    let report = delivery::process(settings, options, &mut |record| {
        let mut out = std::io::stdout().lock();
        // A reading counts as processed once its line is out of the process.
        let _ = serde_json::to_writer(&mut out, record);
        let _ = writeln!(out);
        let _ = out.flush();
        processed += 1;
        if options.crash_after == Some(processed) {
            eprintln!("kafka-lab process: simulated crash after {processed} reading(s)");
            // exit() runs no destructors: the consumer neither commits nor leaves.
            std::process::exit(delivery::CRASH_EXIT_CODE);
        }
    })?;
    eprintln!(
        "processed {} reading(s), skipped {}, last commits (partition, next offset) {:?}",
        report.processed, report.skipped, report.committed
    );
    Ok(())
}
