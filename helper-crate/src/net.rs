//! Reaching a broker: whether anything listens at a bootstrap address.
//!
//! A Kafka client that gets no answer cannot tell a broker that is down from
//! one that is up but slow: both are "timed out". A plain TCP connection can:
//! a refused or unanswered connect means nothing listens there, an accepted one
//! means a broker is up and something else held the request back.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Whether something accepts TCP connections at any of the bootstrap servers.
pub fn is_reachable(bootstrap: &str, timeout: Duration) -> bool {
    bootstrap.split(',').any(|server| {
        let server = server.trim();
        let server = server.rsplit("://").next().unwrap_or(server);
        server
            .to_socket_addrs()
            .map(|addrs| {
                addrs
                    .into_iter()
                    .any(|a| TcpStream::connect_timeout(&a, timeout).is_ok())
            })
            .unwrap_or(false)
    })
}
