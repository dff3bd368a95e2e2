//! `kafka-lab`: the lab's command line. A thin layer over the `kafka_lab`
//! library: [`args`] parses, `main` dispatches to one module per command in
//! `cmd/`, and each of those calls the library and prints.
//!
//! Exit codes: 0 success, 1 runtime failure (broker, timeout), 2 bad usage or config,
//! 130/143 for a `produce` that Ctrl-C/SIGTERM stopped before its count.

mod args;
mod cmd;
mod debug_log;

use clap::Parser;

use args::{Cli, Command};

/// mimalloc instead of the system allocator. `produce` allocates and frees per
/// message: the reading, its report, and librdkafka's own copy of the message,
/// in C. With glibc's malloc that took a fifth of the sending thread's time
/// (perf, 400,000 readings on the mock, when the reports were freed on a thread
/// of their own), so the crate's `override` feature makes mimalloc the
/// program's `malloc` and `free` too (this binary only: the library and the
/// notebooks keep the system's): `produce --quiet` of 1,000,000 readings went
/// from 1.30 s to 0.98 s (docs/performance.md, session 9).
///
/// Its 2.x line (the crate's `v2` feature), not 3.x: in 15 rounds alternated
/// with kcat (1,000,000 readings), a `produce --quiet` with 3.x peaked at a
/// median 30 MB (70 MB in its largest run) against 26 MB (32 MB) with 2.x, and
/// took 4,204 page faults (median) against 3,589: each page touched for the
/// first time is a fault, and costs CPU time (docs/performance.md, session 16).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli) {
        report(&error);
        let code = error
            .downcast_ref::<kafka_lab::Error>()
            .map_or(1, kafka_lab::Error::exit_code);
        std::process::exit(code);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.connection.settings()?;
    debug_log::install_if_debugging(&settings);
    match cli.command {
        Command::Broker(args) => cmd::broker::run(&args),
        Command::Topics { action } => cmd::topics::run(&settings, action),
        Command::Produce(args) => cmd::produce::run(&settings, &args),
        Command::Consume(args) => cmd::consume::run(&settings, &args),
        Command::Offsets(args) => cmd::offsets::run(&settings, &args),
        Command::Process(options) => cmd::process::run(&settings, &options),
        Command::Bench(args) => cmd::bench::run(&settings, &args),
        Command::Lab(args) => cmd::lab::run(&settings, &args),
    }
}

/// Prints an error, each undelivered reading, and the flag to fix a setting.
fn report(error: &anyhow::Error) {
    let library_error = error.downcast_ref::<kafka_lab::Error>();
    if let Some(
        kafka_lab::Error::Delivery { undelivered, .. }
        | kafka_lab::Error::Interrupted { undelivered, .. }
        | kafka_lab::Error::SendsStopped { undelivered, .. },
    ) = library_error
    {
        for reading in undelivered {
            eprintln!("not delivered: {reading}");
        }
    }
    eprintln!("error: {error:#}");
    // A producer run that a failed send stopped: the hint is the send's.
    let hinted = match library_error {
        Some(kafka_lab::Error::SendsStopped { cause, .. }) => Some(&**cause),
        other => other,
    };
    match hinted {
        Some(kafka_lab::Error::Config { setting, .. }) => {
            eprintln!("hint: set the {setting} with {}", args::flag(*setting));
        }
        Some(kafka_lab::Error::UnknownTopic { topic, .. }) => {
            eprintln!(
                "hint: kafka-lab topics create {topic} (the mock engine cannot create topics \
                 later: start it with kafka-lab broker --engine mock --topic {topic}:1)"
            );
        }
        Some(kafka_lab::Error::TopicExists { topic, .. }) => {
            eprintln!("hint: kafka-lab topics describe {topic}, or create with --if-not-exists");
        }
        _ => {}
    }
}
