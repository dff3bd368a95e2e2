//! A burst's readings, made ahead on a thread of their own.
//!
//! A burst (no rate) sends as fast as librdkafka queues. The sending thread is
//! busy from the first send to the last, so it sets the pace; librdkafka's own
//! thread, which writes the batches to the broker, has time to spare on the
//! other core. Making a reading and writing its JSON was about a seventh of
//! the sending thread's time (`perf`: the random walk, the timestamp's text,
//! `write_json`). Here a second thread does that work a batch ahead of the
//! sends: a two-stage pipeline, the same shape as the command line's rows
//! thread. Batches go back and forth over two channels (filled ones to the
//! sends, emptied ones back to be filled again), so nothing is allocated per
//! batch. Measured on the mock, 1,000,000 readings, alternated with kcat:
//! docs/performance.md, session 14.
//!
//! The caller's generator stays exact. The maker runs ahead, so when the
//! sends stop early (Ctrl-C, a failed send) it has made readings that were
//! never sent. Each batch carries the generator as it was before its first
//! reading, and once the sends are over the caller's generator is put where
//! the last reading taken for sending left it: the next run goes on from
//! there, as it would without the second thread.

use std::ops::ControlFlow;
use std::sync::mpsc::{self, Receiver, SyncSender};

use crate::weather::{Reading, WeatherGenerator};

use super::reports::SERVE_REPORTS_EVERY;

/// Readings per batch: the sends serve delivery reports once per batch, so
/// this is also how often they are served.
const BATCH_SIZE: usize = SERVE_REPORTS_EVERY;

/// Batches the maker may have ready before the sends take them (about
/// 150 kB each): enough that the sends never wait for the maker, few enough
/// that a stop leaves little made for nothing.
const BATCHES_AHEAD: usize = 4;

/// Readings made together, with their JSON.
struct Batch {
    /// The generator before the batch's first reading.
    generator_before: WeatherGenerator,
    readings: Vec<Reading>,
    /// The readings' JSON, one after the other.
    json: Vec<u8>,
    /// Where each reading's JSON ends in `json`.
    json_ends: Vec<usize>,
}

impl Batch {
    fn new(generator: &WeatherGenerator) -> Self {
        Batch {
            generator_before: generator.clone(),
            readings: Vec::with_capacity(BATCH_SIZE),
            json: Vec::with_capacity(BATCH_SIZE * 96),
            json_ends: Vec::with_capacity(BATCH_SIZE),
        }
    }

    fn push(&mut self, reading: Reading) {
        reading.write_json(&mut self.json);
        self.json_ends.push(self.json.len());
        self.readings.push(reading);
    }

    fn clear(&mut self) {
        self.readings.clear();
        self.json.clear();
        self.json_ends.clear();
    }
}

/// Makes `count` readings with `generator` on a thread of its own and hands
/// each one, with its JSON, to `send`, in the order made, until all are
/// handed over, `send` breaks, or a stop is asked for ([`crate::shutdown`]).
/// `between_batches` runs before each batch (the sends serve delivery reports
/// there). Returns how many readings `send` was handed; `generator` is then
/// where the last of them left it.
pub(super) fn send_made_ahead(
    generator: &mut WeatherGenerator,
    count: usize,
    mut between_batches: impl FnMut(),
    mut send: impl FnMut(Reading, &[u8]) -> ControlFlow<()>,
) -> usize {
    let mut taken = 0;
    // Where the last reading taken left the generator: a batch's starting
    // point and how many of its readings were taken.
    let mut resume_from = (generator.clone(), 0);
    std::thread::scope(|scope| {
        let (filled, to_send) = mpsc::sync_channel(BATCHES_AHEAD);
        let (emptied, to_fill) = mpsc::channel();
        let maker = std::thread::Builder::new()
            .name("readings".into())
            .spawn_scoped(scope, || make_batches(generator, count, filled, to_fill))
            // What `scope.spawn` does too: a system that cannot start a thread
            // cannot run a producer either (librdkafka starts several).
            .expect("the system starts a thread");
        'batches: for batch in to_send.iter() {
            between_batches();
            resume_from.0.clone_from(&batch.generator_before);
            resume_from.1 = 0;
            let mut start = 0;
            for (reading, &end) in batch.readings.iter().zip(&batch.json_ends) {
                if crate::shutdown::requested() {
                    break 'batches;
                }
                resume_from.1 += 1;
                taken += 1;
                // A copy made here goes with the message and is freed here
                // after its report; the batch's own readings go back to the
                // maker and are freed there. mimalloc frees memory fastest
                // on the thread that allocated it.
                if send(reading.clone(), &batch.json[start..end]).is_break() {
                    break 'batches;
                }
                start = end;
            }
            // Fails only once the maker is done: the batch is then dropped.
            let _ = emptied.send(batch);
        }
        // The maker's next hand-over fails, and it stops.
        drop(to_send);
        if let Err(panic) = maker.join() {
            std::panic::resume_unwind(panic);
        }
    });
    let (before, taken_of_batch) = resume_from;
    *generator = before;
    for _ in 0..taken_of_batch {
        generator.next_reading();
    }
    taken
}

