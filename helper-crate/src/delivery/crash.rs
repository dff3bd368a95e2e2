//! A crash in the middle of a batch: two real processes, one killed, one restarted.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::strategies::{CommitStrategy, ProcessOptions};
use crate::config::KafkaSettings;
use crate::consume::fresh_group_id;
use crate::display::{AsTable, Table};
use crate::error::{Error, Result};
use crate::offsets;

/// The exit status of a `process` run that "crashed" after
/// [`ProcessOptions::crash_after`] readings.
pub const CRASH_EXIT_CODE: i32 = 86;

/// One line of `process` output: a reading that was processed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processed {
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

/// A process crashed in the middle of a batch, and a second one finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CrashDemo {
    /// The strategy both processes used.
    pub strategy: CommitStrategy,
    /// Readings in the topic.
    pub expected: usize,
    /// Readings per batch.
    pub batch: usize,
    /// The first process died after processing this many.
    pub crashed_after: usize,
    /// Readings the second process processed.
    pub processed_after_restart: usize,
    /// Readings never processed.
    pub lost: usize,
    /// Readings processed twice.
    pub duplicated: usize,
}

/// The arguments that give a child `kafka-lab` process the same connection
/// settings as `settings` (the binary's `-b` and `-X`).
fn connection_args(settings: &KafkaSettings) -> Vec<String> {
    let mut args = vec!["-b".to_string(), settings.bootstrap().to_string()];
    for (key, value) in settings.properties() {
        args.extend(["-X".to_string(), format!("{key}={value}")]);
    }
    args
}

/// Runs `kafka-lab process` twice on `topic` with a fresh group: the first run
/// exits abruptly (no commit, no goodbye to the group) after processing
/// `crash_after` readings, the second runs to the end. Counts what was lost and
/// what was processed twice.
///
/// Both runs use the same `group.instance.id` (static membership), so the
/// restarted process takes the crashed one's place at once instead of waiting
/// for its session to time out.
pub fn crash_demo(
    settings: &KafkaSettings,
    kafka_lab: &Path,
    topic: &str,
    strategy: CommitStrategy,
    crash_after: usize,
    batch: usize,
) -> Result<CrashDemo> {
    let expected: usize = offsets::watermarks(settings, topic)?
        .iter()
        .map(|(_, low, high)| (high - low) as usize)
        .sum();
    let group = fresh_group_id(&format!("crash-{strategy}"));
    let member = settings
        .clone()
        .with("group.instance.id", format!("{group}-member"));
    let options = ProcessOptions {
        batch: batch as u64,
        // 20 ms of work per reading and an auto-commit every 100 ms: the
        // store-after strategy commits every few readings.
        work: Duration::from_millis(20),
        auto_commit_interval: Duration::from_millis(100),
        ..ProcessOptions::new(topic, &group, strategy)
    };
    let run = |options: &ProcessOptions| -> Result<Vec<Processed>> {
        let output = Command::new(kafka_lab)
            .args(connection_args(&member))
            .arg("process")
            .args(options.to_args())
            .output()
            .map_err(|e| Error::io(kafka_lab.to_path_buf(), e))?;
        let expected_status = options.crash_after.map_or(0, |_| CRASH_EXIT_CODE);
        if output.status.code() != Some(expected_status) {
            return Err(Error::Program {
                program: format!("{} process", kafka_lab.display()),
                message: format!(
                    "exited with {:?}, expected {expected_status}: {}",
                    output.status.code(),
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    };
    let first = run(&ProcessOptions {
        crash_after: Some(crash_after),
        ..options.clone()
    })?;
    let second = run(&options)?;
    let mut times: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for p in first.iter().chain(&second) {
        *times.entry((p.partition, p.offset)).or_default() += 1;
    }
    Ok(CrashDemo {
        strategy,
        expected,
        batch,
        crashed_after: first.len(),
        processed_after_restart: second.len(),
        lost: expected.saturating_sub(times.len()),
        duplicated: times.values().filter(|n| **n > 1).count(),
    })
}

/// Several crash demos side by side.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CrashDemos(pub Vec<CrashDemo>);

impl AsTable for CrashDemos {
    fn as_table(&self) -> Table {
        let mut table = Table::new(&[
            "strategy",
            "guarantee",
            "readings",
            "batch",
            "crashed after",
            "processed after restart",
            "lost",
            "processed twice",
        ])
        .with_title("A crash in the middle of a batch, then a restart");
        for d in &self.0 {
            table.push_row(vec![
                d.strategy.to_string(),
                d.strategy.guarantee().to_string(),
                d.expected.to_string(),
                d.batch.to_string(),
                d.crashed_after.to_string(),
                d.processed_after_restart.to_string(),
                d.lost.to_string(),
                d.duplicated.to_string(),
            ]);
        }
        table
    }
}

crate::shown_as_table!(CrashDemos);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_gets_the_same_connection_settings() {
        let settings = KafkaSettings::new("127.0.0.1:9")
            .with("group.instance.id", "m")
            .with("linger.ms", "5");
        assert_eq!(
            connection_args(&settings),
            [
                "-b",
                "127.0.0.1:9",
                "-X",
                "group.instance.id=m",
                "-X",
                "linger.ms=5"
            ]
        );
    }
}
