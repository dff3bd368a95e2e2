//! Connection settings: where the brokers are and how to talk to them.
//!
//! A Kafka client needs one thing to start: `bootstrap.servers`, a list of
//! `host:port` pairs. It connects to any one of them, asks for the cluster's
//! metadata, and from then on talks to whichever broker leads each partition.
//! Everything else (security, batching, timeouts) is a librdkafka property with
//! the same name in every librdkafka client: kcat, confluent-kafka, rust-rdkafka.
//!
//! Where the bootstrap address comes from, first match wins:
//! 1. `-b/--bootstrap` (or [`KafkaSettings::new`]),
//! 2. `KAFKA_BOOTSTRAP_SERVERS`,
//! 3. `127.0.0.1:9092`, where `kafka-lab broker` and docker compose listen.
//!
//! Other properties come from a properties file (`-F FILE`, or the file named by
//! `KAFKA_LAB_CONFIG`), then from `-X key=value`, later ones overriding earlier.
//! Secrets (`sasl.password`, `ssl.key.password`, ...) are passed to librdkafka
//! but shown as `***` wherever settings are printed.
//!
//! kcat equivalent: `kcat -b HOST:PORT -X key=value -F file.properties`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use rdkafka::ClientConfig;

use crate::error::{Error, Result, Setting};

/// The address used when neither `-b` nor `KAFKA_BOOTSTRAP_SERVERS` is given.
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";

/// How long a call may wait for the broker before it gives up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to connect and which librdkafka properties to use.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    bootstrap: String,
    properties: BTreeMap<String, String>,
    timeout: Duration,
}

impl KafkaSettings {
    /// Settings for the given bootstrap servers, with no extra properties.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        KafkaSettings {
            bootstrap: bootstrap.into(),
            properties: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Settings from the environment: `KAFKA_BOOTSTRAP_SERVERS` (else
    /// `127.0.0.1:9092`) and the properties file named by `KAFKA_LAB_CONFIG`.
    pub fn from_env() -> Result<Self> {
        let bootstrap = std::env::var("KAFKA_BOOTSTRAP_SERVERS")
            .ok()
            .filter(|value| !value.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_BOOTSTRAP.to_string());
        let mut settings = KafkaSettings::new(bootstrap);
        if let Some(path) = std::env::var_os("KAFKA_LAB_CONFIG") {
            settings.load_properties_file(Path::new(&path))?;
        }
        Ok(settings)
    }

    /// The bootstrap servers, e.g. `127.0.0.1:9092`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// How long calls wait for the broker.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets how long calls wait for the broker (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Replaces the bootstrap servers.
    pub fn with_bootstrap(mut self, bootstrap: impl Into<String>) -> Self {
        self.bootstrap = bootstrap.into();
        self
    }

    /// Sets one librdkafka property, e.g. `("security.protocol", "SASL_PLAINTEXT")`.
    /// `bootstrap.servers` replaces the bootstrap address.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let key = key.into();
        let value = value.into();
        if key == "bootstrap.servers" || key == "metadata.broker.list" {
            self.bootstrap = value;
        } else {
            self.properties.insert(key, value);
        }
        self
    }

