//! Clients: the one place where consumers and producers are configured.
//!
//! A Kafka client is a bag of properties handed to librdkafka. The same names
//! work in every librdkafka client (kcat `-X`, confluent-kafka, rust-rdkafka), so
//! this module spells them out instead of hiding them:
//!
//! | consumer property | what it decides | here |
//! |---|---|---|
//! | `bootstrap.servers` | where to connect first | from [`KafkaSettings`] |
//! | `group.id` | the group whose committed offsets it uses | [`ConsumerBuilder::group`], else a throwaway id |
//! | `auto.offset.reset` | where a group with no committed offset starts: `earliest` or `latest` | [`ConsumerBuilder::auto_offset_reset`] |
//! | `enable.auto.commit` | commit on a timer in the background | `false`: the lab commits after it has handled a batch |
//! | `isolation.level` | skip aborted transactions (`read_committed`) or not | [`ConsumerBuilder::isolation`] |
//! | `enable.partition.eof` | report "end of partition" | `true`: reads stop at the end, like `kcat -e` |
//! | `allow.auto.create.topics` | create a missing topic on subscribe | `false`: a typo is an error |
//! | `session.timeout.ms` | how soon a silent member is declared dead | 6 s (librdkafka: 45 s) |
//! | `heartbeat.interval.ms` | how often a member says it is alive | 2 s (librdkafka: 3 s) |
//! | `fetch.queue.backoff.ms` | how long fetching pauses when the local queue is full | 0 (librdkafka: 1 s) |
//! | `fetch.wait.max.ms` | how long a fetch that finds nothing waits | by engine: 1 s on nisshi (and a broker that does not answer), 0.3 s on the mock, 0.1 s on tansu, librdkafka's 0.5 s elsewhere |
//! | `fetch.max.bytes` | how much one fetch response carries | librdkafka's 50 MB (below `receive.message.max.bytes` when only that is set) |
//!
//! Properties given by the user (`-X`, `-F`) win over these defaults; what a
//! builder sets explicitly wins over both. [`ConsumerBuilder::config`] shows the
//! configuration a consumer gets, but for `fetch.wait.max.ms`, which
//! [`ConsumerBuilder::build`] sets for the engine it finds (unless chosen).
//!
//! Every client is wrapped in [`DroppedByCreator`], so that a notebook can keep
//! it in a variable and drop it in any later cell.
//!
//! The consumer's **context** ([`GroupEvents`]) is where librdkafka calls back
//! on rebalances and commits: it records them so a reader can see what the
//! group did. The poll loop itself is in [`crate::consume::poll`].
//!
//! Beside this file: `consumer.rs` ([`KafkaConsumer`], what it keeps between
//! polls, and its close), `dropped.rs` ([`DroppedByCreator`]),
//! `group_events.rs` ([`GroupEvents`]), `commit.rs` (a synchronous commit with
//! a bounded wait) and `fetch_wait.rs` (`fetch.wait.max.ms` by engine).
//!
//! kcat equivalent: `kcat -b HOST -G GROUP -X auto.offset.reset=earliest topic`.

mod commit;
mod consumer;
mod dropped;
mod fetch_wait;
mod group_events;
pub use consumer::KafkaConsumer;
pub use dropped::DroppedByCreator;
pub use fetch_wait::{
    fetch_wait_ms, FETCH_WAIT_MS, LIBRDKAFKA_FETCH_WAIT_MS, MOCK_FETCH_WAIT_MS, TANSU_FETCH_WAIT_MS,
};
pub use group_events::{GroupEvent, GroupEvents};

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::config::KafkaSettings;
use crate::error::{Error, Result};

/// `auto.offset.reset`: where a group member starts in a partition for which its
/// group has no committed offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AutoOffsetReset {
    /// The oldest stored offset (the low watermark).
    Earliest,
    /// The next offset to be written (the high watermark).
    Latest,
}

impl AutoOffsetReset {
    /// The property value.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoOffsetReset::Earliest => "earliest",
            AutoOffsetReset::Latest => "latest",
        }
    }
}

