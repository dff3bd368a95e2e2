//! Which engine, where, with which topics: and the `broker` command's arguments.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::find_engine_binary;
use crate::error::{Error, Result, Setting};

/// Which broker implementation to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// nisshi 0.7 (tansu renamed), a broker process with SQLite storage: the
    /// default, because a crashed consumer does not freeze its group there.
    Nisshi,
    /// tansu 0.6, the same broker before its rename, SQLite storage.
    Tansu,
    /// librdkafka's in-memory mock cluster.
    Mock,
}

impl Engine {
    /// The engines that run as a broker program of their own, in the order
    /// they are preferred when installed.
    pub const PROGRAMS: [Engine; 2] = [Engine::Nisshi, Engine::Tansu];

    /// `KAFKA_LAB_ENGINE` if set, else the first installed of nisshi and
    /// tansu, else mock (nothing to install).
    pub fn from_env_or_installed() -> Result<Engine> {
        match std::env::var("KAFKA_LAB_ENGINE") {
            Ok(name) if !name.trim().is_empty() => name.parse(),
            _ => Ok(Engine::installed_program().unwrap_or(Engine::Mock)),
        }
    }

    /// The preferred broker program that is installed, if any.
    pub fn installed_program() -> Option<Engine> {
        Engine::PROGRAMS
            .into_iter()
            .find(|engine| find_engine_binary(*engine).is_some())
    }

    /// Whether this engine is a program of its own (nisshi, tansu) that
    /// keeps its data on disk, rather than the in-memory mock.
    pub fn is_program(self) -> bool {
        self != Engine::Mock
    }

    /// The environment variable that points at this engine's binary.
    pub fn binary_variable(self) -> &'static str {
        match self {
            Engine::Nisshi => "KAFKA_LAB_NISSHI",
            Engine::Tansu => "KAFKA_LAB_TANSU",
            Engine::Mock => "KAFKA_LAB_BIN",
        }
    }
}

impl FromStr for Engine {
    type Err = Error;

    fn from_str(name: &str) -> Result<Engine> {
        match name.trim().to_ascii_lowercase().as_str() {
            "nisshi" => Ok(Engine::Nisshi),
            "tansu" => Ok(Engine::Tansu),
            "mock" => Ok(Engine::Mock),
            other => Err(Error::config(
                Setting::Engine,
                format!("unknown broker engine '{other}': expected nisshi, tansu or mock"),
            )),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Nisshi => "nisshi",
            Engine::Tansu => "tansu",
            Engine::Mock => "mock",
        })
    }
}

/// A topic the embedded broker creates when it starts: `NAME:PARTITIONS`
/// (`NAME` alone means one partition).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic.
    pub name: String,
    /// Its partitions.
    pub partitions: i32,
}

impl FromStr for TopicSpec {
    type Err = Error;

    fn from_str(spec: &str) -> Result<TopicSpec> {
        let (name, partitions) = spec.split_once(':').unwrap_or((spec, "1"));
        let ceiling = crate::topics::MAX_PARTITIONS;
        let partitions: i32 = partitions
            .parse()
            .ok()
            .filter(|p| (1..=ceiling).contains(p))
            .ok_or_else(|| {
                Error::config(
                    Setting::BrokerTopic,
                    format!(
                        "bad topic '{spec}': expected NAME:PARTITIONS with 1 to {ceiling} partitions, e.g. weather:3"
                    ),
                )
            })?;
        crate::topics::validate_topic_name(name)?;
        Ok(TopicSpec {
            name: name.to_string(),
            partitions,
        })
    }
}

impl fmt::Display for TopicSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.partitions)
    }
}

