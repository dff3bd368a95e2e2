//! One error type for the whole library.
//!
//! Kafka clients fail in a few recognisable ways: the broker is not there, the
//! configuration is wrong, the broker refuses a request, or a message is not what
//! we expected. Each variant below names one of them and carries what a user needs
//! to act: the address that was tried, the property that was rejected, the command
//! that would fix it. The binary maps [`Error::exit_code`] to the process status
//! (0 success, 1 runtime failure, 2 bad usage or configuration), kcat style.

use std::fmt;
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

    /// A broker answered but refused this client's login (SASL): a wrong
    /// password, an unknown user, or a mechanism the broker does not offer.
    #[error(
        "the broker at {bootstrap} refused this client's login: {client_said}.\n  Check the SASL \
         settings: security.protocol, sasl.mechanism (the broker must offer it), sasl.username, \
         sasl.password."
    )]
    LoginRefused {
        /// The bootstrap servers that were tried.
        bootstrap: String,
        /// What the client reported, e.g. "SASL SCRAM authentication failed:
        /// broker responded with invalid-proof".
        client_said: String,
    },

    /// A setting is not valid; nothing was sent or written. The user fixes it
    /// in the command or the settings (exit status 2).
    #[error("{message}")]
    Config {
        /// Which setting: the command line names its flag.
        setting: Setting,
        /// What is wrong, and what would be right.
        message: String,
    },

    /// Something did not happen in time: a group join, messages that should
    /// have come back, a topic read to its end.
    #[error("{what} did not happen within {}s{}", waited.as_secs_f32(), hint.as_deref().map_or(String::new(), |hint| format!(": {hint}")))]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        waited: Duration,
        /// What may be wrong, if known.
        hint: Option<String>,
    },

    /// The topic to create exists already.
    #[error("topic '{topic}' already exists at {bootstrap}")]
    TopicExists {
        /// The topic.
        topic: String,
        /// The bootstrap servers that were asked.
        bootstrap: String,
    },

    /// Another program this step runs (a consumer process, kcat, Python)
    /// could not be run or failed.
    #[error("{program}: {message}")]
    Program {
        /// The program, e.g. `kafka-lab process` or `kcat`.
        program: String,
        /// What went wrong, with its own output where it printed any.
        message: String,
    },

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
    #[error("topic '{topic}' does not exist at {bootstrap}: create it first (CreateTopics)")]
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
        total.saturating_sub(*delivered),
        undelivered.first().map_or("", String::as_str),
        match total.saturating_sub(*delivered) {
            not_delivered @ 2.. => format!(" (and {} more)", not_delivered - 1),
            _ => String::new(),
        }
    )]
    Delivery {
        /// How many were sent.
        total: usize,
        /// How many of those the broker confirmed.
        delivered: usize,
        /// Why the others were not: one line per failed delivery report, and
        /// one line counting the messages that got no report at all.
        undelivered: Vec<String>,
    },

    /// A partition this consumer holds has messages past its position, but none
    /// came for seconds: the client cannot fetch the message there.
    #[error(
        "stuck at {topic}[{partition}] offset {offset}: the partition holds messages up to offset {}, \
         but none came in {:.1}s. The message at offset {offset} is likely larger than the client \
         fetches (fetch.max.bytes, max.partition.fetch.bytes, receive.message.max.bytes) or than \
         the broker serves (message.max.bytes); raise those, or skip it by resetting the group's \
         offset past it",
        high - 1,
        idle.as_secs_f64()
    )]
    StuckPartition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset the consumer is stuck at.
        offset: i64,
        /// The partition's high watermark.
        high: i64,
        /// How long nothing came.
        idle: Duration,
    },

    /// A read ended by timeout with no partition ever assigned to this member
    /// while its group has unread messages that nobody reads: other members
    /// hold every partition.
    #[error(
        "no partition of '{topic}' was assigned to this member of group '{group}' in {:.1}s, and \
         nobody read the group's {unread} unread message(s) meanwhile: the group's other members \
         hold all {partitions} partition(s) without reading (dead ones the broker has not removed \
         yet, or live ones that stopped polling, like a notebook's consumer between cells), or \
         the join had not finished. Wait for their session timeout (session.timeout.ms), stop \
         the idle consumers, give each consumer a group.instance.id so a restart takes its \
         place back, use another group, or allow a longer timeout",
        waited.as_secs_f64()
    )]
    NotAssigned {
        /// The topic.
        topic: String,
        /// The group.
        group: String,
        /// How many partitions the topic has.
        partitions: usize,
        /// Messages past the group's committed offsets (or the whole log, for
        /// a group without commits that starts at the earliest).
        unread: i64,
        /// How long the read waited.
        waited: Duration,
    },

    /// Ctrl-C or SIGTERM stopped a producer before it had sent everything; what
    /// was in flight was flushed first (within the timeout): what was sent and
    /// not confirmed is counted as not delivered.
    #[error(
        "stopped by {} after sending {sent} of {total} readings: {delivered} delivered{}",
        crate::shutdown::signal_name(*signal),
        if delivered < sent { format!(", {} not delivered", sent - delivered) } else { String::new() }
    )]
    Interrupted {
        /// The signal's number (exit status 128 + it).
        signal: i32,
        /// How many readings were asked for.
        total: usize,
        /// How many were handed to the client before the stop.
        sent: usize,
        /// How many of those the broker confirmed.
        delivered: usize,
        /// Why the others were not, as in [`Error::Delivery`].
        undelivered: Vec<String>,
    },

    /// A send failed part-way through a producer's run (its local queue stayed
    /// full, the topic went away), so the run stopped there; what it had sent
    /// before was flushed first (within the timeout), and is counted here. (A
    /// failure of the first send is that send's error alone.)
    #[error(
        "{}. Before it, {sent} of {total} readings were sent: {delivered} delivered{}",
        cause.to_string().trim_end_matches('.'),
        if delivered < sent {
            let first = undelivered.first().map_or(String::new(), |first| format!(" ({first})"));
            format!(", {} not delivered{first}", sent - delivered)
        } else { String::new() }
    )]
    SendsStopped {
        /// Why the send failed. In the message rather than a `source`, as
        /// with [`Error::Kafka`], so that `{:#}` does not print it twice.
        cause: Box<Error>,
        /// How many readings were asked for.
        total: usize,
        /// How many were handed to the client before the failed send.
        sent: usize,
        /// How many of those the broker confirmed.
        delivered: usize,
        /// Each sent reading that was not delivered, and why.
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

    /// The analysis of the saved readings (polars) failed.
    #[error("analysis: {0}")]
    Analysis(String),

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

    /// A [`Error::Config`] about `setting`.
    pub fn config(setting: Setting, message: impl Into<String>) -> Self {
        Error::Config {
            setting,
            message: message.into(),
        }
    }

    /// A send that waited `waited` for room in the producer's local queue and
    /// found none: the broker at `bootstrap` acknowledged none of the messages
    /// waiting there (librdkafka frees a message's room when its delivery
    /// report is served). A runtime [`Error::Timeout`], not bad usage.
    pub fn queue_stayed_full(
        bootstrap: &str,
        waited: Duration,
        context: impl Into<String>,
    ) -> Self {
        Error::Timeout {
            what: context.into(),
            waited,
            hint: Some(format!(
                "the producer's local queue (queue.buffering.max.messages or \
                 queue.buffering.max.kbytes) stayed full: the broker at {bootstrap} acknowledged \
                 none of the messages waiting in it. An overloaded or stalled broker does this; \
                 a longer broker timeout waits longer"
            )),
        }
    }

    /// Turns a client error into [`Error::BrokerUnreachable`] when it means that no
    /// broker answered at `bootstrap` within `waited` (connection refused, timed
    /// out, all brokers down); into [`Error::Timeout`] when the request timed
    /// out though a broker accepts connections there; and into [`Error::Kafka`]
    /// with `context` otherwise.
    /// [`crate::config::KafkaSettings::client_error`] fills in both from settings.
    pub fn from_client(
        bootstrap: &str,
        waited: Duration,
        context: impl Into<String>,
        source: KafkaError,
    ) -> Self {
        use rdkafka::types::RDKafkaErrorCode as Code;
        match source.rdkafka_error_code() {
            // Up but silent: nisshi holds a group's requests while the group
            // rebalances, for half its session timeout per join.
            Some(Code::OperationTimedOut)
                if crate::net::is_reachable(bootstrap, Duration::from_millis(500)) =>
            {
                Error::Timeout {
                    what: context.into(),
                    waited,
                    hint: Some(format!(
                        "the broker at {bootstrap} accepts connections but did not answer. A \
                         group's requests wait while the group rebalances (a member joining, or \
                         one that died and whose session has not timed out yet); an overloaded \
                         broker, or one refusing this client's credentials, does the same"
                    )),
                }
            }
            Some(
                Code::BrokerTransportFailure
                | Code::AllBrokersDown
                | Code::OperationTimedOut
                | Code::Resolve,
            ) => Error::BrokerUnreachable {
                bootstrap: bootstrap.to_string(),
                waited,
                client_said: None,
            },
            _ => Error::kafka(context, source),
        }
    }

    /// Adds the client's last connection error to a [`Error::BrokerUnreachable`]
    /// or a [`Error::Timeout`]. A broker that refused the login is not
    /// unreachable: that becomes [`Error::LoginRefused`].
    pub fn with_client_said(mut self, said: Option<String>) -> Self {
        match &mut self {
            Error::BrokerUnreachable { bootstrap, .. }
                if said.as_deref().is_some_and(is_login_failure) =>
            {
                return Error::LoginRefused {
                    bootstrap: std::mem::take(bootstrap),
                    client_said: said.unwrap_or_default(),
                };
            }
            Error::BrokerUnreachable { client_said, .. } => *client_said = said,
            Error::Timeout { hint, .. } => {
                if let Some(said) = said {
                    let hint = hint.get_or_insert_with(String::new);
                    hint.push_str(&format!(" (the client's last error: {said})"));
                }
            }
            _ => {}
        }
        self
    }

    /// The process exit status for this error: 2 for bad usage or configuration
    /// (nothing was attempted), 1 for everything that failed at run time (a
    /// producer's run that a failed send stopped among them), 128 +
    /// the signal for a run a signal stopped (130 Ctrl-C, 143 SIGTERM).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config { .. } => 2,
            Error::Interrupted { signal, .. } => 128 + signal,
            Error::Kafka { error, .. } if is_config_error(error) => 2,
            _ => 1,
        }
    }
}

