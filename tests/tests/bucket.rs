//! The bucket as the source of truth, against the S3 test server: a broker
//! whose whole data directory is lost is restored from the bucket with
//! `--restore` (topics, ids, configs, every uploaded record at its offset,
//! group offsets); the loss window of the hot tail; a read replica serving
//! the primary's bucket; and `strata bucket check`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use object_store::{ObjectStore, ObjectStoreExt};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use rskafka::client::partition::UnknownTopicHandling;
use rskafka::client::ClientBuilder;
use strata_tests::raw::{topic_name, Conn};
use strata_tests::{run_strata, Broker, S3Server, S3_BUCKET};

/// Record timestamps start an hour before the test, inside every
/// retention the tests use.
fn base_ts() -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            - 3_600_000
    })
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

/// Small segments, sealed after a second even without appends, and quick
/// upload, retention and lease passes.
fn bucket_args(url: &str) -> Vec<String> {
    [
        "--remote",
        url,
        "--set",
        "log.segment.bytes=65536",
        "--set",
        "log.roll.ms=1000",
        "--set",
        "remote.log.manager.task.interval.ms=200",
        "--set",
        "log.retention.check.interval.ms=200",
        "--set",
        "log.flush.scheduler.interval.ms=200",
        "--set",
        "remote.log.owner.lease.ms=2000",
        "--set",
        "remote.log.replica.refresh.ms=200",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Records by (partition, offset): (key, value, timestamp).
type Records = BTreeMap<(i32, i64), (Vec<u8>, Vec<u8>, i64)>;

/// (key, value, timestamp) of record `i` of partition `p`.
fn record(p: i32, i: i64) -> (Vec<u8>, Vec<u8>, i64) {
    (
        format!("k{p}-{i}").into_bytes(),
        format!("v{p}-{i}-{}", "x".repeat((i % 90) as usize)).into_bytes(),
        base_ts() + i,
    )
}

async fn produce(addr: &str, topic: &str, partitions: i32, range: std::ops::Range<i64>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.size", "16384")
        .create()
        .unwrap();
    let mut pending = Vec::new();
    for p in 0..partitions {
        for i in range.clone() {
            let (k, v, ts) = record(p, i);
            let fr = FutureRecord::to(topic)
                .partition(p)
                .key(&k)
                .payload(&v)
                .timestamp(ts);
            pending.push((p, i, producer.send_result(fr).map_err(|(e, _)| e).unwrap()));
        }
    }
    for (p, i, d) in pending {
        let d = d
            .await
            .unwrap()
            .unwrap_or_else(|(e, _)| panic!("{topic}-{p} record {i}: {e}"));
        assert_eq!(
            (d.partition, d.offset),
            (p, i),
            "offsets follow the records"
        );
    }
}

/// Records of `topic` from offset 0 with librdkafka, until `n` per
/// partition arrived: (partition, offset) → (key, value, timestamp).
fn replay_rdkafka(addr: &str, topic: &str, partitions: i32, n: i64) -> Records {
    let consumer = strata_tests::consumer_from_start(addr, topic, partitions);
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while out.len() < (n * partitions as i64) as usize {
        assert!(
            Instant::now() < deadline,
            "replay of {topic} stalled at {}",
            out.len()
        );
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.expect("consume");
        out.insert(
            (m.partition(), m.offset()),
            (
                m.key().unwrap_or_default().to_vec(),
                m.payload().unwrap_or_default().to_vec(),
                m.timestamp().to_millis().unwrap(),
            ),
        );
    }
    out
}

fn expected(partitions: i32, range: std::ops::Range<i64>) -> Records {
    let mut out = BTreeMap::new();
    for p in 0..partitions {
        for i in range.clone() {
            out.insert((p, i), record(p, i));
        }
    }
    out
}

async fn replay_rskafka(
    addr: &str,
    topic: &str,
    partition: i32,
    n: i64,
) -> Vec<(i64, Vec<u8>, Vec<u8>)> {
    let client = ClientBuilder::new(vec![addr.to_string()])
        .build()
        .await
        .unwrap();
    let pc = client
        .partition_client(topic, partition, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let mut out = Vec::new();
    while (out.len() as i64) < n {
        let next = out.last().map_or(0, |(o, _, _)| o + 1);
        let (records, _) = pc.fetch_records(next, 1..4_000_000, 1_000).await.unwrap();
        for r in records {
            out.push((
                r.offset,
                r.record.key.unwrap_or_default(),
                r.record.value.unwrap_or_default(),
            ));
        }
    }
    out
}

/// Waits until every record of the partitions is in the cold tier.
fn wait_uploaded(c: &mut Conn, topic: &str, partitions: i32) {
    for p in 0..partitions {
        wait_until(
            &format!("{topic}-{p} is uploaded"),
            Duration::from_secs(60),
            || {
                let end = c.list_offset(topic, p, -1).offset;
                c.list_offset(topic, p, -5).offset == end - 1
            },
        );
    }
}

fn topic_ids(
    c: &mut Conn,
) -> BTreeMap<String, (kafka_protocol::messages::TopicName, uuid::Uuid, usize)> {
    let r = c.request(12, &MetadataRequest::default().with_topics(None));
    r.topics
        .into_iter()
        .map(|t| {
            let name = t.name.clone().unwrap();
            (
                name.0.to_string(),
                (
                    name,
                    uuid::Uuid::from_bytes(*t.topic_id.as_bytes()),
                    t.partitions.len(),
                ),
            )
        })
        .collect()
}

fn topic_config(c: &mut Conn, topic: &str, key: &str) -> Option<String> {
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(topic))]);
    let r = c.request(4, &req);
    r.results[0]
        .configs
        .iter()
        .find(|c| &*c.name == key)
        .and_then(|c| c.value.as_ref().map(|v| v.to_string()))
}

