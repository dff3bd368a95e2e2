//! Topics, partitions and the cluster's metadata.
//!
//! A **topic** is a named log of messages, such as `weather`. It is split into
//! **partitions**: each partition is an ordered, append-only sequence in which
//! every message gets the next **offset** (0, 1, 2, ...). One broker is the
//! **leader** of each partition and serves its reads and writes; other brokers may
//! hold **replicas**, and the in-sync replicas (**ISR**) are those caught up with
//! the leader. The **low watermark** is the oldest offset still stored, the **high
//! watermark** the offset the next message will get: `high - low` messages are in
//! the partition now.
//!
//! Clients learn all of this from a Metadata request to any bootstrap server, and
//! that is what [`cluster_metadata`] shows, like `kcat -L`. Topics are created and
//! deleted through the Admin API ([`create_topic`], [`delete_topic`]).
//!
//! kcat / Kafka CLI equivalents: `kcat -L -b HOST`, `kafka-topics.sh --list`,
//! `kafka-topics.sh --describe --topic weather`,
//! `kafka-topics.sh --create --topic weather --partitions 1`, `--delete`.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use serde::Serialize;

use crate::config::KafkaSettings;
use crate::display::{AsTable, Table};
use crate::error::{is_login_failure, Error, Result, Setting};

/// One broker of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BrokerInfo {
    /// The broker's node id.
    pub id: i32,
    /// The host it advertises.
    pub host: String,
    /// The port it advertises.
    pub port: i32,
}

/// One partition of a topic: who leads it and which offsets it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionInfo {
    /// Partition number, from 0.
    pub partition: i32,
    /// Node id of the leader broker.
    pub leader: i32,
    /// Node ids holding a copy.
    pub replicas: Vec<i32>,
    /// Node ids of the in-sync replicas.
    pub isr: Vec<i32>,
    /// Oldest offset still stored (when watermarks were asked for).
    pub low: Option<i64>,
    /// Offset the next message will get (when watermarks were asked for).
    pub high: Option<i64>,
    /// A per-partition error from the broker, if any.
    pub error: Option<String>,
}

/// A topic and its partitions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Its partitions, by number.
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// How many messages the topic holds now (sum of high − low), if watermarks were fetched.
    pub fn message_count(&self) -> Option<i64> {
        self.partitions.iter().map(|p| Some(p.high? - p.low?)).sum()
    }
}

/// What `kcat -L` shows: the brokers and the topics with their partitions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterMetadata {
    /// The bootstrap servers that answered.
    pub bootstrap: String,
    /// The cluster id, when the broker reports one.
    pub cluster_id: Option<String>,
    /// The broker that answered the metadata request.
    pub answered_by: String,
    /// All brokers.
    pub brokers: Vec<BrokerInfo>,
    /// Topics (one, or all), sorted by name.
    pub topics: Vec<TopicInfo>,
}

