//! `kafka-lab produce`: readings out, delivery reports printed as they arrive.

use kafka_lab::config::KafkaSettings;
use kafka_lab::produce::{self, ReportsServed, DELIVERY_COLUMNS};
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
    let mut offsets_not_reported = 0;
    let result = produce::stream_weather(
        settings,
        &args.topic,
        &mut generator,
        args.count,
        args.rate,
        // A row per report is as much work as a send: printed on a thread of
        // their own, they keep up; with none printed, they cost least served
        // between sends.
        if rows.is_some() {
            ReportsServed::OnTheirOwnThread
        } else {
            ReportsServed::BetweenSends
        },
        &mut |_, report| {
            // A failed report is listed with the error at the end.
            let Ok(delivery) = report else { return };
            if delivery.reported_offset().is_none() {
                offsets_not_reported += 1;
            }
            if let Some(rows) = &mut rows {
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
    if offsets_not_reported > 0 {
        let shown = match (args.quiet, args.json) {
            (true, _) => "",
            (false, true) => " (offset -1 in the JSON)",
            (false, false) => " (offset ?)",
        };
        let acks = settings.properties().get("acks").map(|v| v.trim());
        let why = if matches!(acks, Some("0")) {
            "with acks=0 the broker does not answer"
        } else {
            "each was a retry after a lost answer, which the broker recognised as a \
             duplicate of what it had written, and refused"
        };
        eprintln!("{offsets_not_reported} of them without an offset{shown}: {why}");
    }
    Ok(())
}
