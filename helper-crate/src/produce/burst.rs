//! A burst's readings, made ahead on a thread of their own.
//!
//! A burst (no rate) sends as fast as librdkafka queues. The sending thread is
//! busy from the first send to the last, so it sets the pace; librdkafka's own
//! thread, which writes the batches to the broker, has time to spare on the
//! other core. Making a reading and writing its JSON was about a tenth of the
//! sending thread's time (`perf`: the random walk, the timestamp's text,
//! `write_json`). Here a second thread does that work ahead of the sends, a
//! thousand readings at a time and at most four thousand ahead: a two-stage
//! pipeline, the same shape as the command line's rows thread. The readings
//! go back and forth over two channels (made ones to the sends, emptied ones
//! back to be filled again), so their buffers are not allocated again for
//! every thousand. Measured on the mock, 1,000,000 readings alternated with
//! kcat, in a fast minute: `produce --quiet` 0.88x → 0.93x kcat's speed; in a
//! slow minute, or with a row printed per report, no gain (docs/performance.md,
//! session 14).
//!
//! The caller's generator stays exact. The maker runs ahead, so when the
//! sends stop early (Ctrl-C, a failed send) it has made readings that were
//! never sent. Each thousand carries the generator as it was before its first
//! reading, and once the sends are over the caller's generator is put where
//! the last reading taken for sending left it: the next run goes on from
//! there, as it would without the second thread.

use std::ops::ControlFlow;
use std::sync::mpsc::{self, Receiver, SyncSender};

use crate::weather::{CityReading, WeatherGenerator};

use super::reports::SERVE_REPORTS_EVERY;

/// Readings made together: the sends serve delivery reports before each
/// thousand, so this is also how often they are served.
pub(super) const MADE_TOGETHER: usize = SERVE_REPORTS_EVERY;

/// Thousands the maker may have ready before the sends take them (about
/// 150 kB each): a few, so that a pause of the maker's thread (the two cores
/// are shared with librdkafka's threads and the broker) does not stop the
/// sends, and no more, so that a stop leaves little made for nothing.
const READY_AHEAD: usize = 4;

/// Readings made together, with their JSON.
struct MadeReadings {
    /// The generator before the first of them.
    generator_before: WeatherGenerator,
    readings: Vec<CityReading>,
    /// The readings' JSON, one after the other.
    json: Vec<u8>,
    /// Where each reading's JSON ends in `json`.
    json_ends: Vec<usize>,
}

impl MadeReadings {
    fn new(generator: &WeatherGenerator) -> Self {
        MadeReadings {
            generator_before: generator.clone(),
            readings: Vec::with_capacity(MADE_TOGETHER),
            json: Vec::with_capacity(MADE_TOGETHER * 96),
            json_ends: Vec::with_capacity(MADE_TOGETHER),
        }
    }

    /// Makes `count` readings with `generator`, after what is there.
    fn make(&mut self, generator: &mut WeatherGenerator, count: usize) {
        for _ in 0..count {
            let reading = generator.next_city_reading();
            reading.write_json(generator.cities(), &mut self.json);
            self.json_ends.push(self.json.len());
            self.readings.push(reading);
        }
    }

    /// Empties it for a new thousand, made from where `generator` is now.
    fn refill_from(&mut self, generator: &WeatherGenerator) {
        self.generator_before.clone_from(generator);
        self.readings.clear();
        self.json.clear();
        self.json_ends.clear();
    }

    /// Each reading with its JSON, in the order made.
    fn each(&self) -> impl Iterator<Item = (CityReading, &[u8])> {
        let starts = std::iter::once(0).chain(self.json_ends.iter().copied());
        let json = starts
            .zip(&self.json_ends)
            .map(|(start, &end)| &self.json[start..end]);
        self.readings.iter().copied().zip(json)
    }
}