fn commit(c: &mut Conn, group: &str, topic: &str, partition: i32, offset: i64) {
    assert_eq!(c.commit_offset(group, topic, partition, offset), 0);
}

fn committed(c: &mut Conn, group: &str, topic: &str, partition: i32) -> i64 {
    c.committed_offset(group, topic, partition)
}

/// The broker's start-up arguments with its data directory, for starts
/// that are expected to be refused.
fn start_args<'a>(data_dir: &'a str, args: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--data-dir",
        data_dir,
    ];
    all.extend(refs(args));
    all.extend(extra);
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_data_directory_is_restored_from_the_bucket() {
    let s3 = S3Server::start();
    let (url, env) = s3.broker_env();
    let mut args = bucket_args(&url);
    // An authorizer, so that the broker's ACLs go to the catalogue too; the
    // test's anonymous client is a super user.
    for kv in [
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:ANONYMOUS",
    ] {
        args.extend(["--set".to_string(), kv.to_string()]);
    }
    let mut broker = Broker::start_with_env(&refs(&args), &env);
    let mut c = Conn::connect(&broker.addr());
    let acl = kafka_protocol::messages::create_acls_request::AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(s("orders"))
        .with_resource_pattern_type(3)
        .with_principal(s("User:mallory"))
        .with_host(s("*"))
        .with_operation(3)
        .with_permission_type(2);
    let created = c.request(
        3,
        &kafka_protocol::messages::CreateAclsRequest::default().with_creations(vec![acl]),
    );
    assert_eq!(created.results[0].error_code, 0);
    assert_eq!(
        c.create_topic("orders", 2, &[("max.message.bytes", "500000")])
            .error_code,
        0
    );
    assert_eq!(
        c.create_topic("events", 1, &[("retention.ms", "8640000000")])
            .error_code,
        0
    );
    let n = 3_000;
    produce(&broker.addr(), "orders", 2, 0..n).await;
    produce(&broker.addr(), "events", 1, 0..n).await;
    commit(&mut c, "replayers", "orders", 0, 1234);
    commit(&mut c, "replayers", "orders", 1, 50);
    commit(&mut c, "replayers", "events", 0, 2999);
    wait_uploaded(&mut c, "orders", 2);
    wait_uploaded(&mut c, "events", 1);
    wait_until(
        "the group offsets are snapshotted",
        Duration::from_secs(30),
        || {
            s3.objects()
                .iter()
                .filter(|p| p.ends_with("_strata/group-offsets.json"))
                .any(|p| {
                    std::fs::read_to_string(p)
                        .unwrap_or_default()
                        .contains("replayers")
                })
        },
    );
    let ids = topic_ids(&mut c);

    // A second broker on the same bucket, while the first renews its lease,
    // is refused, with --restore or without.
    let other = tempfile::tempdir().unwrap();
    let other_dir = other.path().join("data").display().to_string();
    let (code, _, err) = run_strata(
        &start_args(&other_dir, &args, &["--restore"]),
        &env,
        Duration::from_secs(30),
    );
    assert_ne!(code, Some(0), "a restore onto a live bucket is refused");
    assert!(err.contains("is in use"), "{err}");
    let (code, _, err) = run_strata(
        &start_args(&other_dir, &args, &[]),
        &env,
        Duration::from_secs(30),
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("start with --restore"), "{err}");

    // The disk is lost (a copy is kept, as of a disk that comes back).
    broker.kill();
    let old_disk = other.path().join("old-disk");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(broker.data_dir())
        .arg(&old_disk)
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::remove_dir_all(broker.data_dir()).unwrap();
    let data_dir = broker.data_dir().display().to_string();
    let (code, _, err) = run_strata(
        &start_args(&data_dir, &args, &[]),
        &env,
        Duration::from_secs(30),
    );
    assert_ne!(
        code,
        Some(0),
        "an empty data directory on a full bucket is refused"
    );
    assert!(err.contains("start with --restore"), "{err}");
    std::fs::remove_dir_all(broker.data_dir()).ok();
    let started = Instant::now();
    broker.restart_with(&["--restore"]);
    println!(
        "restore and start took {:?} (including the dead lease's {} ms)",
        started.elapsed(),
        2000
    );

    let mut c = Conn::connect(&broker.addr());
    assert_eq!(
        topic_ids(&mut c),
        ids,
        "topics, ids and partition counts are back"
    );
    let acls = c.request(
        3,
        &kafka_protocol::messages::DescribeAclsRequest::default()
            .with_resource_name_filter(None)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_resource_type_filter(1)
            .with_pattern_type_filter(1)
            .with_operation(1)
            .with_permission_type(1),
    );
    assert_eq!(acls.error_code, 0);
    assert_eq!(acls.resources.len(), 1, "the ACL is back");
    assert_eq!(&*acls.resources[0].resource_name, "orders");
    assert_eq!(&*acls.resources[0].acls[0].principal, "User:mallory");
    assert_eq!(
        topic_config(&mut c, "orders", "max.message.bytes").as_deref(),
        Some("500000")
    );
    assert_eq!(
        topic_config(&mut c, "events", "retention.ms").as_deref(),
        Some("8640000000")
    );
    for (topic, partitions) in [("orders", 2), ("events", 1)] {
        for p in 0..partitions {
            assert_eq!(
                c.list_offset(topic, p, -2).offset,
                0,
                "earliest is the bucket's log start"
            );
            assert_eq!(
                c.list_offset(topic, p, -1).offset,
                n,
                "every record was uploaded"
            );
        }
    }
    assert_eq!(
        replay_rdkafka(&broker.addr(), "orders", 2, n),
        expected(2, 0..n),
        "librdkafka replays every record from offset 0"
    );
    let events = replay_rskafka(&broker.addr(), "events", 0, n).await;
    assert_eq!(events.len() as i64, n);
    for (o, k, v) in events {
        let (ek, ev, _) = record(0, o);
        assert_eq!((k, v), (ek, ev), "rskafka record {o}");
    }
    // Groups resume from their snapshotted commits.
    assert_eq!(committed(&mut c, "replayers", "orders", 0), 1234);
    assert_eq!(committed(&mut c, "replayers", "orders", 1), 50);
    assert_eq!(committed(&mut c, "replayers", "events", 0), 2999);
    // New records follow the restored end.
    produce(&broker.addr(), "events", 1, n..n + 10).await;

    // The lost disk coming back is refused: the restored broker writes the
    // bucket now.
    wait_until(
        "the restored broker published its catalogue",
        Duration::from_secs(10),
        || {
            let (code, _, err) = run_strata(
                &start_args(&old_disk.display().to_string(), &args, &[]),
                &env,
                Duration::from_secs(30),
            );
            code != Some(0) && err.contains("took the bucket over")
        },
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_loss_window_is_bounded_by_segment_ms_and_the_passes() {
    let s3 = S3Server::start();
    let (url, env) = s3.broker_env();
    let mut args = bucket_args(&url);
    args.extend(["--set".into(), "log.roll.ms=2000".into()]);
    let mut broker = Broker::start_with_env(&refs(&args), &env);
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(c.create_topic("steady", 1, &[]).error_code, 0);

    // Steady produce, each acknowledgement recorded with its time.
    let acked: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let producer_task = {
        let (addr, acked, stop) = (broker.addr(), Arc::clone(&acked), Arc::clone(&stop));
        tokio::spawn(async move {
            let producer: FutureProducer = ClientConfig::new()
                .set("bootstrap.servers", &addr)
                .set("acks", "all")
                .set("linger.ms", "0")
                .set("message.timeout.ms", "3000")
                .create()
                .unwrap();
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let (k, v, ts) = record(0, i);
                let sent = producer
                    .send(
                        FutureRecord::to("steady")
                            .partition(0)
                            .key(&k)
                            .payload(&v)
                            .timestamp(ts),
                        Duration::from_secs(3),
                    )
                    .await;
                match sent {
                    Ok(d) => {
                        let offset = d.offset;
                        assert_eq!(offset, i, "offsets follow the records");
                        acked.lock().unwrap().push((offset, Instant::now()));
                        i += 1;
                    }
                    Err(_) => break,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let seed = strata_tests::crash_seed();
    let wait = 4_000 + (seed % 3_000);
    std::thread::sleep(Duration::from_millis(wait));
    broker.kill();
    let killed = Instant::now();
    stop.store(true, Ordering::Relaxed);
    producer_task.await.unwrap();
    std::fs::remove_dir_all(broker.data_dir()).unwrap();
    broker.restart_with(&["--restore"]);
    let mut c = Conn::connect(&broker.addr());
    let restored_end = c.list_offset("steady", 0, -1).offset;
    let acked = acked.lock().unwrap().clone();
    let lost: Vec<_> = acked.iter().filter(|(o, _)| *o >= restored_end).collect();
    let oldest_lost = lost
        .iter()
        .map(|(_, t)| killed - *t)
        .max()
        .unwrap_or_default();
    // The bound: segment.ms (2 s), the roll check and fsync pass (0.2 s),
    // the upload pass (0.2 s), and one second for the upload itself and
    // the scheduling of a loaded machine.
    let bound = Duration::from_millis(2_000 + 200 + 200 + 1_000);
    println!(
        "loss window: killed after {wait} ms (seed {seed}); {} acknowledged records, {} lost, the oldest lost acknowledged {:?} before the kill (bound {:?})",
        acked.len(),
        lost.len(),
        oldest_lost,
        bound
    );
    assert!(
        oldest_lost <= bound,
        "a record older than the bound was lost"
    );
    assert!(
        restored_end > 0,
        "records older than the bound are restored"
    );
    let replay = replay_rdkafka(&broker.addr(), "steady", 1, restored_end);
    assert_eq!(replay, expected(1, 0..restored_end));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_replica_serves_the_primarys_bucket_and_refuses_writes() {
    let s3 = S3Server::start();
    let (url, env) = s3.broker_env();
    let args = bucket_args(&url);
    let primary = Broker::start_with_env(&refs(&args), &env);
    let mut c = Conn::connect(&primary.addr());
    assert_eq!(c.create_topic("stream", 1, &[]).error_code, 0);
    let n = 5_000;
    produce(&primary.addr(), "stream", 1, 0..n).await;
    wait_uploaded(&mut c, "stream", 1);

    let mut replica_args = vec!["--read-replica".to_string()];
    replica_args.extend(args.iter().cloned());
    let replica = Broker::start_with_env(&refs(&replica_args), &env);
    let mut r = Conn::connect(&replica.addr());
    wait_until(
        "the replica sees the uploaded history",
        Duration::from_secs(30),
        || r.list_offset("stream", 0, -1).offset == n,
    );
    assert_eq!(r.list_offset("stream", 0, -2).offset, 0);

    // A full replay from the replica while the primary takes produce.
    let busy = Arc::new(AtomicBool::new(true));
    let load = {
        let (addr, busy) = (primary.addr(), Arc::clone(&busy));
        tokio::spawn(async move {
            let mut next = n;
            while busy.load(Ordering::Relaxed) {
                produce(&addr, "stream", 1, next..next + 200).await;
                next += 200;
            }
            next
        })
    };
    let from_replica = replay_rdkafka(&replica.addr(), "stream", 1, n);
    busy.store(false, Ordering::Relaxed);
    let produced = load.await.unwrap();
    let from_primary = replay_rdkafka(&primary.addr(), "stream", 1, produced);
    let primary_part: BTreeMap<_, _> = from_primary
        .into_iter()
        .filter(|((_, o), _)| *o < n)
        .collect();
    let replica_part: BTreeMap<_, _> = from_replica
        .into_iter()
        .filter(|((_, o), _)| *o < n)
        .collect();
    assert_eq!(
        replica_part, primary_part,
        "the replica answers as the primary"
    );
    assert_eq!(replica_part, expected(1, 0..n));

    // Newly uploaded segments appear within segment.ms, the passes and the
    // replica's refresh.
    wait_uploaded(&mut c, "stream", 1);
    let end = c.list_offset("stream", 0, -1).offset;
    let t = Instant::now();
    produce(&primary.addr(), "stream", 1, end..end + 10).await;
    wait_until(
        "the replica sees the new segment",
        Duration::from_secs(20),
        || r.list_offset("stream", 0, -1).offset == end + 10,
    );
    // The stated bound: segment.ms (1 s), the roll and fsync pass (0.2 s),
    // the upload pass (0.2 s) and the replica's refresh (0.2 s), with 3 s
    // for the upload and the scheduling of a loaded machine.
    let (took, bound) = (
        t.elapsed(),
        Duration::from_millis(1_000 + 200 + 200 + 200 + 3_000),
    );
    println!(
        "a new record reached the replica {took:?} after its acknowledgement (bound {bound:?})"
    );
    assert!(took <= bound, "the replica saw the record after {took:?}");

    // Writes are refused as a broker without write permission refuses them.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", replica.addr())
        .set("message.timeout.ms", "10000")
        .create()
        .unwrap();
    let err = producer
        .send(
            FutureRecord::to("stream")
                .partition(0)
                .payload("x")
                .key("k"),
            Duration::from_secs(10),
        )
        .await
        .expect_err("produce to a read replica fails");
    assert_eq!(
        err.0,
        KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    assert_eq!(
        r.create_topic("new", 1, &[]).error_code,
        29,
        "TOPIC_AUTHORIZATION_FAILED"
    );
    let del = DeleteTopicsRequest::default().with_topic_names(vec![topic_name("stream")]);
    assert_eq!(r.request(5, &del).responses[0].error_code, 29);
    // A topic the primary creates appears on the replica.
    assert_eq!(c.create_topic("later", 2, &[]).error_code, 0);
    wait_until(
        "the replica learns the new topic",
        Duration::from_secs(20),
        || topic_ids(&mut r).get("later").is_some_and(|t| t.2 == 2),
    );
    // The replica never wrote to the bucket: the lease is the primary's.
    let lease = s3
        .objects()
        .into_iter()
        .find(|p| p.ends_with("_strata/owner.json"))
        .expect("the primary's lease");
    assert!(std::fs::read_to_string(lease).unwrap().contains(&format!(
        "127.0.0.1:{}",
        primary.addr().rsplit(':').next().unwrap()
    )));
}

fn s3_client(s3: &S3Server) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_endpoint(format!("http://127.0.0.1:{}", s3.port()))
        .with_access_key_id("strata-test")
        .with_secret_access_key("strata-test-secret")
        .with_region("us-east-1")
        .with_allow_http(true)
        .with_bucket_name(S3_BUCKET)
        .build()
        .unwrap()
}

async fn keys(store: &object_store::aws::AmazonS3) -> Vec<String> {
    use futures::StreamExt;
    let prefix = object_store::path::Path::from("cluster-a");
    store
        .list(Some(&prefix))
        .map(|m| m.unwrap().location.to_string())
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn bucket_check_finds_orphans_and_missing_objects_and_deletions_survive_restarts() {
    let mut s3 = S3Server::start();
    let (url, env) = s3.broker_env();
    let args = bucket_args(&url);
    let mut broker = Broker::start_with_env(&refs(&args), &env);
    let mut c = Conn::connect(&broker.addr());
    for t in ["kept", "gone"] {
        assert_eq!(c.create_topic(t, 1, &[]).error_code, 0);
        produce(&broker.addr(), t, 1, 0..2_000).await;
        wait_uploaded(&mut c, t, 1);
    }
    let ids = topic_ids(&mut c);
    let gone_dir = format!("cluster-a/gone-{}/", ids["gone"].1.simple());
    let kept_dir = format!("cluster-a/kept-{}/", ids["kept"].1.simple());
    let store = s3_client(&s3);
    assert!(keys(&store).await.iter().any(|k| k.starts_with(&gone_dir)));

    // The store is down when the topic is deleted, and the broker crashes
    // before it comes back: the deletion resumes after the restart.
    s3.stop();
    let del = DeleteTopicsRequest::default().with_topic_names(vec![topic_name("gone")]);
    assert_eq!(c.request(5, &del).responses[0].error_code, 0);
    std::thread::sleep(Duration::from_millis(500));
    broker.kill();
    s3.restart();
    broker.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    while keys(&store).await.iter().any(|k| k.starts_with(&gone_dir)) {
        assert!(
            Instant::now() < deadline,
            "the deleted topic's objects are removed after a restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let check = |extra: &[&str]| {
        let mut a = vec!["bucket", "check", "--remote", &url];
        a.extend(extra);
        run_strata(&a, &env, Duration::from_secs(60))
    };
    let (code, out, err) = check(&[]);
    assert_eq!(code, Some(0), "a healthy bucket is clean: {out}{err}");

    // Plant an orphan and lose a referenced object.
    let all = keys(&store).await;
    let victim = all
        .iter()
        .find(|k| k.starts_with(&kept_dir) && k.ends_with(".timeindex"))
        .unwrap()
        .clone();
    store
        .delete(&object_store::path::Path::from(victim.as_str()))
        .await
        .unwrap();
    let orphan = format!(
        "{kept_dir}0/00000000000009999999-{}.log",
        uuid::Uuid::new_v4().simple()
    );
    store
        .put(
            &object_store::path::Path::from(orphan.as_str()),
            vec![7u8; 100].into(),
        )
        .await
        .unwrap();
    let logs_before = keys(&store)
        .await
        .iter()
        .filter(|k| k.ends_with(".log"))
        .count();
    let (code, out, _) = check(&[]);
    assert_eq!(code, Some(1), "{out}");
    let rel = |k: &str| k.strip_prefix("cluster-a/").unwrap().to_string();
    assert!(
        out.contains(&format!("orphan      {}", rel(&orphan))),
        "{out}"
    );
    assert!(
        out.contains(&format!("missing     {}", rel(&victim))),
        "{out}"
    );

    // A repair inside the grace period deletes nothing; after it, only the
    // orphan.
    let (_, out, _) = check(&["--repair"]);
    assert!(!out.contains("deleted"), "{out}");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (code, out, _) = check(&["--repair", "--grace-secs", "1"]);
    assert_eq!(code, Some(1), "the missing object remains a problem: {out}");
    assert!(
        out.contains(&format!("deleted     {}", rel(&orphan))),
        "{out}"
    );
    let after = keys(&store).await;
    assert!(!after.contains(&orphan));
    assert_eq!(
        after.iter().filter(|k| k.ends_with(".log")).count(),
        logs_before - 1,
        "only the orphan was deleted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_primary_whose_bucket_another_broker_took_over_is_fenced() {
    let s3 = S3Server::start();
    let (url, env) = s3.broker_env();
    let args = bucket_args(&url);
    let a = Broker::start_with_env(&refs(&args), &env);
    let mut ca = Conn::connect(&a.addr());
    assert_eq!(ca.create_topic("t", 1, &[]).error_code, 0);
    produce(&a.addr(), "t", 1, 0..500).await;
    wait_uploaded(&mut ca, "t", 1);

    // A stops answering long enough for its lease to lapse, and B restores
    // the bucket meanwhile.
    let signal = |sig: &str| {
        let pid = a.pid().unwrap().to_string();
        assert!(std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    let b_dir = tempfile::tempdir().unwrap();
    let mut b_args = args.clone();
    b_args.push("--restore".into());
    let b = Broker::start_in_dir(&b_dir.path().join("data"), &refs(&b_args), &env);
    let mut cb = Conn::connect(&b.addr());
    assert_eq!(cb.list_offset("t", 0, -1).offset, 500);
    std::thread::sleep(Duration::from_millis(1_000));
    signal("-CONT");

    // A finds B's lease at its next renewal (and a catalogue of its own
    // would be refused by the store): A is fenced, and refuses writes as a
    // fenced Kafka leader does.
    let _ = ca.create_topic("after", 1, &[]);
    wait_until("A is fenced", Duration::from_secs(20), || {
        ca.produce("t", 0, strata_tests::raw::batch(1, 10, base_ts()))
            .error_code
            == 6
    });
    // B's catalogue stands: A's topic never reached the bucket.
    std::thread::sleep(Duration::from_millis(1_000));
    let check = run_strata(
        &["bucket", "check", "--remote", &url],
        &env,
        Duration::from_secs(60),
    );
    assert_eq!(check.0, Some(0), "{}", check.1);
    assert!(!topic_ids(&mut cb).contains_key("after"));
    assert!(a.log().contains("fenced"), "A says why it stopped writing");
}
