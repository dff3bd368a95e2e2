//! `kafka_log.csv`: the consumer's output, one row per message, never twice.
//!
//! In Kafka a message is identified by **(topic, partition, offset)**: offsets
//! are unique within a partition and never reused. That triple is therefore the
//! natural key of the log: a consumer that re-reads a batch (because it crashed
//! after writing and before committing, or because a new group read from
//! `earliest`) adds only the rows the file does not have yet.
//!
//! Crash safety comes from the order of operations: a batch of rows is written
//! with one `write` call and flushed to disk (`fsync`) before the consumer commits
//! its offsets. If the process dies mid-write, the file can end in a partial line;
//! [`CsvLog::open`] cuts it off, and the uncommitted batch is read again. A lock
//! file (`kafka_log.csv.lock`) stops two consumers from writing one log at once.
//!
//! Columns: `topic,partition,offset,timestamp,city,temperature`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::record::ConsumedRecord;

mod offsets;
use offsets::OffsetRuns;

/// The header line of `kafka_log.csv`.
pub const CSV_HEADER: [&str; 6] = [
    "topic",
    "partition",
    "offset",
    "timestamp",
    "city",
    "temperature",
];

/// One row of `kafka_log.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsvRow {
    /// Topic the message came from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The reading's time, RFC 3339 UTC.
    pub timestamp: String,
    /// The city.
    pub city: String,
    /// °C.
    pub temperature: f64,
}

impl CsvRow {
    /// The row's cells as text, temperature with one decimal.
    pub fn cells(&self) -> Vec<String> {
        vec![
            self.topic.clone(),
            self.partition.to_string(),
            self.offset.to_string(),
            self.timestamp.clone(),
            self.city.clone(),
            format!("{:.1}", self.temperature),
        ]
    }
}

impl From<&ConsumedRecord> for CsvRow {
    fn from(record: &ConsumedRecord) -> Self {
        CsvRow {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            timestamp: record.reading.timestamp_rfc3339(),
            city: record.reading.city.clone(),
            temperature: record.reading.temperature,
        }
    }
}

/// How an append went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    /// Rows written.
    pub written: usize,
    /// Rows skipped because the file already had their (topic, partition, offset).
    pub already_present: usize,
}

/// The offsets of one topic's partitions that the file holds.
#[derive(Debug)]
struct TopicOffsets {
    topic: String,
    partitions: BTreeMap<i32, OffsetRuns>,
}

/// An open `kafka_log.csv`, locked for this process, that knows which
/// (topic, partition, offset) it holds.
#[derive(Debug)]
pub struct CsvLog {
    path: PathBuf,
    file: File,
    /// The offsets the file holds, by topic (usually one) and partition.
    seen: Vec<TopicOffsets>,
    rows: usize,
    truncated_bytes: u64,
    _lock: LockFile,
}

impl CsvLog {
    /// Opens (or creates, with its header) the log at `path`: takes the lock,
    /// cuts off a partial last line left by a crash, and indexes the rows.
    pub fn open(path: impl AsRef<Path>) -> Result<CsvLog> {
        let path = path.as_ref().to_path_buf();
        refuse_what_is_not_a_file(&path)?;
        let lock = LockFile::acquire(&path)?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::io(&path, e))?;

