//! Showing results: one table type, rendered as text for the terminal and as
//! HTML for notebooks.
//!
//! Every result a lab step returns (deliveries, readings, watermarks, the
//! earliest-vs-latest comparison) converts itself into a [`Table`] through
//! [`AsTable`]. The CLI prints the table's text form; in a notebook, the evcxr
//! kernel calls a value's `evcxr_display` method when it is a cell's last
//! expression, and that prints the HTML form between evcxr's content markers.
//! One rendering helper, two outputs: the terminal and the notebook always agree.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

/// A titled table of strings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// A heading shown above the table, if any.
    pub title: Option<String>,
    /// Column names.
    pub headers: Vec<String>,
    /// Cells, row by row; each row has one cell per header.
    pub rows: Vec<Vec<String>>,
    /// A line shown under the table (a summary, or why it is empty).
    pub footer: Option<String>,
}

/// Types that can show themselves as a table.
pub trait AsTable {
    /// The table form of this value.
    fn as_table(&self) -> Table;
}

impl Table {
    /// An empty table with these column names.
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            ..Table::default()
        }
    }

    /// Sets the title.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Adds a row.
    pub fn push_row(&mut self, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .map(|cell| match terminal_safe(&cell) {
                Cow::Borrowed(_) => cell,
                Cow::Owned(escaped) => escaped,
            })
            .collect();
        self.rows.push(cells);
    }

    /// Column-aligned plain text, for terminals.
    pub fn to_text(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|col| {
                self.rows
                    .iter()
                    .filter_map(|row| row.get(col))
                    .chain(std::iter::once(&self.headers[col]))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| -> String {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            padded.join("  ").trim_end().to_string()
        };
        let mut out = String::new();
        if let Some(title) = &self.title {
            let _ = writeln!(out, "{title}");
        }
        let _ = writeln!(out, "{}", line(&self.headers));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let _ = writeln!(out, "{}", rule.join("  "));
        for row in &self.rows {
            let _ = writeln!(out, "{}", line(row));
        }
        if let Some(footer) = &self.footer {
            let _ = writeln!(out, "{footer}");
        }
        out
    }

    /// An HTML table, for notebooks and the exported lab report.
    pub fn to_html(&self) -> String {
        let mut out = String::from("<div class=\"kafka-lab\">");
        if let Some(title) = &self.title {
            let _ = write!(out, "<h4>{}</h4>", escape_html(title));
        }
        out.push_str("<table><thead><tr>");
        for header in &self.headers {
            let _ = write!(out, "<th>{}</th>", escape_html(header));
        }
        out.push_str("</tr></thead><tbody>");
        for row in &self.rows {
            out.push_str("<tr>");
            for cell in row {
                let _ = write!(out, "<td>{}</td>", escape_html(cell));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
        if let Some(footer) = &self.footer {
            let _ = write!(out, "<p>{}</p>", escape_html(footer));
        }
        out.push_str("</div>");
        out
    }

    /// Prints the table for the evcxr Jupyter kernel: HTML, with the text form as
    /// the plain-text alternative.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT text/plain\n{}\nEVCXR_END_CONTENT",
            self.to_text()
        );
        println!(
            "EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT",
            self.to_html()
        );
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl AsTable for Table {
    fn as_table(&self) -> Table {
        self.clone()
    }
}

/// Escapes text for HTML element content.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Gives a type that implements [`AsTable`] a text `Display` (for the CLI) and an
/// `evcxr_display` method (for notebooks), both from its table.
#[macro_export]
macro_rules! shown_as_table {
    ($($ty:ty),+ $(,)?) => {$(
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&$crate::display::AsTable::as_table(self).to_text())
            }
        }
        impl $ty {
            /// Shows this value as an HTML table in a Jupyter notebook (evcxr kernel).
            pub fn evcxr_display(&self) {
                $crate::display::AsTable::as_table(self).evcxr_display();
            }
        }
    )+};
}