/// `isolation.level`: whether a consumer sees messages of aborted transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum IsolationLevel {
    /// Only committed transactions (and non-transactional messages): librdkafka's default.
    ReadCommitted,
    /// Everything written, aborted transactions included.
    ReadUncommitted,
}

impl IsolationLevel {
    /// The property value.
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationLevel::ReadCommitted => "read_committed",
            IsolationLevel::ReadUncommitted => "read_uncommitted",
        }
    }
}

impl fmt::Display for IsolationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds every consumer of the crate: a group member or a reader of assigned
/// partitions, with a start policy, an isolation level and any other property.
#[derive(Clone, Debug)]
pub struct ConsumerBuilder {
    settings: KafkaSettings,
    group: Option<String>,
    properties: BTreeMap<String, String>,
    /// The broker's cluster id, when a metadata answer already gave it.
    cluster_id: Option<String>,
}

/// How a consumer joins its group and fetches: set on every consumer the
/// crate builds (unless the user or the builder says otherwise), and given to
/// the benchmark's peers so that they are measured on the same footing.
pub const JOIN_AND_FETCH: [(&str, &str); 3] = [
    // A member that dies is noticed when its session times out; until then its
    // partitions wait. 6 s, the least Apache Kafka accepts
    // (group.min.session.timeout.ms), keeps a restarted consumer quick, and
    // matters on two engines: the mock ignores LeaveGroup, and nisshi 0.7 holds
    // every JoinGroup for half the session timeout (3 s here, 22.5 s with
    // librdkafka's 45 s).
    ("session.timeout.ms", "6000"),
    // A third of the session: a member misses two heartbeats before it is dead.
    ("heartbeat.interval.ms", "2000"),
    // How long the broker may hold a fetch for data: nisshi 0.7 needs a long
    // wait; other brokers get a shorter one when a consumer is built (see
    // `fetch_wait`). How much a response may carry (fetch.max.bytes) is
    // librdkafka's 50 MB: with a cap of 1 MiB (sessions 6-12), `consume` read
    // 200,000 readings in 6.8 s on nisshi (5.9-6.2 s without) and in
    // 10.0-10.2 s on tansu 0.6 (3.8-3.9 s without; session 13,
    // docs/performance.md).
    ("fetch.wait.max.ms", FETCH_WAIT_MS),
];

/// librdkafka's own `fetch.max.bytes`.
const LIBRDKAFKA_FETCH_MAX_BYTES: u64 = 52_428_800;

/// Set unless the user (`-X`, `-F`) or the builder chose otherwise.
const CONSUMER_DEFAULTS: [(&str, &str); 6] = [
    JOIN_AND_FETCH[0],
    JOIN_AND_FETCH[1],
    JOIN_AND_FETCH[2],
    ("auto.offset.reset", "earliest"),
    // librdkafka's 1 s pause of a partition's fetches once its local queue is
    // full stalled reads of 160,000 readings for 0.5-0.9 s at a time on the
    // mock engine; resuming at once took them from 1.8 s to 1.1 s.
    ("fetch.queue.backoff.ms", "0"),
    // A notebook's consumer waits between cells while its student reads and
    // writes: librdkafka's 5 minutes between polls would throw it out of its
    // group. A dead process is still noticed through session.timeout.ms.
    ("max.poll.interval.ms", "86400000"),
];

impl ConsumerBuilder {
    /// A consumer for `settings`: no group yet, `auto.offset.reset=earliest`,
    /// no auto-commit.
    pub fn new(settings: &KafkaSettings) -> Self {
        let mut properties = BTreeMap::new();
        // The lab commits itself, after a batch is handled (see `consume`).
        properties.insert("enable.auto.commit".to_string(), "false".to_string());
        // The poll loop stops at the end of the partitions (kcat -e).
        properties.insert("enable.partition.eof".to_string(), "true".to_string());
        // Reading a topic that does not exist is an error, not a creation.
        properties.insert("allow.auto.create.topics".to_string(), "false".to_string());
        ConsumerBuilder {
            settings: settings.clone(),
            group: None,
            properties,
            cluster_id: None,
        }
    }

