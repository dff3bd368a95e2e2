//! A synchronous commit with a bounded wait.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;

/// The most rounds of the broker timeout a synchronous commit waits, while
/// the broker answers.
const COMMIT_ROUNDS: u32 = 3;

/// A synchronous commit whose wait is bounded: rounds of `timeout`, at most
/// [`COMMIT_ROUNDS`], and another round only while `broker_answers()`.
///
/// librdkafka's synchronous `rd_kafka_commit` waits without a limit: with the
/// broker gone, `consume` sat in it for 11.7 minutes and could not be stopped
/// with Ctrl-C. This one sends the commit with its own reply queue
/// (`rd_kafka_commit_queue`) and waits on that queue. A coordinator that is
/// alive may still take longer than one timeout (a rebalance on the mock
/// engine waits for a departed member's session, 6 s), so the wait goes on
/// while the broker answers; a broker that is gone ends it after one round.
/// The answer, when it comes, is checked partition by partition.
pub(super) fn commit_within<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    offsets: &TopicPartitionList,
    timeout: Duration,
    broker_answers: &dyn Fn() -> bool,
) -> KafkaResult<()> {
    use rdkafka::bindings as rd;

    let no_error = rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR;
    let client = consumer.client().native_ptr();
    let wait_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: the client and the list are live for the calls; the queue is
    // ours and destroyed once (librdkafka keeps its own reference while a reply
    // is pending); the event is read, then destroyed once.
    unsafe {
        let queue = rd::rd_kafka_queue_new(client);
        let sent =
            rd::rd_kafka_commit_queue(client, offsets.ptr(), queue, None, std::ptr::null_mut());
        let result = if sent != no_error {
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::from(sent)))
        } else {
            let mut event = rd::rd_kafka_queue_poll(queue, wait_ms);
            for _ in 1..COMMIT_ROUNDS {
                if !event.is_null() || !broker_answers() {
                    break;
                }
                event = rd::rd_kafka_queue_poll(queue, wait_ms);
            }
            if event.is_null() {
                Err(KafkaError::ConsumerCommit(
                    RDKafkaErrorCode::OperationTimedOut,
                ))
            } else {
                let mut error = rd::rd_kafka_event_error(event);
                let list = rd::rd_kafka_event_topic_partition_list(event);
                if error == no_error && !list.is_null() {
                    let list = &*list;
                    for i in 0..usize::try_from(list.cnt).unwrap_or(0) {
                        let element = &*list.elems.add(i);
                        if element.err != no_error {
                            error = element.err;
                            break;
                        }
                    }
                }
                rd::rd_kafka_event_destroy(event);
                if error == no_error {
                    Ok(())
                } else {
                    Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::from(error)))
                }
            }
        };
        rd::rd_kafka_queue_destroy(queue);
        result
    }
}
