//! How long a broker may hold a fetch that finds nothing (`fetch.wait.max.ms`),
//! chosen for the engine behind the bootstrap address.
//!
//! A fetch asks for the next messages of every partition the consumer is ready
//! to read; a broker with nothing to give holds the request until data comes or
//! `fetch.wait.max.ms` passes. librdkafka sends one fetch per broker at a time,
//! so a partition that becomes ready while a fetch is held waits for it. That
//! happens at the start of every group read: the partitions' start offsets come
//! back one by one, and the first fetch often leaves with only an empty
//! partition in it (seen with `-X debug=fetch`: "Fetch 1/1/32 toppar(s)", its
//! answer a full second later).
//!
//! The two engines pull the setting in opposite directions, measured:
//! - **nisshi** needs a long wait: once the wait has passed while it builds a
//!   response, it reads one record per SQL query. `bench`, 200,000 readings:
//!   15,725 msg/s with 1 s, 7,502 with 0.5 s, 4,320 with 0.3 s.
//! - **the mock** answers from memory at once, so a long wait only costs: a
//!   group `consume` of 32 partitions took 3.8-5.7 s with 1 s against 3.8-4.4 s
//!   for `kcat -G` (librdkafka's 0.5 s), and 3.8-4.3 s with 0.3 s.
//!
//! So the crate's consumers wait 1 s, except on the mock, which is recognised
//! by its cluster id (`mockCluster…`), asked once per bootstrap address.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::config::KafkaSettings;
use crate::topics::{cluster_id, MOCK_CLUSTER_ID_PREFIX};

/// The wait on every engine but the mock (a [`super::JOIN_AND_FETCH`] default).
pub const FETCH_WAIT_MS: &str = "1000";

/// The wait on librdkafka's mock engine.
pub const MOCK_FETCH_WAIT_MS: &str = "300";

/// How long the engine check may take: a broker that has not answered by then
/// is taken for a real one (the safe default), and the read that follows
/// reports a broker that is down, within its own timeout.
const ENGINE_CHECK_LIMIT: Duration = Duration::from_secs(1);

/// `fetch.wait.max.ms` for the broker behind `settings`.
pub fn fetch_wait_ms(settings: &KafkaSettings) -> &'static str {
    if is_mock_engine(settings) {
        MOCK_FETCH_WAIT_MS
    } else {
        FETCH_WAIT_MS
    }
}

/// Whether the broker at `settings`' bootstrap address is librdkafka's mock
/// cluster. An answer is remembered for the process (a notebook builds many
/// consumers); no answer is not, so a broker started later is asked again. A
/// broker of another engine started later at the same address keeps the first
/// answer until the process restarts: a slower read then, never a wrong one.
fn is_mock_engine(settings: &KafkaSettings) -> bool {
    static KNOWN: OnceLock<Mutex<HashMap<String, bool>>> = OnceLock::new();
    let known = KNOWN.get_or_init(Default::default);
    let bootstrap = settings.bootstrap().to_string();
    if let Some(mock) = known.lock().ok().and_then(|k| k.get(&bootstrap).copied()) {
        return mock;
    }
    let wait = settings.timeout().min(ENGINE_CHECK_LIMIT);
    let Some(id) = cluster_id(settings, wait) else {
        return false;
    };
    let mock = id.starts_with(MOCK_CLUSTER_ID_PREFIX);
    if let Ok(mut known) = known.lock() {
        known.insert(bootstrap, mock);
    }
    mock
}
