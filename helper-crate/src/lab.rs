//! The lab end to end: produce, then compare `earliest` with `latest`.
//!
//! The original "Kafka for Data Streaming" lab asks one question: what does a
//! consumer read? The answer depends on the group's committed offsets and, when
//! there are none, on `auto.offset.reset`. This module runs the experiment that
//! shows it, step by step, and checks each result:
//!
//! 1. create `weather` (1 partition) unless it exists, and note what it holds;
//! 2. produce 10 readings and show their delivery reports (offsets);
//! 3. a fresh group with `earliest` reads everything stored, saves it to
//!    `kafka_log.csv` and commits: its committed offset becomes the high watermark;
//! 4. a fresh group with `latest` joins and reads nothing: it starts at the end;
//! 5. 3 more readings are produced while the `latest` member stays in its group,
//!    and it reads exactly those 3;
//! 6. the `earliest` group, restarted, ignores `auto.offset.reset` and resumes at
//!    its committed offset.
//!
//! [`Comparison`] puts the four reads side by side: group, setting, messages read,
//! first and last offset, committed offset after the run and the high watermark.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::config::KafkaSettings;
use crate::consume::{
    fresh_group_id, Batch, ConsumeOptions, ConsumeReport, StartFrom, WeatherConsumer,
};
use crate::csv_log::{read_csv_log, CsvLog};
use crate::display::{or_dash, AsTable, Table};
use crate::error::{Error, Result, Setting};
use crate::offsets::{self, OffsetsReport};
use crate::produce::{Deliveries, WeatherProducer};
use crate::topics::{self, TopicInfo};
use crate::weather::{WeatherGenerator, DEFAULT_CITIES};

/// What the lab does.
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// Topic (created with one partition if missing).
    pub topic: String,
    /// Readings produced first.
    pub count: usize,
    /// Readings produced while the `latest` group waits.
    pub more: usize,
    /// Cities, round-robin.
    pub cities: Vec<String>,
    /// Seed for the temperatures.
    pub seed: u64,
    /// The CSV log, started afresh by the lab.
    pub csv_path: PathBuf,
    /// Bound on each consume (group join included).
    pub consume_timeout: Duration,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            topic: "weather".to_string(),
            count: 10,
            more: 3,
            cities: DEFAULT_CITIES.iter().map(|c| c.to_string()).collect(),
            seed: 42,
            csv_path: PathBuf::from("kafka_log.csv"),
            consume_timeout: Duration::from_secs(30),
        }
    }
}

/// One consumer run in the comparison.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ComparisonRow {
    /// Which run of this setting: 1, 2, 3, ...
    pub run: usize,
    /// The group id.
    pub group: String,
    /// Where it started: `earliest` or `latest` (`auto.offset.reset`), or a seek.
    pub setting: StartFrom,
    /// Messages read.
    pub read: usize,
    /// First offset read.
    pub first_offset: Option<i64>,
    /// Last offset read.
    pub last_offset: Option<i64>,
    /// The group's committed offset after the run (next to read).
    pub committed_after: Option<i64>,
    /// The partition's high watermark after the run.
    pub high_watermark: i64,
}

impl ComparisonRow {
    /// Describes run number `run` of a consume of a single-partition topic, with
    /// the group's committed offset and the high watermark as they were when the
    /// run ended.
    pub fn from_run(run: usize, report: &ConsumeReport) -> ComparisonRow {
        let position = report.positions.iter().find(|p| p.partition == 0);
        ComparisonRow {
            run,
            group: report.group.clone().unwrap_or_default(),
            setting: report.from.unwrap_or(StartFrom::Earliest),
            read: report.count(),
            first_offset: report.records.first().map(|r| r.offset),
            last_offset: report.records.last().map(|r| r.offset),
            committed_after: position.and_then(|p| p.committed),
            high_watermark: position.map_or(0, |p| p.high),
        }
    }
}

/// Consumer runs side by side.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// The runs, in order.
    pub rows: Vec<ComparisonRow>,
}

/// How the lab's consumers read: in `group`, from `from`, until the end of the
/// partition, at most 10,000 messages and 30 s (a group join can take seconds).
pub fn lab_read(topic: &str, from: StartFrom, group: &str) -> ConsumeOptions {
    ConsumeOptions::new(topic)
        .from(from)
        .group(group)
        .max(10_000)
        .timeout(Duration::from_secs(30))
}

