//! One error type for the whole library.
//!
//! Kafka clients fail in a few recognisable ways: the broker is not there, the
//! configuration is wrong, the broker refuses a request, or a message is not what
//! we expected. Each variant below names one of them and carries what a user needs
//! to act: the address that was tried, the property that was rejected, the command
//! that would fix it. The binary maps [`Error::exit_code`] to the process status
//! (0 success, 1 runtime failure, 2 bad usage or configuration), kcat style.

use std::path::PathBuf;
use std::time::Duration;

use rdkafka::error::KafkaError;

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in kafka-lab.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing answered at the bootstrap address within the timeout.
    #[error(
        "no Kafka broker answered at {bootstrap} within {}s{}.\n  Start one with `kafka-lab broker` \
         (embedded), or `docker compose up -d` (Apache Kafka), or point KAFKA_BOOTSTRAP_SERVERS / -b \
         at a running broker.",
        waited.as_secs_f32(),
        client_said.as_deref().map_or(String::new(), |said| format!(" (the client's last error: {said})"))
    )]
    BrokerUnreachable {
        /// The bootstrap servers that were tried.
        bootstrap: String,
        /// How long we waited before giving up.
        waited: Duration,
        /// The client's last connection error, e.g. a refused connection or a
        /// failed SASL handshake, when it reported one.
        client_said: Option<String>,
    },

    /// A setting, flag or argument is not valid; nothing was sent or written.
    #[error("{0}")]
    Config(String),

    /// The broker does not implement a request this step needs.
    #[error("{what} is not supported by this broker ({broker}). {hint}")]
    Unsupported {
        /// The operation that was refused, e.g. "CreateTopics".
        what: String,
        /// Which broker or engine refused it.
        broker: String,
        /// What to do instead.
        hint: String,
    },

    /// The topic does not exist on the broker.
    #[error("topic '{topic}' does not exist at {bootstrap}. Create it with `kafka-lab topics create {topic}`.")]
    UnknownTopic {
        /// The topic that was asked for.
        topic: String,
        /// The bootstrap servers that were asked.
        bootstrap: String,
    },

    /// librdkafka reported an error while doing `context`.
    // The client's error is part of the message rather than a `source`, so that
    // `{:#}` chains (anyhow) do not print it twice.
    #[error("{context}: {error}")]
    Kafka {
        /// What we were doing.
        context: String,
        /// The client's error.
        error: KafkaError,
    },

    /// Some messages could not be delivered before the timeout.
    #[error(
        "{} of {total} messages were not delivered: {}{}",
        undelivered.len(),
        undelivered.first().map_or("", String::as_str),
        if undelivered.len() > 1 { format!(" (and {} more)", undelivered.len() - 1) } else { String::new() }
    )]
    Delivery {
        /// How many were sent.
        total: usize,
        /// Each message that was not delivered, and why.
        undelivered: Vec<String>,
    },

    /// A group's offsets cannot be moved while members are reading: they would
    /// overwrite the new offsets with their next commit.
    #[error(
        "group '{group}' has active members ({detail}). Stop its consumers first (or wait for \
         their session timeout), then reset its offsets again."
    )]
    GroupActive {
        /// The group.
        group: String,
        /// The members the broker listed, or what the broker answered.
        detail: String,
    },

    /// The embedded broker could not be started or found.
    #[error("embedded broker: {0}")]
    Broker(String),

    /// Reading or writing a file failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },

    /// The CSV log could not be read or written.
    #[error("{path}: {message}")]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

impl Error {
    /// Wraps a client error with what we were doing when it happened.
    pub fn kafka(context: impl Into<String>, source: KafkaError) -> Self {
        Error::Kafka {
            context: context.into(),
            error: source,
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }

    /// Turns a client error into [`Error::BrokerUnreachable`] when it means that no
    /// broker answered (connection refused, timed out, all brokers down), and into
    /// [`Error::Kafka`] with `context` otherwise.
    pub fn from_client(
        settings: &crate::config::KafkaSettings,
        context: impl Into<String>,
        source: KafkaError,
    ) -> Self {
        use rdkafka::types::RDKafkaErrorCode as Code;
        match source.rdkafka_error_code() {
            Some(
                Code::BrokerTransportFailure
                | Code::AllBrokersDown
                | Code::OperationTimedOut
                | Code::Resolve,
            ) => Error::BrokerUnreachable {
                bootstrap: settings.bootstrap().to_string(),
                waited: settings.timeout(),
                client_said: None,
            },
            _ => Error::kafka(context, source),
        }
    }

    /// Adds the client's last connection error to a [`Error::BrokerUnreachable`].
    pub fn with_client_said(mut self, said: Option<String>) -> Self {
        if let Error::BrokerUnreachable { client_said, .. } = &mut self {
            *client_said = said;
        }
        self
    }

    /// The process exit status for this error: 2 for bad usage or configuration
    /// (nothing was attempted), 1 for everything that failed at run time.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) => 2,
            Error::Kafka { error, .. } if is_config_error(error) => 2,
            _ => 1,
        }
    }
}

/// Whether a group coordinator refused a commit because of the group's
/// membership: a rebalance is in progress, the committer's generation is stale,
/// or the committer is not a member of a group that has members.
pub fn is_membership_refusal(error: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    matches!(
        error.rdkafka_error_code(),
        Some(Code::RebalanceInProgress | Code::IllegalGeneration | Code::UnknownMemberId)
    )
}

/// librdkafka rejects unknown or invalid properties when a client is created.
fn is_config_error(error: &KafkaError) -> bool {
    matches!(
        error,
        KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_)
    )
}