        // A crash mid-write can leave a last line without its newline. Read the
        // complete lines first (refusing a file that is not a kafka_log.csv), and
        // only then drop the partial one.
        let complete = end_of_complete_rows(&bytes);
        // A crash leaves at most one partial row. More lines after the last
        // complete row mean a quote that never closes (a hand edit): cutting
        // there would delete rows the group has already committed past.
        if bytes[complete..].iter().filter(|b| **b == b'\n').count() > 1 {
            return Err(Error::Csv {
                path,
                message: format!(
                    "a quote opened at or after byte {complete} never closes, so the rows after \
                     it cannot be read; fix the quote by hand (nothing was changed)"
                ),
            });
        }
        let header = format!("{}\n", CSV_HEADER.join(","));
        let rows = if complete == 0 {
            if !header.as_bytes().starts_with(&bytes) {
                return Err(Error::Csv {
                    path,
                    message:
                        "not a kafka_log.csv (no header line); move it away to start a new log"
                            .to_string(),
                });
            }
            Vec::new()
        } else {
            parse_rows(&path, &bytes[..complete])?
        };
        let mut rows = rows;
        let mut complete = complete;
        if complete > 0 && complete < bytes.len() {
            if let Some(mut last) =
                keep_whole_last_row(&path, &mut file, &header, &bytes[complete..])?
            {
                rows.append(&mut last);
                complete = bytes.len();
            }
        }
        let truncated_bytes = (bytes.len() - complete) as u64;
        if truncated_bytes > 0 {
            file.set_len(complete as u64)
                .map_err(|e| Error::io(&path, e))?;
            file.seek(SeekFrom::End(0))
                .map_err(|e| Error::io(&path, e))?;
        }

        let mut log = CsvLog {
            path,
            file,
            seen: Vec::new(),
            rows: 0,
            truncated_bytes,
            _lock: lock,
        };
        if complete == 0 {
            log.write_durably(header.as_bytes())?;
        }
        for row in &rows {
            log.remember(&row.topic, row.partition, row.offset);
        }
        Ok(log)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Data rows in the file.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether the file has no data rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Bytes of a partial last line that [`CsvLog::open`] removed (0 normally).
    pub fn truncated_bytes(&self) -> u64 {
        self.truncated_bytes
    }

    /// Whether the file has a row for this message.
    pub fn contains(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.seen
            .iter()
            .find(|t| t.topic == topic)
            .and_then(|t| t.partitions.get(&partition))
            .is_some_and(|offsets| offsets.contains(offset))
    }

    /// Appends the records the file does not have yet, in one write, and flushes
    /// them to disk before returning.
    pub fn append(&mut self, records: &[ConsumedRecord]) -> Result<Appended> {
        let mut buffer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        // The batch's own offsets, so that a message twice in one batch is
        // written once; the log's index learns them once they are on disk.
        let mut in_batch: BTreeMap<(&str, i32), OffsetRuns> = BTreeMap::new();
        let mut new_rows = Vec::new();
        for record in records {
            let (topic, partition, offset) =
                (record.topic.as_str(), record.partition, record.offset);
            if self.contains(topic, partition, offset)
                || !in_batch
                    .entry((topic, partition))
                    .or_default()
                    .insert(offset)
            {
                continue;
            }
            buffer
                .serialize(CsvRow::from(record))
                .map_err(|e| self.csv_error(e))?;
            new_rows.push((topic, partition, offset));
        }
        let appended = Appended {
            written: new_rows.len(),
            already_present: records.len() - new_rows.len(),
        };
        if new_rows.is_empty() {
            return Ok(appended);
        }
        let bytes = buffer
            .into_inner()
            .map_err(|e| self.csv_error(e.into_error()))?;
        self.write_durably(&bytes)?;
        for (topic, partition, offset) in new_rows {
            self.remember(topic, partition, offset);
        }
        Ok(appended)
    }

    fn write_durably(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::io(&self.path, e))
    }

    fn remember(&mut self, topic: &str, partition: i32, offset: i64) {
        let index = match self.seen.iter().position(|t| t.topic == topic) {
            Some(index) => index,
            None => {
                self.seen.push(TopicOffsets {
                    topic: topic.to_string(),
                    partitions: BTreeMap::new(),
                });
                self.seen.len() - 1
            }
        };
        let fresh = self.seen[index]
            .partitions
            .entry(partition)
            .or_default()
            .insert(offset);
        if fresh {
            self.rows += 1;
        }
    }

    fn csv_error(&self, error: impl std::fmt::Display) -> Error {
        Error::Csv {
            path: self.path.clone(),
            message: error.to_string(),
        }
    }
}

