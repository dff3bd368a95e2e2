//! `kafka-lab`: the lab's command line. A thin layer over the `kafka_lab`
//! library: it parses arguments, calls one function per verb and prints.
//!
//! Exit codes: 0 success, 1 runtime failure (broker, timeout), 2 bad usage or config.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use kafka_lab::bench::{self, BenchOptions};
use kafka_lab::broker::{BrokerConfig, BrokerHandle, EmbeddedBroker, Engine, MockBroker};
use kafka_lab::config::KafkaSettings;
use kafka_lab::consume::{self, ConsumeOptions, StartFrom, WeatherConsumer};
use kafka_lab::csv_log::CsvLog;
use kafka_lab::delivery::{self, ProcessOptions};
use kafka_lab::lab::{self, LabOptions};
use kafka_lab::shutdown::Shutdown;
use kafka_lab::weather::WeatherGenerator;
use kafka_lab::{offsets, produce, topics};

#[derive(Parser)]
#[command(
    name = "kafka-lab",
    version,
    about = "Hands-on Kafka: weather producer, consumers, offsets and an embedded broker",
    after_help = "Bootstrap servers: -b, else KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092."
)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

/// Flags every command shares, kcat style.
#[derive(Args)]
struct Connection {
    /// Bootstrap servers, host:port[,host:port]
    #[arg(short = 'b', long = "bootstrap", global = true)]
    bootstrap: Option<String>,
    /// A librdkafka property, key=value (repeatable)
    #[arg(short = 'X', value_name = "KEY=VALUE", global = true)]
    properties: Vec<String>,
    /// A properties file (key=value lines), like kcat -F
    #[arg(short = 'F', value_name = "FILE", global = true)]
    config_file: Option<PathBuf>,
    /// How long to wait for the broker before giving up
    #[arg(long, value_name = "MS", default_value_t = 10_000, global = true)]
    broker_timeout_ms: u64,
}

