//! Delivery reports: what comes back for every message sent, and the producer
//! that keeps them until they are taken.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message, Timestamp, ToBytes};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext, PurgeConfig};
use rdkafka::types::RDKafkaErrorCode;

use crate::client::{producer_config, DroppedByCreator};
use crate::config::KafkaSettings;
use crate::error::{Error, Result};

use super::topic_handle::TopicHandle;
use super::OFFSET_NOT_REPORTED;

/// A delivery report: where the message was written, or why it was not.
pub type Report<T> = std::result::Result<Written<T>, NotWritten<T>>;

/// A message the broker wrote: what was sent, and where it landed.
#[derive(Clone, Debug, PartialEq)]
pub struct Written<T> {
    /// Its place in the order of sends.
    pub sequence: usize,
    /// What the caller sent with it (a reading, or nothing).
    pub sent: T,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp.
    pub timestamp: Timestamp,
}

/// A message that was not written, and the client's reason.
#[derive(Clone, Debug, PartialEq)]
pub struct NotWritten<T> {
    /// Its place in the order of sends.
    pub sequence: usize,
    /// What the caller sent with it.
    pub sent: T,
    /// Why it failed.
    pub error: String,
}

/// The producer context: librdkafka calls `delivery` once per message, from
/// `poll`/`flush`, with what was sent alongside it; the report waits here until
/// the producer takes it.
pub struct DeliveryReports<T> {
    inbox: Mutex<Inbox<T>>,
}

/// The reports not yet taken, and what numbering them needs.
struct Inbox<T> {
    reports: Vec<Report<T>>,
    counted_from_nothing: CountedFromNothing,
}

impl<T> Default for DeliveryReports<T> {
    fn default() -> Self {
        DeliveryReports {
            inbox: Mutex::new(Inbox {
                reports: Vec::new(),
                counted_from_nothing: CountedFromNothing::default(),
            }),
        }
    }
}

/// Offsets librdkafka counts up from an answer that had none.
///
/// When the broker writes a batch but its answer is lost (a broker restart),
/// the idempotent producer sends the batch again; the broker refuses the copy
/// (`DUPLICATE_SEQUENCE_NUMBER`) and librdkafka counts the batch as delivered.
/// That answer carries offset -1 (with `acks=0` there is no answer: -1001), and
/// librdkafka numbers the batch's messages up from it: -1, 0, 1, ... Those are
/// not where the messages are. A batch's reports come together and in order, so
/// a run that starts below 0 and counts up by one is that batch; the
/// partition's next real offset never continues the run (a batch of N written
/// at B >= 0 is followed by B + N or more, and its run ends at N - 2).
#[derive(Debug, Default)]
struct CountedFromNothing {
    /// (topic, partition, last offset of the run) of each run still open.
    runs: Vec<(String, i32, i64)>,
}

impl CountedFromNothing {
    /// The offset to report for a delivered message of `topic` (asked only
    /// when a run may be involved): its own, or [`OFFSET_NOT_REPORTED`] when
    /// librdkafka counted it from nothing.
    fn offset<'a>(&mut self, topic: impl FnOnce() -> &'a str, partition: i32, offset: i64) -> i64 {
        if offset >= 0 && self.runs.is_empty() {
            return offset;
        }
        let topic = topic();
        let open = self
            .runs
            .iter()
            .position(|(t, p, _)| *p == partition && t == topic);
        if offset < 0 {
            // A run starts (or a new batch counted from nothing follows one).
            match open {
                Some(run) => self.runs[run].2 = offset,
                None => self.runs.push((topic.to_string(), partition, offset)),
            }
            return OFFSET_NOT_REPORTED;
        }
        match open {
            Some(run) if self.runs[run].2 + 1 == offset => {
                self.runs[run].2 = offset;
                OFFSET_NOT_REPORTED
            }
            Some(run) => {
                self.runs.swap_remove(run);
                offset
            }
            None => offset,
        }
    }
}

impl<T: Send + Sync> ClientContext for DeliveryReports<T> {}

impl<T: Send + Sync + 'static> ProducerContext for DeliveryReports<T> {
    type DeliveryOpaque = Box<(usize, T)>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Self::DeliveryOpaque) {
        let (sequence, sent) = *sent;
        let Ok(mut inbox) = self.inbox.lock() else {
            return;
        };
        let report = match result {
            Ok(message) => Ok(Written {
                sequence,
                sent,
                partition: message.partition(),
                offset: inbox.counted_from_nothing.offset(
                    || message.topic(),
                    message.partition(),
                    message.offset(),
                ),
                timestamp: message.timestamp(),
            }),
            Err((error, _message)) => Err(NotWritten {
                sequence,
                sent,
                error: error.to_string(),
            }),
        };
        inbox.reports.push(report);
    }
}

