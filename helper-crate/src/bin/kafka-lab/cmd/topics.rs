//! `kafka-lab topics`: list, describe, create, delete.

use kafka_lab::config::KafkaSettings;
use kafka_lab::topics;

use super::print;
use crate::args::TopicsAction;

pub fn run(settings: &KafkaSettings, action: TopicsAction) -> anyhow::Result<()> {
    match action {
        TopicsAction::List { json } => {
            print(&topics::cluster_metadata(settings, None, true)?, json)?
        }
        TopicsAction::Describe { topic, json } => {
            print(&topics::describe_topic(settings, &topic)?, json)?
        }
        TopicsAction::Create {
            topic,
            partitions,
            if_not_exists,
        } => {
            let (info, verb) = if if_not_exists {
                let (info, created) = topics::ensure_topic(settings, &topic, partitions)?;
                (
                    info,
                    if created {
                        "created"
                    } else {
                        "already existed"
                    },
                )
            } else {
                (
                    topics::create_topic(settings, &topic, partitions)?,
                    "created",
                )
            };
            println!(
                "topic '{topic}' {verb} with {} partition(s)",
                info.partitions.len()
            );
        }
        TopicsAction::Delete {
            topic,
            accept_wiping_the_broker,
        } => {
            topics::delete_topic(settings, &topic, accept_wiping_the_broker)?;
            println!("topic '{topic}' deleted");
        }
    }
    Ok(())
}