    /// The cluster id of the broker it will read from, when a metadata answer
    /// already gave it: [`ConsumerBuilder::build`] then chooses
    /// `fetch.wait.max.ms` for that engine without asking the broker itself
    /// (a client and a request of its own: measured on tansu, `consume`'s
    /// consumer was created 0.126 s after the process started with the
    /// question, 0.012 s without).
    pub fn cluster_id(mut self, id: Option<&str>) -> Self {
        self.cluster_id = id.map(str::to_string);
        self
    }

    /// `group.id`: join this group (subscribe) or use its committed offsets.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// `auto.offset.reset`.
    pub fn auto_offset_reset(self, reset: AutoOffsetReset) -> Self {
        self.set("auto.offset.reset", reset.as_str())
    }

    /// `isolation.level`.
    pub fn isolation(self, level: IsolationLevel) -> Self {
        self.set("isolation.level", level.as_str())
    }

    /// Any librdkafka property, e.g. `("partition.assignment.strategy", "cooperative-sticky")`.
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.properties.insert(key.to_string(), value.into());
        self
    }

    /// The group, if any.
    pub fn group_id(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// The configuration the consumer gets: the settings (`bootstrap.servers`,
    /// `-X`, `-F`), the defaults where those set nothing, then this builder's
    /// properties. Without a group, a throwaway `group.id` (librdkafka needs
    /// one even to assign partitions by hand; such a consumer never commits).
    pub fn config(&self) -> ClientConfig {
        let mut config = self
            .settings
            .client_config_with_defaults(&CONSUMER_DEFAULTS);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        // librdkafka raises an unchosen fetch.max.bytes (50 MB) above a
        // receive.message.max.bytes the user lowered, and then refuses the
        // pair: a response must fit what the client receives (with 512 bytes
        // of framing).
        let receive_max = config
            .get("receive.message.max.bytes")
            .and_then(|bytes| bytes.parse::<u64>().ok());
        if let (Some(receive_max), false) = (receive_max, self.sets("fetch.max.bytes")) {
            if receive_max < LIBRDKAFKA_FETCH_MAX_BYTES + 512 {
                config.set(
                    "fetch.max.bytes",
                    receive_max.saturating_sub(512).to_string(),
                );
            }
        }
        let group = self
            .group
            .clone()
            .unwrap_or_else(|| crate::consume::fresh_group_id("no-group"));
        config.set("group.id", group);
        config
    }

    /// Whether the user's settings or this builder set `key` (rather than a default).
    fn sets(&self, key: &str) -> bool {
        self.properties.contains_key(key) || self.settings.properties().contains_key(key)
    }

    /// Creates the consumer; it reads nothing until it subscribes or is assigned
    /// partitions.
    pub fn build(&self) -> Result<KafkaConsumer> {
        let mut config = self.config();
        if !self.sets("fetch.wait.max.ms") {
            // The engine decides the wait: known from its cluster id, or asked
            // (once per address).
            let wait = match &self.cluster_id {
                Some(id) => fetch_wait::fetch_wait_for_cluster(id),
                None => fetch_wait_ms(&self.settings),
            };
            config.set("fetch.wait.max.ms", wait);
        }
        let session_timeout = config
            .get("session.timeout.ms")
            .and_then(|ms| ms.parse().ok())
            .map_or(Duration::from_secs(45), Duration::from_millis);
        let consumer: BaseConsumer<GroupEvents> = config
            .create_with_context(GroupEvents::default())
            .map_err(|e| self.settings.client_error("creating a consumer", e))?;
        Ok(KafkaConsumer::new(
            consumer,
            self.settings.clone(),
            self.group.clone(),
            session_timeout,
        ))
    }
}