/// One column of a [`StreamedTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// The header.
    pub name: &'static str,
    /// Characters it takes (longer cells overflow).
    pub width: usize,
    /// Numbers align right, text left.
    pub right: bool,
}

/// A value shown as one row of a [`StreamedTable`] (a delivery report, a reading
/// read).
pub trait StreamedRow {
    /// Calls `f` with the row's cells, in the table's column order.
    fn with_cells<R>(&self, f: impl FnOnce(&[Cell<'_>]) -> R) -> R;
}

/// One cell of a [`StreamedRow`]. Typed, so that a long run's rows are written
/// without the formatting machinery: measured, rows made through `Display`
/// took 150 ns each, as long as sending the message they report. Numbers and
/// times are written here, in ASCII, so only text is checked for what a
/// terminal must not be sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    /// Text. In a [`StreamedTable`] its control characters are shown escaped
    /// ([`terminal_safe`]).
    Text(&'a str),
    /// A whole number.
    Number(i64),
    /// A number shown with one decimal ([`OneDecimal`]).
    OneDecimal(f64),
    /// A time, shown in RFC 3339 UTC with milliseconds ([`Rfc3339Millis`]).
    Time(DateTime<Utc>),
}

impl Cell<'_> {
    /// The text a [`StreamedTable`] shows, as the bytes it writes (borrowed,
    /// or written into `buffer`), and how many characters wide it is.
    /// Numbers and times are ASCII: their bytes are not checked as text, once
    /// per cell of every row (that check was a tenth of the rows thread of
    /// `produce`).
    fn shown<'b>(&'b self, buffer: &'b mut [u8; 40]) -> (Cow<'b, [u8]>, usize) {
        match *self {
            // The usual case: as it is, a byte per character.
            Cell::Text(text) if is_printable_ascii(text) => {
                (Cow::Borrowed(text.as_bytes()), text.len())
            }
            Cell::Text(text) => {
                let safe = terminal_safe(text);
                let width = safe.chars().count();
                let bytes = match safe {
                    Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
                    Cow::Owned(text) => Cow::Owned(text.into_bytes()),
                };
                (bytes, width)
            }
            Cell::Number(number) => {
                let digits = integer_digits(number, buffer);
                (Cow::Borrowed(digits), digits.len())
            }
            Cell::OneDecimal(value) => {
                let digits = OneDecimal(value).digits(buffer);
                let width = digits.len();
                (digits, width)
            }
            Cell::Time(time) => {
                let text = Rfc3339Millis::of(&time);
                let text = text.as_bytes();
                buffer[..text.len()].copy_from_slice(text);
                (Cow::Borrowed(&buffer[..text.len()]), text.len())
            }
        }
    }
}

/// The cell as it is, padded like any value (a [`Table`] escapes it later).
impl std::fmt::Display for Cell<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut buffer = [0u8; 40];
        match *self {
            Cell::Text(text) => f.pad(text),
            Cell::Number(number) => std::fmt::Display::fmt(&number, f),
            Cell::OneDecimal(value) => f.pad(&OneDecimal(value).text(&mut buffer)),
            Cell::Time(time) => std::fmt::Display::fmt(&Rfc3339Millis::of(&time), f),
        }
    }
}

/// `number` in decimal (ASCII), written from the right end of `buffer`.
fn integer_digits(number: i64, buffer: &mut [u8; 40]) -> &[u8] {
    let end = buffer.len();
    let mut at = put_digits(number.unsigned_abs(), buffer, end);
    if number < 0 {
        at -= 1;
        buffer[at] = b'-';
    }
    &buffer[at..]
}

/// Writes the decimal digits of `value` into `buffer`, ending just before
/// `end`; returns where they start.
fn put_digits(mut value: u64, buffer: &mut [u8], end: usize) -> usize {
    let mut at = end;
    loop {
        at -= 1;
        buffer[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return at;
        }
    }
}