/// What one `latest` member saw: nothing when it joined, then the readings
/// produced while it stayed in its group.
#[derive(Clone, Debug)]
pub struct LatestMemberRun {
    /// The read right after joining (nothing: `latest` starts at the end).
    pub on_join: ConsumeReport,
    /// Delivery reports of the readings produced while it stayed.
    pub produced: Deliveries,
    /// The read after those were produced.
    pub after: ConsumeReport,
}

/// Joins with `options` (a group with `latest`), reads to the end, produces
/// `new_readings` to the topic while staying in the group, reads again, and
/// leaves: the member's whole life in one call, for the lab's short path
/// (chapter 03 shows clients kept in notebook variables across cells).
pub fn latest_member_reads_new(
    settings: &KafkaSettings,
    options: ConsumeOptions,
    new_readings: &[crate::weather::Reading],
) -> Result<LatestMemberRun> {
    let mut producer = WeatherProducer::new(settings, &options.topic)?;
    let mut member = WeatherConsumer::new(settings, options)?;
    let on_join = member.run(None, &mut |_| {})?;
    let produced = producer.send_all(new_readings)?;
    let after = member.run(None, &mut |_| {})?;
    Ok(LatestMemberRun {
        on_join,
        produced,
        after,
    })
}

impl Comparison {
    /// Adds a row describing `report` (a read of a one-partition topic), as the
    /// next run of its setting.
    pub fn add(&mut self, report: &ConsumeReport) {
        let setting = report.from.unwrap_or(StartFrom::Earliest);
        let run = self.rows.iter().filter(|r| r.setting == setting).count() + 1;
        self.rows.push(ComparisonRow::from_run(run, report));
    }

    /// Adds a row for one poll of `consumer` (a group member reading a
    /// one-partition topic), taken after its commit: what it read, and the
    /// group's committed offset and the high watermark now.
    pub fn add_batch(&mut self, consumer: &WeatherConsumer, batch: &Batch) -> Result<()> {
        let setting = consumer.options().from;
        let position = consumer.positions()?.into_iter().find(|p| p.partition == 0);
        self.rows.push(ComparisonRow {
            run: self.rows.iter().filter(|r| r.setting == setting).count() + 1,
            group: consumer.group_id().unwrap_or_default().to_string(),
            setting,
            read: batch.records.len(),
            first_offset: batch.records.first().map(|r| r.offset),
            last_offset: batch.records.last().map(|r| r.offset),
            committed_after: position.as_ref().and_then(|p| p.committed),
            high_watermark: position.map_or(0, |p| p.high),
        });
        Ok(())
    }

    /// The last row added.
    pub fn last(&self) -> Option<&ComparisonRow> {
        self.rows.last()
    }

    /// The row of a given run (1, 2, ...) of a setting.
    pub fn find(&self, run: usize, setting: StartFrom) -> Option<&ComparisonRow> {
        self.rows
            .iter()
            .find(|r| r.run == run && r.setting == setting)
    }
}

impl AsTable for Comparison {
    fn as_table(&self) -> Table {
        let mut table = Table::new(&[
            "run",
            "group",
            "auto.offset.reset",
            "read",
            "first offset",
            "last offset",
            "committed after",
            "high watermark",
        ])
        .with_title("earliest vs latest");
        for r in &self.rows {
            table.push_row(vec![
                r.run.to_string(),
                r.group.clone(),
                r.setting.to_string(),
                r.read.to_string(),
                or_dash(r.first_offset),
                or_dash(r.last_offset),
                or_dash(r.committed_after),
                r.high_watermark.to_string(),
            ]);
        }
        table.footer = Some(
            "committed after = the next offset the group will read; '-' = the group has committed \
             nothing (librdkafka commits only offsets of messages it consumed)"
                .to_string(),
        );
        table
    }
}

/// Everything the lab did.
#[derive(Clone, Debug)]
pub struct LabReport {
    /// The topic as found (or created) before producing.
    pub topic_before: TopicInfo,
    /// Whether the lab created the topic.
    pub created_topic: bool,
    /// Delivery reports of the first readings.
    pub first_deliveries: Deliveries,
    /// Delivery reports of the readings produced while `latest` waited.
    pub more_deliveries: Deliveries,
    /// The four consumer runs.
    pub runs: Vec<ConsumeReport>,
    /// The side-by-side table.
    pub comparison: Comparison,
    /// Offsets of the `earliest` group at the end.
    pub earliest_offsets: OffsetsReport,
    /// Offsets of the `latest` group at the end.
    pub latest_offsets: OffsetsReport,
    /// Rows in the CSV log at the end.
    pub csv_rows: usize,
    /// The CSV log.
    pub csv_path: PathBuf,
}