    /// Builder form of [`KafkaSettings::set`].
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(key, value);
        self
    }

    /// Sets a property given as `key=value` (the `-X` flag).
    pub fn set_pair(&mut self, pair: &str) -> Result<&mut Self> {
        let (key, value) = parse_property(pair)?;
        Ok(self.set(key, value))
    }

    /// Reads a Java-style properties file (`key=value` lines, `#` comments), as
    /// kcat's `-F` does, and sets every property in it.
    pub fn load_properties_file(&mut self, path: &Path) -> Result<&mut Self> {
        // A file the user named that cannot be read is a setting to fix (exit 2),
        // not a runtime failure.
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(
                Setting::PropertiesFile,
                format!("{}: cannot read the properties file: {e}", path.display()),
            )
        })?;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let (key, value) = parse_property(line).map_err(|e| {
                Error::config(
                    Setting::PropertiesFile,
                    format!("{}:{}: {e}", path.display(), number + 1),
                )
            })?;
            self.set(key, value);
        }
        Ok(self)
    }

    /// The properties set on top of `bootstrap.servers`, secrets included.
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// A librdkafka configuration with `bootstrap.servers` and every property.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// [`KafkaSettings::client_config`] plus `defaults`: each default is used
    /// only where the user did not set that property (with `-X` or `-F`).
    pub fn client_config_with_defaults(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = self.client_config();
        for (key, value) in defaults {
            if !self.properties.contains_key(*key) {
                config.set(*key, *value);
            }
        }
        config
    }

    /// A client error, as [`Error::from_client`] classifies it: "no broker
    /// answered at these bootstrap servers within the timeout", or what the
    /// client said while doing `context`.
    pub fn client_error(
        &self,
        context: impl Into<String>,
        error: rdkafka::error::KafkaError,
    ) -> Error {
        Error::from_client(&self.bootstrap, self.timeout, context, error)
    }

    /// Asks librdkafka whether every property exists and has a valid value,
    /// without connecting. Unknown names and bad values are a [`Error::Config`].
    pub fn validate(&self) -> Result<()> {
        validate_bootstrap(&self.bootstrap)?;
        self.client_config()
            .create_native_config()
            .map(drop)
            .map_err(|e| {
                Error::config(Setting::Connection, format!("invalid client property: {e}"))
            })
    }
}

/// Checks a bootstrap list before any client waits on it: `host:port` entries
/// separated by commas (IPv6 as `[::1]:9092`), an optional Kafka listener
/// prefix (`PLAINTEXT://`, `SSL://`, `SASL_PLAINTEXT://`, `SASL_SSL://`), a
/// port from 1 to 65535. An empty list, a URL such as `http://...` or port
/// 99999 would otherwise cost a full broker timeout, or reach another port.
pub fn validate_bootstrap(bootstrap: &str) -> Result<()> {
    let bad = |why: String| Error::config(Setting::Connection, why);
    if bootstrap.trim().is_empty() {
        return Err(bad(
            "the bootstrap servers are empty: give host:port, e.g. 127.0.0.1:9092".to_string(),
        ));
    }
    for entry in bootstrap.split(',').map(str::trim) {
        let address = match entry.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = scheme.to_ascii_uppercase();
                if !["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"].contains(&scheme.as_str()) {
                    return Err(bad(format!(
                        "bootstrap server '{entry}' is a URL: give host:port, e.g. 127.0.0.1:9092"
                    )));
                }
                rest
            }
            None => entry,
        };
        let (host, port) = match address.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((host, rest)) => (host, rest.strip_prefix(':')),
                None => ("", None),
            },
            None => match address.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (address, None),
            },
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(bad(format!(
                "bootstrap server '{entry}' has no valid host: give host:port, e.g. 127.0.0.1:9092"
            )));
        }
        if let Some(port) = port {
            if !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
                return Err(bad(format!(
                    "bootstrap server '{entry}': the port must be a number from 1 to 65535"
                )));
            }
        }
    }
    Ok(())
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings::new(DEFAULT_BOOTSTRAP)
    }
}

/// Shows the settings with secrets replaced by `***`.
impl fmt::Display for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bootstrap.servers={}", self.bootstrap)?;
        for (key, value) in &self.properties {
            write!(f, " {key}={}", redact(key, value))?;
        }
        Ok(())
    }
}

/// Debug output is redacted too, so a stray `{:?}` never leaks a password.
impl fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KafkaSettings({self})")
    }
}

/// Splits `key=value`; the value may itself contain `=`.
pub fn parse_property(pair: &str) -> Result<(String, String)> {
    match pair.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(Error::config(
            Setting::Connection,
            format!("'{pair}' is not a property: expected key=value, e.g. security.protocol=SASL_PLAINTEXT"),
        )),
    }
}