/// Reads every row of a `kafka_log.csv`.
pub fn read_csv_log(path: impl AsRef<Path>) -> Result<Vec<CsvRow>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_rows(path, &bytes)
}

/// The rows as a table (the last `max_rows` of them), for the terminal or a notebook.
pub fn rows_table(rows: &[CsvRow], max_rows: usize) -> crate::display::Table {
    let mut table = crate::display::Table::new(&CSV_HEADER).with_title("kafka_log.csv");
    let skip = rows.len().saturating_sub(max_rows);
    for row in &rows[skip..] {
        table.push_row(row.cells());
    }
    table.footer = Some(if skip > 0 {
        format!("{} rows (last {max_rows} shown)", rows.len())
    } else {
        format!("{} rows", rows.len())
    });
    table
}

/// Where the last complete line ends: after the last newline that is not
/// inside a quoted field (a city may hold a newline, written `"New\nYork"`;
/// a row cut after that newline is still partial). 0 if there is none.
fn end_of_complete_rows(bytes: &[u8]) -> usize {
    let mut in_quotes = false;
    let mut end = 0;
    for (i, byte) in bytes.iter().enumerate() {
        match byte {
            // An escaped quote ("") toggles twice: still inside.
            b'"' => in_quotes = !in_quotes,
            b'\n' if !in_quotes => end = i + 1,
            _ => {}
        }
    }
    end
}

fn parse_rows(path: &Path, bytes: &[u8]) -> Result<Vec<CsvRow>> {
    let csv_error = |message: String| Error::Csv {
        path: path.to_path_buf(),
        message,
    };
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| csv_error(e.to_string()))?
        .clone();
    if headers.iter().ne(CSV_HEADER.iter().copied()) {
        return Err(csv_error(format!(
            "unexpected header '{}'; a kafka_log.csv starts with '{}' (move the file away to start a new log)",
            headers.iter().collect::<Vec<_>>().join(","),
            CSV_HEADER.join(",")
        )));
    }
    reader
        .deserialize()
        .map(|row| row.map_err(|e| csv_error(e.to_string())))
        .collect()
}

/// `<file>.lock`, holding the owner's process id; removed on drop. A lock left by
/// a process that no longer runs (killed) is taken over.
#[derive(Debug)]
struct LockFile {
    path: PathBuf,
}