impl LabReport {
    /// Checks each claim the lab makes; returns the ones that did not hold.
    pub fn failed_checks(&self) -> Vec<String> {
        let mut failed = Vec::new();
        let mut check = |ok: bool, claim: String| {
            if !ok {
                failed.push(claim);
            }
        };
        let start = self.topic_before.partitions[0].high.unwrap_or(0);
        let low = self.topic_before.partitions[0].low.unwrap_or(0);
        let count = self.first_deliveries.len() as i64;
        let more = self.more_deliveries.len() as i64;
        let expected: Vec<i64> = (start..start + count).collect();
        check(
            self.first_deliveries.offsets() == expected,
            format!("delivery reports carry offsets {expected:?}"),
        );
        let [earliest, latest, earliest_again, latest_again] = &self.runs[..] else {
            return vec!["the lab ran four consumers".to_string()];
        };
        check(
            earliest.count() as i64 == start + count - low,
            format!("earliest read all {} stored readings", start + count - low),
        );
        check(latest.count() == 0, "latest read 0 on its first run".into());
        let new: Vec<i64> = (start + count..start + count + more).collect();
        check(
            latest_again.offsets() == new,
            format!("latest then read exactly the {more} new readings {new:?}"),
        );
        check(
            earliest_again.offsets() == new,
            format!(
                "earliest, restarted, resumed at its committed offset {}",
                start + count
            ),
        );
        check(
            self.csv_rows == earliest.count(),
            format!(
                "{} holds the {} readings of the first earliest run, once each",
                self.csv_path.display(),
                earliest.count()
            ),
        );
        failed
    }
}

/// `topic`, created with one partition if missing; an error if it has more,
/// because the lab compares offsets within one partition.
fn one_partition_topic(settings: &KafkaSettings, topic: &str) -> Result<(TopicInfo, bool)> {
    let (info, created) = topics::ensure_topic(settings, topic, 1)?;
    if info.partitions.len() != 1 {
        return Err(Error::config(
            Setting::LabInput,
            format!(
                "the lab compares offsets in one partition, and '{topic}' has {}: \
                 use another topic",
                info.partitions.len()
            ),
        ));
    }
    Ok((info, created))
}

