//! `kafka-lab bench`: throughput and latency, with peers on the same broker.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use kafka_lab::bench::{self, BenchOptions, BenchPlan, Progress};
use kafka_lab::config::KafkaSettings;

use super::print;
use crate::args::BenchArgs;

pub fn run(settings: &KafkaSettings, args: &BenchArgs) -> anyhow::Result<()> {
    let mut plan = match &args.topic {
        Some(topic) => BenchPlan::on_new_topic(1).with_topic(topic),
        None => BenchPlan::on_new_topic(args.partitions),
    };
    plan.options = BenchOptions {
        messages: args.messages,
        latency_size: args.size,
        latency_rate: args.latency_rate,
        latency_duration: Duration::from_secs(args.latency_seconds),
        ..plan.options
    };
    plan.kcat = args.compare_kcat;
    if args.compare_python {
        plan.python = Some(args.python.clone().unwrap_or_else(default_python));
    }
    let mut bar = ProgressBar::default();
    let report = bench::run_plan(settings, &plan, &mut |p| bar.show(p))?;
    print(&report, args.json)
}

/// The Python with confluent-kafka: `$KAFKA_LAB_PYTHON`, else the venv
/// scripts/setup.sh makes, else `python3`.
fn default_python() -> PathBuf {
    if let Some(python) = std::env::var_os("KAFKA_LAB_PYTHON") {
        return PathBuf::from(python);
    }
    let cache = std::env::var_os("KAFKA_LAB_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/kafka-lab"))
        });
    cache
        .map(|cache| cache.join("venv/bin/python"))
        .filter(|python| python.is_file())
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// Bench progress on stderr: one line per phase, and a bar redrawn in place on
/// a terminal (nothing but the phases when stderr is a file or a pipe).
#[derive(Default)]
struct ProgressBar {
    drawn: bool,
}

impl ProgressBar {
    fn show(&mut self, progress: Progress<'_>) {
        use std::io::IsTerminal;
        let mut err = std::io::stderr().lock();
        match progress {
            Progress::Phase(text) => {
                if self.drawn {
                    let _ = writeln!(err);
                    self.drawn = false;
                }
                let _ = writeln!(err, "{text}");
            }
            Progress::Step { done, total } if err.is_terminal() && total > 0 => {
                let filled = done * 40 / total;
                let _ = write!(
                    err,
                    "\r[{}{}] {:>3}% {done}/{total}",
                    "#".repeat(filled),
                    ".".repeat(40 - filled),
                    done * 100 / total
                );
                let _ = err.flush();
                self.drawn = true;
            }
            Progress::Step { .. } => {}
        }
    }
}
