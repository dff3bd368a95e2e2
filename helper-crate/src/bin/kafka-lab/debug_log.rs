//! librdkafka's own log on stderr when `-X debug=...` asks for it, as `kcat -d`
//! prints it.
//!
//! rust-rdkafka hands each librdkafka log line to the `log` crate (target
//! `librdkafka`); without a logger installed they are dropped, so `-X debug=cgrp`
//! would print nothing. Each line gets the seconds since the command started:
//! enough to see where a group join or a fetch spends its time.

use std::io::Write;
use std::time::Instant;

struct StderrLog {
    started: Instant,
}

impl log::Log for StderrLog {
    /// librdkafka's lines only: rust-rdkafka's own trace lines (one per
    /// message) would bury them.
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.target() == "librdkafka"
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let seconds = self.started.elapsed().as_secs_f64();
        // A log line that cannot be written is not worth failing the command.
        let _ = writeln!(
            std::io::stderr().lock(),
            "{seconds:9.3} {:<5} {}",
            record.level(),
            record.args()
        );
    }

    fn flush(&self) {}
}

/// Installs the logger when the librdkafka property `debug` is set.
pub fn install_if_debugging(settings: &kafka_lab::config::KafkaSettings) {
    if !settings.properties().contains_key("debug") {
        return;
    }
    let logger = Box::leak(Box::new(StderrLog {
        started: Instant::now(),
    }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}
