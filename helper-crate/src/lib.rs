//! kafka-lab: a hands-on Kafka data streaming lab.
//!
//! A producer sends weather readings `{timestamp, city, temperature}` to a topic;
//! consumers read them back from `earliest` or `latest`, print them and save them
//! to `kafka_log.csv`; along the way the lab shows topics, partitions, offsets and
//! consumer groups at work. Notebooks (evcxr Jupyter kernel) and the `kafka-lab`
//! command line drive the same functions.
//!
//! # Layout
//!
//! Each module teaches one concept, and its doc comment explains it first.
//!
//! | module | concept | notebook chapter | kcat / Kafka CLI |
//! |---|---|---|---|
//! | [`weather`] | messages: key, value, timestamp; the readings | 02 | — |
//! | [`config`] | bootstrap servers, librdkafka properties, secrets | all | `kcat -b -X -F` |
//! | [`client`] | building consumers and producers: the properties that matter | 03, 04 | `kcat -X` |
//! | [`topics`] | topics, partitions, leaders, metadata | 01 | `kcat -L`, `kafka-topics.sh` |
//! | [`produce`] | producing, keys, delivery reports, acks | 02 | `kcat -P` |
//! | [`consume`] | consuming, the poll loop, `auto.offset.reset`, commits | 03, 04 | `kcat -C`, `kcat -G` |
//! | [`record`] | a received message: topic, partition, offset; poison pills | 03 | `kcat -C -f` |
//! | [`offsets`] | watermarks, committed offsets, lag, moving a group | 05 | `kafka-consumer-groups.sh --describe`, `--reset-offsets` |
//! | [`groups`] | partitions, keys, group members, rebalances | 06 | `kcat -G`, `kafka-consumer-groups.sh --members` |
//! | [`delivery`] | commit strategies, transactions, exactly once | 07 | `-X isolation.level=read_committed` |
//! | [`csv_log`] | (topic, partition, offset) as a message's identity | 03 | — |
//! | [`lab`] | the lab end to end: earliest vs latest | KafkaDemo, 04 | — |
//! | `analysis` (feature `analysis`) | the saved stream in polars: stats, chart | 08 | — |
//! | [`display`] | tables for the terminal and the notebook | all | — |
//! | [`bench`](mod@bench) | throughput and latency, measured | — | `kafka-producer-perf-test.sh` |
//! | [`broker`] | the embedded broker (nisshi, tansu or librdkafka's mock) | all | `kcat -M` (mock) |
//! | [`shutdown`] | stopping cleanly: finish the batch, flush, commit | — | Ctrl-C |
//! | `net` (internal) | is anything listening at the bootstrap address: down or just slow | — | `nc -z HOST PORT` |
//! | [`error`] | what can go wrong, and what to do about it | — | — |
//!
//! # Scope
//!
//! Every call is synchronous and bounded by a timeout (notebook kernels cannot
//! be interrupted), and every consume by a message count. Async APIs, schema
//! registries and Kafka Streams are deliberately left out.
//!
//! In a notebook, a client (producer, consumer) can be kept in a variable, used
//! in later cells and dropped in any of them: the evcxr kernel builds every cell
//! as its own library, each with its own copy of librdkafka, and the crate
//! destroys each client through the copy that created it
//! ([`client::DroppedByCreator`]).
//!
//! # Example
//!
//! ```no_run
//! use kafka_lab::prelude::*;
//!
//! let settings = KafkaSettings::from_env()?;
//! topics::ensure_topic(&settings, "weather", 1)?;
//! let readings = WeatherGenerator::default_cities(42).take_readings(10);
//! let deliveries = produce::produce_readings(&settings, "weather", &readings)?;
//! println!("{deliveries}");
//! let options = ConsumeOptions::new("weather").from(StartFrom::Earliest).group(fresh_group_id("demo"));
//! let report = consume::consume_to_csv(&settings, options, "kafka_log.csv".as_ref())?;
//! println!("{report}");
//! # Ok::<(), kafka_lab::Error>(())
//! ```

#[cfg(feature = "analysis")]
pub mod analysis;
pub mod bench;
pub mod broker;
pub mod client;
pub mod config;
pub mod consume;
pub mod csv_log;
pub mod delivery;
pub mod display;
pub mod error;
pub mod groups;
pub mod lab;
mod net;
pub mod offsets;
pub mod produce;
pub mod record;
pub mod shutdown;
pub mod topics;
pub mod weather;

/// Re-exported so notebooks use the same chrono (timestamps) as the crate.
pub use chrono;
pub use error::{Error, Result};
/// rust-rdkafka, re-exported so notebook cells can name its types without
/// compiling a second copy.
pub use rdkafka;

/// The names a notebook or program usually needs, in one `use`.
pub mod prelude {
    pub use crate::broker::{BrokerHandle, EmbeddedBroker, Engine};
    pub use crate::client::{AutoOffsetReset, ConsumerBuilder, IsolationLevel, KafkaConsumer};
    pub use crate::config::KafkaSettings;
    pub use crate::consume::{
        self, fresh_group_id, Batch, ConsumeOptions, ConsumeReport, StartFrom, WeatherConsumer,
    };
    pub use crate::csv_log::{read_csv_log, rows_table, CsvLog, CsvRow};
    pub use crate::delivery::{self, CommitStrategy, CrashDemos, EosOptions};
    pub use crate::display::{AsTable, Table};
    pub use crate::error::{Error, Result};
    pub use crate::groups::{self, Assignor, GroupRunOptions, OrderCheck, Placements};
    pub use crate::lab::{self, Comparison, ComparisonRow, LabOptions, LabReport, LatestMemberRun};
    pub use crate::offsets::{self, OffsetsReport};
    pub use crate::produce::{self, Deliveries, WeatherProducer};
    pub use crate::record::{ConsumedRecord, PoisonPill};
    pub use crate::topics;
    pub use crate::weather::{Reading, WeatherGenerator, DEFAULT_CITIES};
    pub use chrono;
    pub use std::time::Duration;
}
