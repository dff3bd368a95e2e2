//! Streaming: making and sending many readings, and filing each delivery report
//! as it comes back.
//!
//! A producer's loop does two things: it queues messages (`send` returns at
//! once) and it serves delivery reports (`poll`), which is also what frees the
//! room the queued messages took. kcat and rust-rdkafka's examples do both on
//! one thread, polling between sends; so does [`stream_weather`]: once every
//! 1,000 sends, and while a paced send is not yet due.
//!
//! Measured on the mock, 1,000,000 readings (docs/performance.md, session 10):
//! served between sends, the reports took a third less CPU time than on a
//! thread of their own (1.20-1.52 against 1.83-2.01 CPU s), where each report
//! and the reading it carries changed threads. A caller with much to do per
//! report (the command line prints a row for each) hands that work on to a
//! thread of its own instead.
//!
//! What a burst (no rate) of more than a thousand readings does not do on the
//! sending thread is make them: a second thread makes them and writes their
//! JSON ahead of the sends ([`super::burst`]). A paced run makes each reading
//! when its send is due, stamped with the time it was made.
//!
//! Each message carries its reading to its delivery report (librdkafka's
//! per-message "opaque"), so that a report can say which reading landed where.
//! The reading rides as a [`CityReading`], which names its city by its place
//! in the generator's list, and each report's [`Delivery`] is written into the
//! same two strings (topic, city) as the last: a message costs no string of its
//! own. A copy of the city's name per message was 11-14% of `produce --quiet`
//! in slow minutes (docs/performance.md, sessions 14 and 15).

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use crate::config::KafkaSettings;
use crate::error::{Error, Result, Setting};
use crate::weather::{CityReading, WeatherGenerator};

use super::burst::{send_made_ahead, MADE_TOGETHER};
use super::reports::SERVE_REPORTS_EVERY;
use super::{connected, not_written, Deliveries, Delivery, Report, ReportingProducer, Written};

/// Makes `count` readings with `generator` and sends them, at most `rate` per
/// second when a rate is given; each report is handed to `on_report` as it
/// arrives (served between sends), so a long run holds none of them. Returns
/// how many were delivered, or [`Error::Delivery`] naming those that were not.
///
/// A stop asked for with Ctrl-C or SIGTERM ([`crate::shutdown`]) ends the sends:
/// what is in flight is flushed (within the timeout), its reports are handed to
/// `on_report`, and the result is [`Error::Interrupted`] with the counts. So
/// does a send that fails after others were sent (the local queue stayed
/// full, for one): the result is [`Error::SendsStopped`], the send's error
/// with the counts.
pub fn stream_weather(
    settings: &KafkaSettings,
    topic: &str,
    generator: &mut WeatherGenerator,
    count: usize,
    rate: Option<f64>,
    on_report: &mut dyn FnMut(usize, std::result::Result<&Delivery, &str>),
) -> Result<usize> {
    let interval = rate.map(send_interval).transpose()?;
    let producer = connected(settings, topic)?;
    // Paced sends are stamped when sent; a burst in simulated time (one reading
    // per second per city, the last one now), as a station would have sent them.
    match interval {
        Some(_) => generator.real_time(),
        None => generator.simulate_time(count),
    }
    // A copy: the generator itself is lent to the sends (in a burst, to the
    // readings thread) for the whole run. Its list never changes after it
    // was made, so the places the readings carry stay valid.
    let cities = generator.cities().to_vec();
    let mut sends = Sends {
        producer: &producer,
        cities: &cities,
        json: Vec::with_capacity(128),
        topic,
        generator: &mut *generator,
        count,
        interval,
    };
    let mut filer = ReportFiler::new(topic, &cities, on_report);
    let mut reports = Vec::new();
    let (sent, stopped_by) = sends.run(|wait| {
        // librdkafka waits in whole milliseconds and rust-rdkafka's `poll`
        // spins through what is left of one: poll whole ones (at most 10, so
        // that a report is filed within 10 ms of landing) and sleep the rest.
        let whole_ms = Duration::from_millis(wait.as_millis().min(10) as u64);
        producer.serve_reports_into(whole_ms, &mut reports);
        reports.drain(..).for_each(|report| filer.file(report));
        if whole_ms.is_zero() {
            std::thread::sleep(wait);
        }
    });
    let filed = filer.finish(&producer);
    generator.real_time();
    run_outcome(count, sent, stopped_by, filed)
}