/// Makes `count` readings with `generator` on a thread of its own and hands
/// each one, with its JSON, to `send`, in the order made, until all are
/// handed over, `send` breaks, or `stop_asked` says so (checked before each
/// reading; a reading `send` broke on counts as taken, one `stop_asked`
/// stopped before does not). `before_each_thousand` runs before the first
/// reading of each thousand (the sends serve delivery reports there).
///
/// Fails, with nothing made or sent, only when the maker's thread cannot be
/// started (the system's limit on threads): the caller then makes the
/// readings itself.
///
/// Afterwards `generator` is where the last reading taken left it (not after a
/// panic in `send`, which unwinds past the restore). Making them again from a
/// thousand's start gives the same readings only on the simulated clock
/// ([`WeatherGenerator::simulate_time`]), which a burst runs on.
pub(super) fn send_made_ahead(
    generator: &mut WeatherGenerator,
    count: usize,
    stop_asked: impl Fn() -> bool,
    mut before_each_thousand: impl FnMut(),
    mut send: impl FnMut(CityReading, &[u8]) -> ControlFlow<()>,
) -> std::io::Result<()> {
    // Where the last reading taken left the generator: the start of its
    // thousand, and how many of that thousand were taken.
    let mut last_start = generator.clone();
    let mut taken_of_last = 0;
    let mut stopped_early = false;
    std::thread::scope(|scope| -> std::io::Result<()> {
        let (made, to_send) = mpsc::sync_channel(READY_AHEAD);
        let (emptied, to_refill) = mpsc::channel();
        let maker = std::thread::Builder::new()
            .name("readings".into())
            .spawn_scoped(scope, || make_readings(generator, count, made, to_refill))?;
        'sending: for thousand in to_send.iter() {
            before_each_thousand();
            last_start.clone_from(&thousand.generator_before);
            taken_of_last = 0;
            for (reading, json) in thousand.each() {
                if stop_asked() {
                    stopped_early = true;
                    break 'sending;
                }
                taken_of_last += 1;
                if send(reading, json).is_break() {
                    stopped_early = true;
                    break 'sending;
                }
            }
            // Fails only once the maker is done: the thousand is then dropped.
            let _ = emptied.send(thousand);
        }
        // The maker's next hand-over fails, and it stops.
        drop(to_send);
        if let Err(panic) = maker.join() {
            std::panic::resume_unwind(panic);
        }
        Ok(())
    })?;
    // All sent: the maker's generator is already past the last reading.
    if stopped_early {
        *generator = last_start;
        for _ in 0..taken_of_last {
            generator.next_city_reading();
        }
    }
    Ok(())
}

