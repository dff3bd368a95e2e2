//! `kafka-lab lab`: the whole lab end to end, with its checks.

use kafka_lab::broker::BrokerHandle;
use kafka_lab::config::KafkaSettings;
use kafka_lab::lab::{self, LabOptions};

use crate::args::LabArgs;

pub fn run(settings: &KafkaSettings, args: &LabArgs) -> anyhow::Result<()> {
    let broker = BrokerHandle::find_or_start(settings)?;
    eprintln!("Broker: {}", broker.describe());
    let options = LabOptions {
        topic: args.topic.clone(),
        count: args.count,
        more: args.more,
        csv_path: args.csv.clone(),
        ..LabOptions::default()
    };
    let report = lab::run_lab(broker.settings(), &options, &mut |step| eprintln!("{step}"))?;
    println!("{}", report.first_deliveries);
    println!("{}", report.more_deliveries);
    println!("{}", report.earliest_offsets);
    println!("{}", report.latest_offsets);
    println!("{report}");
    let failed = report.failed_checks();
    if !failed.is_empty() {
        anyhow::bail!("the lab's checks failed: {}", failed.join("; "));
    }
    Ok(())
}
