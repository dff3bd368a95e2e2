//! A topic handle: the topic looked up once, not on every send.
//!
//! librdkafka keeps one `rd_kafka_topic_t` per topic a client uses: its
//! partitions, their leaders, their message queues. rust-rdkafka's
//! `BaseProducer::send` names the topic on every call, so each send copies the
//! name into a C string and librdkafka looks the topic up again, under a write
//! lock of the whole client. kcat, and librdkafka's own examples, take a handle
//! once (`rd_kafka_topic_new`) and pass it with every message
//! (`RD_KAFKA_V_RKT`). Measured with `benches/produce_layers.rs` on the mock:
//! 0.10-0.19 s per 1,000,000 messages (docs/performance.md, session 9).

use std::ffi::{c_void, CString};
use std::ptr::NonNull;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::IntoOpaque;

/// `RD_KAFKA_PARTITION_UA` (a C macro): librdkafka's partitioner chooses.
const UNASSIGNED_PARTITION: i32 = -1;

/// librdkafka's handle for one topic of one producer. Held beside the
/// producer and dropped before it (see `ReportingProducer`'s fields).
pub struct TopicHandle {
    native: NonNull<rd::rd_kafka_topic_t>,
    /// The client it belongs to: librdkafka queues a message on the handle's
    /// own client whatever client the call names, so `send` checks it.
    client: *mut rd::rd_kafka_t,
    /// Releases the handle with the copy of librdkafka that made it: in a
    /// notebook each cell carries its own copy (see `DroppedByCreator`).
    release: unsafe fn(NonNull<rd::rd_kafka_topic_t>),
}

/// `rd_kafka_topic_destroy`, taken as a function pointer where a handle is made.
///
/// # Safety
///
/// `native` came from `rd_kafka_topic_new` and is released once.
unsafe fn release_here(native: NonNull<rd::rd_kafka_topic_t>) {
    // SAFETY: as the caller promises; messages in flight keep librdkafka's own
    // reference to the topic.
    unsafe { rd::rd_kafka_topic_destroy(native.as_ptr()) };
}

// SAFETY: librdkafka's topic handles may be used and released from any
// thread; the client pointer is only compared, never dereferenced.
unsafe impl Send for TopicHandle {}
// SAFETY: as above; `send` only reads the pointers.
unsafe impl Sync for TopicHandle {}

impl TopicHandle {
    /// The handle of `topic` in `client`. The topic is not checked here:
    /// `ReportingProducer::connect_to` asks the broker first.
    ///
    /// # Safety
    ///
    /// The handle must be dropped before `client`.
    pub unsafe fn new<C: ClientContext>(
        client: &Client<C>,
        topic: &str,
    ) -> Result<Self, RDKafkaErrorCode> {
        let name = CString::new(topic).map_err(|_| RDKafkaErrorCode::InvalidArgument)?;
        // SAFETY: the client pointer is live for the call, the name is a valid
        // C string (librdkafka copies it), and no topic configuration is passed.
        let native = unsafe {
            rd::rd_kafka_topic_new(client.native_ptr(), name.as_ptr(), std::ptr::null_mut())
        };
        match NonNull::new(native) {
            Some(native) => Ok(TopicHandle {
                native,
                client: client.native_ptr(),
                release: release_here,
            }),
            // SAFETY: reads librdkafka's thread-local error of the failed call.
            None => Err(unsafe { rd::rd_kafka_last_error() }.into()),
        }
    }

    /// Queues one message on `producer` (the client the handle came from; any
    /// other is refused with `InvalidArgument`): librdkafka picks the partition
    /// from the key and copies key and value. `opaque` comes back in the
    /// delivery report; if the message is refused (a full queue, for
    /// instance), it is handed back with the reason.
    pub fn send<C: ProducerContext>(
        &self,
        producer: &BaseProducer<C>,
        key: &[u8],
        value: &[u8],
        timestamp_ms: i64,
        opaque: C::DeliveryOpaque,
    ) -> Result<(), (RDKafkaErrorCode, C::DeliveryOpaque)> {
        if producer.client().native_ptr() != self.client {
            // Its delivery report would reach the other client's context,
            // which would read the opaque as its own type.
            return Err((RDKafkaErrorCode::InvalidArgument, opaque));
        }
        let opaque = opaque.into_ptr();
        // SAFETY: the handle and the producer are live (the handle is dropped
        // before its producer); key and value outlive the call and are copied
        // (F_COPY); the argument list is ended with VTYPE_END.
        let error = unsafe {
            rd::rd_kafka_producev(
                producer.client().native_ptr(),
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_RKT,
                self.native.as_ptr(),
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_PARTITION,
                UNASSIGNED_PARTITION,
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_MSGFLAGS,
                rd::RD_KAFKA_MSG_F_COPY,
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_VALUE,
                value.as_ptr() as *mut c_void,
                value.len(),
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_KEY,
                key.as_ptr() as *mut c_void,
                key.len(),
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_TIMESTAMP,
                timestamp_ms,
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_OPAQUE,
                opaque,
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_END,
            )
        };
        match error {
            rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => Ok(()),
            // SAFETY: not queued, so librdkafka never took the opaque: it is
            // still ours, and turned back into what it was exactly once.
            refused => Err((refused.into(), unsafe {
                C::DeliveryOpaque::from_ptr(opaque)
            })),
        }
    }
}

impl Drop for TopicHandle {
    fn drop(&mut self) {
        // SAFETY: made by `rd_kafka_topic_new`, released once, here, while its
        // client still lives.
        unsafe { (self.release)(self.native) };
    }
}