/// Rows printed as they arrive (a long consume or produce): the widths are
/// fixed up front, because they cannot adapt to rows not yet seen.
#[derive(Clone, Debug)]
pub struct StreamedTable {
    columns: Vec<Column>,
    /// The row being put together, written out in one piece.
    line: Vec<u8>,
}

impl StreamedTable {
    /// A table of these columns.
    pub fn new(columns: &[Column]) -> Self {
        StreamedTable {
            columns: columns.to_vec(),
            line: Vec::with_capacity(128),
        }
    }

    /// The header line.
    pub fn header(&self) -> String {
        let names: Vec<String> = self.columns.iter().map(|c| c.name.to_string()).collect();
        self.row(&names)
    }

    /// Writes one row to `out` (a buffered writer), each cell padded in place:
    /// numbers are written into a buffer on the stack, text is copied as it is
    /// (escaped if it must be), the padding copied from a run of spaces, and the
    /// row written in one piece (a long run prints hundreds of thousands of rows).
    pub fn write_row(
        &mut self,
        out: &mut dyn std::io::Write,
        cells: &[Cell<'_>],
    ) -> std::io::Result<()> {
        const SPACES: &[u8] = b"                                                                ";
        let last = self.columns.len().saturating_sub(1);
        self.line.clear();
        // Where numbers are written, one cell at a time.
        let mut buffer = [0u8; 40];
        for (i, (column, cell)) in self.columns.iter().zip(cells).enumerate() {
            if i > 0 {
                self.line.extend_from_slice(b"  ");
            }
            let (text, width) = cell.shown(&mut buffer);
            let padding = &SPACES[..column.width.saturating_sub(width).min(SPACES.len())];
            if column.right {
                self.line.extend_from_slice(padding);
                self.line.extend_from_slice(&text);
            } else {
                self.line.extend_from_slice(&text);
                if i < last {
                    self.line.extend_from_slice(padding);
                }
            }
        }
        self.line.push(b'\n');
        out.write_all(&self.line)
    }

    /// One row; missing cells are blank.
    pub fn row(&self, cells: &[String]) -> String {
        let mut line = String::new();
        for (i, column) in self.columns.iter().enumerate() {
            let cell = terminal_safe(cells.get(i).map(String::as_str).unwrap_or_default());
            if i > 0 {
                line.push_str("  ");
            }
            let _ = if column.right {
                write!(line, "{cell:>width$}", width = column.width)
            } else {
                write!(line, "{cell:<width$}", width = column.width)
            };
        }
        line.trim_end().to_string()
    }
}

/// `text` with its control characters escaped (`\u{1b}`, `\n`): a value from a
/// topic is anyone's bytes, and printed raw an escape sequence could clear the
/// terminal or retitle its window. Text without any is returned as it is.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    if is_printable_ascii(text) || !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `text` is printable ASCII only, the usual case. Every byte is
/// tested, with no stop at the first that fails: a loop without an early exit
/// is one the compiler turns into vector instructions, many bytes a step.
/// Byte by byte, this check was a quarter of the time spent writing a row of
/// `produce`'s table (perf, docs/performance.md, session 16).
fn is_printable_ascii(text: &str) -> bool {
    text.bytes()
        .fold(true, |printable, b| printable & (0x20..0x7f).contains(&b))
}

/// A number shown with one decimal (temperatures), padded like any cell,
/// without allocating.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OneDecimal(pub f64);

impl std::fmt::Display for OneDecimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.text(&mut [0u8; 40]))
    }
}

