//! One module per command: each calls the library and prints what it returns.

pub mod bench;
pub mod broker;
pub mod consume;
pub mod lab;
pub mod offsets;
pub mod process;
pub mod produce;
pub mod topics;

use std::io::Write;

use kafka_lab::display::{Column, StreamedRow, StreamedTable};
use serde::Serialize;

/// Prints `value` as pretty JSON or as its text table.
pub fn print<T: serde::Serialize + std::fmt::Display>(value: &T, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{value}");
    }
    Ok(())
}

/// Rows printed as they arrive, on standard output: a table line each (header
/// first), or a JSON line each. Buffered when stdout is not a terminal, so a long
/// consume or produce does not pay a write per line. A write that fails (a
/// closed pipe) is kept and returned by [`RowPrinter::finish`], so the Kafka work
/// in progress is not cut short.
pub struct RowPrinter {
    /// Standard output itself (not its lock), so that the printer can move to
    /// the thread that prints a producer's rows.
    out: Box<dyn Write + Send>,
    table: Option<StreamedTable>,
    error: Option<std::io::Error>,
}

impl RowPrinter {
    /// A printer of JSON lines, or of table rows in `columns`.
    pub fn new(columns: &[Column], json: bool) -> Self {
        use std::io::IsTerminal;
        let stdout = std::io::stdout();
        let out: Box<dyn Write + Send> = if stdout.is_terminal() {
            Box::new(stdout)
        } else {
            Box::new(std::io::BufWriter::with_capacity(1 << 16, stdout))
        };
        let mut printer = RowPrinter {
            out,
            table: (!json).then(|| StreamedTable::new(columns)),
            error: None,
        };
        if let Some(table) = &printer.table {
            let header = table.header();
            printer.write(|out| writeln!(out, "{header}"));
        }
        printer
    }

    /// Prints one row.
    pub fn print<T: Serialize + StreamedRow>(&mut self, row: &T) {
        let mut table = self.table.take();
        self.write(|out| match &mut table {
            Some(table) => row.with_cells(|cells| table.write_row(out, cells)),
            None => {
                serde_json::to_writer(&mut *out, row)?;
                writeln!(out)
            }
        });
        self.table = table;
    }

    /// Sends what is buffered on its way (after each batch).
    pub fn flush(&mut self) {
        self.write(|out| out.flush());
    }

    /// Flushes, and returns the first write that failed, if any.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.flush();
        self.error.map_or(Ok(()), Err)
    }

    fn write(&mut self, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
        if self.error.is_none() {
            if let Err(error) = write(&mut *self.out) {
                self.error = Some(error);
            }
        }
    }
}
