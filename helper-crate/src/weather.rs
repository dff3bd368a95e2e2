//! The data that flows through the lab: weather readings.
//!
//! A Kafka message is a key, a value and a timestamp, all bytes to the broker.
//! Meaning comes from the producer and consumer agreeing on a format. Here the
//! value is JSON,
//! `{"timestamp": "2026-11-25T03:06:19.123Z", "city": "Toronto", "temperature": 4.2}`,
//! and the key is the city name. The key matters: Kafka hashes it to choose the
//! partition, so every reading of one city lands in the same partition, in order.
//!
//! Each reading is stamped (UTC, RFC 3339) when it is made. Temperatures come from
//! a seeded generator so runs are reproducible: a slow random walk around a
//! plausible November mean for each city, in °C with one decimal.
//!
//! kcat equivalent: `echo 'Toronto:{"timestamp":...}' | kcat -P -t weather -K:`.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::display::Rfc3339Millis;

/// The cities of the original lab, in the order they are produced.
pub const DEFAULT_CITIES: [&str; 3] = ["Toronto", "Guangzhou", "Fuzhou"];

/// One weather reading: the message value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// When the reading was taken (UTC).
    #[serde(with = "rfc3339_millis")]
    pub timestamp: DateTime<Utc>,
    /// Where it was taken; also the message key.
    pub city: String,
    /// Temperature in °C, one decimal.
    pub temperature: f64,
}

impl Reading {
    /// The message key: the city, so one city's readings stay in one partition.
    pub fn key(&self) -> &str {
        &self.city
    }

    /// The message value: the reading as JSON.
    pub fn to_json(&self) -> String {
        let mut json = Vec::with_capacity(96);
        self.write_json(&mut json);
        String::from_utf8(json).unwrap_or_default()
    }

    /// Appends the reading as JSON to `out` (a buffer a producer reuses).
    ///
    /// The bytes serde_json writes for the struct (a unit test compares them),
    /// put together field by field: this runs once per send, and serde's
    /// struct machinery, with an escape scan of the timestamp's digits, was a
    /// tenth of `produce`'s sending thread (a burst now writes it on a thread
    /// of its own, `produce::burst`). Only the city can need escaping.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        write_json(&self.timestamp, &self.city, self.temperature, out);
    }

    /// Parses a message value. The error says what is wrong, for poison-pill reports.
    pub fn from_json(bytes: &[u8]) -> Result<Reading, String> {
        if bytes.is_empty() {
            return Err("empty value".to_string());
        }
        let reading: Reading = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => format!("JSON of the wrong shape: {e}"),
            _ => format!("not JSON: {e}"),
        })?;
        if reading.city.trim().is_empty() {
            return Err("JSON of the wrong shape: empty city".to_string());
        }
        if !reading.temperature.is_finite() {
            return Err("JSON of the wrong shape: temperature is not a number".to_string());
        }
        Ok(reading)
    }

    /// The timestamp as it appears in the JSON and the CSV.
    pub fn timestamp_rfc3339(&self) -> String {
        Rfc3339Millis::of(&self.timestamp).as_str().to_string()
    }
}

/// A reading that names its city by its place in its generator's list
/// ([`WeatherGenerator::cities`]) instead of holding the name. It is `Copy`,
/// so a producer sends it along with its message, to come back in the
/// delivery report, with no string of its own: a copy of the city's name per
/// message was 11-14% of `produce --quiet` in slow minutes (docs/performance.md,
/// session 14). Only the crate pairs it with its list.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct CityReading {
    pub timestamp: DateTime<Utc>,
    /// The city's place in the generator's list.
    pub city_index: usize,
    pub temperature: f64,
}

impl CityReading {
    /// The city's name, in the list of the generator that made it.
    pub fn city<'a>(&self, cities: &'a [String]) -> &'a str {
        &cities[self.city_index]
    }

    /// The reading with its city's name.
    pub fn to_reading(self, cities: &[String]) -> Reading {
        self.to_reading_in(cities, String::new())
    }

    /// The reading with its city's name written into `city` (a buffer used
    /// again: filing a report per message allocates nothing).
    pub fn to_reading_in(self, cities: &[String], mut city: String) -> Reading {
        city.clear();
        city.push_str(self.city(cities));
        Reading {
            timestamp: self.timestamp,
            city,
            temperature: self.temperature,
        }
    }

    /// Appends its JSON (with the city's name) to `out`, as [`Reading::write_json`].
    pub fn write_json(&self, cities: &[String], out: &mut Vec<u8>) {
        write_json(&self.timestamp, self.city(cities), self.temperature, out);
    }
}

impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {:.1} °C",
            self.timestamp_rfc3339(),
            self.city,
            self.temperature
        )
    }
}

/// A plausible late-November mean temperature (°C) and day-to-day swing for a city.
/// Unknown cities get a temperate 12 ± 6 °C.
pub fn climate(city: &str) -> (f64, f64) {
    match city.to_ascii_lowercase().as_str() {
        "toronto" => (3.0, 5.0),
        "guangzhou" => (20.0, 3.0),
        "fuzhou" => (17.0, 3.0),
        "montreal" => (0.0, 5.0),
        "vancouver" => (6.0, 3.0),
        "beijing" => (2.0, 5.0),
        "shanghai" => (12.0, 4.0),
        "shenzhen" => (21.0, 3.0),
        "hong kong" => (21.0, 3.0),
        "london" => (8.0, 3.0),
        "paris" => (7.0, 4.0),
        "berlin" => (4.0, 4.0),
        "new york" => (8.0, 5.0),
        "tokyo" => (12.0, 4.0),
        "singapore" => (27.0, 1.5),
        "sydney" => (21.0, 4.0),
        _ => (12.0, 6.0),
    }
}

/// Makes readings for a list of cities, round-robin, with reproducible temperatures.
///
/// The same seed and cities always give the same sequence of cities and
/// temperatures; only the timestamps differ between runs.
///
/// **Time.** A real station reports about once a second, and so do these,
/// without anyone having to wait: [`WeatherGenerator::take_readings`] stamps
/// its readings one [`WeatherGenerator::reading_interval`] apart (1 s divided
/// among the cities, in whole milliseconds: 333 ms for three, so each city
/// reads every 999 ms), counted back so that the last one is now, and never
/// before a reading the generator made earlier. So every reading of a call has
/// its own timestamp, and a chart of them draws a line in time per city. A long
/// burst reaches far back: `produce --count 1000000` without `--rate` starts
/// 3.9 days ago. [`WeatherGenerator::next_reading`] stamps a reading when it is made
/// (what `kafka-lab produce --rate` sends, paced in real time), unless
/// [`WeatherGenerator::simulate_time`] is on.
#[derive(Clone, Debug)]
pub struct WeatherGenerator {
    cities: Vec<String>,
    climates: Vec<(f64, f64)>,
    current: Vec<f64>,
    next_city: usize,
    rng: SplitMix64,
    clock: Option<SimulatedClock>,
    last_millis: Option<i64>,
}

/// The time of the next simulated reading, and the time between two.
#[derive(Clone, Copy, Debug)]
struct SimulatedClock {
    next_millis: i64,
    step_millis: i64,
}

impl WeatherGenerator {
    /// A generator for cities a user gave: each must have a name (spaces around
    /// it are dropped) without control characters, and there must be one.
    pub fn for_cities<S: AsRef<str>>(cities: &[S], seed: u64) -> crate::Result<Self> {
        let names: Vec<&str> = cities.iter().map(|c| c.as_ref().trim()).collect();
        let bad = |why: String| crate::Error::config(crate::error::Setting::Cities, why);
        if names.is_empty() || names.iter().any(|name| name.is_empty()) {
            return Err(bad(format!(
                "every city needs a name, got {:?}: give names separated by commas, e.g. Toronto,Guangzhou",
                cities.iter().map(AsRef::as_ref).collect::<Vec<_>>()
            )));
        }
        if let Some(name) = names.iter().find(|name| name.chars().any(char::is_control)) {
            return Err(bad(format!(
                "the city {:?} holds a control character",
                name
            )));
        }
        Ok(WeatherGenerator::new(&names, seed))
    }

    /// A generator for the given cities and seed; the lab's cities
    /// ([`DEFAULT_CITIES`]) when none is given.
    pub fn new<S: AsRef<str>>(cities: &[S], seed: u64) -> Self {
        let mut rng = SplitMix64(seed);
        let mut cities: Vec<String> = cities.iter().map(|c| c.as_ref().to_string()).collect();
        if cities.is_empty() {
            cities = DEFAULT_CITIES.iter().map(|c| c.to_string()).collect();
        }
        let current = cities
            .iter()
            .map(|city| {
                let (mean, swing) = climate(city);
                mean + swing * rng.next_signed_unit()
            })
            .collect();
        let climates = cities.iter().map(|city| climate(city)).collect();
        WeatherGenerator {
            cities,
            climates,
            current,
            next_city: 0,
            rng,
            clock: None,
            last_millis: None,
        }
    }