impl OneDecimal {
    /// The text, written into `buffer`; as a `String` only for values whose
    /// text does not fit (over 38 digits: never a temperature).
    pub fn text(self, buffer: &mut [u8; 40]) -> Cow<'_, str> {
        // ASCII digits, a point, a sign, `inf` or `NaN`: never invalid.
        match self.digits(buffer) {
            Cow::Borrowed(digits) => Cow::Borrowed(std::str::from_utf8(digits).unwrap_or_default()),
            Cow::Owned(digits) => Cow::Owned(String::from_utf8(digits).unwrap_or_default()),
        }
    }

    /// [`OneDecimal::text`] as the bytes a writer copies, not checked as text.
    pub fn digits(self, buffer: &mut [u8; 40]) -> Cow<'_, [u8]> {
        let Some(tenths) = self.tenths() else {
            use std::io::Write as _;
            let mut cursor = std::io::Cursor::new(&mut buffer[..]);
            if write!(cursor, "{:.1}", self.0).is_err() {
                return Cow::Owned(format!("{:.1}", self.0).into_bytes());
            }
            let length = cursor.position() as usize;
            return Cow::Borrowed(&buffer[..length]);
        };
        Cow::Borrowed(tenths_text(tenths, self.0.is_sign_negative(), buffer))
    }

    /// The text's bytes, when one decimal is all the value has (`t / 10.0`
    /// for a whole number of tenths `t`). It is then also the shortest text
    /// that reads back as the value, which is what serde_json writes for it:
    /// integer values as `20.0`, never an exponent below 1e14. A generated
    /// reading's temperature always qualifies; this is cheaper than serde_json's
    /// general float formatting, which runs once per reading sent, and hands
    /// over bytes, as a JSON writer wants them (checking them as text was a
    /// tenth of the time a burst's readings thread spends).
    pub fn exact_bytes(self, buffer: &mut [u8; 40]) -> Option<&[u8]> {
        let tenths = self.tenths()?;
        if tenths as f64 / 10.0 != self.0 {
            return None;
        }
        Some(tenths_text(tenths, self.0.is_sign_negative(), buffer))
    }

    /// The value in whole tenths, when integer arithmetic rounds it exactly as
    /// `{:.1}` does (which rounds the exact binary value, ties to even): for
    /// values short of 1e14 whose tenths are not within a millionth of a tie.
    /// `x * 10.0` is itself rounded (by up to 0.06 near 1e15 tenths), but
    /// rounding never crosses a representable value, and every tie (k + 0.5)
    /// is exactly representable at these sizes: the product lies on the same
    /// side of each tie as the exact value, or on it, and a product on a tie
    /// (or within a millionth of one) takes the exact formatter. The lab's
    /// temperatures already have one decimal, so they all qualify.
    ///
    /// Rounded by hand, half away from zero as `f64::round` does: that one is
    /// a call into the C library on x86-64, a fifth of this function's time.
    fn tenths(self) -> Option<i64> {
        let tenths = self.0 * 10.0;
        // Too large, infinite or NaN: the exact formatter.
        if tenths.is_nan() || tenths.abs() >= 1e15 {
            return None;
        }
        // Exact: both parts of a value under 2^53 are representable.
        let whole = tenths as i64;
        let fraction = tenths - whole as f64;
        let near_tie = (fraction.abs() - 0.5).abs() < 1e-6;
        let rounded = whole + i64::from(fraction >= 0.5) - i64::from(fraction <= -0.5);
        (!near_tie).then_some(rounded)
    }
}

/// The text of `tenths` tenths (`-` first when `negative`), written into the
/// end of `buffer` from the right: the tenth, the point, then the whole part.
fn tenths_text(tenths: i64, negative: bool, buffer: &mut [u8; 40]) -> &[u8] {
    let end = buffer.len();
    let tenths = tenths.unsigned_abs();
    buffer[end - 1] = b'0' + (tenths % 10) as u8;
    buffer[end - 2] = b'.';
    let mut at = put_digits(tenths / 10, buffer, end - 2);
    if negative {
        at -= 1;
        buffer[at] = b'-';
    }
    &buffer[at..]
}

/// A time as RFC 3339 UTC with milliseconds, `2026-11-25T03:06:19.123Z`, written
/// into a fixed buffer: every reading sent, saved and printed carries one, so it
/// is made without allocating (chrono's general formatter costs more than the
/// rest of a send).
///
/// Room for 32 bytes: four-digit years take 24, chrono's widest (`+262143-…`) 27.
#[derive(Clone, Copy)]
pub struct Rfc3339Millis {
    bytes: [u8; 32],
    len: u8,
}

