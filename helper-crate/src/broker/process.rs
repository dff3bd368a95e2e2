//! An engine as a child process: started, waited for, restarted, stopped.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::config::{BrokerArgs, BrokerConfig, Engine, TopicSpec};
use super::{find_engine_binary, find_kafka_lab, free_loopback_port, is_reachable};
use crate::config::KafkaSettings;
use crate::error::{Error, Result};
use crate::shutdown;
use crate::topics;

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
        super::warn_if_not_loopback(config.listen);
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
            Engine::Nisshi | Engine::Tansu => program_command(&config)?,
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
        if broker.config.engine.is_program() {
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

/// The command line of a broker program (nisshi, or tansu before its rename:
/// the same flags).
fn program_command(config: &BrokerConfig) -> Result<Command> {
    let engine = config.engine;
    let binary = find_engine_binary(engine).ok_or_else(|| {
        Error::Broker(format!(
            "the {engine} engine is not installed. Install nisshi with `scripts/setup.sh` (or \
             `cargo install nisshi --version 0.7.0-pre.2 --locked --no-default-features \
             --features libsql`) or point {} at its binary, or run the mock engine: \
             `kafka-lab broker --engine mock`",
            engine.binary_variable()
        ))
    })?;
    let url = format!("tcp://{}", config.listen);
    let mut command = Command::new(binary);
    // Both resolve a relative sqlite path against their working directory (an
    // absolute one came out doubled), so they run inside the data folder.
    command
        .current_dir(&config.data_dir)
        .arg("broker")
        .arg("--listener-url")
        .arg(&url)
        .arg("--advertised-listener-url")
        .arg(&url)
        .arg("--storage-engine")
        .arg(format!("sqlite://{engine}.db"));
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
