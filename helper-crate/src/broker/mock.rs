//! librdkafka's mock cluster, served at a fixed address.

use std::io::{Read, Write};
use std::net::{Shutdown as SocketShutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;

use crate::error::{Error, Result, Setting};
use crate::shutdown;
use crate::topics;

/// librdkafka's mock cluster, served at a fixed address. This runs inside the
/// `kafka-lab broker --engine mock` process.
pub struct MockBroker {
    // Owns the mock cluster: dropping the client destroys it.
    client: BaseProducer,
    listen: SocketAddr,
    upstream: SocketAddr,
}

impl MockBroker {
    /// Creates a one-broker mock cluster and the topics, and makes it advertise
    /// `listen` (which [`MockBroker::serve`] then forwards to it).
    pub fn new(listen: SocketAddr, topics: &[(String, i32)]) -> Result<MockBroker> {
        super::warn_if_not_loopback(listen);
        let client: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .create()
            .map_err(|e| Error::kafka("creating the mock cluster", e))?;
        let upstream = {
            // Borrows the client; must end before the client moves into MockBroker.
            let mock = client
                .client()
                .mock_cluster()
                .ok_or_else(|| Error::Broker("librdkafka did not create a mock cluster".into()))?;
            for (topic, partitions) in topics {
                topics::validate_topic_name(topic)?;
                mock.create_topic(topic, *partitions, 1).map_err(|e| {
                    Error::kafka(format!("creating topic '{topic}' in the mock"), e)
                })?;
            }
            mock.bootstrap_servers()
                .split(',')
                .next()
                .and_then(|s| s.parse::<SocketAddr>().ok())
                .ok_or_else(|| Error::Broker("the mock cluster has no address".into()))?
        };
        let host = std::ffi::CString::new(listen.ip().to_string())
            .map_err(|_| Error::config(Setting::Listen, "bad listen address"))?;
        // SAFETY: the cluster pointer comes from the live client; librdkafka copies the host.
        unsafe {
            let cluster =
                rdkafka::bindings::rd_kafka_handle_mock_cluster(client.client().native_ptr());
            rdkafka::bindings::rd_kafka_mock_broker_set_host_port(
                cluster,
                1,
                host.as_ptr(),
                i32::from(listen.port()),
            );
        }
        Ok(MockBroker {
            client,
            listen,
            upstream,
        })
    }

    /// Accepts connections at the listen address and forwards each to the mock
    /// cluster until a shutdown is requested.
    pub fn serve(&self) -> Result<()> {
        let listener = TcpListener::bind(self.listen)
            .map_err(|e| Error::Broker(format!("cannot listen on {}: {e}", self.listen)))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Broker(e.to_string()))?;
        while !shutdown::requested() {
            match listener.accept() {
                Ok((client, _)) => {
                    let upstream = self.upstream;
                    std::thread::spawn(move || forward(client, upstream));
                }
                // Waits for the next connection, not for a fixed time: a
                // client's first request would otherwise wait out the sleep
                // (up to 20 ms on each new connection, measured in session 11).
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    wait_for_a_connection(&listener, Duration::from_millis(100));
                }
                // A client that gave up before it was accepted.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => {}
                Err(e) => return Err(Error::Broker(format!("accept on {}: {e}", self.listen))),
            }
        }
        let _ = self.client.flush(Duration::from_secs(1));
        Ok(())
    }
}

/// Returns once a connection waits on `listener` or `limit` has passed: so a
/// stop asked for with Ctrl-C (whose signal may reach any thread) is seen
/// within `limit`.
fn wait_for_a_connection(listener: &TcpListener, limit: Duration) {
    use std::os::fd::AsRawFd;
    let mut pending = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let limit_ms = libc::c_int::try_from(limit.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd that lives through the call.
    let ready = unsafe { libc::poll(&mut pending, 1, limit_ms) };
    if ready < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
        // poll itself failing (out of memory): wait as the old loop did
        // rather than spin.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Copies bytes both ways between a client and the mock until either side closes.
fn forward(client: TcpStream, upstream: SocketAddr) {
    let Ok(server) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(SocketShutdown::Both);
        return;
    };
    let _ = client.set_nonblocking(false);
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(client_reader), Ok(server_reader)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let one_way = |mut from: TcpStream, mut to: TcpStream| {
        let mut buffer = [0u8; 64 * 1024];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(SocketShutdown::Write);
    };
    let upload = std::thread::spawn(move || one_way(client_reader, server));
    one_way(server_reader, client);
    let _ = upload.join();
}
