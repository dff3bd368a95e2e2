//! `kafka-lab produce`: readings out, delivery reports printed as they arrive.

use kafka_lab::config::KafkaSettings;
use kafka_lab::produce::{self, DELIVERY_COLUMNS};
use kafka_lab::shutdown;
use kafka_lab::weather::WeatherGenerator;

use super::RowPrinter;
use crate::args::ProduceArgs;

pub fn run(settings: &KafkaSettings, args: &ProduceArgs) -> anyhow::Result<()> {
    // Ctrl-C or SIGTERM: stop sending, flush what is in flight, report it all.
    shutdown::install();
    // Bad input fails before the header is printed.
    produce::check_rate(args.rate)?;
    let mut generator = WeatherGenerator::for_cities(&args.cities, args.seed)?;
    // Quiet: no header and no rows; failures and the summary still go to stderr.
    let mut rows = (!args.quiet).then(|| RowPrinter::new(&DELIVERY_COLUMNS, args.json));
    let result = produce::stream_weather(
        settings,
        &args.topic,
        &mut generator,
        args.count,
        args.rate,
        &mut |_, report| {
            // A failed report is listed with the error at the end.
            if let (Ok(delivery), Some(rows)) = (report, &mut rows) {
                rows.print(delivery);
                // Paced readings come seconds apart: show each as it lands.
                if args.rate.is_some() {
                    rows.flush();
                }
            }
        },
    );
    rows.map(RowPrinter::finish).transpose()?;
    let delivered = result?;
    eprintln!("{delivered} reading(s) delivered to '{}'", args.topic);
    Ok(())
}