impl Rfc3339Millis {
    /// The text of `time`.
    pub fn of(time: &DateTime<Utc>) -> Self {
        use chrono::{Datelike, Timelike};
        // The fields of the UTC time itself: asked of the `DateTime`, each field
        // would first add the (zero) offset again.
        let time = time.naive_utc();
        let year = time.year();
        if !(0..=9999).contains(&year) {
            // Outside four-digit years, chrono's own format (never met in the lab).
            let text = time
                .and_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let mut bytes = [0; 32];
            let len = text.len().min(32);
            bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
            return Rfc3339Millis {
                bytes,
                len: len as u8,
            };
        }
        let mut b = *b"0000-00-00T00:00:00.000Z\0\0\0\0\0\0\0\0";
        let mut put = |at: usize, width: usize, mut value: u32| {
            for i in (0..width).rev() {
                b[at + i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year as u32);
        put(5, 2, time.month());
        put(8, 2, time.day());
        put(11, 2, time.hour());
        put(14, 2, time.minute());
        put(17, 2, time.second());
        put(20, 3, (time.nanosecond() / 1_000_000).min(999));
        Rfc3339Millis { bytes: b, len: 24 }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The text's bytes, as a JSON or CSV writer copies them (no check that
    /// they are text: this runs once per reading sent).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Display for Rfc3339Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Shows "-" for a missing value, the way the Kafka tools do.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped_not_sent_to_the_terminal() {
        let hostile = "Tor\u{1b}[2Jonto\n";
        assert_eq!(terminal_safe(hostile), "Tor\\u{1b}[2Jonto\\n");
        assert!(matches!(terminal_safe("Toronto"), Cow::Borrowed("Toronto")));
        let columns = [Column {
            name: "city",
            width: 8,
            right: false,
        }];
        let mut table = StreamedTable::new(&columns);
        let mut out = Vec::new();
        table.write_row(&mut out, &[Cell::Text(hostile)]).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert!(!line.contains('\u{1b}'), "{line:?}");
        assert!(line.starts_with("Tor\\u{1b}[2Jonto\\n"), "{line:?}");
        let mut t = Table::new(&["city"]);
        t.push_row(vec![hostile.to_string()]);
        assert!(!t.to_text().contains('\u{1b}'));
    }

    #[test]
    fn a_control_character_is_caught_wherever_it_is_in_a_long_text() {
        // Long enough for the check's vector steps and its byte-by-byte tail.
        let plain = "Toronto-Guangzhou-Fuzhou-".repeat(3);
        assert!(is_printable_ascii(&plain));
        for at in 0..plain.len() {
            let with = |c: char| {
                let mut text = plain.clone();
                text.replace_range(at..at + 1, &c.to_string());
                text
            };
            // The ends of the printable range, and just outside them.
            for good in [' ', '~'] {
                assert!(is_printable_ascii(&with(good)), "{good:?} at {at}");
            }
            for bad in ['\u{1f}', '\u{7f}', '\u{1b}', '\n', 'é'] {
                assert!(!is_printable_ascii(&with(bad)), "{bad:?} at {at}");
            }
        }
    }

    #[test]
    fn a_time_cell_is_shown_in_rfc3339_with_millis() {
        let time = DateTime::from_timestamp_millis(1_764_136_000_123).unwrap();
        let columns = [
            Column {
                name: "timestamp",
                width: 26,
                right: false,
            },
            Column {
                name: "n",
                width: 1,
                right: true,
            },
        ];
        let mut out = Vec::new();
        StreamedTable::new(&columns)
            .write_row(&mut out, &[Cell::Time(time), Cell::Number(7)])
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2025-11-26T05:46:40.123Z    7\n"
        );
        assert_eq!(Cell::Time(time).to_string(), "2025-11-26T05:46:40.123Z");
    }

    fn sample() -> Table {
        let mut table = Table::new(&["city", "temperature"]).with_title("Readings");
        table.push_row(vec!["Toronto".into(), "3.5".into()]);
        table.push_row(vec!["<Fuzhou>".into(), "17.0".into()]);
        table
    }

    #[test]
    fn text_is_aligned_under_headers() {
        let text = sample().to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Readings");
        assert_eq!(lines[1], "city      temperature");
        assert_eq!(lines[2], "--------  -----------");
        assert_eq!(lines[3], "Toronto   3.5");
        assert_eq!(lines[4], "<Fuzhou>  17.0");
    }

    #[test]
    fn streamed_rows_keep_their_columns() {
        let mut table = StreamedTable::new(&[
            Column {
                name: "city",
                width: 8,
                right: false,
            },
            Column {
                name: "offset",
                width: 6,
                right: true,
            },
        ]);
        assert_eq!(table.header(), "city      offset");
        assert_eq!(
            table.row(&["Toronto".into(), "12".into()]),
            "Toronto       12"
        );
        assert_eq!(table.row(&["Fuzhou".into()]), "Fuzhou");
        let mut out = Vec::new();
        table
            .write_row(&mut out, &[Cell::Text("Toronto"), Cell::OneDecimal(12.25)])
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "Toronto     12.2\n");
        assert_eq!(format!("[{:>6}]", OneDecimal(-3.0)), "[  -3.0]");
    }

