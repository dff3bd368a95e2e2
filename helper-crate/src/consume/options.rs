//! What a read asks for: a topic, a group or none, where to start, when to stop.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::client::AutoOffsetReset;
use crate::error::{Error, Result, Setting};

/// Where a consumer starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum StartFrom {
    /// The oldest stored offset, when the group has no committed offset.
    Earliest,
    /// The next offset to be written, when the group has no committed offset.
    Latest,
    /// This offset in every partition read.
    Offset(i64),
    /// The first offset whose timestamp is at or after this time (ms since the epoch).
    Timestamp(i64),
}

impl StartFrom {
    /// The `auto.offset.reset` policy this start stands for, if it is one (a
    /// group subscription decides the start); `None` for a seek.
    pub fn reset_policy(self) -> Option<AutoOffsetReset> {
        match self {
            StartFrom::Earliest => Some(AutoOffsetReset::Earliest),
            StartFrom::Latest => Some(AutoOffsetReset::Latest),
            StartFrom::Offset(_) | StartFrom::Timestamp(_) => None,
        }
    }

    /// Whether this start is decided by `auto.offset.reset` (group subscription)
    /// rather than by seeking.
    pub fn is_reset_policy(self) -> bool {
        self.reset_policy().is_some()
    }
}

impl FromStr for StartFrom {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            Error::config(
                Setting::StartFrom,
                format!(
                    "bad start position '{text}': expected earliest, latest, an offset (e.g. 5) \
                     or @TIMESTAMP_MS (e.g. @1732500000000)"
                ),
            )
        };
        match text.trim().to_ascii_lowercase().as_str() {
            "earliest" | "beginning" | "smallest" => Ok(StartFrom::Earliest),
            "latest" | "end" | "largest" => Ok(StartFrom::Latest),
            other => match other.strip_prefix('@') {
                Some(ms) => ms
                    .parse::<i64>()
                    .ok()
                    .filter(|ms| *ms >= 0)
                    .map(StartFrom::Timestamp)
                    .ok_or_else(bad),
                None => other
                    .parse::<i64>()
                    .ok()
                    .filter(|offset| *offset >= 0)
                    .map(StartFrom::Offset)
                    .ok_or_else(bad),
            },
        }
    }
}

impl fmt::Display for StartFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartFrom::Earliest => write!(f, "earliest"),
            StartFrom::Latest => write!(f, "latest"),
            StartFrom::Offset(offset) => write!(f, "{offset}"),
            StartFrom::Timestamp(ms) => write!(f, "@{ms}"),
        }
    }
}

/// What to read and when to stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumeOptions {
    /// The topic to read.
    pub topic: String,
    /// The consumer group, or `None` to read without one (nothing is committed).
    pub group: Option<String>,
    /// Where to start.
    pub from: StartFrom,
    /// Only this partition (all partitions when `None`).
    pub partition: Option<i32>,
    /// Stop after this many messages (poison pills included).
    pub max_messages: usize,
    /// Stop after this long, whatever else happens.
    pub timeout: Duration,
    /// Stop once every assigned partition has been read to its end (kcat `-e`).
    pub stop_at_end: bool,
    /// Commit offsets after each handled batch: `Some` when chosen, `None` for
    /// the default (see [`ConsumeOptions::commits`]).
    pub commit: Option<bool>,
    /// A topic for poison pills: their original bytes go there, with headers
    /// naming the error and where they came from, before their offsets are committed.
    pub dead_letter: Option<String>,
    /// Keep every reading in the [`super::ConsumeReport`] (to show or check them).
    /// A long-running reader that only streams rows (the CLI) turns this off, so
    /// its memory stays bounded by one batch.
    pub keep_records: bool,
    /// Ask, when the read ends, for each partition's high watermark and the
    /// group's committed offset ([`super::ConsumeReport::positions`]): what the
    /// lab's earliest/latest comparison shows. The committed offsets come from
    /// a client outside the group, one more connection and request: a reader
    /// that does not show them (the CLI) turns this off. Measured on nisshi,
    /// where each request waits behind the fetch in flight: 0.27 s of a 9 s
    /// read of 200,000 readings.
    pub positions_at_end: bool,
    /// The most messages handled (written, then committed) as one batch.
    pub batch_size: usize,
    /// Other consumer properties (librdkafka names), set last.
    pub properties: Vec<(String, String)>,
}

impl ConsumeOptions {
    /// Reads `topic` from the earliest offset without a group: at most 1000
    /// messages, at most 10 s, stopping at the end of the partitions.
    pub fn new(topic: impl Into<String>) -> Self {
        ConsumeOptions {
            topic: topic.into(),
            group: None,
            from: StartFrom::Earliest,
            partition: None,
            max_messages: 1000,
            timeout: Duration::from_secs(10),
            stop_at_end: true,
            commit: None,
            dead_letter: None,
            keep_records: true,
            positions_at_end: true,
            batch_size: DEFAULT_BATCH_SIZE,
            properties: Vec::new(),
        }
    }

