//! What a read did: readings, poison pills, CSV rows, commits, and why it stopped.

use std::collections::BTreeMap;

use serde::Serialize;

use super::options::StartFrom;
use crate::client::GroupEvent;
use crate::csv_log::{CsvRow, CSV_HEADER};
use crate::display::{AsTable, Column, Table};
use crate::record::{ConsumedRecord, PoisonPill};

/// Why a read stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum StopReason {
    /// It read the maximum number of messages.
    MaxMessages,
    /// Every assigned partition was read to its end.
    EndOfPartitions,
    /// The timeout passed first.
    #[default]
    Timeout,
    /// Ctrl-C or SIGTERM: the current batch was finished and committed first.
    Interrupted,
    /// An error ended the read (the broker went away, a commit failed): the
    /// commits listed were asked for, the last ones perhaps not stored.
    Failed,
}

impl StopReason {
    /// A few words for the summary line.
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::MaxMessages => "maximum reached",
            StopReason::EndOfPartitions => "end of partitions",
            StopReason::Timeout => "timeout",
            StopReason::Interrupted => "interrupted",
            StopReason::Failed => "failed",
        }
    }
}

/// Where a partition stood when a read ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionPosition {
    /// The partition.
    pub partition: i32,
    /// Its high watermark.
    pub high: i64,
    /// The group's committed offset (next to read), if any.
    pub committed: Option<i64>,
}

/// Everything one consume run did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ConsumeReport {
    /// The topic read.
    pub topic: String,
    /// The group, if any.
    pub group: Option<String>,
    /// Where it started.
    pub from: Option<StartFrom>,
    /// Readings read.
    pub read: usize,
    /// Readings, in the order read (empty unless the options keep them).
    pub records: Vec<ConsumedRecord>,
    /// Poison pills skipped.
    pub poison: Vec<PoisonPill>,
    /// Poison pills sent to the dead-letter topic.
    pub dead_lettered: usize,
    /// Rows added to the CSV log.
    pub csv_written: usize,
    /// Rows the CSV log already had (a re-read after a crash or re-run).
    pub csv_already_present: usize,
    /// The last commit per partition: the next offset to read.
    pub committed: BTreeMap<i32, i64>,
    /// Why it stopped.
    pub stopped: StopReason,
    /// Rebalances and commits seen.
    pub events: Vec<GroupEvent>,
    /// Watermark and committed offset of each partition when the read ended.
    pub positions: Vec<PartitionPosition>,
}

impl ConsumeReport {
    /// How many readings were read.
    pub fn count(&self) -> usize {
        self.read
    }

    /// The offsets read, in order.
    pub fn offsets(&self) -> Vec<i64> {
        self.records.iter().map(|r| r.offset).collect()
    }

    /// One line: what was read, skipped, written and committed, and why it stopped.
    pub fn summary(&self) -> String {
        let committed: Vec<String> = self
            .committed
            .iter()
            .map(|(p, o)| format!("{}[{p}]={o}", self.topic))
            .collect();
        format!(
            "read {} reading(s), skipped {} poison pill(s) ({} dead-lettered), wrote {} new CSV row(s) \
             ({} already there), {} {}, stopped: {}",
            self.read,
            self.poison.len(),
            self.dead_lettered,
            self.csv_written,
            self.csv_already_present,
            if self.stopped == StopReason::Failed && !committed.is_empty() {
                "asked to commit (the last perhaps not stored)"
            } else {
                "committed"
            },
            if committed.is_empty() {
                "nothing".to_string()
            } else {
                committed.join(" ")
            },
            self.stopped.describe()
        )
    }
}

/// The columns of `kafka_log.csv`, sized for rows printed as they are read.
pub const RECORD_COLUMNS: [Column; 6] = [
    Column {
        name: CSV_HEADER[0],
        width: 12,
        right: false,
    },
    Column {
        name: CSV_HEADER[1],
        width: 9,
        right: true,
    },
    Column {
        name: CSV_HEADER[2],
        width: 8,
        right: true,
    },
    Column {
        name: CSV_HEADER[3],
        width: 24,
        right: false,
    },
    Column {
        name: CSV_HEADER[4],
        width: 12,
        right: false,
    },
    Column {
        name: CSV_HEADER[5],
        width: 11,
        right: true,
    },
];

/// One row per reading, with the columns of `kafka_log.csv`.
pub fn record_table(records: &[ConsumedRecord]) -> Table {
    let mut table = Table::new(&CSV_HEADER);
    for r in records {
        table.push_row(CsvRow::from(r).cells());
    }
    table
}

impl AsTable for ConsumeReport {
    fn as_table(&self) -> Table {
        let mut table = record_table(&self.records).with_title(format!(
            "Consumed from '{}' (group {}, from {})",
            self.topic,
            self.group.as_deref().unwrap_or("none"),
            self.from.map_or("-".to_string(), |f| f.to_string())
        ));
        let mut footer = self.summary();
        for pill in &self.poison {
            footer.push_str(&format!(
                "\npoison pill at {}[{}]@{}: {} [{}]",
                pill.topic, pill.partition, pill.offset, pill.reason, pill.first_bytes
            ));
        }
        table.footer = Some(footer);
        table
    }
}

crate::shown_as_table!(ConsumeReport);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_what_was_committed_and_why_it_stopped() {
        let report = ConsumeReport {
            topic: "weather".into(),
            read: 3,
            committed: BTreeMap::from([(0, 3), (2, 7)]),
            stopped: StopReason::EndOfPartitions,
            ..ConsumeReport::default()
        };
        let summary = report.summary();
        assert!(summary.starts_with("read 3 reading(s)"), "{summary}");
        assert!(
            summary.contains("committed weather[0]=3 weather[2]=7"),
            "{summary}"
        );
        assert!(summary.ends_with("stopped: end of partitions"), "{summary}");
        let nothing = ConsumeReport::default().summary();
        assert!(
            nothing.contains("committed nothing, stopped: timeout"),
            "{nothing}"
        );
    }
}
