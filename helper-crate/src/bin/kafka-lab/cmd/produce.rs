//! `kafka-lab produce`: readings out, delivery reports printed as they arrive.

use std::io::Write;

use kafka_lab::config::KafkaSettings;
use kafka_lab::display::StreamedTable;
use kafka_lab::produce::{self, DELIVERY_COLUMNS};
use kafka_lab::weather::WeatherGenerator;

use super::lines_out;
use crate::args::ProduceArgs;

pub fn run(settings: &KafkaSettings, args: &ProduceArgs) -> anyhow::Result<()> {
    let mut generator = WeatherGenerator::for_cities(&args.cities, args.seed)?;
    let table = StreamedTable::new(&DELIVERY_COLUMNS);
    let mut out = lines_out();
    if !args.json {
        writeln!(out, "{}", table.header())?;
    }
    let mut write_error = None;
    let result = produce::stream_weather(
        settings,
        &args.topic,
        &mut generator,
        args.count,
        args.rate,
        &mut |_, report| {
            // A failed report is listed with the error at the end.
            let Ok(delivery) = report else { return };
            let written = if args.json {
                serde_json::to_writer(&mut out, delivery)
                    .map_err(std::io::Error::from)
                    .and_then(|()| writeln!(out))
            } else {
                delivery.with_cells(|cells| table.write_row(&mut out, cells))
            };
            if let Err(error) = written {
                write_error.get_or_insert(error);
            }
        },
    );
    out.flush()?;
    if let Some(error) = write_error {
        return Err(error.into());
    }
    let delivered = result?;
    eprintln!("{delivered} reading(s) delivered to '{}'", args.topic);
    Ok(())
}