    /// Sets a consumer property by its Kafka name, as a client configuration
    /// does: `group.id` is the group, `auto.offset.reset` (`earliest` or
    /// `latest`) where a group without a committed offset starts; any other
    /// property goes to the client as it is (librdkafka checks it).
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        match key {
            "group.id" => self.group = Some(value),
            "auto.offset.reset" => match value.parse::<StartFrom>() {
                Ok(from) if from.is_reset_policy() => self.from = from,
                _ => self.properties.push((key.to_string(), value)),
            },
            _ => self.properties.push((key.to_string(), value)),
        }
        self
    }

    /// Sets the group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Sets where to start.
    pub fn from(mut self, from: StartFrom) -> Self {
        self.from = from;
        self
    }

    /// Reads only one partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the maximum number of messages.
    pub fn max(mut self, max_messages: usize) -> Self {
        self.max_messages = max_messages;
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Keeps waiting for new messages at the end of the partitions (until the
    /// maximum or the timeout), instead of stopping there.
    pub fn follow(mut self) -> Self {
        self.stop_at_end = false;
        self
    }

    /// Chooses whether to commit after each batch, whatever the default.
    pub fn commit(mut self, commit: bool) -> Self {
        self.commit = Some(commit);
        self
    }

    /// Sends poison pills to `topic` (a dead-letter topic) instead of only skipping them.
    pub fn dead_letter(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter = Some(topic.into());
        self
    }

    /// Sets the most messages per batch.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Whether this read commits: as chosen with [`ConsumeOptions::commit`], else
    /// for a group subscription (`earliest`/`latest` of the whole topic) but not
    /// for a seek to an offset or a time, nor for one partition.
    pub fn commits(&self) -> bool {
        self.commit.unwrap_or(self.subscribes())
    }

    /// Whether this read joins the group's assignment (subscribe) rather than
    /// being assigned partitions and seeking.
    pub fn subscribes(&self) -> bool {
        self.group.is_some() && self.from.is_reset_policy() && self.partition.is_none()
    }

    /// Checks what can be checked before connecting.
    pub fn validate(&self) -> Result<()> {
        crate::topics::validate_topic_name(&self.topic)?;
        if self.max_messages == 0 {
            return Err(Error::config(
                Setting::MaxMessages,
                "the maximum message count must be at least 1",
            ));
        }
        if self.batch_size == 0 {
            return Err(Error::config(
                Setting::BatchSize,
                "a batch holds at least 1 message",
            ));
        }
        if self.commits() && self.group.is_none() {
            return Err(Error::config(
                Setting::Commit,
                "committing offsets needs a consumer group",
            ));
        }
        Ok(())
    }
}

/// Messages per batch unless chosen otherwise: each batch costs a CSV write
/// with fsync and a commit, so batches are as large as one poll round gives.
pub const DEFAULT_BATCH_SIZE: usize = 10_000;

/// A new group id that no consumer has used: `kafka-lab-<label>-<time>-<pid>`.
pub fn fresh_group_id(label: &str) -> String {
    let now = chrono::Utc::now();
    format!(
        "kafka-lab-{label}-{}-{}",
        now.format("%Y%m%d%H%M%S%3f"),
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_from_parses_the_usual_forms() {
        assert_eq!(
            "earliest".parse::<StartFrom>().unwrap(),
            StartFrom::Earliest
        );
        assert_eq!(
            "beginning".parse::<StartFrom>().unwrap(),
            StartFrom::Earliest
        );
        assert_eq!("LATEST".parse::<StartFrom>().unwrap(), StartFrom::Latest);
        assert_eq!("42".parse::<StartFrom>().unwrap(), StartFrom::Offset(42));
        assert_eq!(
            "@1732500000000".parse::<StartFrom>().unwrap(),
            StartFrom::Timestamp(1_732_500_000_000)
        );
        for bad in ["", "soon", "-3", "@", "@x", "1.5"] {
            let error = bad.parse::<StartFrom>().unwrap_err();
            assert_eq!(error.exit_code(), 2, "{bad}");
            assert!(error.to_string().contains("expected earliest"), "{error}");
            assert!(matches!(
                error,
                Error::Config {
                    setting: Setting::StartFrom,
                    ..
                }
            ));
        }
        assert_eq!(StartFrom::Timestamp(5).to_string(), "@5");
    }

    #[test]
    fn group_subscriptions_commit_by_default_and_a_choice_sticks() {
        let options = ConsumeOptions::new("weather");
        assert!(!options.commits());
        assert!(options.clone().group("g").commits());
        assert!(!options
            .clone()
            .group("g")
            .from(StartFrom::Offset(3))
            .commits());
        assert!(!options.clone().group("g").partition(0).commits());
        assert!(options.clone().from(StartFrom::Latest).group("g").commits());
        // A choice made before the group or the start is set is kept.
        assert!(!options.clone().commit(false).group("g").commits());
        assert!(options
            .clone()
            .commit(true)
            .group("g")
            .from(StartFrom::Offset(1))
            .commits());
    }

    #[test]
    fn validation_names_the_setting() {
        let error = ConsumeOptions::new("weather")
            .max(0)
            .validate()
            .unwrap_err();
        assert!(matches!(
            error,
            Error::Config {
                setting: Setting::MaxMessages,
                ..
            }
        ));
        let error = ConsumeOptions::new("weather")
            .commit(true)
            .validate()
            .unwrap_err();
        assert!(matches!(
            error,
            Error::Config {
                setting: Setting::Commit,
                ..
            }
        ));
        assert!(ConsumeOptions::new("weather").group("g").validate().is_ok());
        assert!(ConsumeOptions::new("bad topic").validate().is_err());
    }

    #[test]
    fn fresh_group_ids_differ() {
        let a = fresh_group_id("x");
        std::thread::sleep(Duration::from_millis(2));
        assert_ne!(a, fresh_group_id("x"));
        assert!(a.starts_with("kafka-lab-x-"));
    }
}
