//! Exactly once: consume, transform and produce inside one transaction, offsets included.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::transactions::{read_all, read_values, TransactionalProducer};
use super::{group_member, member_builder, next_offsets, read_batch};
use crate::client::IsolationLevel;
use crate::config::KafkaSettings;
use crate::display::{AsTable, Table};
use crate::error::Result;
use crate::record::Decoded;

/// One message of the averages topic: a city's running average so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CityAverage {
    /// The city (also the message key).
    pub city: String,
    /// Readings averaged so far: 1, 2, 3, ... once each when exactly once holds.
    pub readings: u64,
    /// Their sum (°C), to carry on after a restart.
    pub sum: f64,
    /// Their average (°C).
    pub average: f64,
}

/// How [`exactly_once_averages`] runs.
#[derive(Clone, Debug)]
pub struct EosOptions {
    /// Readings are read from here.
    pub input: String,
    /// Running averages are written here.
    pub output: String,
    /// The consumer group (its offsets are committed inside the transactions).
    pub group: String,
    /// The producer's transactional id: the same id after a restart fences the
    /// crashed producer and aborts its open transaction.
    pub transactional_id: String,
    /// Readings per transaction.
    pub batch: usize,
    /// Abandon the run (an open transaction, nothing committed) after this many readings.
    pub crash_after: Option<usize>,
    /// Stop after this long.
    pub timeout: Duration,
}

/// What one [`exactly_once_averages`] run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EosRun {
    /// Readings turned into averages (including those of an abandoned transaction).
    pub processed: usize,
    /// Transactions committed.
    pub transactions: usize,
    /// Whether the run was abandoned mid-transaction.
    pub crashed: bool,
}

/// Consume-transform-produce, exactly once: reads readings from `input` with
/// `read_committed`, and for each batch, in one transaction, writes each city's
/// new running average to `output` and commits the consumer's offsets. The
/// running state is rebuilt at start from the committed averages in `output`.
pub fn exactly_once_averages(settings: &KafkaSettings, options: &EosOptions) -> Result<EosRun> {
    let builder = member_builder(settings, &options.group).isolation(IsolationLevel::ReadCommitted);
    let mut consumer = group_member(builder, &options.input)?;
    let producer = TransactionalProducer::new(settings, &options.transactional_id)?;
    let mut state: BTreeMap<String, CityAverage> = BTreeMap::new();
    for value in read_values(settings, &options.output, IsolationLevel::ReadCommitted)? {
        if let Ok(average) = serde_json::from_slice::<CityAverage>(&value) {
            state.insert(average.city.clone(), average);
        }
    }
    let deadline = Instant::now() + options.timeout;
    let mut run = EosRun::default();
    while Instant::now() < deadline {
        let (batch, reached_end) = read_batch(&mut consumer, options.batch)?;
        if batch.is_empty() {
            if reached_end {
                break;
            }
            continue;
        }
        producer.begin()?;
        for decoded in &batch {
            let Decoded::Reading(record) = decoded else {
                continue;
            };
            let city = record.reading.city.clone();
            let entry = state.entry(city.clone()).or_insert(CityAverage {
                city: city.clone(),
                readings: 0,
                sum: 0.0,
                average: 0.0,
            });
            entry.readings += 1;
            entry.sum += record.reading.temperature;
            entry.average = entry.sum / entry.readings as f64;
            // A struct of a string and numbers always serialises.
            let value = serde_json::to_vec(entry).unwrap_or_default();
            producer.send(&options.output, &city, &value)?;
            run.processed += 1;
            if options.crash_after == Some(run.processed) {
                // The "crash": the transaction stays open, nothing is committed.
                producer.flush()?;
                run.crashed = true;
                return Ok(run);
            }
        }
        producer.send_offsets(&consumer, &next_offsets(&batch))?;
        producer.commit()?;
        run.transactions += 1;
    }
    Ok(run)
}

/// Whether every reading was averaged exactly once.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AveragesCheck {
    /// Per city: the last average and how many readings it covers.
    pub cities: Vec<CityAverage>,
    /// Readings in the input topic.
    pub input_readings: usize,
    /// Average messages read (with the given isolation level): one per reading
    /// when exactly once holds.
    pub messages: usize,
    /// Averages written more than once for the same reading count.
    pub duplicates: usize,
}

impl AveragesCheck {
    /// Whether each input reading produced exactly one average.
    pub fn exactly_once(&self) -> bool {
        self.messages == self.input_readings
            && self.duplicates == 0
            && self.cities.iter().map(|c| c.readings).sum::<u64>() == self.input_readings as u64
    }
}

/// Reads the averages topic `output` with `isolation`, and the readings of
/// `input`, and checks that there is one average per reading: each city's
/// `readings` field runs 1, 2, 3, ... with no number twice, and the counts add
/// up to the readings in the input.
pub fn check_averages(
    settings: &KafkaSettings,
    input: &str,
    output: &str,
    isolation: IsolationLevel,
) -> Result<AveragesCheck> {
    let mut seen: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut last: BTreeMap<String, CityAverage> = BTreeMap::new();
    let mut check = AveragesCheck {
        input_readings: read_all(settings, input, IsolationLevel::ReadCommitted)?.len(),
        ..AveragesCheck::default()
    };
    for value in read_values(settings, output, isolation)? {
        let Ok(average) = serde_json::from_slice::<CityAverage>(&value) else {
            continue;
        };
        check.messages += 1;
        if !seen
            .entry(average.city.clone())
            .or_default()
            .insert(average.readings)
        {
            check.duplicates += 1;
        }
        last.insert(average.city.clone(), average);
    }
    check.cities = last.into_values().collect();
    Ok(check)
}

impl AsTable for AveragesCheck {
    fn as_table(&self) -> Table {
        let mut table = Table::new(&["city", "readings", "average (°C)"])
            .with_title("Running averages, as read_committed sees them");
        for c in &self.cities {
            table.push_row(vec![
                c.city.clone(),
                c.readings.to_string(),
                format!("{:.2}", c.average),
            ]);
        }
        table.footer = Some(format!(
            "{} average messages for {} readings, {} written twice for the same count: {}",
            self.messages,
            self.input_readings,
            self.duplicates,
            if self.exactly_once() {
                "exactly once"
            } else {
                "NOT exactly once"
            }
        ));
        table
    }
}

crate::shown_as_table!(AveragesCheck);

#[cfg(test)]
mod tests {
    use super::*;

    fn average(city: &str, readings: u64) -> CityAverage {
        CityAverage {
            city: city.to_string(),
            readings,
            sum: readings as f64,
            average: 1.0,
        }
    }

    #[test]
    fn exactly_once_needs_one_average_per_reading() {
        let check = AveragesCheck {
            cities: vec![average("Toronto", 2), average("Fuzhou", 1)],
            input_readings: 3,
            messages: 3,
            duplicates: 0,
        };
        assert!(check.exactly_once());
        assert!(!AveragesCheck {
            messages: 4,
            duplicates: 1,
            ..check.clone()
        }
        .exactly_once());
        assert!(!AveragesCheck {
            input_readings: 4,
            ..check
        }
        .exactly_once());
    }
}