/// `topic`'s partitions with an offset each, as librdkafka takes them.
pub fn offset_list(topic: &str, offsets: &BTreeMap<i32, i64>) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for (partition, offset) in offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|e| Error::kafka("building an offset list", e))?;
    }
    Ok(tpl)
}

/// The partition numbers of a list.
pub(crate) fn partitions_of(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

/// Set unless the user (`-X`, `-F`) chose otherwise.
///
/// - `acks=all`: the leader answers once every in-sync replica has the batch.
/// - `enable.idempotence=true`: a retry cannot write a message twice.
/// - `allow.auto.create.topics=false`: a missing topic is an error.
/// - `message.timeout.ms`: the settings' timeout, so a missing broker is
///   reported, not waited on.
/// - `enable.sparse.connections=false`: connect to a broker as soon as the
///   metadata names it. librdkafka 2.12 drops the bootstrap connection once it
///   knows the brokers, and with sparse connections it opens the next one only
///   after a pause (half of `reconnect.backoff.ms`, 50 ms): measured on the
///   mock, `produce --count 1` took 0.07-0.08 s with the pause, 0.05 s without.
/// - `linger.ms=1`: how long a batch waits for more messages before it goes
///   (librdkafka's default is 5 ms). A burst fills batches in well under a
///   millisecond anyway; with 5 ms, librdkafka's broker thread sat idle while
///   batches aged, then wrote them in a rush. Measured on the mock,
///   `produce --quiet` of 1,000,000 readings alternated with `kcat -P`, 15
///   rounds: 0.84x kcat's speed with 5 ms, **1.11x** with 1 ms, 0.99x with
///   2 ms, 0.78x with 0 (a request per few messages); kcat itself with 1 ms:
///   0.98x. nisshi and tansu (200,000, one and 32 partitions) took the same
///   time either way: they, not the batching, set the pace. A paced reading
///   also goes out 4 ms sooner (docs/performance.md, session 15).
pub fn producer_config(settings: &KafkaSettings, extra_defaults: &[(&str, &str)]) -> ClientConfig {
    let timeout_ms = settings.timeout().as_millis().to_string();
    let mut defaults = vec![
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("allow.auto.create.topics", "false"),
        ("message.timeout.ms", timeout_ms.as_str()),
        ("enable.sparse.connections", "false"),
        ("linger.ms", "1"),
    ];
    for (key, value) in extra_defaults {
        defaults.retain(|(k, _)| k != key);
        defaults.push((key, value));
    }
    settings.client_config_with_defaults(&defaults)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::KafkaResult;

    fn property(config: &ClientConfig, key: &str) -> Option<String> {
        config.get(key).map(str::to_string)
    }

    #[test]
    fn a_larger_message_max_bytes_is_matched_by_librdkafka() {
        // fetch.max.bytes is left to librdkafka, which raises it to
        // message.max.bytes when nobody chose it (and refuses a chosen one
        // below it): a consumer for 60 MB messages is created as it is.
        let settings = KafkaSettings::new("127.0.0.1:1").with("message.max.bytes", "60000000");
        let config = ConsumerBuilder::new(&settings).config();
        assert_eq!(property(&config, "fetch.max.bytes"), None);
        let created: KafkaResult<BaseConsumer> = config.create();
        assert!(created.is_ok(), "{:?}", created.err());
        let chosen = settings.with("fetch.max.bytes", "6000000");
        let config = ConsumerBuilder::new(&chosen).config();
        assert_eq!(
            property(&config, "fetch.max.bytes").as_deref(),
            Some("6000000")
        );
        let refused = config.create::<BaseConsumer>().err().map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|e| e.contains("fetch.max.bytes")),
            "{refused:?}"
        );
        // Only receive.message.max.bytes lowered (as the stuck-partition hint
        // may lead a user to): the fetch fits under it.
        let receive =
            KafkaSettings::new("127.0.0.1:1").with("receive.message.max.bytes", "2000000");
        let config = ConsumerBuilder::new(&receive).config();
        assert_eq!(
            property(&config, "fetch.max.bytes").as_deref(),
            Some("1999488")
        );
        let created: KafkaResult<BaseConsumer> = config.create();
        assert!(created.is_ok(), "{:?}", created.err());
    }

    #[test]
    fn a_known_cluster_id_spares_the_engine_check() {
        use std::time::Instant;
        // Nothing listens at port 1: asking it which engine it is waits out
        // the check's second; a cluster id already known asks nothing.
        let settings = KafkaSettings::new("127.0.0.1:1");
        let started = Instant::now();
        let known = ConsumerBuilder::new(&settings)
            .cluster_id(Some(crate::topics::NISSHI_CLUSTER_ID))
            .build();
        let known_took = started.elapsed();
        assert!(known.is_ok());
        let started = Instant::now();
        let asked = ConsumerBuilder::new(&settings).build();
        let asked_took = started.elapsed();
        assert!(asked.is_ok());
        assert!(
            known_took < Duration::from_millis(300) && asked_took >= Duration::from_millis(900),
            "known: {known_took:?}, asked: {asked_took:?}"
        );
    }

    #[test]
    fn user_properties_beat_defaults_and_the_builder_beats_both() {
        let settings = KafkaSettings::new("h:1")
            .with("session.timeout.ms", "30000")
            .with("auto.offset.reset", "latest")
            .with("enable.auto.commit", "true");
        let config = ConsumerBuilder::new(&settings).config();
        assert_eq!(
            property(&config, "session.timeout.ms").as_deref(),
            Some("30000")
        );
        assert_eq!(
            property(&config, "auto.offset.reset").as_deref(),
            Some("latest")
        );
        // The lab's own commit discipline is not a default: it always holds.
        assert_eq!(
            property(&config, "enable.auto.commit").as_deref(),
            Some("false")
        );
        let config = ConsumerBuilder::new(&settings)
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .isolation(IsolationLevel::ReadUncommitted)
            .set("enable.auto.commit", "true")
            .config();
        assert_eq!(
            property(&config, "auto.offset.reset").as_deref(),
            Some("earliest")
        );
        assert_eq!(
            property(&config, "isolation.level").as_deref(),
            Some("read_uncommitted")
        );
        assert_eq!(
            property(&config, "enable.auto.commit").as_deref(),
            Some("true")
        );
        assert_eq!(
            property(&config, "bootstrap.servers").as_deref(),
            Some("h:1")
        );
    }

    #[test]
    fn a_consumer_without_a_group_gets_a_throwaway_id() {
        let settings = KafkaSettings::new("h:1");
        let config = ConsumerBuilder::new(&settings).config();
        let group = property(&config, "group.id").unwrap_or_default();
        assert!(group.starts_with("kafka-lab-no-group-"), "{group}");
        let config = ConsumerBuilder::new(&settings).group("g").config();
        assert_eq!(property(&config, "group.id").as_deref(), Some("g"));
        assert_eq!(
            property(&config, "enable.partition.eof").as_deref(),
            Some("true")
        );
    }

    #[test]
    fn producer_defaults_give_way_to_user_properties() {
        let settings = KafkaSettings::new("h:1").with("acks", "1");
        let config = producer_config(&settings, &[("linger.ms", "20")]);
        assert_eq!(property(&config, "acks").as_deref(), Some("1"));
        assert_eq!(property(&config, "linger.ms").as_deref(), Some("20"));
        let plain = producer_config(&settings, &[]);
        assert_eq!(property(&plain, "linger.ms").as_deref(), Some("1"));
        let chosen = settings.with("linger.ms", "50");
        let config = producer_config(&chosen, &[("linger.ms", "20")]);
        assert_eq!(property(&config, "linger.ms").as_deref(), Some("50"));
        assert_eq!(
            property(&config, "message.timeout.ms").as_deref(),
            Some("10000")
        );
        assert_eq!(
            property(&config, "enable.idempotence").as_deref(),
            Some("true")
        );
    }
}