impl LockFile {
    fn acquire(target: &Path) -> Result<LockFile> {
        // Keyed by the file's real path, so that a symlink or another spelling
        // of the same file takes the same lock.
        let real = real_path(target);
        let mut name = real.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let _ = writeln!(file, "{}", std::process::id());
                    return Ok(LockFile { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|text| text.trim().parse::<i32>().ok());
                    match owner {
                        Some(pid) if process_is_alive(pid) => {
                            return Err(Error::Csv {
                                path: target.to_path_buf(),
                                message: format!(
                                    "another consumer (process {pid}) is writing this file; \
                                     wait for it, or write to another CSV log"
                                ),
                            })
                        }
                        // Stale: its owner died without cleaning up.
                        _ => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::Csv {
            path: target.to_path_buf(),
            message: format!("could not take the lock {}", path.display()),
        })
    }
}

/// The canonical path of `target`, or of its folder joined with its name when
/// the file does not exist yet.
fn real_path(target: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(target) {
        return real;
    }
    let folder = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(folder), target.file_name()) {
        (Ok(folder), Some(name)) => folder.join(name),
        _ => target.to_path_buf(),
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn process_is_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // Signal 0 checks existence without sending anything; EPERM still means alive.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A FIFO would block the open, a device would never end: only a regular file
/// (or none yet) is a log.
fn refuse_what_is_not_a_file(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(metadata) if !metadata.is_file() => Err(Error::Csv {
            path: path.to_path_buf(),
            message: "not a regular file (a folder, FIFO or device): give the path of a CSV file"
                .to_string(),
        }),
        _ => Ok(()),
    }
}

/// A last row without its newline (an editor's save, or a crash right before
/// the newline) is kept when it is a whole row: one that parses and that this
/// log would write byte for byte the same. A row cut inside its temperature
/// ("3" of "3.5") parses, but is written "3.0". Returns the row (its newline
/// now written and synced), or `None` when `tail` is a partial row to cut.
fn keep_whole_last_row(
    path: &Path,
    file: &mut File,
    header: &str,
    tail: &[u8],
) -> Result<Option<Vec<CsvRow>>> {
    let whole = [header.as_bytes(), tail, b"\n"].concat();
    let Ok(last) = parse_rows(path, &whole) else {
        return Ok(None);
    };
    let as_written = last.first().and_then(|row| {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        writer.serialize(row).ok()?;
        writer.into_inner().ok()
    });
    if last.len() != 1 || as_written.as_deref() != Some(&whole[header.len()..]) {
        return Ok(None);
    }
    file.write_all(b"\n").map_err(|e| Error::io(path, e))?;
    file.sync_data().map_err(|e| Error::io(path, e))?;
    Ok(Some(last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weather::WeatherGenerator;

    fn records(topic: &str, offsets: std::ops::Range<i64>) -> Vec<ConsumedRecord> {
        let mut generator = WeatherGenerator::default_cities(1);
        offsets
            .map(|offset| ConsumedRecord {
                topic: topic.to_string(),
                partition: 0,
                offset,
                key: None,
                timestamp_ms: None,
                reading: generator.next_reading(),
            })
            .collect()
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kafka-lab-csv-{}-{name}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("kafka_log.csv")
    }

    /// A new log holding offsets 0, 1 and 2 of `weather`, closed.
    fn log_of_three_rows(name: &str) -> PathBuf {
        let path = temp_path(name);
        let mut log = CsvLog::open(&path).unwrap();
        log.append(&records("weather", 0..3)).unwrap();
        path
    }

    #[test]
    fn rows_are_written_once_across_reopens() {
        let path = temp_path("once");
        {
            let mut log = CsvLog::open(&path).unwrap();
            let appended = log.append(&records("weather", 0..10)).unwrap();
            assert_eq!(appended.written, 10);
        }
        let mut log = CsvLog::open(&path).unwrap();
        assert_eq!(log.len(), 10);
        let appended = log.append(&records("weather", 5..13)).unwrap();
        assert_eq!(
            appended,
            Appended {
                written: 3,
                already_present: 5
            }
        );
        drop(log);
        let rows = read_csv_log(&path).unwrap();
        let offsets: Vec<i64> = rows.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..13).collect::<Vec<_>>());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("topic,partition,offset,timestamp,city,temperature\n"));
    }

