//! `strata-bench`: drives any Kafka-compatible broker by address with
//! librdkafka, and measures the machine's own limit for the same work, so
//! that Strata and its peers are compared the same way. See BENCHMARKS.md.

mod idle;
mod kafka;
mod limit;
mod report;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "strata-bench", version)]
struct Cli {
    /// Print the figures as one JSON object instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Produce N records of a given size to a topic with P partitions:
    /// records/s, MB/s and per-record produce latency.
    Produce(kafka::ProduceArgs),
    /// Read a topic (by default from its beginning up to the high watermarks
    /// at start): MB/s and time to the first record.
    Consume(kafka::ConsumeArgs),
    /// Produce at a fixed rate while consuming: end-to-end latency.
    E2e(kafka::E2eArgs),
    /// Produce to one partition while a consumer long-polls each of many
    /// idle partitions: the broker's CPU per produced GiB and produce latency.
    IdleFetch(idle::IdleFetchArgs),
    /// Consume a topic from offset 0 whose history lives in the cold tier:
    /// MB/s and time to the first record.
    Replay(kafka::ConsumeArgs),
    /// Delete topics, to keep a long benchmark's disk use bounded.
    DeleteTopics(kafka::DeleteArgs),
    /// The machine's own ceiling for the same work.
    #[command(subcommand)]
    Limit(Limit),
}

#[derive(Subcommand, Debug)]
enum Limit {
    /// The same bytes over loopback TCP into a sink appending them to files.
    Produce(limit::SinkArgs),
    /// The same bytes read from a file in the page cache, over loopback TCP.
    Consume(limit::SourceArgs),
    /// Raw ranged GETs of segment objects in an object store.
    Get(limit::GetArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let report = match &cli.mode {
        Mode::Produce(a) => kafka::produce(a)?,
        Mode::Consume(a) => kafka::consume(a, "consume")?,
        Mode::E2e(a) => kafka::e2e(a)?,
        Mode::IdleFetch(a) => idle::idle_fetch(a)?,
        Mode::Replay(a) => {
            let mut a = kafka::ConsumeArgs { ..a.clone() };
            a.from = kafka::From::Offset(0);
            kafka::consume(&a, "replay")?
        }
        Mode::DeleteTopics(a) => kafka::delete_topics(a)?,
        Mode::Limit(Limit::Produce(a)) => limit::produce(a)?,
        Mode::Limit(Limit::Consume(a)) => limit::consume(a)?,
        Mode::Limit(Limit::Get(a)) => limit::get(a)?,
    };
    report.print(cli.json);
    Ok(())
}
