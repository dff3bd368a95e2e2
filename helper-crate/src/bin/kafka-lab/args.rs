//! The command line, typed: every flag parses into the type the library takes,
//! and clap checks the combinations.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use kafka_lab::broker::BrokerArgs;
use kafka_lab::config::KafkaSettings;
use kafka_lab::consume::StartFrom;
use kafka_lab::delivery::ProcessOptions;
use kafka_lab::error::Setting;

#[derive(Parser)]
#[command(
    name = "kafka-lab",
    version,
    about = "Hands-on Kafka: weather producer, consumers, offsets and an embedded broker",
    after_help = "Bootstrap servers: -b, else KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092."
)]
pub struct Cli {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command shares, kcat style.
#[derive(Args)]
pub struct Connection {
    /// Bootstrap servers, host:port[,host:port]
    #[arg(short = 'b', long = "bootstrap", global = true)]
    pub bootstrap: Option<String>,
    /// A librdkafka property, key=value (repeatable)
    #[arg(short = 'X', value_name = "KEY=VALUE", global = true)]
    pub properties: Vec<String>,
    /// A properties file (key=value lines), like kcat -F
    #[arg(short = 'F', value_name = "FILE", global = true)]
    pub config_file: Option<PathBuf>,
    /// How long to wait for the broker before giving up
    #[arg(long, value_name = "MS", default_value_t = 10_000, global = true)]
    pub broker_timeout_ms: u64,
}

impl Connection {
    /// The settings: environment, then -F, then -X, then -b.
    pub fn settings(&self) -> kafka_lab::Result<KafkaSettings> {
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
pub enum Command {
    /// Run the embedded broker in the foreground (Ctrl-C stops it)
    Broker(BrokerArgs),
    /// List, describe, create or delete topics
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
    },
    /// Produce weather readings (key = city), printing each delivery report as it arrives
    Produce(ProduceArgs),
    /// Consume readings, print them and append them to a CSV log
    Consume(ConsumeArgs),
    /// Watermarks, a group's committed offsets and its lag; or move a group's
    /// offsets with --reset-to (a dry run unless --execute)
    Offsets(OffsetsArgs),
    /// Read as a group member with a commit strategy, one JSON line per processed
    /// reading: what a crash does to each strategy (chapter 07)
    Process(ProcessOptions),
    /// Producer and consumer throughput on the paths `produce` and `consume` run,
    /// and produce-to-consume latency
    Bench(BenchArgs),
    /// The whole lab end to end: produce, earliest vs latest, kafka_log.csv
    Lab(LabArgs),
}

#[derive(Subcommand)]
pub enum TopicsAction {
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
    /// Delete a topic and its messages (refused on engines where a delete wipes every topic)
    Delete {
        topic: String,
        /// Delete even on an engine (nisshi, tansu) where deleting one topic deletes
        /// every topic, message and committed offset
        #[arg(long)]
        accept_wiping_the_broker: bool,
    },
}

#[derive(Args)]
pub struct ProduceArgs {
    #[arg(long, default_value = "weather")]
    pub topic: String,
    #[arg(long, default_value_t = 10)]
    pub count: usize,
    /// Comma-separated city names
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "Toronto,Guangzhou,Fuzhou"
    )]
    pub cities: Vec<String>,
    /// Readings per second (as fast as possible when absent)
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Seed for the temperatures
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Delivery reports as JSON lines
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
    /// Print no delivery report, only the summary and the readings that failed
    /// (kcat -P prints none either)
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct ConsumeArgs {
    #[arg(long, default_value = "weather")]
    pub topic: String,
    /// earliest, latest, an offset, or @TIMESTAMP_MS
    #[arg(long, default_value = "earliest")]
    pub from: StartFrom,
    /// Consumer group [default: a fresh kafka-lab-consume-... group]
    #[arg(long, conflicts_with = "no_group")]
    pub group: Option<String>,
    /// Read without a group (assign all partitions, commit nothing)
    #[arg(long)]
    pub no_group: bool,
    /// Only this partition
    #[arg(long)]
    pub partition: Option<i32>,
    /// CSV log to append to
    #[arg(long, default_value = "kafka_log.csv", conflicts_with = "no_csv")]
    pub csv: PathBuf,
    /// Do not write a CSV log
    #[arg(long)]
    pub no_csv: bool,
    /// Stop after this many messages
    #[arg(long, default_value_t = 1000)]
    pub max: usize,
    /// Stop after this long
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Keep waiting at the end of the partitions (until --max or --timeout-ms)
    #[arg(long)]
    pub follow: bool,
    /// Most messages per batch: each batch is written to the CSV, flushed, then committed
    #[arg(long, default_value_t = kafka_lab::consume::DEFAULT_BATCH_SIZE as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// Commit after seeking to an offset or time (group subscriptions always commit)
    #[arg(long, conflicts_with = "no_group")]
    pub commit: bool,
    /// Send poison pills (messages that are not readings) to this topic
    #[arg(long, value_name = "TOPIC")]
    pub dead_letter: Option<String>,
    /// One JSON line per reading (summary on stderr)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct OffsetsArgs {
    #[arg(long, default_value = "weather")]
    pub topic: String,
    #[arg(long)]
    pub group: Option<String>,
    /// Move the group's committed offsets: earliest, latest, an offset, or @TIMESTAMP_MS
    #[arg(long, value_name = "WHERE", requires = "group")]
    pub reset_to: Option<StartFrom>,
    /// Commit the reset (without it, only show what would change)
    #[arg(long, requires = "reset_to")]
    pub execute: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Topic to use [default: a new kafka-lab-bench-<time> topic, deleted after]
    #[arg(long)]
    pub topic: Option<String>,
    /// Readings to produce and consume
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: usize,
    /// Bytes per message of the latency run (at least 16: it carries its send time)
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Partitions of the new topic
    #[arg(long, default_value_t = 1, conflicts_with = "topic")]
    pub partitions: i32,
    /// Messages per second for the latency run (0 to skip it)
    #[arg(long, default_value_t = 1000)]
    pub latency_rate: u32,
    /// Seconds of the latency run
    #[arg(long, default_value_t = 10)]
    pub latency_seconds: u64,
    /// Also run kcat -P / kcat -G on the same broker and print the ratios
    /// (Debian's kcat talks to the mock engine only)
    #[arg(long)]
    pub compare_kcat: bool,
    /// Also run the Python confluent-kafka client on the same broker and print the ratios
    #[arg(long)]
    pub compare_python: bool,
    /// The Python for --compare-python [default: $KAFKA_LAB_PYTHON, else
    /// ~/.cache/kafka-lab/venv/bin/python, else python3]
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct LabArgs {
    #[arg(long, default_value = "weather")]
    pub topic: String,
    #[arg(long, default_value_t = 10)]
    pub count: usize,
    #[arg(long, default_value_t = 3)]
    pub more: usize,
    #[arg(long, default_value = "kafka_log.csv")]
    pub csv: PathBuf,
}

/// The flag that sets a setting the library names, for error hints. Every
/// setting has one here, so a new setting cannot go without its flag.
pub fn flag(setting: Setting) -> &'static str {
    match setting {
        Setting::Connection => "-b, -X or -F",
        Setting::PropertiesFile => "-F (or KAFKA_LAB_CONFIG)",
        Setting::Topic => "--topic",
        Setting::Partitions => "--partition / --partitions",
        Setting::StartFrom => "--from (or --reset-to)",
        Setting::MaxMessages => "--max",
        Setting::BatchSize => "--batch",
        Setting::Group => "--group",
        Setting::Commit => "--commit (needs a group: drop --no-group)",
        Setting::CommitStrategy => "--strategy",
        Setting::CsvLog => "--csv",
        Setting::Cities => "--cities",
        Setting::Rate => "--rate",
        Setting::Engine => "--engine (or KAFKA_LAB_ENGINE)",
        Setting::Listen => "--listen",
        Setting::BrokerTopic => "--topic NAME:PARTITIONS",
        Setting::LabInput => "--topic",
        Setting::WipeConsent => "--accept-wiping-the-broker",
    }
}