/// Asks the cluster for its metadata: brokers, and one topic or all of them.
/// With `with_watermarks`, also asks each partition's leader for its watermarks.
///
/// A topic that does not exist is an [`Error::UnknownTopic`]: this never
/// auto-creates it (the client sets `allow.auto.create.topics=false`).
pub fn cluster_metadata(
    settings: &KafkaSettings,
    topic: Option<&str>,
    with_watermarks: bool,
) -> Result<ClusterMetadata> {
    if let Some(name) = topic {
        validate_topic_name(name)?;
    }
    let client = metadata_client(settings)?;
    let metadata = client
        .fetch_metadata(topic, settings.timeout())
        .map_err(|e| request_error(&client, settings, "fetching metadata", e))?;
    let cluster_id = client.client().fetch_cluster_id(settings.timeout());

    let brokers = metadata
        .brokers()
        .iter()
        .map(|b| BrokerInfo {
            id: b.id(),
            host: b.host().to_string(),
            port: b.port(),
        })
        .collect();

    let mut topics = Vec::new();
    for t in metadata.topics() {
        if let Some(error) = t.error() {
            if is_unknown_topic(error) {
                return Err(Error::UnknownTopic {
                    topic: t.name().to_string(),
                    bootstrap: settings.bootstrap().to_string(),
                });
            }
            return Err(Error::kafka(
                format!("describing topic '{}'", t.name()),
                rdkafka::error::KafkaError::MetadataFetch(RDKafkaErrorCode::from(error)),
            ));
        }
        let mut partitions = Vec::new();
        for p in t.partitions() {
            let (low, high) = if with_watermarks {
                let (low, high) = client
                    .fetch_watermarks(t.name(), p.id(), settings.timeout())
                    .map_err(|e| {
                        settings.client_error(format!("watermarks of {}[{}]", t.name(), p.id()), e)
                    })?;
                (Some(low), Some(high))
            } else {
                (None, None)
            };
            partitions.push(PartitionInfo {
                partition: p.id(),
                leader: p.leader(),
                replicas: p.replicas().to_vec(),
                isr: p.isr().to_vec(),
                low,
                high,
                error: p
                    .error()
                    .map(|e| format!("{:?}", RDKafkaErrorCode::from(e))),
            });
        }
        partitions.sort_by_key(|p| p.partition);
        topics.push(TopicInfo {
            name: t.name().to_string(),
            partitions,
        });
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));

    Ok(ClusterMetadata {
        bootstrap: settings.bootstrap().to_string(),
        cluster_id,
        answered_by: metadata.orig_broker_name().to_string(),
        brokers,
        topics,
    })
}

/// Lists all topics with their partitions and watermarks.
pub fn list_topics(settings: &KafkaSettings) -> Result<Vec<TopicInfo>> {
    Ok(cluster_metadata(settings, None, true)?.topics)
}

/// Describes one topic: partitions, leaders, replicas and watermarks.
pub fn describe_topic(settings: &KafkaSettings, topic: &str) -> Result<TopicInfo> {
    Ok(one_topic(settings, topic, true)?.0)
}

/// One topic of a metadata answer, and the cluster id the answer carried.
fn one_topic(
    settings: &KafkaSettings,
    topic: &str,
    with_watermarks: bool,
) -> Result<(TopicInfo, Option<String>)> {
    let metadata = cluster_metadata(settings, Some(topic), with_watermarks)?;
    let info = metadata
        .topics
        .into_iter()
        .find(|t| t.name == topic)
        .ok_or_else(|| Error::UnknownTopic {
            topic: topic.to_string(),
            bootstrap: settings.bootstrap().to_string(),
        })?;
    Ok((info, metadata.cluster_id))
}

/// One topic's partitions and leaders, without watermarks: a single Metadata
/// request, for callers that only need to know the topic exists and its
/// partitions (watermarks cost two ListOffsets requests per partition).
pub fn topic_partitions(settings: &KafkaSettings, topic: &str) -> Result<TopicInfo> {
    Ok(one_topic(settings, topic, false)?.0)
}

/// [`topic_partitions`], and the cluster id the same answer carried: a
/// consumer's builder learns the engine from it without a request of its own.
pub fn topic_partitions_and_cluster_id(
    settings: &KafkaSettings,
    topic: &str,
) -> Result<(TopicInfo, Option<String>)> {
    one_topic(settings, topic, false)
}