impl Connection {
    fn settings(&self) -> kafka_lab::Result<KafkaSettings> {
        let mut settings = KafkaSettings::from_env()?;
        if let Some(file) = &self.config_file {
            settings.load_properties_file(file)?;
        }
        for pair in &self.properties {
            settings.set_pair(pair)?;
        }
        if let Some(bootstrap) = &self.bootstrap {
            settings = settings.with_bootstrap(bootstrap.clone());
        }
        settings.validate()?;
        Ok(settings.with_timeout(Duration::from_millis(self.broker_timeout_ms)))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the embedded broker in the foreground (Ctrl-C stops it)
    Broker {
        /// tansu (SQLite storage, default when installed) or mock (librdkafka, in memory)
        #[arg(long)]
        engine: Option<String>,
        /// Address to listen on and advertise
        #[arg(long, default_value = "127.0.0.1:9092")]
        listen: SocketAddr,
        /// Data folder [default: .kafka-lab/ENGINE-PORT]
        #[arg(long)]
        data: Option<PathBuf>,
        /// Topic to create at start, NAME:PARTITIONS (repeatable; the mock engine
        /// cannot create topics later)
        #[arg(long = "topic", value_name = "NAME:PARTITIONS")]
        topics: Vec<String>,
    },
    /// List, describe, create or delete topics
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
    },
    /// Produce weather readings (key = city)
    Produce {
        #[arg(long, default_value = "weather")]
        topic: String,
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Comma-separated city names
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "Toronto,Guangzhou,Fuzhou"
        )]
        cities: Vec<String>,
        /// Readings per second (as fast as possible when absent)
        #[arg(long)]
        rate: Option<f64>,
        /// Seed for the temperatures
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Delivery reports as JSON
        #[arg(long)]
        json: bool,
    },
    /// Consume readings, print them and append them to a CSV log
    Consume(ConsumeArgs),
    /// Watermarks, a group's committed offsets and its lag; or move a group's
    /// offsets with --reset-to (a dry run unless --execute)
    Offsets {
        #[arg(long, default_value = "weather")]
        topic: String,
        #[arg(long)]
        group: Option<String>,
        /// Move the group's committed offsets: earliest, latest, an offset, or @TIMESTAMP_MS
        #[arg(long, value_name = "WHERE", requires = "group")]
        reset_to: Option<String>,
        /// Commit the reset (without it, only show what would change)
        #[arg(long, requires = "reset_to")]
        execute: bool,
        #[arg(long)]
        json: bool,
    },
    /// Read as a group member with a commit strategy, one JSON line per processed
    /// reading: what a crash does to each strategy (chapter 07)
    Process {
        #[arg(long, default_value = "weather")]
        topic: String,
        #[arg(long)]
        group: String,
        /// commit-before (at most once), commit-after (at least once) or
        /// store-after (offsets stored after processing, auto-committed)
        #[arg(long, default_value = "commit-after")]
        strategy: String,
        /// Messages per batch
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        batch: u64,
        /// Simulated work per reading, in milliseconds
        #[arg(long, default_value_t = 0)]
        work_ms: u64,
        /// Auto-commit period for store-after, in milliseconds
        #[arg(long, default_value_t = 1000)]
        auto_commit_ms: u64,
        /// Exit at once (status 86: no commit, no LeaveGroup) after processing N readings
        #[arg(long, value_name = "N")]
        crash_after: Option<usize>,
        /// Stop after this long
        #[arg(long, default_value_t = 30_000)]
        timeout_ms: u64,
    },
    /// Producer and consumer throughput, and produce-to-consume latency
    Bench {
        /// Topic to use [default: a new kafka-lab-bench-<time> topic, deleted after]
        #[arg(long)]
        topic: Option<String>,
        #[arg(long, default_value_t = 1_000_000)]
        messages: usize,
        /// Bytes per message (at least 16: the latency run stamps the send time)
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// Partitions of the new topic
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Messages per second for the latency run (0 to skip it)
        #[arg(long, default_value_t = 1000)]
        latency_rate: u32,
        /// Seconds of the latency run
        #[arg(long, default_value_t = 10)]
        latency_seconds: u64,
        /// Also run kcat -P / kcat -C on the same broker and print the ratios
        /// (Debian's kcat talks to the mock engine only)
        #[arg(long)]
        compare_kcat: bool,
        /// Also run the Python confluent-kafka client on the same broker and print the ratios
        #[arg(long)]
        compare_python: bool,
        /// The Python for --compare-python [default: $KAFKA_LAB_PYTHON, else
        /// ~/.cache/kafka-lab/venv/bin/python, else python3]
        #[arg(long, value_name = "PATH")]
        python: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// The whole lab end to end: produce, earliest vs latest, kafka_log.csv
    Lab {
        #[arg(long, default_value = "weather")]
        topic: String,
        #[arg(long, default_value_t = 10)]
        count: usize,
        #[arg(long, default_value_t = 3)]
        more: usize,
        #[arg(long, default_value = "kafka_log.csv")]
        csv: PathBuf,
    },
}

#[derive(Subcommand)]
enum TopicsAction {
    /// All topics with partitions, leaders and watermarks (kcat -L)
    List {
        #[arg(long)]
        json: bool,
    },
    /// One topic's partitions, leaders, replicas and watermarks
    Describe {
        topic: String,
        #[arg(long)]
        json: bool,
    },
    /// Create a topic
    Create {
        topic: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Succeed if it exists already
        #[arg(long)]
        if_not_exists: bool,
    },
    /// Delete a topic and its messages
    Delete { topic: String },
}

#[derive(Args)]
struct ConsumeArgs {
    #[arg(long, default_value = "weather")]
    topic: String,
    /// earliest, latest, an offset, or @TIMESTAMP_MS
    #[arg(long, default_value = "earliest")]
    from: String,
    /// Consumer group [default: a fresh kafka-lab-consume-... group]
    #[arg(long, conflicts_with = "no_group")]
    group: Option<String>,
    /// Read without a group (assign all partitions, commit nothing)
    #[arg(long)]
    no_group: bool,
    /// Only this partition
    #[arg(long)]
    partition: Option<i32>,
    /// CSV log to append to
    #[arg(long, default_value = "kafka_log.csv", conflicts_with = "no_csv")]
    csv: PathBuf,
    /// Do not write a CSV log
    #[arg(long)]
    no_csv: bool,
    /// Stop after this many messages
    #[arg(long, default_value_t = 1000)]
    max: usize,
    /// Stop after this long
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Keep waiting at the end of the partitions (until --max or --timeout-ms)
    #[arg(long)]
    follow: bool,
    /// Messages per batch: each batch is written to the CSV, flushed, then committed
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// Commit after seeking to an offset or time (group subscriptions always commit)
    #[arg(long)]
    commit: bool,
    /// Send poison pills (messages that are not readings) to this topic
    #[arg(long, value_name = "TOPIC")]
    dead_letter: Option<String>,
    /// One JSON line per reading (summary on stderr)
    #[arg(long)]
    json: bool,
}

fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli) {
        if let Some(kafka_lab::Error::Delivery { undelivered, .. }) = error.downcast_ref() {
            for reading in undelivered {
                eprintln!("not delivered: {reading}");
            }
        }
        eprintln!("error: {error:#}");
        let code = error
            .downcast_ref::<kafka_lab::Error>()
            .map_or(1, kafka_lab::Error::exit_code);
        std::process::exit(code);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.connection.settings()?;
    match cli.command {
        Command::Broker {
            engine,
            listen,
            data,
            topics,
        } => run_broker(engine, listen, data, &topics),
        Command::Topics { action } => run_topics(&settings, action),
        Command::Produce {
            topic,
            count,
            cities,
            rate,
            seed,
            json,
        } => {
            let mut generator = WeatherGenerator::new(&cities, seed);
            let deliveries =
                produce::produce_weather(&settings, &topic, &mut generator, count, rate)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&deliveries)?);
            } else {
                print!("{deliveries}");
            }
            Ok(())
        }
        Command::Consume(args) => run_consume(&settings, args),
        Command::Offsets {
            topic,
            group,
            reset_to: Some(to),
            execute,
            json,
        } => {
            let group = group.context("--reset-to needs --group")?;
            let reset = offsets::reset_offsets(&settings, &group, &topic, to.parse()?, execute)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reset)?);
            } else {
                print!("{reset}");
            }
            Ok(())
        }
        Command::Offsets {
            topic, group, json, ..
        } => {
            let report = offsets::describe_offsets(&settings, &topic, group.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report.partitions)?);
            } else {
                print!("{report}");
            }
            Ok(())
        }
        Command::Process {
            topic,
            group,
            strategy,
            batch,
            work_ms,
            auto_commit_ms,
            crash_after,
            timeout_ms,
        } => {
            let options = ProcessOptions {
                batch: batch as usize,
                work: Duration::from_millis(work_ms),
                auto_commit_interval: Duration::from_millis(auto_commit_ms),
                timeout: Duration::from_millis(timeout_ms),
                ..ProcessOptions::new(topic, group, strategy.parse()?)
            };
            let mut processed = 0;
            let report = delivery::process(&settings, &options, &mut |record| {
                let mut out = std::io::stdout().lock();
                // A reading counts as processed once its line is out of the process.
                let _ = serde_json::to_writer(&mut out, record);
                let _ = writeln!(out);
                let _ = out.flush();
                processed += 1;
                if crash_after == Some(processed) {
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
        Command::Lab {
            topic,
            count,
            more,
            csv,
        } => run_lab(&settings, topic, count, more, csv),
        Command::Bench {
            topic,
            messages,
            size,
            partitions,
            latency_rate,
            latency_seconds,
            compare_kcat,
            compare_python,
            python,
            json,
        } => {
            let created = topic.is_none();
            let topic = topic.unwrap_or_else(|| {
                format!(
                    "kafka-lab-bench-{}",
                    chrono::Utc::now().format("%Y%m%d%H%M%S")
                )
            });
            if created {
                topics::create_topic(&settings, &topic, partitions)?;
            }
            let options = BenchOptions {
                messages,
                size,
                latency_rate,
                latency_duration: Duration::from_secs(latency_seconds),
                ..BenchOptions::new(&topic)
            };
            let mut bar = ProgressBar::default();
            let report = bench::run_bench(&settings, &options, &mut |p| bar.show(p)).and_then(
                |mut report| {
                    if compare_kcat {
                        bar.show(bench::Progress::Phase(&format!(
                            "kcat: the same {messages} messages"
                        )));
                        report.peers.push(bench::kcat_bench(&settings, &options)?);
                    }
                    if compare_python {
                        let python = python.unwrap_or_else(default_python);
                        bar.show(bench::Progress::Phase(&format!(
                            "confluent-kafka ({}): the same {messages} messages",
                            python.display()
                        )));
                        report
                            .peers
                            .push(bench::python_bench(&settings, &options, &python)?);
                    }
                    Ok(report)
                },
            );
            if created {
                // Best effort: the figures matter more than the clean-up.
                let _ = topics::delete_topic(&settings, &topic);
            }
            let report = report?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            Ok(())
        }
    }
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
    fn show(&mut self, progress: bench::Progress<'_>) {
        use std::io::IsTerminal;
        let mut err = std::io::stderr().lock();
        match progress {
            bench::Progress::Phase(text) => {
                if self.drawn {
                    let _ = writeln!(err);
                    self.drawn = false;
                }
                let _ = writeln!(err, "{text}");
            }
            bench::Progress::Step { done, total } if err.is_terminal() && total > 0 => {
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
            bench::Progress::Step { .. } => {}
        }
    }
}

fn run_broker(
    engine: Option<String>,
    listen: SocketAddr,
    data: Option<PathBuf>,
    topic_specs: &[String],
) -> anyhow::Result<()> {
    let engine: Engine = match engine {
        Some(name) => name.parse()?,
        None => Engine::from_env_or_installed()?,
    };
    let mut config = BrokerConfig::new(engine, listen);
    if let Some(dir) = data {
        config = config.data_dir(dir);
    }
    for spec in topic_specs {
        let (name, partitions) = spec.split_once(':').unwrap_or((spec.as_str(), "1"));
        let partitions: i32 = partitions.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
            kafka_lab::Error::Config(format!(
                "bad --topic '{spec}': expected NAME:PARTITIONS, e.g. weather:3"
            ))
        })?;
        config = config.topic(name, partitions);
    }
    let shutdown = Shutdown::install();
    match engine {
        Engine::Mock => {
            let mock = MockBroker::new(listen, &config.topics)?;
            eprintln!(
                "kafka-lab broker: engine mock (librdkafka mock cluster, in memory) listening on {listen}; \
                 topics: {}. Ctrl-C stops it.",
                describe_topics(&config.topics)
            );
            mock.serve(shutdown)?;
        }
        Engine::Tansu => {
            config.die_with_parent = true;
            let mut broker = EmbeddedBroker::start(config)?;
            eprintln!(
                "kafka-lab broker: engine tansu (pid {}, SQLite in {}) listening on {}; topics: {}. \
                 Ctrl-C stops it.",
                broker.pid(),
                broker.config().data_dir.display(),
                broker.bootstrap(),
                describe_topics(&broker.config().topics)
            );
            broker.wait(shutdown)?;
        }
    }
    eprintln!("kafka-lab broker: stopped");
    Ok(())
}

fn describe_topics(topics: &[(String, i32)]) -> String {
    if topics.is_empty() {
        return "none yet".to_string();
    }
    topics
        .iter()
        .map(|(name, partitions)| format!("{name} ({partitions} partitions)"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn run_topics(settings: &KafkaSettings, action: TopicsAction) -> anyhow::Result<()> {
    match action {
        TopicsAction::List { json } => {
            let metadata = topics::cluster_metadata(settings, None, true)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&metadata)?);
            } else {
                print!("{metadata}");
            }
        }
        TopicsAction::Describe { topic, json } => {
            let info = topics::describe_topic(settings, &topic)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print!("{info}");
            }
        }
        TopicsAction::Create {
            topic,
            partitions,
            if_not_exists,
        } => {
            if if_not_exists {
                let (info, created) = topics::ensure_topic(settings, &topic, partitions)?;
                let verb = if created {
                    "created"
                } else {
                    "already existed"
                };
                println!(
                    "topic '{topic}' {verb} with {} partition(s)",
                    info.partitions.len()
                );
            } else {
                let info = topics::create_topic(settings, &topic, partitions)?;
                println!(
                    "topic '{topic}' created with {} partition(s)",
                    info.partitions.len()
                );
            }
        }
        TopicsAction::Delete { topic } => {
            topics::delete_topic(settings, &topic)?;
            println!("topic '{topic}' deleted");
        }
    }
    Ok(())
}