    #[test]
    fn one_decimal_matches_the_exact_formatter() {
        // Every tenth the lab's temperatures can take, ties of the binary
        // values (12.25 is exact in binary and rounds to even: 12.2), and
        // values that are not tenths at all, with both signs.
        let mut values: Vec<f64> = (-2000..=2000).map(|k| k as f64 / 10.0).collect();
        values.extend((-2000..=2000).map(|k| k as f64 / 100.0));
        values.extend((-2000..=2000).map(|k| k as f64 * 0.0137 + 0.05));
        values.extend([
            0.0,
            -0.0,
            -0.04,
            0.05,
            0.15,
            0.25,
            0.35,
            1e13,
            -1e13,
            99_999_999_999_999.97,
            -99_999_999_999_999.97,
            99_999_999_999_999.94,
            1e14 - 0.05,
            3e14,
            1e300,
            -1e-300,
            2.5e-7,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ]);
        for value in values {
            assert_eq!(
                OneDecimal(value).to_string(),
                format!("{value:.1}"),
                "{value:e}"
            );
        }
    }

    #[test]
    fn html_escapes_cells() {
        let html = sample().to_html();
        assert!(html.contains("<th>city</th>"));
        assert!(html.contains("<td>&lt;Fuzhou&gt;</td>"));
        assert!(!html.contains("<Fuzhou>"));
    }
}

#[cfg(test)]
mod rfc3339_tests {
    use super::*;
    use chrono::{DateTime, SecondsFormat, Utc};

    #[test]
    fn timestamps_are_written_like_chronos_rfc3339_with_millis() {
        for ms in [
            0i64,
            1_764_136_000_123,
            1_764_136_059_999,
            253_402_300_799_999,
            // Years 10000 and -1, and chrono's extremes: beyond four digits.
            253_402_300_800_000,
            -62_198_755_200_000,
            DateTime::<Utc>::MAX_UTC.timestamp_millis(),
            DateTime::<Utc>::MIN_UTC.timestamp_millis(),
        ] {
            let time = DateTime::from_timestamp_millis(ms).unwrap();
            assert_eq!(
                Rfc3339Millis::of(&time).as_str(),
                time.to_rfc3339_opts(SecondsFormat::Millis, true)
            );
        }
        let time = DateTime::from_timestamp_millis(1_764_136_000_123).unwrap();
        assert_eq!(
            format!("[{:<26}]", Rfc3339Millis::of(&time)),
            "[2025-11-26T05:46:40.123Z  ]"
        );
    }
}