/// A producer that sends messages, each with a `T` that comes back in its
/// delivery report. [`super::WeatherProducer`] and [`super::RawProducer`] are made of it.
///
/// One thread sends, and serves the reports between sends: the sequence
/// numbers count its sends. The counts are atomic so that a producer works
/// through `&self` and can be shared between threads, as librdkafka's client can.
pub struct ReportingProducer<T: Send + Sync + 'static> {
    /// The topic `connect_to` looked up, and its handle. Declared before the
    /// producer: fields drop in order, and the handle must go before its client.
    topic_handle: OnceLock<(String, TopicHandle)>,
    producer: DroppedByCreator<BaseProducer<DeliveryReports<T>>>,
    settings: KafkaSettings,
    sent: AtomicUsize,
    reported: AtomicUsize,
}

/// Delivery reports are served (their callbacks run) once every this many
/// sends: often enough to keep memory flat, rarely enough to cost nothing.
pub(crate) const SERVE_REPORTS_EVERY: usize = 1000;

impl<T: Send + Sync + 'static> ReportingProducer<T> {
    /// A producer with [`producer_config`]'s settings plus `defaults`.
    pub fn new(settings: &KafkaSettings, defaults: &[(&str, &str)]) -> Result<Self> {
        let producer = producer_config(settings, defaults)
            .create_with_context(DeliveryReports::default())
            .map_err(|e| settings.client_error("creating a producer", e))?;
        Ok(ReportingProducer {
            topic_handle: OnceLock::new(),
            producer: DroppedByCreator::new(producer),
            settings: settings.clone(),
            sent: AtomicUsize::new(0),
            reported: AtomicUsize::new(0),
        })
    }

    /// Gets the connections ready to send to `topic`, so the first send does not
    /// wait: its metadata (a missing topic is a clear error here, not ten
    /// seconds of failed deliveries), and, for the idempotent producer, a
    /// producer id.
    ///
    /// Why twice: librdkafka (2.12) asks for a producer id when a metadata
    /// response arrives while a broker is up. The first response comes over the
    /// bootstrap connection, before the connection to the broker it names is up;
    /// without a second one, the id (and with it every send) waits for a 500 ms
    /// retry timer. Measured on the mock: `produce --count 1` took 0.61-0.68 s
    /// with one request, 0.17-0.19 s with two.
    pub fn connect_to(&self, topic: &str) -> Result<()> {
        for _ in 0..2 {
            let metadata = self
                .producer
                .client()
                .fetch_metadata(Some(topic), self.settings.timeout())
                .map_err(|e| {
                    self.settings
                        .client_error(format!("fetching the metadata of '{topic}'"), e)
                })?;
            let known = metadata
                .topics()
                .iter()
                .any(|t| t.name() == topic && t.error().is_none());
            if !known {
                return Err(Error::UnknownTopic {
                    topic: topic.to_string(),
                    bootstrap: self.settings.bootstrap().to_string(),
                });
            }
        }
        if self.topic_handle.get().is_none() {
            // SAFETY: the handle is kept in `topic_handle`, which drops before
            // `producer` (field order), and sends only through `producer`.
            let handle = unsafe { TopicHandle::new(self.producer.client(), topic) };
            let handle = handle.map_err(|code| {
                self.settings
                    .client_error(format!("looking up '{topic}'"), KafkaError::Global(code))
            })?;
            // Set by a concurrent `connect_to` in between? Then that one is kept
            // and this handle is simply released.
            let _ = self.topic_handle.set((topic.to_string(), handle));
        }
        Ok(())
    }

    /// Queues one message with `sent` riding along. Returns at once; the report
    /// comes later ([`ReportingProducer::take_reports`], [`ReportingProducer::flush`]).
    pub fn send<K, P>(&self, record: BaseRecord<'_, K, P, Box<(usize, T)>>) -> Result<()>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        let topic = record.topic;
        send_making_room(&self.producer, record, self.settings.timeout())
            .map_err(|e| self.send_error(topic, e))?;
        self.count_send();
        Ok(())
    }

    /// [`ReportingProducer::send`] of a key, a value and a timestamp (ms) to
    /// `topic`, through the topic's handle when it is the first topic
    /// `connect_to` looked up (see [`super::topic_handle`]); by name otherwise.
    pub fn send_keyed(
        &self,
        topic: &str,
        key: &[u8],
        value: &[u8],
        timestamp_ms: i64,
        sent: T,
    ) -> Result<()> {
        let Some((_, handle)) = self.topic_handle.get().filter(|(name, _)| name == topic) else {
            let record = BaseRecord::with_opaque_to(topic, self.opaque(sent))
                .key(key)
                .payload(value)
                .timestamp(timestamp_ms);
            return self.send(record);
        };
        let mut opaque = self.opaque(sent);
        let mut room = RoomInQueue::new(self.settings.timeout());
        while let Err((code, returned)) =
            handle.send(&self.producer, key, value, timestamp_ms, opaque)
        {
            if code != RDKafkaErrorCode::QueueFull || !room.wait(&self.producer) {
                return Err(self.send_error(topic, KafkaError::MessageProduction(code)));
            }
            opaque = returned;
        }
        self.count_send();
        Ok(())
    }

    /// The error of a send to `topic` that failed with `error`. A full queue
    /// comes back only after the send waited the settings' timeout for room.
    fn send_error(&self, topic: &str, error: KafkaError) -> Error {
        let context = format!("sending to '{topic}'");
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::QueueFull) => Error::queue_stayed_full(
                self.settings.bootstrap(),
                self.settings.timeout(),
                context,
            ),
            _ => self.settings.client_error(context, error),
        }
    }

    /// Counts one send, and serves the reports once every
    /// [`SERVE_REPORTS_EVERY`] sends.
    fn count_send(&self) {
        let sent = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        if sent.is_multiple_of(SERVE_REPORTS_EVERY) {
            self.producer.poll(Duration::ZERO);
        }
    }

    /// The box a record carries: the next sequence number and `sent`.
    pub fn opaque(&self, sent: T) -> Box<(usize, T)> {
        Box::new((self.sent.load(Ordering::Relaxed), sent))
    }

    /// The reports that are in, without waiting.
    pub fn take_reports(&self) -> Vec<Report<T>> {
        self.serve_reports(Duration::ZERO)
    }

    /// The reports that are in after serving them for `wait` (a paced
    /// producer's pause between sends).
    pub fn serve_reports(&self, wait: Duration) -> Vec<Report<T>> {
        let mut reports = Vec::new();
        self.serve_reports_into(wait, &mut reports);
        reports
    }

    /// [`ReportingProducer::serve_reports`] into `reports`, for a thread that
    /// serves reports all run long: when `reports` is empty (drained, its
    /// memory kept), it trades places with the list the reports are collected
    /// in, so the two lists serve the whole run and none is allocated per
    /// serve. Measured: a fresh list per serve, and the fresh pages under it,
    /// were 4-5% of `produce --quiet`'s CPU time.
    pub fn serve_reports_into(&self, wait: Duration, reports: &mut Vec<Report<T>>) {
        self.producer.poll(wait);
        let Ok(mut inbox) = self.producer.context().inbox.lock() else {
            return;
        };
        let taken = inbox.reports.len();
        if reports.is_empty() {
            // The next batch is likely as large as this one: sized for it, the
            // list is not regrown report by report (that was 4% of `produce`).
            // A fresh list is sized at most 8,000 reports; lists that trade
            // places keep what their largest batch needed, for the run.
            reports.reserve(taken.min(8 * SERVE_REPORTS_EVERY));
            std::mem::swap(&mut inbox.reports, reports);
        } else {
            reports.append(&mut inbox.reports);
        }
        drop(inbox);
        self.reported.fetch_add(taken, Ordering::Relaxed);
    }

    /// Waits until every message sent has its report (at most the settings'
    /// timeout plus a second) and returns the reports not yet taken, and how many
    /// messages still have none.
    pub fn flush(&self) -> (Vec<Report<T>>, usize) {
        let wait = self.settings.timeout() + Duration::from_secs(1);
        if flush_promptly(&self.producer, wait).is_err() {
            // Still no answer: purge what is left, so that librdkafka reports each
            // remaining message as failed ("purged"), with what was sent with
            // it, rather than leaving it unaccounted for.
            self.producer
                .purge(PurgeConfig::default().queue().inflight());
            let _ = flush_promptly(&self.producer, Duration::from_secs(1));
        }
        let reports = self.take_reports();
        (reports, self.sent().saturating_sub(self.reported()))
    }

    /// Messages sent so far.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }

    /// Reports taken so far.
    pub fn reported(&self) -> usize {
        self.reported.load(Ordering::Relaxed)
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &KafkaSettings {
        &self.settings
    }
}

