//! Two members of one group: assignment, rebalance, and a member that leaves.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::KafkaSettings;
use crate::consume::{ConsumeOptions, GroupEvent, StartFrom, WeatherConsumer};
use crate::display::{AsTable, Table};
use crate::error::{is_membership_refusal, Error, Result, Setting};
use crate::{offsets, topics};

/// The partition assignment strategy of a group (`partition.assignment.strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Assignor {
    /// Eager: contiguous ranges of partitions per member (librdkafka's default).
    Range,
    /// Eager: partitions dealt out one by one.
    RoundRobin,
    /// Incremental: only the partitions that move are revoked.
    CooperativeSticky,
}

impl Assignor {
    /// The librdkafka name.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }
}

/// One group event, as one member saw it, with when it saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberEvent {
    /// Milliseconds since the run started.
    pub at_ms: u64,
    /// `A` or `B`.
    pub member: String,
    /// What happened.
    pub event: String,
}

/// One reading read by one member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberRead {
    /// `A` or `B`.
    pub member: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

/// How to run [`two_members`].
#[derive(Clone, Debug)]
pub struct GroupRunOptions {
    /// A topic with at least two partitions, already holding the readings to share.
    pub topic: String,
    /// The group (use a fresh id: a group with commits starts where it left off).
    pub group: String,
    /// The assignment strategy both members use.
    pub assignor: Assignor,
    /// Member B leaves after it has read this many readings.
    pub b_leaves_after: usize,
    /// Messages per poll; each batch is committed before the next poll.
    pub batch: usize,
    /// The whole run must finish within this time.
    pub timeout: Duration,
}

impl GroupRunOptions {
    /// Defaults: a range assignor, B leaves after 10 readings, batches of 5, 60 s.
    pub fn new(topic: impl Into<String>, group: impl Into<String>) -> Self {
        GroupRunOptions {
            topic: topic.into(),
            group: group.into(),
            assignor: Assignor::Range,
            b_leaves_after: 10,
            batch: 5,
            timeout: Duration::from_secs(60),
        }
    }

    /// Sets the assignor.
    pub fn assignor(mut self, assignor: Assignor) -> Self {
        self.assignor = assignor;
        self
    }
}

/// What two members of one group did with a topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupRun {
    /// The strategy used.
    pub assignor: Assignor,
    /// The partitions each member held once both were in: (member, partitions).
    pub shared: Vec<(String, Vec<i32>)>,
    /// A's partitions after B left.
    pub after_b_left: Vec<i32>,
    /// Rebalances, commits and the departure, in order.
    pub timeline: Vec<MemberEvent>,
    /// Every reading read, by whom.
    pub reads: Vec<MemberRead>,
    /// Messages in the topic when the run started.
    pub expected: usize,
    /// Readings read more than once.
    pub duplicates: usize,
    /// Readings never read.
    pub missing: usize,
}

impl GroupRun {
    /// Readings read by one member.
    pub fn read_by(&self, member: &str) -> usize {
        self.reads.iter().filter(|r| r.member == member).count()
    }