/// The maker's thread: fills thousands (emptied ones when there are, new ones
/// otherwise) until `count` readings are made or the sends are over.
fn make_readings(
    generator: &mut WeatherGenerator,
    count: usize,
    made: SyncSender<MadeReadings>,
    to_refill: Receiver<MadeReadings>,
) {
    let mut left = count;
    while left > 0 {
        let mut thousand = match to_refill.try_recv() {
            Ok(mut emptied) => {
                emptied.refill_from(generator);
                emptied
            }
            Err(_) => MadeReadings::new(generator),
        };
        let size = left.min(MADE_TOGETHER);
        thousand.make(generator, size);
        left -= size;
        if made.send(thousand).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weather::Reading;
    use std::cell::Cell;

    /// Two generators that make the same readings (one clock reading).
    fn generators() -> (WeatherGenerator, WeatherGenerator) {
        let mut generator = WeatherGenerator::default_cities(7);
        generator.simulate_time(10_000);
        let expected = generator.clone();
        (generator, expected)
    }

    /// Runs `send_made_ahead` over `count` readings, stopping (by `send`
    /// breaking, or by `stop_asked`) at reading `stop_at` (1-based); returns
    /// the readings handed over and how many thousands were started.
    fn run(
        generator: &mut WeatherGenerator,
        count: usize,
        stop_at: Option<(usize, bool)>,
    ) -> (Vec<Reading>, usize) {
        let cities = generator.cities().to_vec();
        let asked = Cell::new(0);
        let mut thousands = 0;
        let mut handed = Vec::new();
        let result = send_made_ahead(
            generator,
            count,
            || {
                asked.set(asked.get() + 1);
                stop_at == Some((asked.get(), true))
            },
            || thousands += 1,
            |reading, json| {
                let reading = reading.to_reading(&cities);
                assert_eq!(json, reading.to_json().as_bytes());
                handed.push(reading);
                if stop_at == Some((handed.len(), false)) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        );
        assert!(result.is_ok(), "{result:?}");
        (handed, thousands)
    }

    /// `generator` makes next what `expected` makes after `taken` readings.
    fn goes_on_after(
        generator: &mut WeatherGenerator,
        expected: &mut WeatherGenerator,
        taken: usize,
    ) {
        for _ in 0..taken {
            expected.next_reading();
        }
        assert_eq!(generator.next_reading(), expected.next_reading());
    }

    #[test]
    fn every_reading_is_handed_over_once_in_order_with_its_json() {
        let (mut generator, mut expected) = generators();
        let count = 2 * MADE_TOGETHER + 17;
        let (handed, thousands) = run(&mut generator, count, None);
        assert_eq!((handed.len(), thousands), (count, 3));
        let made: Vec<Reading> = (0..count).map(|_| expected.next_reading()).collect();
        assert_eq!(handed, made);
        goes_on_after(&mut generator, &mut expected, 0);
    }

    #[test]
    fn a_send_that_breaks_is_taken_and_the_generator_goes_on_after_it() {
        // Mid-thousand, on the last of a thousand, in a last short thousand.
        for (count, stop) in [(10_000, 1_500), (10_000, 1_000), (2_300, 2_150), (10, 1)] {
            let (mut generator, mut expected) = generators();
            let (handed, _) = run(&mut generator, count, Some((stop, false)));
            assert_eq!(handed.len(), stop, "{count} {stop}");
            goes_on_after(&mut generator, &mut expected, stop);
        }
    }

    #[test]
    fn a_stop_asked_before_a_reading_leaves_it_untaken() {
        // Before the first, mid-thousand, on a thousand's boundary.
        for stop in [1, 1_500, 2_001] {
            let (mut generator, mut expected) = generators();
            let (handed, _) = run(&mut generator, 10_000, Some((stop, true)));
            assert_eq!(handed.len(), stop - 1, "{stop}");
            goes_on_after(&mut generator, &mut expected, stop - 1);
        }
    }

    #[test]
    fn nothing_to_make_leaves_the_generator_as_it_was() {
        let (mut generator, mut expected) = generators();
        let (handed, thousands) = run(&mut generator, 0, None);
        assert_eq!((handed.len(), thousands), (0, 0));
        goes_on_after(&mut generator, &mut expected, 0);
    }

    #[test]
    fn an_emptied_thousand_is_refilled_from_where_the_generator_is() {
        let (mut generator, mut expected) = generators();
        let (made, to_send) = mpsc::sync_channel(READY_AHEAD);
        let (emptied, to_refill) = mpsc::channel();
        // A used one waits to be refilled: the maker takes it first.
        let mut used = MadeReadings::new(&generator);
        used.make(&mut WeatherGenerator::default_cities(99), 5);
        emptied.send(used).unwrap();
        make_readings(&mut generator, MADE_TOGETHER + 3, made, to_refill);
        let cities = generator.cities();
        let thousands: Vec<MadeReadings> = to_send.iter().collect();
        assert_eq!(thousands.len(), 2);
        assert_eq!(thousands[0].readings.len(), MADE_TOGETHER);
        assert_eq!(thousands[1].readings.len(), 3);
        for thousand in &thousands {
            // Its starting generator makes its readings again, exactly.
            let mut again = thousand.generator_before.clone();
            for (reading, json) in thousand.each() {
                let reading = reading.to_reading(cities);
                assert_eq!(reading, again.next_reading());
                assert_eq!(json, reading.to_json().as_bytes());
                assert_eq!(reading, expected.next_reading());
            }
        }
    }
}