    /// The time between two readings: one second per round of the cities.
    pub fn reading_interval(&self) -> Duration {
        Duration::from_millis(self.step_millis() as u64)
    }

    fn step_millis(&self) -> i64 {
        (1000 / self.cities.len().max(1) as i64).max(1)
    }

    /// Stamps the next `count` readings in simulated time: one per
    /// [`WeatherGenerator::reading_interval`], the last one now (or later, if
    /// the generator already made readings up to now: times never go back).
    pub fn simulate_time(&mut self, count: usize) {
        let step = self.step_millis();
        let now = Utc::now().timestamp_millis();
        let mut start = now - step * count.saturating_sub(1) as i64;
        if let Some(last) = self.last_millis {
            start = start.max(last + step);
        }
        self.clock = Some(SimulatedClock {
            next_millis: start,
            step_millis: step,
        });
    }

    /// Back to stamping each reading when it is made.
    pub fn real_time(&mut self) {
        self.clock = None;
    }

    /// Toronto, Guangzhou and Fuzhou with the given seed.
    pub fn default_cities(seed: u64) -> Self {
        WeatherGenerator::new(&DEFAULT_CITIES, seed)
    }

    /// The next reading, stamped now (or at its simulated time, see
    /// [`WeatherGenerator::simulate_time`]).
    pub fn next_reading(&mut self) -> Reading {
        self.next_city_reading().to_reading(&self.cities)
    }

    /// [`WeatherGenerator::next_reading`] naming its city by its place in
    /// [`WeatherGenerator::cities`].
    pub(crate) fn next_city_reading(&mut self) -> CityReading {
        match &mut self.clock {
            Some(clock) => {
                let millis = clock.next_millis;
                clock.next_millis += clock.step_millis;
                match DateTime::from_timestamp_millis(millis) {
                    // Whole milliseconds already: no second rounding.
                    Some(timestamp) => self.reading_stamped(timestamp),
                    None => self.next_city_reading_at(Utc::now()),
                }
            }
            None => self.next_city_reading_at(Utc::now()),
        }
    }

    /// The next reading, stamped with the given time (to the millisecond, the
    /// precision of the JSON and of Kafka's message timestamps).
    pub fn next_reading_at(&mut self, timestamp: DateTime<Utc>) -> Reading {
        self.next_city_reading_at(timestamp)
            .to_reading(&self.cities)
    }

    fn next_city_reading_at(&mut self, timestamp: DateTime<Utc>) -> CityReading {
        let timestamp =
            DateTime::from_timestamp_millis(timestamp.timestamp_millis()).unwrap_or(timestamp);
        self.reading_stamped(timestamp)
    }

    /// The next reading, stamped with `timestamp` as it is (whole milliseconds).
    fn reading_stamped(&mut self, timestamp: DateTime<Utc>) -> CityReading {
        self.last_millis = Some(timestamp.timestamp_millis());
        let index = self.next_city;
        self.next_city = (self.next_city + 1) % self.cities.len();
        let (mean, swing) = self.climates[index];
        // A random walk pulled back towards the mean: small steps, no jumps.
        let step = 0.3 * swing * self.rng.next_signed_unit();
        let pull = 0.1 * (mean - self.current[index]);
        self.current[index] += step + pull;
        CityReading {
            timestamp,
            city_index: index,
            temperature: (self.current[index] * 10.0).round() / 10.0,
        }
    }

    /// The cities, in the order their readings are made.
    pub fn cities(&self) -> &[String] {
        &self.cities
    }

    /// The next `count` readings, in simulated time: one per second per city,
    /// the last one now (see [`WeatherGenerator::simulate_time`]).
    pub fn take_readings(&mut self, count: usize) -> Vec<Reading> {
        if self.clock.is_some() {
            return (0..count).map(|_| self.next_reading()).collect();
        }
        self.simulate_time(count);
        let readings = (0..count).map(|_| self.next_reading()).collect();
        self.real_time();
        readings
    }
}

/// Appends a reading's JSON to `out`; see [`Reading::write_json`].
fn write_json(timestamp: &DateTime<Utc>, city: &str, temperature: f64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    out.extend_from_slice(Rfc3339Millis::of(timestamp).as_bytes());
    out.extend_from_slice(b"\",\"city\":");
    // Writing a string or a float into memory cannot fail.
    let _ = serde_json::to_writer(&mut *out, city);
    out.extend_from_slice(b",\"temperature\":");
    match crate::display::OneDecimal(temperature).exact_bytes(&mut [0u8; 40]) {
        // Every generated reading: its text with one decimal.
        Some(text) => out.extend_from_slice(text),
        None => {
            let _ = serde_json::to_writer(&mut *out, &temperature);
        }
    }
    out.push(b'}');
}