/// What a run of `count` sends came to, once its reports are filed: how
/// many were delivered, or the error that says what became of them.
fn run_outcome(
    count: usize,
    sent: usize,
    stopped_by: Result<()>,
    filed: FiledReports,
) -> Result<usize> {
    let FiledReports {
        delivered,
        undelivered,
    } = filed;
    // A send that failed after others were sent: those others are flushed
    // and counted, and the failure says what became of them.
    if let Err(cause) = stopped_by {
        return Err(match sent {
            0 => cause,
            _ => Error::SendsStopped {
                cause: Box::new(cause),
                total: count,
                sent,
                delivered,
                undelivered,
            },
        });
    }
    if let (true, Some(signal)) = (sent < count, crate::shutdown::signal()) {
        return Err(Error::Interrupted {
            signal,
            total: count,
            sent,
            delivered,
            undelivered,
        });
    }
    if undelivered.is_empty() {
        Ok(delivered)
    } else {
        Err(Error::Delivery {
            total: count,
            delivered,
            undelivered,
        })
    }
}

/// The sends of one [`stream_weather`] run: what to make, where to send it, how fast.
struct Sends<'a> {
    /// Each reading rides along to its report naming its city by its place in
    /// `cities`: no string per message (the opaque's box remains, see
    /// `ReportingProducer::opaque`).
    producer: &'a ReportingProducer<CityReading>,
    cities: &'a [String],
    /// The JSON of the reading being sent (one buffer: librdkafka copies it).
    json: Vec<u8>,
    topic: &'a str,
    generator: &'a mut WeatherGenerator,
    count: usize,
    interval: Option<Duration>,
}

impl Sends<'_> {
    /// Makes and sends the readings until all are sent, a stop is asked for or
    /// a send fails, and returns how many were sent, and the failed send's
    /// error if one did. `between` runs between sends: with no wait once
    /// every [`SERVE_REPORTS_EVERY`] sends, and, paced, with the time left (at
    /// most 50 ms at a time, so that a stop is noticed at once) while a send
    /// is not yet due.
    fn run(&mut self, mut between: impl FnMut(Duration)) -> (usize, Result<()>) {
        // A burst of more than a thousand: its readings are made ahead on a
        // thread of their own, unless the system cannot start one.
        if self.interval.is_none() && self.count > MADE_TOGETHER {
            if let Some(outcome) = self.run_burst(&mut between) {
                return outcome;
            }
        }
        self.run_on_this_thread(between)
    }

    /// Makes each reading on this thread, just before its send (paced: when
    /// the send is due, stamped with the time it was made).
    fn run_on_this_thread(&mut self, mut between: impl FnMut(Duration)) -> (usize, Result<()>) {
        let started = Instant::now();
        let mut sent = 0;
        'sending: while sent < self.count && !crate::shutdown::requested() {
            if sent % SERVE_REPORTS_EVERY == 0 {
                between(Duration::ZERO);
            }
            if let Some(interval) = self.interval {
                let due = started + interval.mul_f64(sent as f64);
                while let Some(wait) = due.checked_duration_since(Instant::now()) {
                    if crate::shutdown::requested() {
                        break 'sending;
                    }
                    between(wait.min(Duration::from_millis(50)));
                }
            }
            let reading = self.generator.next_city_reading();
            self.json.clear();
            reading.write_json(self.cities, &mut self.json);
            match send_city_reading(self.producer, self.topic, self.cities, reading, &self.json) {
                Ok(()) => sent += 1,
                Err(error) => return (sent, unless_a_stop_was_asked(error)),
            }
        }
        (sent, Ok(()))
    }

    /// A burst with its readings made ahead on a thread of their own
    /// ([`super::burst`]); `None`, with nothing sent, when that thread could
    /// not be started.
    fn run_burst(&mut self, between: &mut impl FnMut(Duration)) -> Option<(usize, Result<()>)> {
        let Sends {
            producer,
            cities,
            topic,
            generator,
            count,
            ..
        } = self;
        let mut sent = 0;
        let mut outcome = Ok(());
        let made_ahead = send_made_ahead(
            generator,
            *count,
            crate::shutdown::requested,
            || between(Duration::ZERO),
            |reading, json| match send_city_reading(producer, topic, cities, reading, json) {
                Ok(()) => {
                    sent += 1;
                    ControlFlow::Continue(())
                }
                Err(error) => {
                    outcome = unless_a_stop_was_asked(error);
                    ControlFlow::Break(())
                }
            },
        );
        made_ahead.ok().map(|()| (sent, outcome))
    }
}

