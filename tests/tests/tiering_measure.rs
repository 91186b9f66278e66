//! A measurement, not a test: replay throughput from the cold tier against
//! the raw ranged-GET throughput of the same store, and object-store
//! requests per GiB. Run on demand against a release build:
//!
//! ```sh
//! cargo build --release --bin strata
//! STRATA_BIN=target/release/strata STRATA_MEASURE_MIB=512 \
//!   cargo test --release -p strata-tests --test tiering_measure -- --ignored --nocapture
//! ```

use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use strata_tests::{Broker, S3Server, S3_BUCKET};

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

fn local_logs(broker: &Broker) -> usize {
    std::fs::read_dir(broker.data_dir().join("measure-0"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .count()
        })
        .unwrap_or(usize::MAX)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement; run on demand with --ignored"]
async fn replay_throughput_and_requests_per_gib() {
    let mib: usize = std::env::var("STRATA_MEASURE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let s3 = S3Server::start_logging_requests();
    let (url, env) = s3.broker_env();
    let broker = Broker::start_with_env(
        &[
            "--remote",
            &url,
            "--set",
            "log.segment.bytes=16777216",
            "--set",
            "log.local.retention.bytes=1",
            "--set",
            "remote.log.manager.task.interval.ms=200",
            "--set",
            "log.retention.check.interval.ms=200",
        ],
        &env,
    );

    // Produce `mib` MiB of 1 KiB records.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("acks", "1")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .create()
        .unwrap();
    let value = vec![b'x'; 1024];
    let records = mib * 1024;
    for i in 0..records {
        let key = i.to_string();
        loop {
            match producer.send(
                BaseRecord::<str, [u8]>::to("measure")
                    .partition(0)
                    .key(&key)
                    .payload(&value),
            ) {
                Ok(()) => break,
                Err(_) => producer.poll(Duration::from_millis(10)),
            }
        }
    }
    producer.flush(Duration::from_secs(300)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    while local_logs(&broker) > 2 {
        assert!(Instant::now() < deadline, "the hot tier did not shrink");
        std::thread::sleep(Duration::from_millis(200));
    }
    let objects: Vec<_> = s3
        .objects()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    let remote_bytes: u64 = objects
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let after_upload = s3.request_counts();

    // Replay from offset 0 with librdkafka, cold cache.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("group.id", "measure")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "8388608")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("measure", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let start = Instant::now();
    let mut first = None;
    let mut seen = 0usize;
    let mut bytes = 0usize;
    while seen < records {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            first.get_or_insert_with(|| start.elapsed());
            bytes += m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len);
            seen += 1;
        }
    }
    let replay = start.elapsed();
    let after_replay = s3.request_counts();

    // Raw ranged GETs of the same objects, 4 MiB at a time, one stream.
    let mut store = AmazonS3Builder::from_env().with_bucket_name(S3_BUCKET);
    for (k, v) in &env {
        store = store.with_config(k.to_lowercase().parse().unwrap(), v);
    }
    let store = store.build().unwrap();
    let root = objects[0]
        .ancestors()
        .find(|p| p.ends_with(S3_BUCKET))
        .unwrap()
        .to_path_buf();
    let start = Instant::now();
    for p in &objects {
        let key = ObjectPath::from(p.strip_prefix(&root).unwrap().to_string_lossy().as_ref());
        let size = std::fs::metadata(p).unwrap().len();
        let mut at = 0;
        while at < size {
            let end = (at + 4 * 1024 * 1024).min(size);
            store.get_range(&key, at..end).await.unwrap();
            at = end;
        }
    }
    let raw = start.elapsed();

    let count =
        |m: &std::collections::BTreeMap<String, usize>, k: &str| *m.get(k).unwrap_or(&0) as f64;
    let gib = remote_bytes as f64 / GIB;
    println!(
        "remote data: {:.1} MiB in {} segments",
        remote_bytes as f64 / MIB,
        objects.len()
    );
    println!(
        "upload: {:.0} PUT per GiB ({} PUT, {} POST)",
        count(&after_upload, "PUT") / gib,
        count(&after_upload, "PUT"),
        count(&after_upload, "POST")
    );
    println!(
        "replay: {:.1} MiB/s of segment bytes ({:.1} MiB/s of keys+values), first record after {:?}, {:.0} GET per GiB",
        remote_bytes as f64 / MIB / replay.as_secs_f64(),
        bytes as f64 / MIB / replay.as_secs_f64(),
        first.unwrap(),
        (count(&after_replay, "GET") - count(&after_upload, "GET")) / gib
    );
    println!(
        "raw ranged GET: {:.1} MiB/s",
        remote_bytes as f64 / MIB / raw.as_secs_f64()
    );
}