/// The arguments of the `broker` command: the one definition that the command
/// line parses and that [`BrokerArgs::to_args`] renders for the mock engine's
/// own `kafka-lab broker` process.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct BrokerArgs {
    /// nisshi (SQLite storage, default when installed), tansu (0.6, SQLite) or
    /// mock (librdkafka, in memory)
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// Address to listen on and advertise
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,
    /// Data folder [default: .kafka-lab/ENGINE-PORT]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Topic to create at start, NAME:PARTITIONS (repeatable; the mock engine
    /// cannot create topics later)
    #[arg(long = "topic", value_name = "NAME:PARTITIONS")]
    pub topics: Vec<TopicSpec>,
}

impl BrokerArgs {
    /// The arguments that make the `broker` command run with these.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(engine) = self.engine {
            args.extend(["--engine".to_string(), engine.to_string()]);
        }
        args.extend(["--listen".to_string(), self.listen.to_string()]);
        if let Some(data) = &self.data {
            args.extend(["--data".to_string(), data.display().to_string()]);
        }
        for topic in &self.topics {
            args.extend(["--topic".to_string(), topic.to_string()]);
        }
        args
    }

    /// The broker these arguments describe (the engine from the environment
    /// or what is installed, when not given).
    pub fn config(&self) -> Result<BrokerConfig> {
        let engine = match self.engine {
            Some(engine) => engine,
            None => Engine::from_env_or_installed()?,
        };
        // A data folder asks for data that survives; the mock keeps nothing.
        // Only an explicit `--engine mock` may ignore it.
        if self.data.is_some() && engine == Engine::Mock && self.engine.is_none() {
            return Err(Error::config(
                Setting::Engine,
                "a data folder keeps the broker's data on disk, but no broker program (nisshi \
                 or tansu) is installed (or KAFKA_LAB_ENGINE says mock), and the mock keeps \
                 everything in memory: install nisshi with scripts/setup.sh (or set \
                 KAFKA_LAB_NISSHI), or ask for the mock engine by name, without a data folder",
            ));
        }
        let mut config = BrokerConfig::new(engine, self.listen);
        if let Some(dir) = &self.data {
            config = config.data_dir(dir);
        }
        for topic in &self.topics {
            config = config.topic(&topic.name, topic.partitions);
        }
        Ok(config)
    }
}

/// How to start an embedded broker.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Which engine.
    pub engine: Engine,
    /// Where it listens (and what it advertises).
    pub listen: SocketAddr,
    /// Where it keeps its data and log (nisshi, tansu: `<engine>.db`; all: `broker.log`).
    pub data_dir: PathBuf,
    /// Topics to have at start: (name, partitions).
    pub topics: Vec<(String, i32)>,
    /// How long to wait for it to answer.
    pub startup_timeout: Duration,
    /// The kafka-lab binary that runs the mock engine (found by
    /// [`super::find_kafka_lab`] when `None`).
    pub kafka_lab_bin: Option<PathBuf>,
    /// Have the child die with this process (Linux `PR_SET_PDEATHSIG`). Only
    /// for a caller whose spawning thread lives as long as the process.
    pub die_with_parent: bool,
}

impl BrokerConfig {
    /// An engine on `listen`, keeping data in `.kafka-lab/<engine>-<port>`.
    pub fn new(engine: Engine, listen: SocketAddr) -> Self {
        BrokerConfig {
            engine,
            listen,
            data_dir: default_data_dir(engine, listen.port()),
            topics: Vec::new(),
            startup_timeout: Duration::from_secs(60),
            kafka_lab_bin: None,
            die_with_parent: false,
        }
    }

    /// Keeps data in `dir`.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = dir.into();
        self
    }

    /// Has `topic` with `partitions` partitions once started.
    pub fn topic(mut self, topic: &str, partitions: i32) -> Self {
        self.topics.push((topic.to_string(), partitions));
        self
    }
}

/// `$KAFKA_LAB_DATA/<engine>-<port>`, by default `.kafka-lab/<engine>-<port>` in
/// the current directory.
pub fn default_data_dir(engine: Engine, port: u16) -> PathBuf {
    let base = std::env::var_os("KAFKA_LAB_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".kafka-lab"));
    base.join(format!("{engine}-{port}"))
}