/// Runs the lab. `progress` is told what each step is about to do.
pub fn run_lab(
    settings: &KafkaSettings,
    options: &LabOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<LabReport> {
    let topic = options.topic.as_str();
    progress(&format!("Step 1: topic '{topic}' (1 partition)"));
    let (topic_before, created_topic) = one_partition_topic(settings, topic)?;

    progress(&format!("Step 2: produce {} readings", options.count));
    let mut generator = WeatherGenerator::new(&options.cities, options.seed);
    let mut producer = WeatherProducer::new(settings, topic)?;
    let first_deliveries = producer.send_all(&generator.take_readings(options.count))?;

    // The lab's log starts afresh, so it holds exactly what this run read.
    if options.csv_path.exists() {
        std::fs::remove_file(&options.csv_path).map_err(|e| Error::io(&options.csv_path, e))?;
    }
    let earliest_group = fresh_group_id("earliest");
    let latest_group = fresh_group_id("latest");
    let earliest_options = ConsumeOptions {
        timeout: options.consume_timeout,
        ..lab_read(topic, StartFrom::Earliest, &earliest_group)
    };

    progress(&format!(
        "Step 3: group {earliest_group} reads from earliest into {}",
        options.csv_path.display()
    ));
    let mut comparison = Comparison::default();
    let earliest = {
        let mut consumer = WeatherConsumer::new(settings, earliest_options.clone())?;
        let mut csv = CsvLog::open(&options.csv_path)?;
        consumer.run(Some(&mut csv), &mut |_| {})?
    };
    comparison.add(&earliest);

    progress(&format!(
        "Steps 4-5: group {latest_group} joins with latest; {} more readings are produced while it stays",
        options.more
    ));
    let latest_run = latest_member_reads_new(
        settings,
        ConsumeOptions {
            timeout: options.consume_timeout,
            ..lab_read(topic, StartFrom::Latest, &latest_group)
        },
        &generator.take_readings(options.more),
    )?;
    let LatestMemberRun {
        on_join: latest,
        produced: more_deliveries,
        after: latest_again,
    } = latest_run;
    comparison.add(&latest);
    comparison.add(&latest_again);

    progress("Step 6: the earliest group is started again");
    // The restarted group resumes at its committed offset; kafka_log.csv keeps
    // what the first run saved, so this read is shown but not written.
    let earliest_again =
        WeatherConsumer::new(settings, earliest_options)?.run(None, &mut |_| {})?;
    comparison.add(&earliest_again);

    let earliest_offsets = offsets::describe_offsets(settings, topic, Some(&earliest_group))?;
    let latest_offsets = offsets::describe_offsets(settings, topic, Some(&latest_group))?;
    let csv_rows = read_csv_log(&options.csv_path)?.len();
    Ok(LabReport {
        topic_before,
        created_topic,
        first_deliveries,
        more_deliveries,
        runs: vec![earliest, latest, earliest_again, latest_again],
        comparison,
        earliest_offsets,
        latest_offsets,
        csv_rows,
        csv_path: options.csv_path.clone(),
    })
}

impl AsTable for LabReport {
    fn as_table(&self) -> Table {
        let mut table = self.comparison.as_table();
        let failed = self.failed_checks();
        table.footer = Some(format!(
            "{}\n{} holds {} rows. {}",
            table.footer.unwrap_or_default(),
            self.csv_path.display(),
            self.csv_rows,
            if failed.is_empty() {
                "All checks passed.".to_string()
            } else {
                format!("FAILED: {}", failed.join("; "))
            }
        ));
        table
    }
}

crate::shown_as_table!(Comparison, LabReport);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::produce::{Delivery, TimestampType};
    use crate::record::ConsumedRecord;
    use crate::topics::PartitionInfo;

    fn deliveries(offsets: std::ops::Range<i64>) -> Deliveries {
        let mut generator = WeatherGenerator::default_cities(1);
        Deliveries(
            offsets
                .map(|offset| Delivery {
                    topic: "weather".into(),
                    partition: 0,
                    offset,
                    timestamp_ms: None,
                    timestamp_type: TimestampType::CreateTime,
                    reading: generator.next_reading(),
                })
                .collect(),
        )
    }

    fn read(offsets: std::ops::Range<i64>) -> ConsumeReport {
        let records: Vec<ConsumedRecord> = deliveries(offsets)
            .0
            .into_iter()
            .map(|d| ConsumedRecord {
                topic: d.topic,
                partition: 0,
                offset: d.offset,
                key: None,
                timestamp_ms: None,
                reading: d.reading,
            })
            .collect();
        ConsumeReport {
            read: records.len(),
            records,
            ..ConsumeReport::default()
        }
    }

    fn report(earliest_again: std::ops::Range<i64>, csv_rows: usize) -> LabReport {
        let offsets = OffsetsReport {
            topic: "weather".into(),
            group: None,
            partitions: Vec::new(),
        };
        LabReport {
            topic_before: TopicInfo {
                name: "weather".into(),
                partitions: vec![PartitionInfo {
                    partition: 0,
                    leader: 1,
                    replicas: vec![1],
                    isr: vec![1],
                    low: Some(0),
                    high: Some(0),
                    error: None,
                }],
            },
            created_topic: true,
            first_deliveries: deliveries(0..10),
            more_deliveries: deliveries(10..13),
            runs: vec![read(0..10), read(0..0), read(earliest_again), read(10..13)],
            comparison: Comparison::default(),
            earliest_offsets: offsets.clone(),
            latest_offsets: offsets,
            csv_rows,
            csv_path: PathBuf::from("kafka_log.csv"),
        }
    }

    #[test]
    fn the_lab_checks_hold_for_the_expected_runs_and_name_what_failed() {
        assert_eq!(report(10..13, 10).failed_checks(), Vec::<String>::new());
        let failed = report(0..13, 11).failed_checks();
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert!(
            failed[0].starts_with("earliest, restarted, resumed"),
            "{failed:?}"
        );
        assert!(failed[1].contains("once each"), "{failed:?}");
    }
}