/// Queues `reading` with `json` as its value, its city as its key and its
/// time as its timestamp; the reading rides along to its delivery report.
fn send_city_reading(
    producer: &ReportingProducer<CityReading>,
    topic: &str,
    cities: &[String],
    reading: CityReading,
    json: &[u8],
) -> Result<()> {
    let key = reading.city(cities).as_bytes();
    let timestamp = reading.timestamp.timestamp_millis();
    producer.send_keyed(topic, key, json, timestamp, reading)
}

/// What a failed send means for the run: its error, or none when a stop was
/// asked for while the send waited for room in a full queue (that reading was
/// not queued, and the run stops there, as asked).
fn unless_a_stop_was_asked(error: Error) -> Result<()> {
    if crate::shutdown::requested() {
        Ok(())
    } else {
        Err(error)
    }
}

/// Hands each report of a run to `on_report` and counts them.
struct ReportFiler<'a> {
    on_report: &'a mut dyn FnMut(usize, std::result::Result<&Delivery, &str>),
    /// The names of the cities the reports' readings point to.
    cities: &'a [String],
    /// The topic's name and a city's name go from each report to the next: a
    /// long run makes no copy of either per report.
    topic_name: String,
    city_name: String,
    filed: FiledReports,
}

/// What the reports of a run came to.
#[derive(Default)]
struct FiledReports {
    delivered: usize,
    undelivered: Vec<String>,
}

impl<'a> ReportFiler<'a> {
    /// A filer for the reports of `topic`, each handed to `on_report`.
    fn new(
        topic: &str,
        cities: &'a [String],
        on_report: &'a mut dyn FnMut(usize, std::result::Result<&Delivery, &str>),
    ) -> Self {
        ReportFiler {
            on_report,
            cities,
            topic_name: topic.to_string(),
            city_name: String::new(),
            filed: FiledReports::default(),
        }
    }

    /// Hands one report to `on_report`, as a [`Delivery`] or the reading and
    /// its error, and counts it.
    fn file(&mut self, report: Report<CityReading>) {
        match report {
            Ok(Written {
                sequence,
                sent,
                partition,
                offset,
                timestamp,
            }) => {
                let reading = sent.to_reading_in(self.cities, std::mem::take(&mut self.city_name));
                let written = Written {
                    sequence,
                    sent: reading,
                    partition,
                    offset,
                    timestamp,
                };
                let delivery = Delivery::of(std::mem::take(&mut self.topic_name), written);
                (self.on_report)(sequence, Ok(&delivery));
                self.topic_name = delivery.topic;
                self.city_name = delivery.reading.city;
                self.filed.delivered += 1;
            }
            Err(failed) => {
                let error = not_written(&failed.sent.to_reading(self.cities), &failed.error);
                (self.on_report)(failed.sequence, Err(&error));
                self.filed.undelivered.push(error);
            }
        }
    }

    /// Waits for the reports still in flight (within the timeout), files them
    /// and counts those that never came.
    fn finish(mut self, producer: &ReportingProducer<CityReading>) -> FiledReports {
        let (reports, missing) = producer.flush();
        reports.into_iter().for_each(|report| self.file(report));
        if missing > 0 {
            self.filed.undelivered.push(format!(
                "{missing} reading(s) without a delivery report within {:?}",
                producer.settings().timeout() + Duration::from_secs(1)
            ));
        }
        self.filed
    }
}

/// The fastest and slowest rates a producer paces (readings per second): beyond
/// them a rate is a typo, not a plan (one a day is 1.2e-5).
pub const RATE_RANGE: (f64, f64) = (1e-5, 1e6);