/// Returns `***` for properties that hold secrets, the value otherwise.
pub fn redact<'a>(key: &str, value: &'a str) -> &'a str {
    let key = key.to_ascii_lowercase();
    let secret = ["password", "secret", "jaas", "oauthbearer.config", "token"]
        .iter()
        .any(|word| key.contains(word));
    if secret {
        "***"
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_lists_are_checked_before_anything_waits_on_them() {
        for good in [
            "127.0.0.1:9092",
            "localhost:29092, localhost:39092",
            "[::1]:9092",
            "kafka",
            "SASL_SSL://broker:9093",
        ] {
            assert!(validate_bootstrap(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("  ", "empty"),
            ("http://127.0.0.1:9092", "URL"),
            ("127.0.0.1:99999", "port"),
            ("127.0.0.1:0", "port"),
            ("127.0.0.1:x", "port"),
            (":9092", "host"),
            ("a:1,,b:2", "host"),
        ] {
            let error = validate_bootstrap(bad).unwrap_err();
            assert!(error.to_string().contains(why), "{bad}: {error}");
            assert_eq!(error.exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn parse_property_splits_on_first_equals() {
        let (key, value) = parse_property("sasl.jaas.config=a=b").unwrap();
        assert_eq!(key, "sasl.jaas.config");
        assert_eq!(value, "a=b");
        assert!(matches!(
            parse_property("novalue"),
            Err(Error::Config { .. })
        ));
        assert!(matches!(parse_property("=x"), Err(Error::Config { .. })));
    }

    #[test]
    fn bootstrap_servers_property_replaces_the_address() {
        let settings = KafkaSettings::new("a:1").with("bootstrap.servers", "b:2");
        assert_eq!(settings.bootstrap(), "b:2");
        assert!(settings.properties().is_empty());
    }

    #[test]
    fn display_and_debug_redact_secrets() {
        let settings = KafkaSettings::new("a:1")
            .with("sasl.username", "alice")
            .with("sasl.password", "hunter2")
            .with("ssl.key.password", "s3cret");
        let shown = format!("{settings} {settings:?}");
        assert!(shown.contains("sasl.username=alice"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn validate_rejects_unknown_properties_as_config_errors() {
        let settings = KafkaSettings::new("a:1").with("no.such.property", "1");
        let error = settings.validate().unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("no.such.property"), "{error}");
        assert!(KafkaSettings::new("a:1")
            .with("linger.ms", "5")
            .validate()
            .is_ok());
    }

    #[test]
    fn secured_cluster_settings_pass_through_to_librdkafka() {
        // Built with SSL and SASL support: librdkafka accepts each protocol.
        for protocol in ["SASL_PLAINTEXT", "SASL_SSL", "SSL"] {
            let settings = KafkaSettings::new("broker:9093")
                .with("security.protocol", protocol)
                .with("sasl.mechanism", "SCRAM-SHA-512")
                .with("sasl.username", "alice")
                .with("sasl.password", "hunter2")
                .with("ssl.endpoint.identification.algorithm", "https");
            assert!(settings.validate().is_ok(), "{protocol}");
            assert_eq!(settings.properties()["security.protocol"], protocol);
            assert!(!settings.to_string().contains("hunter2"));
        }
    }

    #[test]
    fn properties_file_is_read_like_kcat_f() {
        let dir = std::env::temp_dir().join(format!("kafka-lab-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("client.properties");
        std::fs::write(
            &path,
            "# comment\nsecurity.protocol=SASL_PLAINTEXT\n\nsasl.mechanism = PLAIN\n",
        )
        .unwrap();
        let mut settings = KafkaSettings::default();
        settings.load_properties_file(&path).unwrap();
        assert_eq!(settings.properties()["security.protocol"], "SASL_PLAINTEXT");
        assert_eq!(settings.properties()["sasl.mechanism"], "PLAIN");
        std::fs::write(&path, "broken line\n").unwrap();
        let error = settings.load_properties_file(&path).unwrap_err();
        assert!(error.to_string().contains("client.properties:1"), "{error}");
        // Missing, not UTF-8, a folder: each a setting to fix (exit 2).
        std::fs::write(&path, b"a=\xff\n").unwrap();
        for unreadable in [dir.join("missing.properties"), path.clone(), dir.clone()] {
            let error = settings.load_properties_file(&unreadable).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{error}");
            assert!(error
                .to_string()
                .contains("cannot read the properties file"));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