/// A tiny, well-known pseudo-random generator (SplitMix64): reproducible and
/// dependency-free, which is all a lab's weather needs.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in [-1, 1).
    fn next_signed_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// RFC 3339 with milliseconds and a `Z`, the format of the JSON and the CSV.
mod rfc3339_millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(super::Rfc3339Millis::of(time).as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                serde::de::Error::custom(format_args!(
                    "timestamp {text:?} is not an RFC 3339 time like \
                     2026-11-25T03:06:19.123Z ({e})"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_by_hand_is_what_serde_writes() {
        let mut generator = WeatherGenerator::default_cities(9);
        let mut readings = generator.take_readings(3_000);
        let odd = ["Qu\"ote\\d", "Zürich", "tab\there", "\u{1b}[2J", "", "北京"];
        for (i, city) in odd.iter().enumerate() {
            readings[i].city = city.to_string();
        }
        readings[10].temperature = f64::NAN;
        readings[11].temperature = -0.0;
        readings[12].temperature = 1e21;
        readings[13].temperature = -273.15;
        readings[14].timestamp = DateTime::from_timestamp_millis(0).expect("the epoch");
        readings[15].timestamp = DateTime::<Utc>::MAX_UTC;
        readings[16].timestamp = DateTime::<Utc>::MIN_UTC;
        // Temperatures with one decimal (the fast path), and ones without.
        let temperatures = (-3000..=3000)
            .map(|k| k as f64 / 10.0)
            .chain((-3000..=3000).map(|k| k as f64 / 100.0))
            .chain((-3000..=3000).map(|k| k as f64 * 0.0137 + 0.05))
            .chain([
                0.1 + 0.2,
                1e13 + 0.5,
                99_999_999_999_999.9,
                1e14,
                1e15,
                2.5e-7,
                99_999_999_999_999.97,
                -99_999_999_999_999.97,
                1e14 - 0.05,
            ]);
        for temperature in temperatures {
            let mut reading = readings[20].clone();
            reading.temperature = temperature;
            readings.push(reading);
        }
        for reading in &readings {
            let mut by_hand = Vec::new();
            reading.write_json(&mut by_hand);
            let by_serde = serde_json::to_vec(reading).expect("JSON");
            assert_eq!(
                String::from_utf8_lossy(&by_hand),
                String::from_utf8_lossy(&by_serde)
            );
        }
    }

    #[test]
    fn readings_of_one_call_are_a_second_apart_per_city_and_end_now() {
        let mut generator = WeatherGenerator::default_cities(1);
        let before = Utc::now().timestamp_millis();
        let readings = generator.take_readings(10);
        let after = Utc::now().timestamp_millis();
        let times: Vec<i64> = readings
            .iter()
            .map(|r| r.timestamp.timestamp_millis())
            .collect();
        for pair in times.windows(2) {
            assert_eq!(pair[1] - pair[0], 333, "one reading every 1/3 s: {times:?}");
        }
        let last = times[times.len() - 1];
        assert!(
            (before..=after).contains(&last),
            "the last reading is stamped now"
        );
        // The same city, one round later: one second apart.
        assert_eq!(readings[3].city, readings[0].city);
        assert_eq!(times[3] - times[0], 999);
        // A second call at once does not go back in time.
        let more = generator.take_readings(3);
        assert!(more[0].timestamp.timestamp_millis() > last);
        // Real time again after the call.
        let now = generator.next_reading().timestamp.timestamp_millis();
        assert!(now >= after);
    }

    #[test]
    fn generator_is_reproducible_and_round_robin() {
        let at = Utc::now();
        let mut a = WeatherGenerator::default_cities(42);
        let mut b = WeatherGenerator::default_cities(42);
        let first: Vec<Reading> = (0..9).map(|_| a.next_reading_at(at)).collect();
        let second: Vec<Reading> = (0..9).map(|_| b.next_reading_at(at)).collect();
        assert_eq!(first, second);
        let cities: Vec<&str> = first.iter().map(|r| r.city.as_str()).collect();
        assert_eq!(&cities[..4], &["Toronto", "Guangzhou", "Fuzhou", "Toronto"]);
        let mut c = WeatherGenerator::default_cities(43);
        assert_ne!(first[0].temperature, c.next_reading_at(at).temperature);
    }

    #[test]
    fn temperatures_are_plausible_with_one_decimal() {
        let mut generator = WeatherGenerator::default_cities(7);
        for reading in generator.take_readings(3000) {
            let (mean, swing) = climate(&reading.city);
            assert!(
                (reading.temperature - mean).abs() <= 3.0 * swing,
                "{reading} is far from {mean}"
            );
            let tenths = reading.temperature * 10.0;
            assert!((tenths - tenths.round()).abs() < 1e-9, "{reading}");
        }
    }

    #[test]
    fn json_round_trip_uses_rfc3339_millis() {
        let reading = Reading {
            timestamp: DateTime::parse_from_rfc3339("2026-11-25T03:06:19.123456Z")
                .unwrap()
                .with_timezone(&Utc),
            city: "Toronto".into(),
            temperature: -1.5,
        };
        let json = reading.to_json();
        assert_eq!(
            json,
            r#"{"timestamp":"2026-11-25T03:06:19.123Z","city":"Toronto","temperature":-1.5}"#
        );
        let back = Reading::from_json(json.as_bytes()).unwrap();
        assert_eq!(back.city, "Toronto");
        assert_eq!(back.timestamp_rfc3339(), "2026-11-25T03:06:19.123Z");
    }

    #[test]
    fn bad_values_are_reported_not_panicked_on() {
        assert_eq!(Reading::from_json(b"").unwrap_err(), "empty value");
        assert!(Reading::from_json(b"not json")
            .unwrap_err()
            .starts_with("not JSON"));
        assert!(Reading::from_json(br#"{"city":"X"}"#)
            .unwrap_err()
            .starts_with("JSON of the wrong shape"));
        assert!(Reading::from_json(
            br#"{"timestamp":"2026-11-25T00:00:00Z","city":" ","temperature":1}"#
        )
        .unwrap_err()
        .contains("empty city"));
        let bad_time =
            Reading::from_json(br#"{"timestamp":"x","city":"X","temperature":1}"#).unwrap_err();
        assert!(
            bad_time
                .starts_with("JSON of the wrong shape: timestamp \"x\" is not an RFC 3339 time"),
            "{bad_time}"
        );
    }
}

#[cfg(test)]
mod city_tests {
    use super::*;

    #[test]
    fn cities_need_a_name_without_control_characters() {
        for bad in [
            vec![""],
            vec!["", ""],
            vec![" "],
            vec!["Toronto", ""],
            vec!["a\u{1b}[2J"],
        ] {
            let error = WeatherGenerator::for_cities(&bad, 1).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{bad:?}");
        }
        let mut generator = WeatherGenerator::for_cities(&[" Toronto ", "Fuzhou"], 1).unwrap();
        assert_eq!(generator.next_reading().city, "Toronto");
    }
}

#[cfg(test)]
mod city_reading_tests {
    use super::*;

    #[test]
    fn a_city_reading_is_the_reading_its_generator_makes() {
        let cities = ["Zürich", "Qu\"ote", "北京", "Fuzhou"];
        let mut by_index = WeatherGenerator::new(&cities, 4);
        by_index.simulate_time(100);
        let mut by_name = by_index.clone();
        let mut city = String::new();
        for i in 0..100 {
            let compact = by_index.next_city_reading();
            let reading = by_name.next_reading();
            // The cities in turn, each named by its place in the list.
            assert_eq!(compact.city_index, i % cities.len());
            assert_eq!(reading.city, cities[i % cities.len()]);
            let mut json = Vec::new();
            compact.write_json(by_index.cities(), &mut json);
            assert_eq!(json, serde_json::to_vec(&reading).expect("JSON"));
            assert_eq!(compact.to_reading(by_index.cities()), reading);
            // The buffer handed in is cleared first: a long name before a
            // short one leaves nothing of the long one.
            let again = compact.to_reading_in(by_index.cities(), city);
            assert_eq!(again, reading);
            city = again.city;
        }
    }

    #[test]
    fn a_generator_without_cities_makes_the_labs() {
        let mut generator = WeatherGenerator::new::<&str>(&[], 1);
        assert_eq!(generator.cities(), DEFAULT_CITIES);
        let mut lab = WeatherGenerator::default_cities(1);
        for _ in 0..6 {
            assert_eq!(generator.next_reading(), lab.next_reading());
        }
    }
}
