//! `kafka-lab offsets`: watermarks, committed offsets and lag; or a group's reset.

use kafka_lab::config::KafkaSettings;
use kafka_lab::offsets;

use super::print;
use crate::args::OffsetsArgs;

pub fn run(settings: &KafkaSettings, args: &OffsetsArgs) -> anyhow::Result<()> {
    match (&args.group, args.reset_to) {
        (Some(group), Some(to)) => {
            let reset = offsets::reset_offsets(settings, group, &args.topic, to, args.execute)?;
            print(&reset, args.json)?;
            if !args.execute && !args.json {
                println!("(a dry run: add --execute to commit it)");
            }
        }
        _ => {
            let report = offsets::describe_offsets(settings, &args.topic, args.group.as_deref())?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report.partitions)?);
            } else {
                print!("{report}");
            }
        }
    }
    Ok(())
}