/// Whether the topic exists.
pub fn topic_exists(settings: &KafkaSettings, topic: &str) -> Result<bool> {
    match cluster_metadata(settings, Some(topic), false) {
        Ok(_) => Ok(true),
        Err(Error::UnknownTopic { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The most partitions a topic of the lab may have. Kafka itself sets no
/// limit, but a single-broker lab has no use for more, and a typo (100000) made
/// the embedded broker unusable.
pub const MAX_PARTITIONS: i32 = 1000;

/// Creates a topic with `partitions` partitions (replication factor 1, which is
/// what a single-broker lab has), then waits until its metadata shows a leader
/// for every partition, so the next produce does not race the creation.
pub fn create_topic(settings: &KafkaSettings, topic: &str, partitions: i32) -> Result<TopicInfo> {
    validate_topic_name(topic)?;
    if partitions < 1 {
        return Err(Error::config(
            Setting::Partitions,
            format!("a topic needs at least 1 partition, got {partitions}"),
        ));
    }
    if partitions > MAX_PARTITIONS {
        return Err(Error::config(
            Setting::Partitions,
            format!(
                "{partitions} partitions is beyond this lab's ceiling of {MAX_PARTITIONS}: each costs the \
                 broker files and the clients requests (tansu 0.6 took 13.9 s to create 2,000 and \
                 stopped answering for minutes at 100,000)"
            ),
        ));
    }
    let admin = admin_client(settings, "CreateTopics")?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new()
        .operation_timeout(Some(settings.timeout()))
        .request_timeout(Some(settings.timeout()));
    let results = futures_executor::block_on(admin.create_topics([&new_topic], &options))
        .map_err(|e| settings.client_error("CreateTopics", e))?;
    for result in results {
        if let Err((name, code)) = result {
            return Err(match code {
                RDKafkaErrorCode::TopicAlreadyExists => Error::TopicExists {
                    topic: name,
                    bootstrap: settings.bootstrap().to_string(),
                },
                _ => Error::kafka(
                    format!("creating topic '{name}'"),
                    rdkafka::error::KafkaError::AdminOp(code),
                ),
            });
        }
    }
    wait_for_leaders(settings, topic, partitions)
}

/// Creates the topic unless it exists; returns its description either way.
/// The boolean is true when this call created it.
pub fn ensure_topic(
    settings: &KafkaSettings,
    topic: &str,
    partitions: i32,
) -> Result<(TopicInfo, bool)> {
    if topic_exists(settings, topic)? {
        return Ok((describe_topic(settings, topic)?, false));
    }
    Ok((create_topic(settings, topic, partitions)?, true))
}

/// The cluster id tansu reports unless told another (its `--kafka-cluster-id`).
pub const TANSU_CLUSTER_ID: &str = "tansu_cluster";

/// The cluster id nisshi reports unless told another.
pub const NISSHI_CLUSTER_ID: &str = "nisshi_cluster";

/// Cluster ids of engines on which deleting one topic deletes them all: tansu
/// 0.6 (and nisshi 0.7.0-pre.2) answer one DeleteTopics by emptying their
/// topic, record and committed-offset tables (measured with this crate and with
/// confluent-kafka's `delete_topics`). These are their own default ids.
pub const ENGINES_THAT_WIPE_ON_DELETE: &[&str] = &[TANSU_CLUSTER_ID, NISSHI_CLUSTER_ID];

/// Whether deleting a topic would wipe the whole broker there (see
/// [`ENGINES_THAT_WIPE_ON_DELETE`]).
pub fn delete_wipes_the_broker(settings: &KafkaSettings) -> Result<bool> {
    let cluster_id = cluster_metadata(settings, None, false)?.cluster_id;
    Ok(cluster_id.is_some_and(|id| ENGINES_THAT_WIPE_ON_DELETE.contains(&id.as_str())))
}

/// Deletes a topic and all its messages. On an engine where that deletes every
/// topic (nisshi 0.7, tansu 0.6), refuses unless `accept_wiping_the_broker`:
/// the user's other topics, messages and committed offsets would go too.
pub fn delete_topic(
    settings: &KafkaSettings,
    topic: &str,
    accept_wiping_the_broker: bool,
) -> Result<()> {
    validate_topic_name(topic)?;
    if !accept_wiping_the_broker && delete_wipes_the_broker(settings)? {
        return Err(Error::config(
            Setting::WipeConsent,
            format!(
                "not deleting '{topic}': on this broker (nisshi 0.7 or tansu 0.6, by its \
                 cluster id) deleting one topic deletes every topic, message and committed \
                 offset. Leave the topic (it costs nothing), or accept losing everything"
            ),
        ));
    }
    let admin = admin_client(settings, "DeleteTopics")?;
    let options = AdminOptions::new()
        .operation_timeout(Some(settings.timeout()))
        .request_timeout(Some(settings.timeout()));
    let results = futures_executor::block_on(admin.delete_topics(&[topic], &options))
        .map_err(|e| settings.client_error("DeleteTopics", e))?;
    for result in results {
        if let Err((name, code)) = result {
            return Err(match code {
                RDKafkaErrorCode::UnknownTopicOrPartition => Error::UnknownTopic {
                    topic: name,
                    bootstrap: settings.bootstrap().to_string(),
                },
                _ => Error::kafka(
                    format!("deleting topic '{name}'"),
                    rdkafka::error::KafkaError::AdminOp(code),
                ),
            });
        }
    }
    Ok(())
}

/// Kafka's rule for topic names: 1–249 characters of `a-z A-Z 0-9 . _ -`, not `.` or `..`.
pub fn validate_topic_name(topic: &str) -> Result<()> {
    let legal = topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if topic.is_empty() || topic.len() > 249 || !legal || topic == "." || topic == ".." {
        return Err(Error::config(
            Setting::Topic,
            format!(
                "'{topic}' is not a valid topic name: use 1-249 characters of a-z A-Z 0-9 . _ -"
            ),
        ));
    }
    Ok(())
}

/// Keeps the client's last error (connection refused, SASL handshake failed,
/// ...), which librdkafka reports apart from the request that then times out.
#[derive(Default)]
pub(crate) struct LastError(Mutex<Option<String>>);

impl LastError {
    pub(crate) fn take(&self) -> Option<String> {
        self.0.lock().ok().and_then(|mut last| last.take())
    }

    /// Keeps `said`, unless what is kept is a refused login: the disconnects
    /// that follow one say less.
    fn keep(&self, said: String) {
        if let Ok(mut last) = self.0.lock() {
            if !last.as_deref().is_some_and(is_login_failure) || is_login_failure(&said) {
                *last = Some(said);
            }
        }
    }
}

impl ClientContext for LastError {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            self.keep(format!("{facility}: {message}"));
        }
        // Passed on as every client's log is (to the `log` crate): `-X debug=...`
        // shows this client's lines too.
        DefaultClientContext.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.keep(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for LastError {}

/// A consumer used only for metadata and watermark requests. Being a consumer
/// with `allow.auto.create.topics=false`, asking about a missing topic never creates it.
pub(crate) fn metadata_client(settings: &KafkaSettings) -> Result<BaseConsumer<LastError>> {
    settings
        .client_config()
        .set("allow.auto.create.topics", "false")
        .create_with_context(LastError::default())
        .map_err(|e| settings.client_error("creating a metadata client", e))
}

/// The error for a failed request by `client`, with what the client last reported.
fn request_error(
    client: &BaseConsumer<LastError>,
    settings: &KafkaSettings,
    context: &str,
    error: KafkaError,
) -> Error {
    // Error events wait in the client's queue until it is polled.
    let _ = client.poll(Duration::ZERO);
    settings
        .client_error(context, error)
        .with_client_said(client.context().take())
}

/// An admin client, after checking that a broker answers and that it is not
/// librdkafka's mock cluster, which has no CreateTopics/DeleteTopics (a request
/// would only time out).
fn admin_client(
    settings: &KafkaSettings,
    request: &str,
) -> Result<AdminClient<DefaultClientContext>> {
    let probe = metadata_client(settings)?;
    probe
        .fetch_metadata(None, settings.timeout())
        .map_err(|e| request_error(&probe, settings, "fetching metadata", e))?;
    let cluster_id = probe.client().fetch_cluster_id(settings.timeout());
    if cluster_id.is_some_and(|id| id.starts_with(MOCK_CLUSTER_ID_PREFIX)) {
        return Err(Error::Unsupported {
            what: request.to_string(),
            broker: format!("librdkafka mock engine at {}", settings.bootstrap()),
            hint: "Create topics when starting it: `kafka-lab broker --engine mock --topic \
                   NAME:PARTITIONS`, or use the nisshi engine or Apache Kafka."
                .to_string(),
        });
    }
    settings
        .client_config()
        .create()
        .map_err(|e| settings.client_error("creating an admin client", e))
}

/// librdkafka's mock cluster names itself `mockCluster<hex>`.
pub const MOCK_CLUSTER_ID_PREFIX: &str = "mockCluster";

/// The cluster id the broker at `settings`' bootstrap address reports, if it
/// answers within `wait`.
pub(crate) fn cluster_id(settings: &KafkaSettings, wait: Duration) -> Option<String> {
    let client = metadata_client(settings).ok()?;
    client.fetch_metadata(None, wait).ok()?;
    client.client().fetch_cluster_id(wait)
}

fn wait_for_leaders(settings: &KafkaSettings, topic: &str, partitions: i32) -> Result<TopicInfo> {
    let deadline = Instant::now() + settings.timeout();
    loop {
        match describe_topic(settings, topic) {
            Ok(info)
                if info.partitions.len() == partitions as usize
                    && info.partitions.iter().all(|p| p.leader >= 0) =>
            {
                return Ok(info)
            }
            Ok(_) | Err(Error::UnknownTopic { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(info) => return Ok(info),
            Err(e) => return Err(e),
        }
    }
}

fn is_unknown_topic(error: RDKafkaRespErr) -> bool {
    matches!(
        RDKafkaErrorCode::from(error),
        RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic
    )
}

impl AsTable for ClusterMetadata {
    fn as_table(&self) -> Table {
        let brokers: Vec<String> = self
            .brokers
            .iter()
            .map(|b| format!("{} at {}:{}", b.id, b.host, b.port))
            .collect();
        let mut table = topics_table(&self.topics).with_title(format!(
            "Metadata for {} (cluster {}, from broker {}): {} broker(s): {}",
            self.bootstrap,
            self.cluster_id.as_deref().unwrap_or("-"),
            self.answered_by,
            self.brokers.len(),
            brokers.join(", ")
        ));
        table.footer = Some(format!("{} topic(s)", self.topics.len()));
        table
    }
}

impl AsTable for TopicInfo {
    fn as_table(&self) -> Table {
        topics_table(std::slice::from_ref(self)).with_title(format!("Topic {}", self.name))
    }
}

/// One row per partition, as `kafka-topics --describe` shows them.
fn topics_table(topics: &[TopicInfo]) -> Table {
    let mut table = Table::new(&[
        "topic",
        "partition",
        "leader",
        "replicas",
        "isr",
        "low",
        "high",
        "messages",
    ]);
    let join = |ids: &[i32]| {
        ids.iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    for topic in topics {
        for p in &topic.partitions {
            table.push_row(vec![
                topic.name.clone(),
                p.partition.to_string(),
                p.leader.to_string(),
                join(&p.replicas),
                join(&p.isr),
                crate::display::or_dash(p.low),
                crate::display::or_dash(p.high),
                crate::display::or_dash(p.high.zip(p.low).map(|(h, l)| h - l)),
            ]);
        }
    }
    table
}

crate::shown_as_table!(ClusterMetadata, TopicInfo);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_counts_are_checked_before_any_request() {
        // No broker at this address: the checks answer before any connection.
        let settings = KafkaSettings::new("127.0.0.1:1");
        for partitions in [0, -1, MAX_PARTITIONS + 1, 100_000] {
            let error = create_topic(&settings, "t", partitions).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{partitions}: {error}");
        }
    }

    #[test]
    fn topic_names_follow_kafkas_rule() {
        for good in ["weather", "weather.v2", "a_b-c", &"x".repeat(249)] {
            assert!(validate_topic_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "has space", "slash/no", &"x".repeat(250)] {
            let error = validate_topic_name(bad).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{bad}");
        }
    }
}
