//! Stopping, sharing and misconfiguring: the consumer stops cleanly on SIGTERM,
//! refuses a CSV another consumer is writing, names a missing topic, and never
//! prints a password.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{describe, kafka_lab, kafka_lab_bin, produce_raw, temp_dir, TestBroker};
use kafka_lab::broker::Engine;
use kafka_lab::client::ConsumerBuilder;
use kafka_lab::consume::fresh_group_id;
use kafka_lab::csv_log::read_csv_log;
use kafka_lab::weather::WeatherGenerator;
use kafka_lab::{offsets, topics};

on_both_engines!(a_static_member_dropped_before_it_polled_its_assignment_closes_in_time);

/// A consumer's close is bounded by the settings' timeout. librdkafka 2.12 can
/// wait forever there when the member is static and an assignment it never
/// polled is pending: the close's first poll runs the rebalance callback, whose
/// `rd_kafka_assign` the terminating group thread never answers (librdkafka
/// issue #4884; a `consume` on tansu sat 20 minutes in it).
fn a_static_member_dropped_before_it_polled_its_assignment_closes_in_time(engine: Engine) {
    let broker = TestBroker::start(engine, &[("weather", 2)]);
    broker.produce("weather", 5, 20);
    for round in 0..3 {
        let group = fresh_group_id("close");
        let settings = broker
            .settings()
            .with("group.instance.id", format!("{group}-member"));
        let mut consumer = ConsumerBuilder::new(&settings)
            .group(&group)
            .build()
            .unwrap();
        consumer.subscribe("weather").unwrap();
        // The group assigns the partitions while nobody polls (a join takes
        // 3 s on nisshi): the assignment waits in the consumer's queue.
        std::thread::sleep(Duration::from_secs(5));
        let started = Instant::now();
        drop(consumer);
        let took = started.elapsed();
        assert!(
            took < settings.timeout() + Duration::from_secs(2),
            "round {round} on {engine}: closing took {took:?}"
        );
        eprintln!("round {round} on {engine}: closed in {took:?}");
    }
}

