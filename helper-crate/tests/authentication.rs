//! SASL against a broker that requires it: nisshi started with
//! `--authentication`, which accepts SCRAM-SHA-256 and SCRAM-SHA-512 logins
//! (PLAIN, the original lab's mechanism, is not built into it).
//!
//! nisshi has no way to make the first user while it requires logins, so the
//! test makes it with authentication off (`nisshi user create`, an
//! AlterUserScramCredentials request), then restarts the broker with it on.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{describe, kafka_lab, temp_dir};
use kafka_lab::broker::{find_engine_binary, free_loopback_port, is_reachable, Engine};

/// A nisshi process in `dir` on `bootstrap`, killed when dropped.
struct Nisshi(Child);

impl Nisshi {
    fn start(binary: &Path, dir: &Path, bootstrap: &str, authentication: bool) -> Nisshi {
        let url = format!("tcp://{bootstrap}");
        let mut command = Command::new(binary);
        command
            .current_dir(dir)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://auth.db"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if authentication {
            command.arg("--authentication");
        }
        let nisshi = Nisshi(command.spawn().expect("nisshi starts"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_reachable(bootstrap, Duration::from_millis(200)) {
            assert!(
                Instant::now() < deadline,
                "nisshi did not listen on {bootstrap}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        nisshi
    }
}

impl Drop for Nisshi {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sasl_args<'a>(bootstrap: &'a str, mechanism: &'a str, password: &'a str) -> Vec<&'a str> {
    vec![
        "-b",
        bootstrap,
        "--broker-timeout-ms",
        "5000",
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        mechanism,
        "-X",
        "sasl.username=alice",
        "-X",
        password,
    ]
}

#[test]
fn scram_logins_work_and_a_wrong_password_is_named_within_the_timeout() {
    if common::program_engine() != Engine::Nisshi {
        eprintln!("skipped: only nisshi has authentication (tansu 0.6 has none)");
        return;
    }
    let binary: PathBuf = find_engine_binary(Engine::Nisshi).expect("nisshi is installed");
    let dir = temp_dir("sasl");
    let bootstrap = format!("127.0.0.1:{}", free_loopback_port().unwrap());

    let open = Nisshi::start(&binary, &dir, &bootstrap, false);
    make_alice(&binary, &dir, &bootstrap);
    drop(open);
    let _secured = Nisshi::start(&binary, &dir, &bootstrap, true);
    the_right_password_creates_produces_and_consumes(&dir, &bootstrap);

    // A wrong password: exit 1 within the broker timeout, naming the login.
    let wrong = sasl_args(
        &bootstrap,
        "sasl.mechanism=SCRAM-SHA-256",
        "sasl.password=nope",
    );
    let started = Instant::now();
    let output = kafka_lab(&dir, &[wrong.as_slice(), &["topics", "list"]].concat());
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("wrong password, after {took:?}:\n{stderr}");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(took < Duration::from_secs(9), "{took:?}");
    assert!(stderr.contains("refused this client's login"), "{stderr}");
    assert!(
        stderr.contains("SASL SCRAM authentication failed"),
        "{stderr}"
    );
    assert!(stderr.contains("invalid-proof"), "{stderr}");

    // PLAIN is not built into nisshi: the broker closes the handshake.
    let plain = sasl_args(
        &bootstrap,
        "sasl.mechanism=PLAIN",
        "sasl.password=alice-secret",
    );
    let output = kafka_lab(&dir, &[plain.as_slice(), &["topics", "list"]].concat());
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("PLAIN:\n{stderr}");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(stderr.contains("refused this client's login"), "{stderr}");
    assert!(
        stderr.contains("SASL PLAIN mechanism handshake failed"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Makes the user `alice` (password `alice-secret`) for both SCRAM mechanisms,
/// through a broker that does not ask for logins yet.
fn make_alice(binary: &Path, dir: &Path, bootstrap: &str) {
    for mechanism in ["scram256", "scram512"] {
        let made = Command::new(binary)
            .current_dir(dir)
            .args([
                "user",
                "create",
                "--mechanism",
                mechanism,
                "alice",
                "alice-secret",
            ])
            .args(["--broker", &format!("tcp://{bootstrap}")])
            .output()
            .unwrap();
        assert!(made.status.success(), "{}", describe(&made));
    }
}

/// The right password, both mechanisms: create a topic, produce, consume.
fn the_right_password_creates_produces_and_consumes(dir: &Path, bootstrap: &str) {
    for (mechanism, topic) in [
        ("sasl.mechanism=SCRAM-SHA-256", "t256"),
        ("sasl.mechanism=SCRAM-SHA-512", "t512"),
    ] {
        let login = sasl_args(bootstrap, mechanism, "sasl.password=alice-secret");
        for command in [
            vec!["topics", "create", topic, "--partitions", "1"],
            vec!["produce", "--topic", topic, "--count", "5"],
            vec!["consume", "--topic", topic, "--no-csv", "--max", "5"],
        ] {
            let output = kafka_lab(dir, &[login.as_slice(), command.as_slice()].concat());
            assert!(
                output.status.success(),
                "{mechanism} {command:?}: {}",
                describe(&output)
            );
        }
        let consumed = kafka_lab(
            dir,
            &[
                login.as_slice(),
                &["consume", "--topic", topic, "--no-csv", "--max", "5"],
            ]
            .concat(),
        );
        assert!(
            String::from_utf8_lossy(&consumed.stderr).contains("read 5 reading(s)"),
            "{}",
            describe(&consumed)
        );
    }
}
