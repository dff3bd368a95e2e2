//! The broker: find one, or start one on this machine.
//!
//! A Kafka **broker** stores partitions and serves producers and consumers over
//! TCP (port 9092 by convention). The lab needs one, and cannot assume Docker or a
//! Kafka download, so it brings its own, with two engines:
//!
//! - **tansu** (default): a Kafka-compatible broker written in Rust, installed
//!   with `cargo install tansu`, storing its data in SQLite. A real broker
//!   process: data and committed offsets survive a restart.
//! - **mock**: librdkafka's built-in mock cluster (what `kcat -M` starts), run
//!   inside a `kafka-lab broker --engine mock` process. Nothing to install, in
//!   memory only, and without CreateTopics: topics are made at start with
//!   `--topic NAME:PARTITIONS`. It listens on a random port of its own, so the
//!   process forwards the fixed address (e.g. 127.0.0.1:9092) to it and has the
//!   mock advertise the fixed address in its metadata.
//!
//! [`EmbeddedBroker`] starts either engine as a child process on a loopback
//! address, waits until it answers a Metadata request, and stops it when dropped.
//! [`BrokerHandle::find_or_start`] is what the lab and notebooks call: use the
//! broker at the bootstrap address if one answers, else start one there.
//! Apache Kafka itself runs from `docker-compose.yml` for those with Docker.
//!
//! kcat equivalent of the mock engine: `kcat -M 1` (prints its bootstrap address).

use std::fmt;
use std::io::{Read, Write};
use std::net::{Shutdown as SocketShutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;

use crate::config::KafkaSettings;
use crate::error::{Error, Result, Setting};
use crate::shutdown;
use crate::topics;

/// Which broker implementation to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// The tansu broker process, SQLite storage.
    Tansu,
    /// librdkafka's in-memory mock cluster.
    Mock,
}

impl Engine {
    /// `KAFKA_LAB_ENGINE` if set, else tansu when it is installed, else mock.
    pub fn from_env_or_installed() -> Result<Engine> {
        match std::env::var("KAFKA_LAB_ENGINE") {
            Ok(name) if !name.trim().is_empty() => name.parse(),
            _ if find_tansu().is_some() => Ok(Engine::Tansu),
            _ => Ok(Engine::Mock),
        }
    }
}

impl FromStr for Engine {
    type Err = Error;