/// Checks a rate (readings per second) before anything is sent or printed.
pub fn check_rate(rate: Option<f64>) -> Result<()> {
    rate.map(send_interval).transpose().map(|_| ())
}

/// The time between two sends at `rate` readings per second.
fn send_interval(rate: f64) -> Result<Duration> {
    let (slowest, fastest) = RATE_RANGE;
    if !(slowest..=fastest).contains(&rate) {
        return Err(Error::config(
            Setting::Rate,
            format!(
                "a rate of {rate:e} readings per second is outside {slowest:e}..{fastest:e}; \
                 leave it out to send as fast as the broker takes them"
            ),
        ));
    }
    Ok(Duration::from_secs_f64(1.0 / rate))
}

/// Makes `count` readings with `generator` and sends them, at most `rate` per
/// second when a rate is given; returns their delivery reports in send order.
/// Fails as [`stream_weather`] does, and then the reports of the readings that
/// were delivered are not returned: [`stream_weather`] hands each one over as
/// it comes, for a caller that needs them whatever the outcome.
pub fn produce_weather(
    settings: &KafkaSettings,
    topic: &str,
    generator: &mut WeatherGenerator,
    count: usize,
    rate: Option<f64>,
) -> Result<Deliveries> {
    let mut deliveries = Vec::with_capacity(count);
    stream_weather(
        settings,
        topic,
        generator,
        count,
        rate,
        &mut |sequence, report| {
            if let Ok(delivery) = report {
                deliveries.push((sequence, delivery.clone()));
            }
        },
    )?;
    // Reports arrive partition by partition; sends have one order.
    deliveries.sort_by_key(|(sequence, _)| *sequence);
    Ok(Deliveries(deliveries.into_iter().map(|(_, d)| d).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::produce::NotWritten;
    use rdkafka::message::Timestamp;

    #[test]
    fn reports_are_filed_as_deliveries_of_named_readings_or_errors_that_name_them() {
        let mut generator = WeatherGenerator::default_cities(2);
        let cities = generator.cities().to_vec();
        // Guangzhou then Fuzhou: the shorter name replaces the longer one.
        let made: Vec<CityReading> = (0..3).map(|_| generator.next_city_reading()).collect();
        let mut filed = Vec::new();
        let mut on_report = |sequence, report: std::result::Result<&Delivery, &str>| {
            filed.push((sequence, report.cloned().map_err(str::to_string)));
        };
        let mut filer = ReportFiler::new("weather", &cities, &mut on_report);
        for (sequence, &sent) in made.iter().enumerate().skip(1) {
            filer.file(Ok(Written {
                sequence,
                sent,
                partition: 7,
                offset: 40 + sequence as i64,
                timestamp: Timestamp::CreateTime(1_000),
            }));
        }
        filer.file(Err(NotWritten {
            sequence: 0,
            sent: made[0],
            error: "Message timed out".into(),
        }));
        let FiledReports {
            delivered,
            undelivered,
        } = filer.filed;
        assert_eq!((delivered, undelivered.len()), (2, 1));
        for (sequence, report) in &filed[..2] {
            let delivery = report.as_ref().expect("delivered");
            assert_eq!(delivery.reading, made[*sequence].to_reading(&cities));
            assert_eq!(
                (delivery.topic.as_str(), delivery.partition),
                ("weather", 7)
            );
            assert_eq!(delivery.offset, 40 + *sequence as i64);
        }
        assert_eq!(
            filed[1].1.as_ref().map(|d| d.reading.city.as_str()),
            Ok("Fuzhou")
        );
        let error = filed[2].1.as_ref().expect_err("not delivered");
        assert!(
            error.contains("Toronto") && error.ends_with("(Message timed out)"),
            "{error}"
        );
        assert_eq!(&undelivered[0], error);
    }

    #[test]
    fn rates_outside_a_sane_range_are_refused() {
        assert_eq!(send_interval(2.0).unwrap(), Duration::from_millis(500));
        for bad in [0.0, -5.0, f64::NAN, f64::INFINITY, 1e-320, 1e-19, 1e7] {
            let error = send_interval(bad).unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::Config {
                        setting: Setting::Rate,
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }
}
