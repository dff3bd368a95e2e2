//! `kafka-lab broker`: the embedded broker in the foreground.

use kafka_lab::broker::{BrokerArgs, EmbeddedBroker, Engine, MockBroker};
use kafka_lab::shutdown;

pub fn run(args: &BrokerArgs) -> anyhow::Result<()> {
    let mut config = args.config()?;
    shutdown::install();
    match config.engine {
        Engine::Mock => {
            let mock = MockBroker::new(config.listen, &config.topics)?;
            eprintln!(
                "kafka-lab broker: engine mock (librdkafka mock cluster, in memory: messages and \
                 offsets will not survive a restart) listening on {}; topics: {}. Ctrl-C stops it.",
                config.listen,
                describe_topics(&config.topics)
            );
            mock.serve()?;
        }
        engine @ (Engine::Nisshi | Engine::Tansu) => {
            config.die_with_parent = true;
            let mut broker = EmbeddedBroker::start(config)?;
            eprintln!(
                "kafka-lab broker: engine {engine} (pid {}, SQLite in {}) listening on {}; topics: {}. \
                 Ctrl-C stops it.",
                broker.pid(),
                broker.config().data_dir.display(),
                broker.bootstrap(),
                describe_topics(&broker.config().topics)
            );
            broker.wait()?;
        }
    }
    eprintln!("kafka-lab broker: stopped");
    Ok(())
}

fn describe_topics(topics: &[(String, i32)]) -> String {
    if topics.is_empty() {
        return "none yet".to_string();
    }
    topics
        .iter()
        .map(|(name, partitions)| format!("{name} ({partitions} partitions)"))
        .collect::<Vec<_>>()
        .join(", ")
}
