//! The broker: find one, or start one on this machine.
//!
//! A Kafka **broker** stores partitions and serves producers and consumers over
//! TCP (port 9092 by convention). The lab needs one, and cannot assume Docker or a
//! Kafka download, so it brings its own, with three engines:
//!
//! - **nisshi** (default): a Kafka-compatible broker written in Rust (named
//!   tansu until 0.6), installed with `cargo install nisshi`, storing its data
//!   in SQLite. A real broker process: data and committed offsets survive a
//!   restart, and a consumer that dies is removed from its group after its
//!   session timeout. **tansu** 0.6 runs the same way (`--engine tansu`), but
//!   keeps a dead member in its group for good.
//! - **mock**: librdkafka's built-in mock cluster (what `kcat -M` starts), run
//!   inside a `kafka-lab broker --engine mock` process. Nothing to install, in
//!   memory only, and without CreateTopics: topics are made at start with
//!   `--topic NAME:PARTITIONS`. It listens on a random port of its own, so the
//!   process forwards the fixed address (e.g. 127.0.0.1:9092) to it and has the
//!   mock advertise the fixed address in its metadata.
//!
//! [`EmbeddedBroker`] starts any engine as a child process on a loopback
//! address, waits until it answers a Metadata request, and stops it when dropped.
//! [`BrokerHandle::find_or_start`] is what the lab and notebooks call: use the
//! broker at the bootstrap address if one answers, else start one there.
//! Apache Kafka itself runs from `docker-compose.yml` for those with Docker.
//!
//! kcat equivalent of the mock engine: `kcat -M 1` (prints its bootstrap address).
//!
//! The module's parts: [`config`] (engines and how to start one, the `broker`
//! command's arguments), [`process`] (an engine as a child process) and
//! [`mock`] (librdkafka's mock cluster behind a fixed address).

pub mod config;
pub mod mock;
pub mod process;

pub use crate::net::is_reachable;
pub use config::{default_data_dir, BrokerArgs, BrokerConfig, Engine, TopicSpec};
pub use mock::MockBroker;
pub use process::EmbeddedBroker;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::KafkaSettings;
use crate::error::{Error, Result};

/// A broker to work with: one that was already there, or one started here.
#[derive(Debug)]
pub enum BrokerHandle {
    /// Something answered at the bootstrap address; it is used as it is.
    External(KafkaSettings),
    /// Nothing answered, so an embedded broker was started there.
    Embedded(EmbeddedBroker, KafkaSettings),
}

impl BrokerHandle {
    /// Uses the broker at `settings`' bootstrap address if one answers; else, if
    /// that address is on this machine, starts an embedded broker there (engine
    /// from `KAFKA_LAB_ENGINE`, else nisshi or tansu when installed, else mock) with a
    /// `weather` topic of one partition.
    pub fn find_or_start(settings: &KafkaSettings) -> Result<BrokerHandle> {
        let first = settings.bootstrap().split(',').next().unwrap_or_default();
        if is_reachable(settings.bootstrap(), Duration::from_secs(1)) {
            return Ok(BrokerHandle::External(settings.clone()));
        }
        let listen = first
            .trim()
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.find(|a| a.ip().is_loopback()))
            .ok_or_else(|| Error::BrokerUnreachable {
                bootstrap: settings.bootstrap().to_string(),
                waited: Duration::from_secs(1),
                client_said: None,
            })?;
        let engine = Engine::from_env_or_installed()?;
        let broker = EmbeddedBroker::start(BrokerConfig::new(engine, listen).topic("weather", 1))?;
        Ok(BrokerHandle::Embedded(broker, settings.clone()))
    }

    /// Settings for clients of this broker.
    pub fn settings(&self) -> &KafkaSettings {
        match self {
            BrokerHandle::External(settings) | BrokerHandle::Embedded(_, settings) => settings,
        }
    }

    /// A sentence saying which broker this is.
    pub fn describe(&self) -> String {
        match self {
            BrokerHandle::External(settings) => {
                format!(
                    "using the broker already running at {}",
                    settings.bootstrap()
                )
            }
            BrokerHandle::Embedded(broker, _) => format!(
                "started the embedded {} broker at {} (data in {})",
                broker.engine(),
                broker.bootstrap(),
                broker.config().data_dir.display()
            ),
        }
    }

    /// The engine, when the broker was started here.
    pub fn engine(&self) -> Option<Engine> {
        match self {
            BrokerHandle::External(_) => None,
            BrokerHandle::Embedded(broker, _) => Some(broker.engine()),
        }
    }
}