fn run_consume(settings: &KafkaSettings, args: ConsumeArgs) -> anyhow::Result<()> {
    let from: StartFrom = args.from.parse()?;
    // Rows are printed and written as they arrive; the report need not keep them.
    let mut options = ConsumeOptions {
        keep_records: false,
        ..ConsumeOptions::new(&args.topic)
            .from(from)
            .max(args.max)
            .timeout(Duration::from_millis(args.timeout_ms))
    };
    if !args.no_group {
        let group = args
            .group
            .clone()
            .unwrap_or_else(|| consume::fresh_group_id("consume"));
        options = options.group(group);
        if args.commit {
            options = options.commit(true);
        }
    } else if args.commit {
        return Err(
            kafka_lab::Error::Config("--commit needs a group (drop --no-group)".into()).into(),
        );
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
    Shutdown::install();

    // The consumer first: bad settings or a missing topic fail before the CSV is touched.
    let mut consumer = WeatherConsumer::new(settings, options)?;
    eprintln!(
        "consuming '{}' from {} in {}",
        args.topic,
        from,
        consumer
            .group_id()
            .map_or("no group".to_string(), |g| format!("group {g}"))
    );
    let mut csv = if args.no_csv {
        None
    } else {
        let log = CsvLog::open(&args.csv)?;
        if log.truncated_bytes() > 0 {
            eprintln!(
                "{}: removed a partial last line ({} bytes) left by an interrupted run",
                args.csv.display(),
                log.truncated_bytes()
            );
        }
        Some(log)
    };

    let mut stdout = std::io::stdout().lock();
    if !args.json {
        let header = consume::record_table(&[]).headers;
        writeln!(stdout, "{}", streamed_row(&header))?;
    }
    let mut print_row = |record: &consume::ConsumedRecord| {
        let line = if args.json {
            serde_json::to_string(record).unwrap_or_default()
        } else {
            streamed_row(&consume::record_row(record))
        };
        let _ = writeln!(stdout, "{line}");
    };
    let report = consumer
        .run(csv.as_mut(), args.batch as usize, &mut print_row)
        .context("consuming")?;
    for event in consumer.take_events().iter().chain(&report.events) {
        eprintln!("group event: {event}");
    }
    for pill in &report.poison {
        eprintln!(
            "poison pill skipped at {}[{}]@{}: {} [{}]",
            pill.topic, pill.partition, pill.offset, pill.reason, pill.first_bytes
        );
    }
    eprintln!("{}", report.summary());
    if let Some(csv) = &csv {
        eprintln!("{} now holds {} rows", csv.path().display(), csv.len());
    }
    Ok(())
}

/// One row of the live consume output, in fixed-width columns (rows are printed
/// as they arrive, so widths cannot adapt to the data).
fn streamed_row(cells: &[String]) -> String {
    let cell = |i: usize| cells.get(i).map(String::as_str).unwrap_or_default();
    format!(
        "{:<12} {:>9} {:>8}  {:<24}  {:<12} {:>11}",
        cell(0),
        cell(1),
        cell(2),
        cell(3),
        cell(4),
        cell(5)
    )
}

fn run_lab(
    settings: &KafkaSettings,
    topic: String,
    count: usize,
    more: usize,
    csv: PathBuf,
) -> anyhow::Result<()> {
    let broker = BrokerHandle::find_or_start(settings)?;
    eprintln!("Broker: {}", broker.describe());
    let options = LabOptions {
        topic,
        count,
        more,
        csv_path: csv,
        ..LabOptions::default()
    };
    let report = lab::run_lab(broker.settings(), &options, &mut |step| eprintln!("{step}"))?;
    println!("{}", report.first_deliveries);
    println!("{}", report.more_deliveries);
    println!("{}", report.earliest_offsets);
    println!("{}", report.latest_offsets);
    println!("{report}");
    let failed = report.failed_checks();
    if !failed.is_empty() {
        anyhow::bail!("the lab's checks failed: {}", failed.join("; "));
    }
    Ok(())
}