impl<T: Send + Sync + 'static> Drop for ReportingProducer<T> {
    fn drop(&mut self) {
        // Never drop queued messages silently: give them the usual time to go out.
        let _ = flush_promptly(&self.producer, self.settings.timeout());
    }
}

/// Queues `record`. When librdkafka's local queue is full (the producer is
/// faster than the broker), serves delivery reports to make room and tries
/// again, for at most `patience`.
pub(crate) fn send_making_room<C, K, P>(
    producer: &BaseProducer<C>,
    mut record: BaseRecord<'_, K, P, C::DeliveryOpaque>,
    patience: Duration,
) -> std::result::Result<(), KafkaError>
where
    C: ProducerContext,
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    let mut room = RoomInQueue::new(patience);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((e, returned))
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull)
                    && room.wait(producer) =>
            {
                record = returned;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Waiting for room in librdkafka's local queue (`queue.buffering.max.messages`)
/// when a send finds it full, for at most a given patience.
struct RoomInQueue {
    patience: Duration,
    /// Read only once the queue is full: most sends never wait.
    deadline: Option<Instant>,
}

impl RoomInQueue {
    fn new(patience: Duration) -> Self {
        RoomInQueue {
            patience,
            deadline: None,
        }
    }

    /// Serves reports, which frees room, or waits a moment for them, and says
    /// whether to try again: `false` once the patience is spent, or at once when
    /// a stop is asked for (Ctrl-C, SIGTERM: [`crate::shutdown`]).
    fn wait<C: ProducerContext>(&mut self, producer: &BaseProducer<C>) -> bool {
        if crate::shutdown::requested() {
            return false;
        }
        let patience = self.patience;
        if Instant::now()
            >= *self
                .deadline
                .get_or_insert_with(|| Instant::now() + patience)
        {
            return false;
        }
        serve_or_nap(producer, producer.in_flight_count());
        true
    }
}

/// Waits until every queued message has its delivery report, at most `timeout`.
///
/// Not rust-rdkafka's `flush`: it serves reports in polls of 100 ms that last
/// their whole 100 ms, so every flush took at least 100 ms, even when the last
/// report came back 1 ms after the last send (measured: `produce --count 1`
/// spent 100 ms of its 170 ms in the flush). This one returns as soon as
/// nothing is in flight.
///
/// Nor does it wait inside `poll`: rust-rdkafka's `poll` hands librdkafka whole
/// milliseconds and spins through what is left of one, so polls of 1 ms were a
/// busy loop that took a core from the threads that finish the sends (the
/// end of a run, on 2 cores). A poll that does not wait serves what is in;
/// while nothing comes, this thread sleeps [`REPORT_NAP`] at a time.
pub(crate) fn flush_promptly<C: ProducerContext>(
    producer: &BaseProducer<C>,
    timeout: Duration,
) -> std::result::Result<(), KafkaError> {
    let deadline = Instant::now() + timeout;
    let mut in_flight = producer.in_flight_count();
    while in_flight > 0 {
        if Instant::now() >= deadline {
            return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
        }
        in_flight = serve_or_nap(producer, in_flight);
    }
    Ok(())
}

/// Serves the reports that are in, without waiting; if none was (as many
/// messages are in flight as `in_flight`, counted before), sleeps
/// [`REPORT_NAP`]. Returns the messages now in flight.
fn serve_or_nap<C: ProducerContext>(producer: &BaseProducer<C>, in_flight: i32) -> i32 {
    producer.poll(Duration::ZERO);
    let still_in_flight = producer.in_flight_count();
    if still_in_flight == in_flight {
        std::thread::sleep(REPORT_NAP);
    }
    still_in_flight
}

/// How long [`serve_or_nap`] sleeps while no report comes: a report is served
/// within about this long of landing, and the waiting thread wakes some 5,000
/// times a second, a few microseconds each.
const REPORT_NAP: Duration = Duration::from_micros(200);

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(counted: &mut CountedFromNothing, offsets: &[(i32, i64)]) -> Vec<i64> {
        offsets
            .iter()
            .map(|&(partition, offset)| counted.offset(|| "weather", partition, offset))
            .collect()
    }

    #[test]
    fn a_batch_counted_from_nothing_is_reported_without_offsets() {
        let mut counted = CountedFromNothing::default();
        // Partition 0: 2 real offsets, then a refused retry of 4 messages
        // (librdkafka numbers them -1, 0, 1, 2), then real ones again.
        // Partition 1 interleaves and is untouched.
        let offsets = [
            (0, 5),
            (0, 6),
            (1, 0),
            (0, -1),
            (0, 0),
            (1, 1),
            (0, 1),
            (0, 2),
            (0, 11),
            (0, 12),
        ];
        let not = OFFSET_NOT_REPORTED;
        assert_eq!(
            reported(&mut counted, &offsets),
            vec![5, 6, 0, not, not, 1, not, not, 11, 12]
        );
        assert!(counted.runs.is_empty(), "{counted:?}");
    }

    #[test]
    fn acks_0_batches_never_get_an_offset() {
        // No answer: each batch counts from -1001, even past 0.
        let mut counted = CountedFromNothing::default();
        let first: Vec<(i32, i64)> = (-1001..3).map(|o| (0, o)).collect();
        assert!(reported(&mut counted, &first)
            .iter()
            .all(|&o| o == OFFSET_NOT_REPORTED));
        let second = [(0, -1001), (0, -1000)];
        assert_eq!(
            reported(&mut counted, &second),
            vec![OFFSET_NOT_REPORTED, OFFSET_NOT_REPORTED]
        );
    }
}