/// The maker's thread: fills batches (emptied ones when there are, new ones
/// otherwise) until `count` readings are made or the sends are over.
fn make_batches(
    generator: &mut WeatherGenerator,
    count: usize,
    filled: SyncSender<Batch>,
    to_fill: Receiver<Batch>,
) {
    let mut left = count;
    while left > 0 {
        let mut batch = match to_fill.try_recv() {
            Ok(mut emptied) => {
                emptied.clear();
                emptied.generator_before.clone_from(generator);
                emptied
            }
            Err(_) => Batch::new(generator),
        };
        let size = left.min(BATCH_SIZE);
        for _ in 0..size {
            batch.push(generator.next_reading());
        }
        left -= size;
        if filled.send(batch).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator() -> WeatherGenerator {
        let mut generator = WeatherGenerator::default_cities(7);
        generator.simulate_time(10_000);
        generator
    }

    #[test]
    fn every_reading_is_handed_over_once_in_order_with_its_json() {
        let mut expected = generator();
        let mut generator = generator();
        let count = 2 * BATCH_SIZE + 17;
        let mut batches = 0;
        let mut handed = Vec::new();
        let taken = send_made_ahead(
            &mut generator,
            count,
            || batches += 1,
            |reading, json| {
                assert_eq!(json, reading.to_json().as_bytes());
                handed.push(reading);
                ControlFlow::Continue(())
            },
        );
        assert_eq!((taken, handed.len(), batches), (count, count, 3));
        for reading in &handed {
            assert_eq!(*reading, expected.next_reading());
        }
        // The caller's generator goes on where the last reading left it.
        assert_eq!(generator.next_reading(), expected.next_reading());
    }

    #[test]
    fn a_stop_part_way_leaves_the_generator_after_the_last_reading_taken() {
        let mut expected = generator();
        let mut generator = generator();
        // Stops on the 1,500th reading (mid-batch), with batches made ahead.
        let mut handed = 0;
        let taken = send_made_ahead(
            &mut generator,
            10 * BATCH_SIZE,
            || {},
            |_, _| {
                handed += 1;
                match handed {
                    1_500 => ControlFlow::Break(()),
                    _ => ControlFlow::Continue(()),
                }
            },
        );
        assert_eq!(taken, 1_500);
        for _ in 0..1_500 {
            expected.next_reading();
        }
        assert_eq!(generator.next_reading(), expected.next_reading());
    }

    #[test]
    fn nothing_to_make_leaves_the_generator_as_it_was() {
        let mut expected = generator();
        let mut generator = generator();
        let taken = send_made_ahead(&mut generator, 0, || {}, |_, _| ControlFlow::Continue(()));
        assert_eq!(taken, 0);
        assert_eq!(generator.next_reading(), expected.next_reading());
    }
}