    /// Different readings read, by either member.
    pub fn unique_reads(&self) -> usize {
        self.reads
            .iter()
            .map(|r| (r.partition, r.offset))
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// Two members, A and B, of one group read a topic: A joins and gets every
/// partition, then B joins and they share them; each commits after every batch; B leaves after
/// `b_leaves_after` readings and A takes over B's partitions from B's last
/// commit. Returns who held what, every group event, and the count of readings
/// lost or read twice (both 0 when commits follow processing).
///
/// Both members live inside this call (a notebook cell cannot keep clients
/// between cells), polled in turn from one thread.
pub fn two_members(settings: &KafkaSettings, options: &GroupRunOptions) -> Result<GroupRun> {
    let (all, expected) = partitions_and_messages(settings, &options.topic)?;
    let member_settings = settings
        .clone()
        .with("partition.assignment.strategy", options.assignor.name());
    let member = || {
        WeatherConsumer::new(
            &member_settings,
            ConsumeOptions::new(&options.topic)
                .group(&options.group)
                .from(StartFrom::Earliest)
                .follow()
                .max(usize::MAX),
        )
    };
    let clock = Clock::start(options.timeout);
    let mut run = GroupRun {
        assignor: options.assignor,
        shared: Vec::new(),
        after_b_left: Vec::new(),
        timeline: Vec::new(),
        reads: Vec::new(),
        expected,
        duplicates: 0,
        missing: 0,
    };

    // A joins alone and gets every partition.
    let mut a = member()?;
    while a.assignment().len() < all.len() {
        poll_member(&mut a, "A", options.batch, clock.started, &mut run)?;
        if clock.expired() {
            return Err(clock.too_late("member A's assignment of every partition"));
        }
    }
    let mut b = member()?;
    share(&mut a, &mut b, &all, options, &clock, &mut run)?;

    // B leaves: closing sends LeaveGroup, and the group rebalances at once (a
    // crashed member would hold its partitions until its session timed out).
    drop(b);
    run.timeline.push(MemberEvent {
        at_ms: clock.elapsed_ms(),
        member: "B".to_string(),
        event: "left the group (closed)".to_string(),
    });
    while run.unique_reads() < expected || a.assignment().len() < all.len() {
        poll_member(&mut a, "A", options.batch, clock.started, &mut run)?;
        if clock.expired() {
            break;
        }
    }
    run.after_b_left = a.assignment();
    let read_ids = run.unique_reads();
    run.duplicates = run.reads.len() - read_ids;
    run.missing = expected.saturating_sub(read_ids);
    Ok(run)
}

/// The topic's partitions (at least two, to share) and the messages it holds.
fn partitions_and_messages(
    settings: &KafkaSettings,
    topic: &str,
) -> Result<(BTreeSet<i32>, usize)> {
    let info = topics::topic_partitions(settings, topic)?;
    if info.partitions.len() < 2 {
        return Err(Error::config(
            Setting::Partitions,
            format!(
                "topic '{topic}' has {} partition(s): two members need at least two to share",
                info.partitions.len()
            ),
        ));
    }
    let expected: usize = offsets::watermarks(settings, topic)?
        .iter()
        .map(|(_, low, high)| (high - low) as usize)
        .sum();
    Ok((
        info.partitions.iter().map(|p| p.partition).collect(),
        expected,
    ))
}

/// Both members in: poll them in turn until they split every partition between
/// them, and B has read its share.
fn share(
    a: &mut WeatherConsumer,
    b: &mut WeatherConsumer,
    all: &BTreeSet<i32>,
    options: &GroupRunOptions,
    clock: &Clock,
    run: &mut GroupRun,
) -> Result<()> {
    loop {
        // While B joins, A reads one message at a time, so that some are left
        // for the two of them to share.
        let a_batch = if run.shared.is_empty() {
            1
        } else {
            options.batch
        };
        poll_member(a, "A", a_batch, clock.started, run)?;
        poll_member(b, "B", options.batch, clock.started, run)?;
        let (held_a, held_b) = (a.assignment(), b.assignment());
        let both_in = !held_a.is_empty() && !held_b.is_empty();
        let union: BTreeSet<i32> = held_a.iter().chain(&held_b).copied().collect();
        if both_in && union == *all && run.shared.is_empty() {
            run.shared = vec![("A".to_string(), held_a), ("B".to_string(), held_b)];
        }
        let b_done = run.read_by("B") >= options.b_leaves_after
            || (!run.shared.is_empty() && run.unique_reads() >= run.expected);
        if !run.shared.is_empty() && b_done {
            return Ok(());
        }
        if clock.expired() {
            return Err(clock.too_late(&format!(
                "the two members sharing the partitions (A holds {:?}, B holds {:?})",
                a.assignment(),
                b.assignment()
            )));
        }
    }
}

/// When the run started, and how long it may take.
struct Clock {
    started: Instant,
    timeout: Duration,
}

impl Clock {
    fn start(timeout: Duration) -> Clock {
        Clock {
            started: Instant::now(),
            timeout,
        }
    }

    fn expired(&self) -> bool {
        self.started.elapsed() >= self.timeout
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn too_late(&self, what: &str) -> Error {
        Error::Timeout {
            what: what.to_string(),
            waited: self.timeout,
            hint: Some("is the broker's group coordinator working?".to_string()),
        }
    }
}

/// One poll of one member: read up to `batch` messages, commit them, and file
/// the reads and group events under the member's name.
fn poll_member(
    consumer: &mut WeatherConsumer,
    name: &str,
    batch: usize,
    started: Instant,
    run: &mut GroupRun,
) -> Result<()> {
    let polled = consumer.poll_round(batch, Duration::from_millis(200))?;
    // A batch counts as read once its offsets are committed. While the group
    // rebalances, a broker may refuse the commit (the mock does; Kafka accepts
    // it until the new generation starts): the batch is then read again, by
    // whichever member holds its partition next.
    let committed = match consumer.commit(&polled) {
        Ok(_) => true,
        Err(Error::Kafka { error, .. }) if is_membership_refusal(&error) => {
            consumer.rewind(&polled)?;
            false
        }
        Err(other) => return Err(other),
    };
    let at_ms = started.elapsed().as_millis() as u64;
    for event in consumer.take_events() {
        // Commits are many and alike; the rebalances are the story.
        if matches!(event, GroupEvent::Committed(_)) {
            continue;
        }
        run.timeline.push(MemberEvent {
            at_ms,
            member: name.to_string(),
            event: event.to_string(),
        });
    }
    if !committed {
        run.timeline.push(MemberEvent {
            at_ms,
            member: name.to_string(),
            event: format!(
                "commit refused during the rebalance: {} reading(s) to read again",
                polled.records.len()
            ),
        });
        return Ok(());
    }
    for record in &polled.records {
        run.reads.push(MemberRead {
            member: name.to_string(),
            partition: record.partition,
            offset: record.offset,
        });
    }
    Ok(())
}

impl AsTable for GroupRun {
    fn as_table(&self) -> Table {
        let mut table = Table::new(&["at (ms)", "member", "event"]).with_title(format!(
            "Two members of one group, assignor {}",
            self.assignor.name()
        ));
        for e in &self.timeline {
            table.push_row(vec![e.at_ms.to_string(), e.member.clone(), e.event.clone()]);
        }
        let mut per_member: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &self.reads {
            *per_member.entry(r.member.as_str()).or_default() += 1;
        }
        table.footer = Some(format!(
            "shared: {}; after B left, A holds {:?}; read by A {}, by B {}; \
             expected {}, duplicates {}, missing {}",
            self.shared
                .iter()
                .map(|(m, p)| format!("{m} {p:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.after_b_left,
            per_member.get("A").copied().unwrap_or(0),
            per_member.get("B").copied().unwrap_or(0),
            self.expected,
            self.duplicates,
            self.missing
        ));
        table
    }
}

crate::shown_as_table!(GroupRun);
