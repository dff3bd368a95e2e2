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
//! The engines pull the setting in opposite directions, measured:
//! - **nisshi** needs a long wait: once the wait has passed while it builds a
//!   response, it reads one record per SQL query. `consume` of 200,000
//!   readings (session 13): 5.9-6.2 s with 0.75-2 s, 11.4 s with 0.5 s (and in
//!   session 6, with 1 MiB responses, `bench`: 15,725 msg/s with 1 s, 7,502
//!   with 0.5 s, 4,320 with 0.3 s).
//! - **tansu 0.6** answers a fetch once it has about 5 MiB or the wait has
//!   passed, and the last fetch of a read, with less than that, waits it out:
//!   `consume` of 200,000 took 3.8-3.9 s with 1 s, 3.1-3.2 s with 0.5 s
//!   (librdkafka's default) and 3.0 s with 0.25 s (session 13). Alternated
//!   with the Python client at its defaults (session 15), 200,000: 3.24-3.35 s
//!   with 0.5 s, 3.07-3.23 s with 0.25 s, 3.04-3.14 s with 0.1 s; 1,000,000:
//!   18.4-18.7 s with 0.5 s, 18.2-18.5 s with 0.1 s.
//! - **the mock** answers from memory at once, so a long wait only costs: a
//!   group `consume` of 32 partitions took 3.8-5.7 s with 1 s against 3.8-4.4 s
//!   for `kcat -G` (librdkafka's 0.5 s), and 3.8-4.3 s with 0.3 s.
//! - **Apache Kafka** answers as soon as data is there; the wait bounds the
//!   idle fetches, such as the first one of a group read.
//!
//! So the crate's consumers wait 1 s on nisshi, 0.3 s on the mock, 0.1 s on
//! tansu, and librdkafka's 0.5 s on Kafka and any other broker that answers
//! (an idle consumer on tansu asks ten times a second instead of twice: a
//! query of its store each time, nothing a lab notices). The engine is
//! recognised by the cluster id it reports (`nisshi_cluster`, `mockCluster…`,
//! `tansu_cluster`), asked once per bootstrap address. A broker that does not
//! answer within a second gets 1 s: it may be a nisshi still starting.
//!
//! kcat equivalent: `kcat -X fetch.wait.max.ms=1000 ...`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::config::KafkaSettings;
use crate::topics::{cluster_id, MOCK_CLUSTER_ID_PREFIX, NISSHI_CLUSTER_ID, TANSU_CLUSTER_ID};

/// The wait on nisshi, and for a broker that does not answer (a
/// [`super::JOIN_AND_FETCH`] default).
pub const FETCH_WAIT_MS: &str = "1000";

/// The wait on librdkafka's mock engine.
pub const MOCK_FETCH_WAIT_MS: &str = "300";

/// The wait on tansu: the last fetch of a read waits all of it.
pub const TANSU_FETCH_WAIT_MS: &str = "100";

/// librdkafka's own wait: Apache Kafka, any other broker that answers.
pub const LIBRDKAFKA_FETCH_WAIT_MS: &str = "500";

/// How long the engine check may take: a broker that has not answered by then
/// gets nisshi's wait (the safe default), and the read that follows
/// reports a broker that is down, within its own timeout.
const ENGINE_CHECK_LIMIT: Duration = Duration::from_secs(1);

/// `fetch.wait.max.ms` for the broker behind `settings`. An answer is
/// remembered for the process (a notebook builds many consumers); no answer is
/// not, so a broker started later is asked again. A broker of another engine
/// started later at the same address keeps the first answer until the process
/// restarts: a slower read then, never a wrong one (nisshi given tansu's
/// 0.1 s reads at half its speed or less: see above).
pub fn fetch_wait_ms(settings: &KafkaSettings) -> &'static str {
    static KNOWN: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let known = KNOWN.get_or_init(Default::default);
    let bootstrap = settings.bootstrap().to_string();
    if let Some(wait) = known.lock().ok().and_then(|k| k.get(&bootstrap).copied()) {
        return wait;
    }
    let check = settings.timeout().min(ENGINE_CHECK_LIMIT);
    let Some(id) = cluster_id(settings, check) else {
        return FETCH_WAIT_MS;
    };
    let wait = fetch_wait_for_cluster(&id);
    if let Ok(mut known) = known.lock() {
        known.insert(bootstrap, wait);
    }
    wait
}

/// `fetch.wait.max.ms` for the engine whose cluster id is `id`.
pub(super) fn fetch_wait_for_cluster(id: &str) -> &'static str {
    if id == NISSHI_CLUSTER_ID {
        FETCH_WAIT_MS
    } else if id.starts_with(MOCK_CLUSTER_ID_PREFIX) {
        MOCK_FETCH_WAIT_MS
    } else if id == TANSU_CLUSTER_ID {
        TANSU_FETCH_WAIT_MS
    } else {
        LIBRDKAFKA_FETCH_WAIT_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_is_told_by_its_cluster_id() {
        assert_eq!(fetch_wait_for_cluster(NISSHI_CLUSTER_ID), FETCH_WAIT_MS);
        assert_eq!(
            fetch_wait_for_cluster("mockCluster1a2b3c"),
            MOCK_FETCH_WAIT_MS
        );
        assert_eq!(
            fetch_wait_for_cluster(TANSU_CLUSTER_ID),
            TANSU_FETCH_WAIT_MS
        );
        // Apache Kafka (a random id) and any other broker.
        for id in ["MkU3OEVBNTcwNTJENDM2Qg", "my-broker"] {
            assert_eq!(fetch_wait_for_cluster(id), LIBRDKAFKA_FETCH_WAIT_MS, "{id}");
        }
    }
}