/// Warns on stderr when an embedded broker (any engine) is to listen beyond
/// this machine: it has no authentication, so anyone who can reach the address
/// can read and write every topic.
pub(crate) fn warn_if_not_loopback(listen: SocketAddr) {
    if !listen.ip().is_loopback() {
        eprintln!(
            "warning: the embedded broker will listen on {listen}, which is not a loopback \
             address and has no authentication"
        );
    }
}

/// A loopback port nobody listens on right now.
pub fn free_loopback_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| Error::Broker(format!("no free loopback port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::Broker(format!("no free loopback port: {e}")))
}

/// A broker program's binary (nisshi or tansu): the file its variable names
/// (`$KAFKA_LAB_NISSHI`, `$KAFKA_LAB_TANSU`), else the program on PATH, else
/// where the setup script installs it (`~/.cache/kafka-lab/nisshi/bin/nisshi`).
/// `None` for the mock, which runs inside kafka-lab itself.
pub fn find_engine_binary(engine: Engine) -> Option<PathBuf> {
    if !engine.is_program() {
        return None;
    }
    if let Some(path) = std::env::var_os(engine.binary_variable()) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let name = engine.to_string();
    let installed = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(format!(".cache/kafka-lab/{name}/bin/{name}")));
    find_on_path(&name).or(installed.filter(|p| p.is_file()))
}

/// The kafka-lab binary (to run the mock engine in its own process):
/// `$KAFKA_LAB_BIN`, then next to this program, then PATH, then this
/// workspace's `target/{release,debug}`.
pub fn find_kafka_lab() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KAFKA_LAB_BIN") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let beside_me = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("kafka-lab")));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    beside_me
        .filter(|p| p.is_file())
        .or_else(|| find_on_path("kafka-lab"))
        .or_else(|| {
            ["release", "debug"]
                .iter()
                .map(|profile| workspace.join(profile).join("kafka-lab"))
                .find(|p| p.is_file())
        })
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_args_survive_their_own_rendering() {
        use clap::Parser;
        #[derive(Parser)]
        struct BrokerCommand {
            #[command(flatten)]
            args: BrokerArgs,
        }
        let args = BrokerArgs {
            engine: Some(Engine::Mock),
            listen: "127.0.0.1:19092".parse().unwrap(),
            data: Some(PathBuf::from("/tmp/d")),
            topics: vec!["weather:3".parse().unwrap(), "t".parse().unwrap()],
        };
        let parsed = BrokerCommand::try_parse_from(
            std::iter::once("broker".to_string()).chain(args.to_args()),
        );
        assert_eq!(parsed.map(|c| c.args).ok(), Some(args));
        assert!("weather:0".parse::<TopicSpec>().is_err());
        assert!("bad name:2".parse::<TopicSpec>().is_err());
    }

    #[test]
    fn engines_parse_and_print() {
        assert_eq!("tansu".parse::<Engine>().unwrap(), Engine::Tansu);
        assert_eq!(" Nisshi".parse::<Engine>().unwrap(), Engine::Nisshi);
        assert_eq!(Engine::Nisshi.to_string(), "nisshi");
        assert!(Engine::PROGRAMS.iter().all(|engine| engine.is_program()));
        assert_eq!("MOCK".parse::<Engine>().unwrap(), Engine::Mock);
        assert_eq!("kafka".parse::<Engine>().unwrap_err().exit_code(), 2);
        assert_eq!(Engine::Mock.to_string(), "mock");
    }

    #[test]
    fn nothing_listening_is_not_reachable() {
        let port = free_loopback_port().unwrap();
        assert!(!is_reachable(
            &format!("127.0.0.1:{port}"),
            Duration::from_millis(200)
        ));
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(is_reachable(
            &format!("nowhere.invalid:1,{addr}"),
            Duration::from_millis(200)
        ));
    }
}