    #[test]
    fn a_partial_last_line_is_cut_off() {
        let path = log_of_three_rows("partial");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"weather,0,3,2026-11-25T0").unwrap();
        drop(file);
        let mut log = CsvLog::open(&path).unwrap();
        assert_eq!(log.truncated_bytes(), 24);
        assert_eq!(log.len(), 3);
        assert_eq!(log.append(&records("weather", 0..4)).unwrap().written, 1);
        drop(log);
        assert_eq!(read_csv_log(&path).unwrap().len(), 4);
    }

    #[test]
    fn a_complete_last_row_without_its_newline_is_kept() {
        let path = log_of_three_rows("no-newline");
        // As an editor saves it: no newline after the last row.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.trim_end_matches('\n')).unwrap();
        let mut log = CsvLog::open(&path).unwrap();
        assert_eq!((log.len(), log.truncated_bytes()), (3, 0));
        assert_eq!(log.append(&records("weather", 0..4)).unwrap().written, 1);
        drop(log);
        let offsets: Vec<i64> = read_csv_log(&path)
            .unwrap()
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_last_row_cut_inside_its_temperature_is_not_kept() {
        let path = log_of_three_rows("cut-temperature");
        // The last row loses its final characters and its newline: what is left
        // still parses ("...,4" of "...,4.7"), but it is not what was written.
        let text = std::fs::read_to_string(&path).unwrap();
        let cut = &text[..text.trim_end_matches('\n').len() - 2];
        assert!(!cut.ends_with('.'), "{cut:?}");
        std::fs::write(&path, cut).unwrap();
        let log = CsvLog::open(&path).unwrap();
        assert_eq!(log.len(), 2, "the cut row is dropped, to be read again");
        assert!(log.truncated_bytes() > 0);
    }

    #[test]
    fn a_partial_row_cut_after_a_newline_inside_quotes_is_cut_off() {
        let path = temp_path("quoted-newline");
        let mut record = records("weather", 0..2);
        record[1].reading.city = "New\nYork \"NY\"".into();
        let mut log = CsvLog::open(&path).unwrap();
        log.append(&record).unwrap();
        drop(log);
        let whole = std::fs::read(&path).unwrap();
        let quoted = whole.windows(4).position(|w| w == b"New\n").unwrap() + 4;
        for (cut, rows) in [(quoted, 1), (whole.len() - 1, 2), (whole.len(), 2)] {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let log = CsvLog::open(&path).unwrap();
            assert_eq!(log.len(), rows, "cut at {cut} of {}", whole.len());
            drop(log);
            let back = read_csv_log(&path).unwrap();
            assert_eq!(back.len(), rows);
            assert_eq!(back.last().unwrap().offset, rows as i64 - 1);
        }
        assert_eq!(read_csv_log(&path).unwrap()[1].city, "New\nYork \"NY\"");
    }

    #[test]
    fn an_unbalanced_quote_is_refused_not_cut() {
        let path = log_of_three_rows("stray-quote");
        let text = std::fs::read_to_string(&path).unwrap();
        // A hand edit opens a quote in the first row that never closes.
        let edited = text.replacen("\nweather,0,0,", "\nweather,0,0,\"", 1);
        std::fs::write(&path, &edited).unwrap();
        let error = CsvLog::open(&path).unwrap_err();
        assert!(error.to_string().contains("never closes"), "{error}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            edited,
            "nothing cut"
        );
    }

    #[test]
    fn a_symlink_to_a_locked_log_is_refused_too() {
        let path = temp_path("symlink");
        let first = CsvLog::open(&path).unwrap();
        let link = path.with_file_name("link.csv");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let error = CsvLog::open(&link).unwrap_err();
        assert!(error.to_string().contains("another consumer"), "{error}");
        let other_spelling = path.parent().unwrap().join(".").join("kafka_log.csv");
        assert!(CsvLog::open(&other_spelling).is_err());
        drop(first);
        assert!(CsvLog::open(&link).is_ok());
    }

    #[test]
    fn a_folder_or_a_device_is_not_a_log() {
        let folder = temp_path("folder");
        for path in [folder.parent().unwrap(), Path::new("/dev/null")] {
            let error = CsvLog::open(path).unwrap_err();
            assert!(error.to_string().contains("not a regular file"), "{error}");
        }
    }

    #[test]
    fn a_second_writer_is_refused_while_the_first_holds_the_lock() {
        let path = temp_path("lock");
        let first = CsvLog::open(&path).unwrap();
        let error = CsvLog::open(&path).unwrap_err();
        assert!(error.to_string().contains("another consumer"), "{error}");
        drop(first);
        assert!(CsvLog::open(&path).is_ok());
    }

    #[test]
    fn a_stale_lock_is_taken_over() {
        let path = temp_path("stale");
        let lock = format!("{}.lock", path.display());
        // No process has pid 0x7fff_fff0 on a normal system.
        std::fs::write(&lock, "2147483632\n").unwrap();
        assert!(CsvLog::open(&path).is_ok());
    }

    #[test]
    fn a_foreign_file_is_not_appended_to() {
        let path = temp_path("foreign");
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        let error = CsvLog::open(&path).unwrap_err();
        assert!(error.to_string().contains("unexpected header"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b\n1,2\n");
        std::fs::write(&path, "no newline at all").unwrap();
        assert!(CsvLog::open(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "no newline at all");
    }
}