    fn from_str(name: &str) -> Result<Engine> {
        match name.trim().to_ascii_lowercase().as_str() {
            "tansu" => Ok(Engine::Tansu),
            "mock" => Ok(Engine::Mock),
            other => Err(Error::config(
                Setting::Engine,
                format!("unknown broker engine '{other}': expected tansu or mock"),
            )),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
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
        let partitions: i32 = partitions.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
            Error::config(
                Setting::BrokerTopic,
                format!("bad topic '{spec}': expected NAME:PARTITIONS, e.g. weather:3"),
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
    /// tansu (SQLite storage, default when installed) or mock (librdkafka, in memory)
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
    /// Where it keeps its data and log (tansu: `tansu.db`; both: `broker.log`).
    pub data_dir: PathBuf,
    /// Topics to have at start: (name, partitions).
    pub topics: Vec<(String, i32)>,
    /// How long to wait for it to answer.
    pub startup_timeout: Duration,
    /// The kafka-lab binary that runs the mock engine (found by
    /// [`find_kafka_lab`] when `None`).
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

/// A broker process started by this program; stopped when dropped.
#[derive(Debug)]
pub struct EmbeddedBroker {
    child: Child,
    config: BrokerConfig,
    bootstrap: String,
}

impl EmbeddedBroker {
    /// Starts the engine on `config.listen` and waits until it answers.
    pub fn start(config: BrokerConfig) -> Result<EmbeddedBroker> {
        if !config.listen.ip().is_loopback() {
            eprintln!(
                "warning: the embedded broker will listen on {}, which is not a loopback address \
                 and has no authentication",
                config.listen
            );
        }
        if TcpListener::bind(config.listen).is_err() {
            return Err(Error::Broker(format!(
                "{} is already in use. Is a broker running there? Try `kafka-lab topics list -b {}`, \
                 or choose another address with --listen",
                config.listen, config.listen
            )));
        }
        std::fs::create_dir_all(&config.data_dir).map_err(|e| Error::io(&config.data_dir, e))?;
        let log_path = config.data_dir.join("broker.log");
        let log = std::fs::File::create(&log_path).map_err(|e| Error::io(&log_path, e))?;
        let log_err = log.try_clone().map_err(|e| Error::io(&log_path, e))?;

        let mut command = match config.engine {
            Engine::Tansu => tansu_command(&config)?,
            Engine::Mock => mock_command(&config)?,
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        if config.die_with_parent {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe and touches no memory of ours.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
        }
        let child = command.spawn().map_err(|e| {
            Error::Broker(format!("could not start {:?}: {e}", command.get_program()))
        })?;
        let mut broker = EmbeddedBroker {
            child,
            bootstrap: config.listen.to_string(),
            config,
        };
        broker.wait_until_ready(&log_path)?;
        if broker.config.engine == Engine::Tansu {
            for (topic, partitions) in broker.config.topics.clone() {
                topics::ensure_topic(&broker.settings(), &topic, partitions)?;
            }
        }
        Ok(broker)
    }

    /// A configuration for `engine` on a free loopback port, with its data in a
    /// new temporary folder: what tests use.
    pub fn config_on_free_port(engine: Engine) -> Result<BrokerConfig> {
        let listen = SocketAddr::from(([127, 0, 0, 1], free_loopback_port()?));
        let data_dir = std::env::temp_dir().join(format!(
            "kafka-lab-{engine}-{}-{}",
            listen.port(),
            std::process::id()
        ));
        Ok(BrokerConfig::new(engine, listen).data_dir(data_dir))
    }

    /// The address clients connect to.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Settings for clients of this broker.
    pub fn settings(&self) -> KafkaSettings {
        KafkaSettings::new(self.bootstrap.clone())
    }

    /// The engine running.
    pub fn engine(&self) -> Engine {
        self.config.engine
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the broker at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the same engine again on the same address and data (after
    /// [`EmbeddedBroker::kill`] or [`EmbeddedBroker::stop`]).
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let restarted = EmbeddedBroker::start(self.config.clone())?;
        *self = restarted;
        Ok(())
    }

    /// Asks the broker to stop (SIGTERM), waits up to 10 s, then kills it.
    pub fn stop(&mut self) {
        if !self.is_running() {
            return;
        }
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }

    /// Blocks until the child exits or a shutdown is requested; then stops it.
    pub fn wait(&mut self) -> Result<()> {
        while !shutdown::requested() {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Broker(format!(
                    "the {} broker exited ({status}); see {}",
                    self.config.engine,
                    self.config.data_dir.join("broker.log").display()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.stop();
        Ok(())
    }

    fn wait_until_ready(&mut self, log_path: &Path) -> Result<()> {
        let deadline = Instant::now() + self.config.startup_timeout;
        let settings = self.settings().with_timeout(Duration::from_secs(2));
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Broker(format!(
                    "the {} broker exited during start ({status}). Last lines of {}:\n{}",
                    self.config.engine,
                    log_path.display(),
                    tail(log_path, 15)
                )));
            }
            if is_reachable(&self.bootstrap, Duration::from_millis(200))
                && topics::cluster_metadata(&settings, None, false).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(Error::Broker(format!(
                    "the {} broker did not answer at {} within {:?}. Last lines of {}:\n{}",
                    self.config.engine,
                    self.bootstrap,
                    self.config.startup_timeout,
                    log_path.display(),
                    tail(log_path, 15)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

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
    /// from `KAFKA_LAB_ENGINE`, else tansu when installed, else mock) with a
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

/// Whether something accepts TCP connections at any of the bootstrap servers.
pub fn is_reachable(bootstrap: &str, timeout: Duration) -> bool {
    bootstrap.split(',').any(|server| {
        let server = server.trim();
        let server = server.rsplit("://").next().unwrap_or(server);
        server
            .to_socket_addrs()
            .map(|addrs| {
                addrs
                    .into_iter()
                    .any(|a| TcpStream::connect_timeout(&a, timeout).is_ok())
            })
            .unwrap_or(false)
    })
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

/// The tansu binary: `$KAFKA_LAB_TANSU`, then `tansu` on PATH, then where the
/// setup script installs it (`~/.cache/kafka-lab/tansu/bin/tansu`).
pub fn find_tansu() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KAFKA_LAB_TANSU") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let home_install = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cache/kafka-lab/tansu/bin/tansu"));
    find_on_path("tansu").or(home_install.filter(|p| p.is_file()))
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

fn tansu_command(config: &BrokerConfig) -> Result<Command> {
    let tansu = find_tansu().ok_or_else(|| {
        Error::Broker(
            "the tansu engine is not installed. Install it with `scripts/setup.sh` (or \
             `cargo install tansu --locked --features dynostore,libsql`), or run the mock \
             engine: `kafka-lab broker --engine mock`"
                .to_string(),
        )
    })?;
    let url = format!("tcp://{}", config.listen);
    let mut command = Command::new(tansu);
    // tansu resolves a relative sqlite path against its working directory (an
    // absolute one came out doubled), so it runs inside the data folder.
    command
        .current_dir(&config.data_dir)
        .arg("broker")
        .arg("--listener-url")
        .arg(&url)
        .arg("--advertised-listener-url")
        .arg(&url)
        .arg("--storage-engine")
        .arg("sqlite://tansu.db");
    Ok(command)
}

fn mock_command(config: &BrokerConfig) -> Result<Command> {
    let kafka_lab = config
        .kafka_lab_bin
        .clone()
        .or_else(find_kafka_lab)
        .ok_or_else(|| {
            Error::Broker(
            "the mock engine runs in a `kafka-lab broker` process, and no kafka-lab binary was \
             found: build it with `cargo build --release`, or set KAFKA_LAB_BIN"
                .to_string(),
        )
        })?;
    let args = BrokerArgs {
        engine: Some(Engine::Mock),
        listen: config.listen,
        data: Some(config.data_dir.clone()),
        topics: config
            .topics
            .iter()
            .map(|(name, partitions)| TopicSpec {
                name: name.clone(),
                partitions: *partitions,
            })
            .collect(),
    };
    let mut command = Command::new(kafka_lab);
    command.arg("broker").args(args.to_args());
    Ok(command)
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// librdkafka's mock cluster, served at a fixed address. This runs inside the
/// `kafka-lab broker --engine mock` process.
pub struct MockBroker {
    // Owns the mock cluster: dropping the client destroys it.
    client: BaseProducer,
    listen: SocketAddr,
    upstream: SocketAddr,
}

impl MockBroker {
    /// Creates a one-broker mock cluster and the topics, and makes it advertise
    /// `listen` (which [`MockBroker::serve`] then forwards to it).
    pub fn new(listen: SocketAddr, topics: &[(String, i32)]) -> Result<MockBroker> {
        let client: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .create()
            .map_err(|e| Error::kafka("creating the mock cluster", e))?;
        let upstream = {
            // Borrows the client; must end before the client moves into MockBroker.
            let mock = client
                .client()
                .mock_cluster()
                .ok_or_else(|| Error::Broker("librdkafka did not create a mock cluster".into()))?;
            for (topic, partitions) in topics {
                topics::validate_topic_name(topic)?;
                mock.create_topic(topic, *partitions, 1).map_err(|e| {
                    Error::kafka(format!("creating topic '{topic}' in the mock"), e)
                })?;
            }
            mock.bootstrap_servers()
                .split(',')
                .next()
                .and_then(|s| s.parse::<SocketAddr>().ok())
                .ok_or_else(|| Error::Broker("the mock cluster has no address".into()))?
        };
        let host = std::ffi::CString::new(listen.ip().to_string())
            .map_err(|_| Error::config(Setting::Listen, "bad listen address"))?;
        // SAFETY: the cluster pointer comes from the live client; librdkafka copies the host.
        unsafe {
            let cluster =
                rdkafka::bindings::rd_kafka_handle_mock_cluster(client.client().native_ptr());
            rdkafka::bindings::rd_kafka_mock_broker_set_host_port(
                cluster,
                1,
                host.as_ptr(),
                i32::from(listen.port()),
            );
        }
        Ok(MockBroker {
            client,
            listen,
            upstream,
        })
    }

    /// Accepts connections at the listen address and forwards each to the mock
    /// cluster until a shutdown is requested.
    pub fn serve(&self) -> Result<()> {
        let listener = TcpListener::bind(self.listen)
            .map_err(|e| Error::Broker(format!("cannot listen on {}: {e}", self.listen)))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Broker(e.to_string()))?;
        while !shutdown::requested() {
            match listener.accept() {
                Ok((client, _)) => {
                    let upstream = self.upstream;
                    std::thread::spawn(move || forward(client, upstream));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(Error::Broker(format!("accept on {}: {e}", self.listen))),
            }
        }
        let _ = self.client.flush(Duration::from_secs(1));
        Ok(())
    }
}

/// Copies bytes both ways between a client and the mock until either side closes.
fn forward(client: TcpStream, upstream: SocketAddr) {
    let Ok(server) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(SocketShutdown::Both);
        return;
    };
    let _ = client.set_nonblocking(false);
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(client_reader), Ok(server_reader)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let one_way = |mut from: TcpStream, mut to: TcpStream| {
        let mut buffer = [0u8; 64 * 1024];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(SocketShutdown::Write);
    };
    let upload = std::thread::spawn(move || one_way(client_reader, server));
    one_way(server_reader, client);
    let _ = upload.join();
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