fn wait_for_rows(path: &std::path::Path, rows: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if read_csv_log(path).map(|r| r.len()).unwrap_or(0) >= rows {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never reached {rows} rows", path.display());
}

#[test]
fn sigterm_finishes_the_batch_commits_and_exits_0() {
    let broker = TestBroker::start(common::program_engine(), &[("weather", 1)]);
    let settings = broker.settings();
    broker.produce("weather", 21, 50);
    let dir = temp_dir("sigterm-consume");
    let csv = dir.join("kafka_log.csv");
    let group = fresh_group_id("sigterm");
    let child = Command::new(kafka_lab_bin())
        .args([
            "-b",
            broker.bootstrap(),
            "consume",
            "--group",
            &group,
            "--follow",
        ])
        .args(["--timeout-ms", "60000", "--csv", csv.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_rows(&csv, 50);

    // A second consumer may not write the same file while the first holds it.
    let second = kafka_lab(
        &dir,
        &[
            "-b",
            broker.bootstrap(),
            "consume",
            "--csv",
            "kafka_log.csv",
        ],
    );
    assert_eq!(second.status.code(), Some(1), "{}", describe(&second));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("another consumer (process {})", child.id())),
        "{stderr}"
    );

    let stopped_at = Instant::now();
    let stderr = common::terminate(child);
    assert!(
        stopped_at.elapsed() < Duration::from_secs(5),
        "took {:?}",
        stopped_at.elapsed()
    );
    assert!(stderr.contains("stopped: interrupted"), "{stderr}");
    assert_eq!(read_csv_log(&csv).unwrap().len(), 50);
    assert!(
        !dir.join("kafka_log.csv.lock").exists(),
        "the lock is released"
    );
    assert_eq!(
        offsets::committed_offsets(&settings, &group, "weather").unwrap(),
        vec![(0, Some(50))]
    );
}

#[test]
fn a_missing_topic_is_named_and_not_created() {
    let broker = TestBroker::start(common::program_engine(), &[]);
    let dir = temp_dir("missing-topic");
    for args in [
        vec!["produce", "--topic", "nowhere"],
        vec!["consume", "--topic", "nowhere"],
        vec!["offsets", "--topic", "nowhere"],
    ] {
        let stderr = common::kafka_lab_fails(&dir, broker.bootstrap(), &args, 1);
        assert!(
            stderr.contains("topic 'nowhere' does not exist"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("kafka-lab topics create nowhere"),
            "{args:?}: {stderr}"
        );
    }
    assert!(!topics::topic_exists(&broker.settings(), "nowhere").unwrap());
    assert!(!dir.join("kafka_log.csv").exists());
}

#[test]
fn properties_files_are_applied_and_secrets_never_printed() {
    let dir = temp_dir("secrets");
    let file = dir.join("client.properties");
    let mut properties = std::fs::File::create(&file).unwrap();
    writeln!(properties, "# a SASL/PLAIN client, as in the original lab").unwrap();
    writeln!(properties, "security.protocol=SASL_PLAINTEXT").unwrap();
    writeln!(properties, "sasl.mechanism=PLAIN").unwrap();
    writeln!(properties, "sasl.username=alice").unwrap();
    writeln!(properties, "sasl.password=hunter2-secret").unwrap();
    writeln!(properties, "socket.timeout.ms=not-a-number").unwrap();
    drop(properties);
    let port = kafka_lab::broker::free_loopback_port().unwrap().to_string();
    let bootstrap = format!("127.0.0.1:{port}");

    // -F and KAFKA_LAB_CONFIG both reach librdkafka: it rejects the bad value.
    let with_flag = kafka_lab(
        &dir,
        &[
            "-b",
            &bootstrap,
            "-F",
            "client.properties",
            "topics",
            "list",
        ],
    );
    let with_env = Command::new(kafka_lab_bin())
        .args(["-b", &bootstrap, "topics", "list"])
        .current_dir(&dir)
        .env("KAFKA_LAB_CONFIG", &file)
        .output()
        .unwrap();
    for output in [&with_flag, &with_env] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{}", describe(output));
        assert!(stderr.contains("socket.timeout.ms"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }

    // With valid settings, against a real broker that takes no SASL login here
    // (no --authentication): the handshake fails, and the password appears
    // nowhere in the output.
    let broker = TestBroker::start(common::program_engine(), &[("weather", 1)]);
    let sasl = [
        "security.protocol=SASL_PLAINTEXT",
        "sasl.mechanism=PLAIN",
        "sasl.username=alice",
        "sasl.password=hunter2-secret",
    ];
    let mut args = vec!["-b", broker.bootstrap(), "--broker-timeout-ms", "3000"];
    for property in &sasl {
        args.extend(["-X", property]);
    }
    args.extend(["consume", "--max", "1"]);
    let output = kafka_lab(&dir, &args);
    let all = describe(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains(broker.bootstrap()), "{all}");
    assert!(!all.contains("hunter2"), "{all}");
}

/// Rates and cities are checked before anything is sent: a rate no producer
/// can pace (zero, negative, not a number, vanishingly small, absurdly large)
/// and a city without a name or with a control character exit 2, the topic
/// untouched.
#[test]
fn bad_rates_and_cities_are_refused_before_anything_is_sent() {
    let broker = TestBroker::start(Engine::Mock, &[("weather", 1)]);
    let dir = temp_dir("bad-input");
    let refused: [(&[&str], &str); 8] = [
        (&["--rate", "0"], "rate"),
        (&["--rate", "-5"], "rate"),
        (&["--rate", "NaN"], "rate"),
        (&["--rate", "1e-320"], "rate"),
        (&["--rate", "1e-19", "--count", "2"], "rate"),
        (&["--cities", ""], "city"),
        (&["--cities", ",,"], "city"),
        (&["--cities", "Toronto,\u{1b}[2J"], "control character"),
    ];
    for (extra, expected) in refused {
        let mut args = vec!["produce", "--topic", "weather"];
        args.extend_from_slice(extra);
        let stderr = common::kafka_lab_fails(&dir, broker.bootstrap(), &args, 2);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stderr.contains("hint: set the"), "{args:?}: {stderr}");
    }
    assert_eq!(
        offsets::watermarks(&broker.settings(), "weather").unwrap(),
        vec![(0, 0, 0)],
        "nothing was sent"
    );
}

#[test]
fn bad_bootstrap_addresses_are_refused_at_once() {
    let dir = temp_dir("bad-bootstrap");
    for (bootstrap, expected) in [
        ("", "empty"),
        ("http://127.0.0.1:9092", "URL"),
        ("127.0.0.1:99999", "port"),
    ] {
        let started = std::time::Instant::now();
        let stderr = common::kafka_lab_fails(&dir, bootstrap, &["topics", "list"], 2);
        assert!(stderr.contains(expected), "{bootstrap:?}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{bootstrap:?} refused at once, not after a broker timeout"
        );
    }
}

#[test]
fn terminal_output_escapes_control_characters_and_the_csv_keeps_the_bytes() {
    let broker = TestBroker::start(Engine::Mock, &[("weather", 1)]);
    let dir = temp_dir("escapes");
    let hostile = "{\"timestamp\":\"2026-11-26T00:00:00.000Z\",\"city\":\"Tor\\u001b[2Jonto\",\"temperature\":1.5}";
    produce_raw(&broker.settings(), "weather", &[Some(hostile.as_bytes())]);
    let csv = dir.join("kafka_log.csv");
    let output = kafka_lab(
        &dir,
        &[
            "-b",
            broker.bootstrap(),
            "consume",
            "--topic",
            "weather",
            "--csv",
            csv.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains('\u{1b}'),
        "raw escape on the terminal: {stdout:?}"
    );
    assert!(stdout.contains("Tor\\u{1b}[2Jonto"), "{stdout}");
    let rows = read_csv_log(&csv).unwrap();
    assert_eq!(
        rows[0].city, "Tor\u{1b}[2Jonto",
        "the CSV keeps the exact text"
    );
}

#[test]
fn a_data_folder_without_a_persistent_engine_is_refused_not_silently_in_memory() {
    let dir = temp_dir("no-tansu");
    let data = dir.join("data");
    let output = Command::new(kafka_lab_bin())
        .current_dir(&dir)
        .env("KAFKA_LAB_ENGINE", "mock")
        .args(["broker", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("keeps everything in memory"), "{stderr}");
    assert!(stderr.contains("hint: set the"), "{stderr}");
    assert!(!data.exists(), "nothing was created");
}

/// The broker SIGKILLed while `consume` writes the CSV in small batches: the
/// command ends by itself with exit 1 within the broker timeout plus a margin
/// (it used to sit in librdkafka's unbounded synchronous commit for minutes),
/// and the CSV it leaves is consistent: readable, no message twice.
#[test]
fn consume_ends_within_its_bound_when_the_broker_dies() {
    let mut broker = TestBroker::start(common::program_engine(), &[("weather", 1)]);
    broker.produce("weather", 1, 3000);
    let dir = temp_dir("broker-dies");
    let csv = dir.join("kafka_log.csv");
    let mut child = Command::new(kafka_lab_bin())
        .current_dir(&dir)
        .args([
            "-b",
            broker.bootstrap(),
            "--broker-timeout-ms",
            "3000",
            "consume",
        ])
        .args([
            "--topic",
            "weather",
            "--group",
            &fresh_group_id("dies"),
            "--batch",
            "10",
        ])
        .args([
            "--max",
            "1000000",
            "--follow",
            "--timeout-ms",
            "120000",
            "--csv",
        ])
        .arg(&csv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it is writing, then kill the broker under it.
    let started = Instant::now();
    while read_csv_log(&csv).map_or(0, |rows| rows.len()) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "consume never wrote"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    broker.broker.kill();
    let killed = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if killed.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("consume still running 30 s after the broker died");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    eprintln!(
        "consume ended {:?} after the kill: {status}\n{stderr}",
        killed.elapsed()
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    // It still says what it read, wrote and asked to commit before the loss.
    assert!(
        stderr.contains("asked to commit (the last perhaps not stored)")
            && stderr.contains("stopped: failed"),
        "{stderr}"
    );
    let rows = read_csv_log(&csv).unwrap();
    assert!(
        stderr.contains(&format!("holds {} rows", rows.len())),
        "{stderr}"
    );
    let distinct: std::collections::HashSet<i64> = rows.iter().map(|r| r.offset).collect();
    assert_eq!(distinct.len(), rows.len(), "no message twice in the CSV");
}

/// Starts `kafka-lab -b BOOTSTRAP produce --topic weather ARGS...` in `dir`,
/// its reports going to `stdout`.
fn spawn_produce(
    dir: &std::path::Path,
    bootstrap: &str,
    args: &[&str],
    stdout: impl Into<Stdio>,
) -> std::process::Child {
    Command::new(kafka_lab_bin())
        .current_dir(dir)
        .args(["-b", bootstrap, "produce", "--topic", "weather"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends `signal` to `child` and waits at most `bound` for it to exit;
/// returns its exit code, its stderr and how long it took.
fn signal_and_wait(
    mut child: std::process::Child,
    signal: i32,
    bound: Duration,
) -> (Option<i32>, String, Duration) {
    // SAFETY: kill(2) with a pid we spawned and a valid signal number.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if sent.elapsed() > bound {
            let _ = child.kill();
            panic!("still running {bound:?} after signal {signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr, sent.elapsed())
}

/// `produce` stopped by SIGTERM mid-burst flushes what is in flight and
/// accounts for every reading: the reports it printed, the count it states and
/// the topic's messages all agree, and it exits 143. Ctrl-C during a paced run
/// stops it in its sleep, exit 130.
#[test]
fn produce_stops_on_the_first_signal_and_reports_every_delivered_reading() {
    let broker = TestBroker::start(Engine::Mock, &[("weather", 4)]);
    let dir = temp_dir("produce-sigterm");
    let reports = dir.join("reports.jsonl");
    let child = spawn_produce(
        &dir,
        broker.bootstrap(),
        &["--json", "--count", "100000000"],
        std::fs::File::create(&reports).unwrap(),
    );
    let started = Instant::now();
    while std::fs::metadata(&reports).map_or(0, |m| m.len()) < 100_000 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no reports printed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let delivered = delivered_after_sigterm(child);
    let printed = std::fs::read_to_string(&reports).unwrap();
    // Each (partition, offset) once, each partition's offsets rising.
    let mut last_offset = std::collections::HashMap::new();
    for line in printed.lines() {
        let report: serde_json::Value = serde_json::from_str(line).unwrap();
        let (partition, offset) = (report["partition"].as_i64(), report["offset"].as_i64());
        let (Some(partition), Some(offset)) = (partition, offset) else {
            panic!("no partition and offset: {line}");
        };
        assert!(
            last_offset
                .insert(partition, offset)
                .is_none_or(|before| before < offset),
            "partition {partition}: offset {offset} printed again or out of order"
        );
    }
    assert_eq!(
        printed.lines().count() as i64,
        delivered,
        "a report line per delivered reading"
    );
    assert_eq!(written(&broker), delivered, "every stored reading reported");

    let paced_reports = dir.join("paced.jsonl");
    let paced = spawn_produce(
        &dir,
        broker.bootstrap(),
        &["--json", "--count", "100", "--rate", "0.5"],
        std::fs::File::create(&paced_reports).unwrap(),
    );
    // Its first reading is reported (so the handler is in place); the next
    // is due 2 s after the first.
    let started = Instant::now();
    while std::fs::metadata(&paced_reports).map_or(0, |m| m.len()) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no first report"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (code, stderr, took) = signal_and_wait(paced, libc::SIGINT, Duration::from_secs(10));
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        took < Duration::from_secs(1),
        "the sleep noticed Ctrl-C: {took:?}"
    );
    assert!(
        stderr.contains("stopped by Ctrl-C (SIGINT) after sending 1 of 100 readings: 1 delivered"),
        "{stderr}"
    );
}

/// The same stop for `produce --quiet`, which prints no row (and so starts no
/// printing thread): the count it states is what the topic holds, and it exits 143.
#[test]
fn a_quiet_produce_stops_on_the_first_signal_and_counts_every_delivered_reading() {
    let broker = TestBroker::start(Engine::Mock, &[("weather", 4)]);
    let dir = temp_dir("produce-quiet-sigterm");
    let child = spawn_produce(
        &dir,
        broker.bootstrap(),
        &["--quiet", "--count", "100000000"],
        Stdio::null(),
    );
    let started = Instant::now();
    while written(&broker) < 100_000 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing stored"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let delivered = delivered_after_sigterm(child);
    assert_eq!(written(&broker), delivered, "every written reading counted");
}

/// Stops a running `produce` with SIGTERM, checks that it says so and exits
/// 143 within 10 s, and returns how many readings it says were delivered.
fn delivered_after_sigterm(child: std::process::Child) -> i64 {
    let (code, stderr, took) = signal_and_wait(child, libc::SIGTERM, Duration::from_secs(10));
    eprintln!("stopped {took:?} after SIGTERM: {stderr}");
    assert_eq!(code, Some(143), "{stderr}");
    assert!(
        stderr.contains("stopped by SIGTERM after sending"),
        "{stderr}"
    );
    stderr
        .split_once("readings: ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a delivered count in {stderr}"))
}

/// How many messages were written to `weather`: the sum of its high
/// watermarks (the mock keeps only the newest few MB of each partition, so
/// its low watermarks move up).
fn written(broker: &TestBroker) -> i64 {
    offsets::watermarks(&broker.settings(), "weather")
        .unwrap()
        .iter()
        .map(|(_, _, high)| high)
        .sum()
}

/// A value the consumer cannot fetch (5 MB, with the client's fetch sizes at
/// 1 MB and its largest response at 2 MB) stops its partition: `consume`
/// names the topic, partition and offset with the settings to raise, exits 1,
/// and still writes and commits what came before it.
#[test]
fn a_stuck_partition_is_named_with_its_offset() {
    let broker = TestBroker::start(common::program_engine(), &[("weather", 1)]);
    broker.produce("weather", 5, 3);
    let mut large = broker.settings();
    large.set("message.max.bytes", "10000000");
    produce_raw(&large, "weather", &[Some(&vec![b'x'; 5_000_000])]);
    broker.produce("weather", 6, 3);
    let dir = temp_dir("stuck");
    let group = fresh_group_id("stuck");
    let started = Instant::now();
    let stderr = common::kafka_lab_fails(
        &dir,
        broker.bootstrap(),
        &[
            "-X",
            "fetch.max.bytes=1000000",
            "-X",
            "max.partition.fetch.bytes=1000000",
            "-X",
            "receive.message.max.bytes=2000000",
            "consume",
            "--group",
            &group,
            "--timeout-ms",
            "15000",
        ],
        1,
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(stderr.contains("stuck at weather[0] offset 3"), "{stderr}");
    assert!(stderr.contains("fetch.max.bytes"), "{stderr}");
    assert!(
        stderr.contains("committed weather[0]=3, stopped: timeout"),
        "{stderr}"
    );
    assert_eq!(read_csv_log(dir.join("kafka_log.csv")).unwrap().len(), 3);
}

/// A member that holds the only partition is frozen (SIGSTOP: alive to the
/// broker until its 30 s session times out, as a crashed one is on an engine
/// that never removes it; nisshi 0.7.0-pre.2 takes half the session timeout
/// to let it join). Another member of the group, with messages waiting,
/// is given nothing: `consume` ends by timeout with exit 1 and says why, and
/// so does the library's `poll_batch`, instead of an empty read that looks fine.
#[test]
fn a_member_given_no_partition_while_messages_wait_fails_loudly() {
    let broker = TestBroker::start(common::program_engine(), &[("weather", 1)]);
    broker.produce("weather", 7, 1);
    let dir = temp_dir("not-assigned");
    let group = fresh_group_id("frozen");
    let csv = dir.join("holder.csv");
    let holder = start_follower(&dir, broker.bootstrap(), &group, &csv, "30000");
    // The row is written before its offset is committed: wait for the commit.
    let started = Instant::now();
    while offsets::committed_offsets(&broker.settings(), &group, "weather").unwrap()
        != vec![(0, Some(1))]
    {
        assert!(started.elapsed() < Duration::from_secs(30), "no commit");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) with a pid we spawned and a valid signal number.
    unsafe {
        libc::kill(holder.0.id() as i32, libc::SIGSTOP);
    }
    broker.produce("weather", 8, 10);

    let stderr = group_read_fails(&dir, broker.bootstrap(), &group, "6000");
    // However short the read: it still says why it read nothing.
    let started = Instant::now();
    let short = group_read_fails(&dir, broker.bootstrap(), &group, "1000");
    assert!(short.contains("nobody read the group's 10"), "{short}");
    assert!(started.elapsed() < Duration::from_secs(10), "{short}");
    let mut options = kafka_lab::consume::ConsumeOptions::new("weather").group(group.as_str());
    options.timeout = Duration::from_secs(6);
    let polled = kafka_lab::consume::WeatherConsumer::new(&broker.settings(), options)
        .and_then(|mut consumer| consumer.poll_batch(100, Duration::from_secs(11)));
    drop(holder);
    assert!(
        stderr.contains(&format!(
            "no partition of 'weather' was assigned to this member of group '{group}'"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("nobody read the group's 10 unread message(s)"),
        "{stderr}"
    );
    assert!(stderr.contains("group.instance.id"), "{stderr}");
    match polled {
        Err(kafka_lab::Error::NotAssigned { unread: 10, .. }) => {}
        other => panic!("poll_batch: {other:?}"),
    }
}

/// A broker that stops answering (frozen with SIGSTOP) while `produce` sends.
/// Once librdkafka's local queue is full, a send waits the broker timeout for
/// room, then the command fails, exit 1, saying what it waited for and why
/// (not a bare "QueueFull"), and counts the readings sent before that were
/// never delivered.
#[test]
fn a_producer_facing_a_frozen_broker_says_its_queue_stayed_full() {
    let (broker, mut producer, rows) = produce_until_the_first_row("2000");
    let frozen = Frozen::stop(broker.broker.pid());
    let started = Instant::now();
    let stderr = stderr_at_exit(&mut producer);
    let waited = started.elapsed();
    drop(frozen);
    assert_eq!(producer.wait().unwrap().code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("sending to 'frozen' did not happen within 2s")
            && stderr.contains("queue.buffering.max.messages")
            && stderr.contains(broker.bootstrap()),
        "{stderr}"
    );
    // The 20 queued when the broker froze: purged after the final flush's
    // wait (their own timeout, a minute, never comes). The error counts them
    // with those sent before (the library's error, not the command's count),
    // and the command lists each.
    let (sent, total, delivered, not_delivered) = counts_before_the_failed_send(&stderr);
    assert_eq!((total, not_delivered), (3000, 20), "{stderr}");
    // A row was printed for each delivery the error counts.
    assert_eq!(rows.join().unwrap(), delivered, "{stderr}");
    assert!(sent > 20, "{stderr}");
    let listed = stderr
        .lines()
        .filter(|line| line.starts_with("not delivered: "))
        .count();
    assert_eq!(listed, 20, "{stderr}");
    // 2 s for room, then 3 s for the last reports (the timeout and a second).
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(20)).contains(&waited),
        "{waited:?}: {stderr}"
    );
}

/// Ctrl-C or SIGTERM while a send waits for room in a full queue (the broker
/// frozen) stops the sends at once, as it does anywhere else: exit 143 and
/// the counts, not a timeout after the broker timeout.
#[test]
fn sigterm_while_a_send_waits_for_room_stops_the_producer() {
    let (broker, mut producer, _rows) = produce_until_the_first_row("8000");
    let frozen = Frozen::stop(broker.broker.pid());
    // The queue of 20 is full 0.1 s after the freeze.
    std::thread::sleep(Duration::from_millis(1000));
    let started = Instant::now();
    // SAFETY: kill(2) with the pid of a process this test started.
    assert_eq!(
        unsafe { libc::kill(producer.id() as i32, libc::SIGTERM) },
        0
    );
    let stderr = stderr_at_exit(&mut producer);
    let waited = started.elapsed();
    drop(frozen);
    assert_eq!(producer.wait().unwrap().code(), Some(143), "{stderr}");
    assert!(
        stderr.contains("stopped by SIGTERM after sending"),
        "{stderr}"
    );
    // The final flush's 9-10 s (the timeout and a second, then the purge),
    // without the 7 s left of the wait for room before it.
    assert!(waited < Duration::from_secs(14), "{waited:?}: {stderr}");
}

/// The library's side of the frozen broker: `stream_weather`, stopped by a
/// send that found the queue full, returns the send's error with what became
/// of the readings sent before it, and those agree with the reports it handed
/// over (what a notebook's `produce_weather` caller sees too).
#[test]
fn stream_weather_stopped_by_a_full_queue_counts_what_was_sent_before() {
    stream_weather_stopped_by_a_full_queue(Some(200.0), &mut WeatherGenerator::default_cities(13));
}

#[test]
fn a_burst_stopped_by_a_full_queue_counts_what_was_sent_and_leaves_its_generator_after_the_last_reading_taken(
) {
    // A burst's readings are made ahead on a thread of their own; the
    // generator goes on after the last one taken: each one sent, and the one
    // whose send failed.
    let mut generator = WeatherGenerator::default_cities(13);
    let sent = stream_weather_stopped_by_a_full_queue(None, &mut generator);
    let mut expected = WeatherGenerator::default_cities(13);
    for _ in 0..=sent {
        expected.next_reading();
    }
    let (next, expected_next) = (generator.next_reading(), expected.next_reading());
    assert_eq!(
        (next.city.as_str(), next.temperature),
        (expected_next.city.as_str(), expected_next.temperature)
    );
}

/// `stream_weather` of 3,000 readings at `rate` (a burst when none) to a mock
/// broker frozen at the first delivery report, with a local queue of 20:
/// checks that the sends stop with [`kafka_lab::Error::SendsStopped`], its
/// counts those of the reports handed over, and returns how many were sent.
fn stream_weather_stopped_by_a_full_queue(
    rate: Option<f64>,
    generator: &mut WeatherGenerator,
) -> usize {
    use kafka_lab::produce::stream_weather;
    let broker = TestBroker::start(Engine::Mock, &[("frozen", 1)]);
    let settings = broker
        .settings()
        .with_timeout(Duration::from_secs(2))
        .with("queue.buffering.max.messages", "20")
        .with("message.timeout.ms", "60000");
    // Frozen at the first delivery report: connected, and answering until then.
    let mut frozen = None;
    let (mut reported_delivered, mut reported_failed) = (0, 0);
    let result = stream_weather(
        &settings,
        "frozen",
        generator,
        3000,
        rate,
        &mut |_, report| match report {
            Ok(_) => {
                reported_delivered += 1;
                frozen.get_or_insert_with(|| Frozen::stop(broker.broker.pid()));
            }
            Err(_) => reported_failed += 1,
        },
    );
    drop(frozen);
    let Err(kafka_lab::Error::SendsStopped {
        cause,
        total,
        sent,
        delivered,
        undelivered,
    }) = result
    else {
        panic!("expected the sends to stop, got {result:?}");
    };
    assert!(
        matches!(*cause, kafka_lab::Error::Timeout { .. }),
        "{cause}"
    );
    assert_eq!(total, 3000);
    assert_eq!(delivered, reported_delivered);
    assert!(delivered >= 1);
    // The 20 in the full queue: each reported as purged, and counted.
    assert_eq!((sent - delivered, reported_failed), (20, 20));
    assert_eq!(undelivered.len(), 20);
    assert!(
        undelivered.iter().all(|line| line.contains("Purged")),
        "{undelivered:?}"
    );
    sent
}

/// A broker on the mock engine with topic `frozen`, and a paced `produce` to it
/// (200 a second, a local queue of 20, the given broker timeout, messages that
/// never time out on their own), once its first row is printed: it is
/// connected and its reports come back. The thread counts the rows printed,
/// the first one included, until the command exits.
fn produce_until_the_first_row(
    timeout_ms: &str,
) -> (
    TestBroker,
    std::process::Child,
    std::thread::JoinHandle<usize>,
) {
    use std::io::BufRead;
    let broker = TestBroker::start(Engine::Mock, &[("frozen", 1)]);
    let dir = temp_dir("frozen-broker");
    let mut producer = Command::new(kafka_lab_bin())
        .current_dir(&dir)
        .args(["-b", broker.bootstrap(), "--broker-timeout-ms", timeout_ms])
        .args(["-X", "queue.buffering.max.messages=20"])
        .args(["-X", "message.timeout.ms=60000"])
        .args([
            "produce", "--topic", "frozen", "--count", "3000", "--rate", "200",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rows = std::io::BufReader::new(producer.stdout.take().unwrap()).lines();
    let header = rows.next().unwrap().unwrap();
    assert!(header.starts_with("topic"), "{header}");
    let first = rows.next().unwrap().unwrap();
    assert!(first.starts_with("frozen"), "{first}");
    // The rest of the rows, read so that the producer never blocks on them.
    let rows = std::thread::spawn(move || 1 + rows.count());
    (broker, producer, rows)
}

/// (sent, total, delivered, not delivered) from `Error::SendsStopped`'s words:
/// "Before it, S of T readings were sent: D delivered, U not delivered (...)".
fn counts_before_the_failed_send(stderr: &str) -> (usize, usize, usize, usize) {
    let number = |text: &str, after: &str| -> usize {
        let start = text
            .find(after)
            .unwrap_or_else(|| panic!("no '{after}': {stderr}"))
            + after.len();
        let digits: String = text[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("no number after '{after}': {stderr}"))
    };
    let said = &stderr[stderr
        .find("Before it, ")
        .unwrap_or_else(|| panic!("{stderr}"))..];
    let sent = number(said, "Before it, ");
    let delivered = number(said, "readings were sent: ");
    let not_delivered = number(said, &format!("{delivered} delivered, "));
    (
        sent,
        number(said, &format!("{sent} of ")),
        delivered,
        not_delivered,
    )
}

/// Everything `child` writes to stderr, until it exits.
fn stderr_at_exit(child: &mut std::process::Child) -> String {
    use std::io::Read;
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

/// A process stopped with SIGSTOP, continued when this is dropped (a failed
/// assertion included), so that the broker can be stopped at the end.
struct Frozen(i32);

impl Frozen {
    fn stop(pid: u32) -> Frozen {
        // SAFETY: kill(2) with the pid of a process this test started.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGSTOP) }, 0);
        Frozen(pid as i32)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: as in `stop`.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// A `-F` file that cannot be read (missing, not UTF-8, a folder) is a setting
/// to fix: exit 2 at once, with the flag named. The mock engine, like tansu,
/// warns when it is to listen beyond loopback.
#[test]
fn unreadable_properties_files_exit_2_and_the_mock_warns_beyond_loopback() {
    let dir = temp_dir("properties-files");
    std::fs::write(dir.join("latin1.properties"), b"client.id=caf\xe9\n").unwrap();
    for file in ["missing.properties", "latin1.properties", "."] {
        let stderr =
            common::kafka_lab_fails(&dir, "127.0.0.1:9", &["-F", file, "topics", "list"], 2);
        assert!(
            stderr.contains("cannot read the properties file"),
            "{file}: {stderr}"
        );
        assert!(
            stderr.contains("hint: set the properties file with -F"),
            "{stderr}"
        );
    }

    let port = kafka_lab::broker::free_loopback_port().unwrap();
    let mut mock = Command::new(kafka_lab_bin())
        .args([
            "broker",
            "--engine",
            "mock",
            "--topic",
            "weather:1",
            "--listen",
        ])
        .arg(format!("0.0.0.0:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(mock.stderr.take().unwrap()),
        &mut first_line,
    )
    .unwrap();
    let _ = mock.kill();
    let _ = mock.wait();
    assert!(
        first_line.starts_with("warning: the embedded broker will listen on 0.0.0.0"),
        "{first_line}"
    );
}

/// A spare member (the live members hold every partition and read what
/// arrives) is not an error: the group's committed offsets move while it
/// waits, so its read ends by timeout with exit 0.
#[test]
fn a_spare_member_beside_members_that_read_is_not_an_error() {
    let broker = TestBroker::start(common::program_engine(), &[("weather", 1)]);
    broker.produce("weather", 9, 1);
    let dir = temp_dir("spare");
    let group = fresh_group_id("spare");
    let csv = dir.join("reader.csv");
    let reader = start_follower(&dir, broker.bootstrap(), &group, &csv, "10000");
    let settings = broker.settings();
    let producing = std::thread::spawn(move || {
        for seed in 0..32 {
            let readings =
                kafka_lab::weather::WeatherGenerator::default_cities(seed).take_readings(1);
            kafka_lab::produce::produce_readings(&settings, "weather", &readings).unwrap();
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    // Long enough to outlast the rebalance its own join causes: nisshi holds
    // every member's JoinGroup for half the group's session timeout (5 s
    // here), and nobody reads meanwhile.
    let spare = kafka_lab(&dir, &group_read(broker.bootstrap(), &group, "15000"));
    producing.join().unwrap();
    drop(reader);
    assert_eq!(spare.status.code(), Some(0), "{}", describe(&spare));
}

/// A `consume --follow` member of `group` writing `csv` (with this session
/// timeout), SIGKILLed when dropped, however the test ends.
struct Follower(std::process::Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a [`Follower`] and waits until it has written its first row.
fn start_follower(
    dir: &std::path::Path,
    bootstrap: &str,
    group: &str,
    csv: &std::path::Path,
    session_timeout_ms: &str,
) -> Follower {
    let child = Command::new(kafka_lab_bin())
        .current_dir(dir)
        .args(["-b", bootstrap, "-X"])
        .arg(format!("session.timeout.ms={session_timeout_ms}"))
        .args(["consume", "--group", group, "--follow", "--timeout-ms"])
        .args(["120000", "--csv"])
        .arg(csv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let follower = Follower(child);
    wait_for_rows(csv, 1);
    follower
}

/// `-b BOOTSTRAP consume --group GROUP --no-csv --timeout-ms TIMEOUT_MS`.
fn group_read<'a>(bootstrap: &'a str, group: &'a str, timeout_ms: &'a str) -> Vec<&'a str> {
    let read = ["consume", "--group", group, "--no-csv", "--timeout-ms"];
    let mut args = vec!["-b", bootstrap];
    args.extend(read);
    args.push(timeout_ms);
    args
}

/// Runs [`group_read`], checks it exits 1, and returns its stderr.
fn group_read_fails(
    dir: &std::path::Path,
    bootstrap: &str,
    group: &str,
    timeout_ms: &str,
) -> String {
    let output = kafka_lab(dir, &group_read(bootstrap, group, timeout_ms));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    String::from_utf8_lossy(&output.stderr).into_owned()
}
