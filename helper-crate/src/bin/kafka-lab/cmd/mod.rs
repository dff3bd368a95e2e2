//! One module per command: each calls the library and prints what it returns.

pub mod bench;
pub mod broker;
pub mod consume;
pub mod lab;
pub mod offsets;
pub mod process;
pub mod produce;
pub mod topics;

/// Prints `value` as pretty JSON or as its text table.
pub fn print<T: serde::Serialize + std::fmt::Display>(value: &T, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{value}");
    }
    Ok(())
}

/// Standard output for many lines: buffered when it is not a terminal, so a
/// long consume or produce does not pay a write per line.
pub fn lines_out() -> Box<dyn std::io::Write> {
    use std::io::IsTerminal;
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        Box::new(stdout.lock())
    } else {
        Box::new(std::io::BufWriter::with_capacity(1 << 16, stdout.lock()))
    }
}