/// Whether a client's error text says that the broker refused its login
/// (librdkafka: "SASL authentication error: ...", "SASL PLAIN mechanism
/// handshake failed: ..."). Configuration warnings that merely mention SASL
/// are not refusals.
pub(crate) fn is_login_failure(said: &str) -> bool {
    !said.starts_with("CONFWARN")
        && [
            "SASL authentication error",
            "mechanism handshake failed",
            "Authentication failure",
            "authentication failed",
        ]
        .iter()
        .any(|phrase| said.contains(phrase))
}

/// The setting an [`Error::Config`] is about. The library names concepts; the
/// command line maps each to its flag, so a renamed flag cannot leave a stale
/// hint behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// Bootstrap servers or a librdkafka property (`-b`, `-X`, `-F`).
    Connection,
    /// A file of librdkafka properties (kcat's `-F`).
    PropertiesFile,
    /// A topic name.
    Topic,
    /// A partition number or count.
    Partitions,
    /// Where a consumer starts: earliest, latest, an offset, a time.
    StartFrom,
    /// The most messages a read may take.
    MaxMessages,
    /// Messages per batch.
    BatchSize,
    /// The consumer group.
    Group,
    /// Whether a consumer commits.
    Commit,
    /// When a consumer commits, relative to processing.
    CommitStrategy,
    /// The CSV log file.
    CsvLog,
    /// Cities to produce readings for.
    Cities,
    /// Readings per second.
    Rate,
    /// The broker engine.
    Engine,
    /// The address the embedded broker listens on.
    Listen,
    /// A topic to create when the embedded broker starts (`NAME:PARTITIONS`).
    BrokerTopic,
    /// What a lab step needs of its input (e.g. a topic's partition count).
    LabInput,
    /// Consent to a topic deletion that, on this engine, wipes every topic.
    WipeConsent,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Setting::Connection => "connection settings",
            Setting::PropertiesFile => "properties file",
            Setting::Topic => "topic",
            Setting::Partitions => "partitions",
            Setting::StartFrom => "start position",
            Setting::MaxMessages => "maximum message count",
            Setting::BatchSize => "batch size",
            Setting::Group => "consumer group",
            Setting::Commit => "commit",
            Setting::CommitStrategy => "commit strategy",
            Setting::CsvLog => "CSV log",
            Setting::Cities => "cities",
            Setting::Rate => "rate",
            Setting::Engine => "broker engine",
            Setting::Listen => "listen address",
            Setting::BrokerTopic => "broker topic",
            Setting::LabInput => "lab input",
            Setting::WipeConsent => "consent to wipe the broker",
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_user_fixes_exits_2() {
        assert_eq!(Error::config(Setting::Topic, "bad").exit_code(), 2);
        let timeout = Error::Timeout {
            what: "the group join".into(),
            waited: Duration::from_secs(3),
            hint: None,
        };
        assert_eq!(timeout.exit_code(), 1);
        assert_eq!(
            timeout.to_string(),
            "the group join did not happen within 3s"
        );
        let program = Error::Program {
            program: "kcat".into(),
            message: "not found".into(),
        };
        assert_eq!(program.exit_code(), 1);
        let exists = Error::TopicExists {
            topic: "t".into(),
            bootstrap: "b:1".into(),
        };
        assert_eq!(exists.exit_code(), 1);
        let bad_property = Error::kafka(
            "creating a consumer",
            KafkaError::ClientCreation("bad property".into()),
        );
        assert_eq!(bad_property.exit_code(), 2);
    }

    #[test]
    fn a_failed_send_says_what_became_of_the_sends_before_it() {
        let cause = Error::queue_stayed_full("b:1", Duration::from_secs(2), "sending to 't'");
        let stopped = Error::SendsStopped {
            cause: Box::new(cause),
            total: 100,
            sent: 40,
            delivered: 37,
            // Two reports said no; one more reading never got a report.
            undelivered: vec![
                "a: Local: Purged in queue".into(),
                "b: Local: Purged in queue".into(),
                "1 reading(s) without a delivery report within 3s".into(),
            ],
        };
        assert_eq!(stopped.exit_code(), 1);
        let text = stopped.to_string();
        assert!(
            text.starts_with("sending to 't' did not happen within 2s: the producer's local queue"),
            "{text}"
        );
        assert!(
            text.ends_with(
                ". Before it, 40 of 100 readings were sent: 37 delivered, \
                 3 not delivered (a: Local: Purged in queue)"
            ),
            "{text}"
        );
        // The topic deleted mid-run: the four before it were all delivered.
        let all_delivered = Error::SendsStopped {
            cause: Box::new(Error::kafka(
                "sending to 't'",
                KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::UnknownTopic),
            )),
            total: 10,
            sent: 4,
            delivered: 4,
            undelivered: Vec::new(),
        };
        assert_eq!(all_delivered.exit_code(), 1);
        assert!(
            all_delivered
                .to_string()
                .ends_with(". Before it, 4 of 10 readings were sent: 4 delivered"),
            "{all_delivered}"
        );
        // A cause that ends a sentence gets no second full stop.
        let unreachable = Error::SendsStopped {
            cause: Box::new(Error::Broker("gone.".into())),
            total: 2,
            sent: 1,
            delivered: 1,
            undelivered: Vec::new(),
        };
        assert_eq!(
            unreachable.to_string(),
            "embedded broker: gone. Before it, 1 of 2 readings were sent: 1 delivered"
        );
    }

    #[test]
    fn undelivered_messages_are_counted_with_those_that_got_no_report() {
        let error = Error::Delivery {
            total: 10,
            delivered: 6,
            undelivered: vec![
                "a: Local: Purged in queue".into(),
                "3 reading(s) without a delivery report within 11s".into(),
            ],
        };
        assert_eq!(
            error.to_string(),
            "4 of 10 messages were not delivered: a: Local: Purged in queue (and 3 more)"
        );
        let one = Error::Delivery {
            total: 1,
            delivered: 0,
            undelivered: vec!["no delivery report".into()],
        };
        assert_eq!(
            one.to_string(),
            "1 of 1 messages were not delivered: no delivery report"
        );
    }

    #[test]
    fn unreachable_brokers_are_told_apart_from_refusals() {
        use rdkafka::types::RDKafkaErrorCode as Code;
        let waited = Duration::from_secs(2);
        let down = Error::from_client(
            "h:1",
            waited,
            "x",
            KafkaError::MetadataFetch(Code::AllBrokersDown),
        );
        assert!(
            matches!(down, Error::BrokerUnreachable { ref bootstrap, .. } if bootstrap == "h:1")
        );
        let login = Error::from_client(
            "h:1",
            waited,
            "x",
            KafkaError::MetadataFetch(Code::BrokerTransportFailure),
        )
        .with_client_said(Some(
            "SASL authentication error: SASL SCRAM authentication failed: broker responded with \
             invalid-proof"
                .into(),
        ));
        assert!(matches!(login, Error::LoginRefused { .. }), "{login}");
        assert!(!is_login_failure(
            "CONFWARN: [thrd:app]: Configuration property sasl.mechanism is set but \
             security.protocol is not configured for SASL"
        ));
        assert_eq!(login.exit_code(), 1);
        assert!(login.to_string().contains("sasl.password"), "{login}");
        let said = down.with_client_said(Some("refused".into())).to_string();
        assert!(said.contains("the client's last error: refused"), "{said}");
        let refused = Error::from_client(
            "h:1",
            waited,
            "committing",
            KafkaError::ConsumerCommit(Code::RebalanceInProgress),
        );
        assert!(matches!(refused, Error::Kafka { .. }));
        assert!(refused.to_string().starts_with("committing: "), "{refused}");
        // A full queue is a timeout only where the send waited for room; a
        // send that did not wait gets librdkafka's own words.
        let full = Error::queue_stayed_full("h:1", waited, "sending to 'weather'");
        assert_eq!(full.exit_code(), 1);
        let full = full.to_string();
        assert!(
            full.starts_with("sending to 'weather' did not happen within 2s: ")
                && full.contains("queue.buffering.max.messages"),
            "{full}"
        );
        let unwaited = Error::from_client(
            "h:1",
            waited,
            "sending to 'weather'",
            KafkaError::MessageProduction(Code::QueueFull),
        );
        assert!(matches!(unwaited, Error::Kafka { .. }), "{unwaited}");
    }

    #[test]
    fn membership_refusals_are_recognised() {
        use rdkafka::types::RDKafkaErrorCode as Code;
        assert!(is_membership_refusal(&KafkaError::ConsumerCommit(
            Code::UnknownMemberId
        )));
        assert!(!is_membership_refusal(&KafkaError::ConsumerCommit(
            Code::OffsetOutOfRange
        )));
    }
}
