//! Disk faults against the real binary: a full disk (a small tmpfs the test
//! mounts), torn and bit-flipped segment tails, a corrupted index, a broken
//! remote manifest. The broker keeps what is valid, says in its log what
//! it dropped, and refuses writes with KAFKA_STORAGE_ERROR rather than
//! damage data.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

use kafka_protocol::ResponseError;
use strata_tests::raw::{batch, Conn};
use strata_tests::Broker;

/// A tmpfs of `mib` MiB mounted for the test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` when this machine does not let the test mount (not root).
    fn mount(mib: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_refuses_writes_with_kafka_storage_error_and_loses_nothing() {
    let Some(disk) = SmallDisk::mount(6) else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    // Ballast to free later, so that the disk can be given room again.
    let ballast = disk.path().join("ballast");
    fs::write(&ballast, vec![1u8; 2 << 20]).unwrap();
    let data_dir = disk.path().join("data");
    let mut broker = Broker::start_with_data_dir(
        &data_dir,
        &[
            "--set",
            "log.segment.bytes=262144",
            "--set",
            "log.index.size.max.bytes=65536",
            "--set",
            "remote.log.storage.system.enable=false",
        ],
    );
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(c.create_topic("full", 1, &[]).error_code, 0);

    // Fill the disk: every answer is an offset or KAFKA_STORAGE_ERROR.
    let mut acked = Vec::new();
    let mut refused = 0;
    for i in 0..2000 {
        let r = c.produce("full", 0, batch(10, 200, 1_000 + i));
        if r.error_code == 0 {
            acked.push(r.base_offset);
        } else {
            assert_eq!(r.error_code, ResponseError::KafkaStorageError.code());
            refused += 1;
            if refused >= 20 {
                break;
            }
        }
    }
    assert!(refused >= 20, "the disk never filled up");
    assert!(!acked.is_empty());
    assert!(
        broker.log().contains("No space left on device"),
        "the log names the cause"
    );
    // Offsets stayed contiguous: a refused append took none.
    for (i, w) in acked.windows(2).enumerate() {
        assert_eq!(w[1], w[0] + 10, "batch {i}");
    }
    let end = acked.last().unwrap() + 10;
    assert_eq!(c.list_offset("full", 0, -1).offset, end);

    // A crash on the full disk loses nothing that was acknowledged.
    broker.kill();
    broker.restart();
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(c.list_offset("full", 0, -1).offset, end);
    assert_eq!(c.list_offset("full", 0, -2).offset, 0);

    // With room again, writes resume where they stopped.
    fs::remove_file(&ballast).unwrap();
    let r = c.produce("full", 0, batch(10, 200, 9_999));
    assert_eq!((r.error_code, r.base_offset), (0, end));
}

fn segments(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// Produces `batches` batches of 10 records to partition 0 of `topic`;
/// batch `i`'s records have timestamps from `1000 + 100 i` on.
fn fill(c: &mut Conn, topic: &str, batches: i64) {
    for i in 0..batches {
        let r = c.produce(topic, 0, batch(10, 100, 1_000 + i * 100));
        assert_eq!((r.error_code, r.base_offset), (0, i * 10));
    }
}

#[test]
fn torn_and_flipped_tails_are_cut_at_the_last_valid_batch_and_reported() {
    for damage in ["truncate", "flip"] {
        let mut broker = Broker::start(&["--set", "remote.log.storage.system.enable=false"]);
        let mut c = Conn::connect(&broker.addr());
        assert_eq!(c.create_topic("t", 1, &[]).error_code, 0);
        fill(&mut c, "t", 50);
        broker.kill();
        let dir = broker.data_dir().join("t-0");
        let log = segments(&dir, "log").pop().unwrap();
        let len = fs::metadata(&log).unwrap().len();
        match damage {
            "truncate" => {
                // Half of the last batch is gone.
                OpenOptions::new()
                    .write(true)
                    .open(&log)
                    .unwrap()
                    .set_len(len - 100)
                    .unwrap();
            }
            _ => {
                // One bit of the last batch's last record flipped.
                let mut bytes = fs::read(&log).unwrap();
                let at = bytes.len() - 5;
                bytes[at] ^= 0x10;
                fs::write(&log, bytes).unwrap();
            }
        }
        broker.restart();
        let mut c = Conn::connect(&broker.addr());
        assert_eq!(
            c.list_offset("t", 0, -1).offset,
            490,
            "{damage}: the damaged last batch is dropped, the rest kept"
        );
        let log_text = broker.log();
        assert!(
            log_text.contains("truncat"),
            "{damage}: the broker reports what it cut:\n{log_text}"
        );
        let r = c.produce("t", 0, batch(10, 100, 5_000));
        assert_eq!((r.error_code, r.base_offset), (0, 490), "{damage}");
    }
}

/// The base offset of the first batch a Fetch at `offset` returns.
fn fetch_first_offset(c: &mut Conn, topic: &str, offset: i64) -> i64 {
    try_fetch_first_offset(c, topic, offset).expect("records")
}

/// As [`fetch_first_offset`], `None` when the answer has no records yet (a
/// cold-tier read still running).
fn try_fetch_first_offset(c: &mut Conn, topic: &str, offset: i64) -> Option<i64> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest};
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(strata_tests::raw::topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let r = c.request(4, &req);
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0, "fetch at {offset}");
    let records = p.records.as_ref()?;
    (records.len() >= 8).then(|| i64::from_be_bytes(records[..8].try_into().unwrap()))
}

#[test]
fn a_corrupted_index_is_detected_and_rebuilt() {
    let mut broker = Broker::start(&[
        "--set",
        "remote.log.storage.system.enable=false",
        "--set",
        "log.segment.bytes=20000",
        "--set",
        "log.index.interval.bytes=500",
    ]);
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(c.create_topic("i", 1, &[]).error_code, 0);
    fill(&mut c, "i", 100);
    // A clean stop, so that the indexes would be trusted as they are.
    assert!(broker.terminate());
    let dir = broker.data_dir().join("i-0");
    let indexes = segments(&dir, "index");
    assert!(indexes.len() >= 3);
    // Garbage over one sealed segment's offset index; another one deleted.
    let len = fs::metadata(&indexes[1]).unwrap().len() as usize;
    fs::write(
        &indexes[1],
        (0..len).map(|i| (i * 7 + 3) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    fs::remove_file(&indexes[0]).unwrap();
    broker.restart();
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(c.list_offset("i", 0, -1).offset, 1000);
    // Every batch is found where it is, through the rebuilt indexes.
    for offset in (0..1000).step_by(37) {
        let first = fetch_first_offset(&mut c, "i", offset);
        assert!(
            first <= offset && offset < first + 10,
            "fetch at {offset} answered the batch at {first}"
        );
    }
    // Lookups by timestamp too.
    let by_time = |c: &mut Conn, ts: i64| {
        use kafka_protocol::messages::list_offsets_request::{
            ListOffsetsPartition, ListOffsetsTopic,
        };
        use kafka_protocol::messages::ListOffsetsRequest;
        let req = ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
            .with_name(strata_tests::raw::topic_name("i"))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(ts)])]);
        c.request(7, &req).topics[0].partitions[0].offset
    };
    assert_eq!(by_time(&mut c, 5_200), 420);
    let log_text = broker.log();
    assert!(
        log_text.contains("index"),
        "the broker reports the rebuilt index:\n{log_text}"
    );
}

#[test]
fn a_broken_remote_manifest_is_restored_from_the_store() {
    let mut broker = Broker::start(&[
        "--set",
        "log.segment.bytes=20000",
        "--set",
        "remote.log.manager.task.interval.ms=100",
        "--set",
        "log.retention.check.interval.ms=100",
    ]);
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(
        c.create_topic("m", 1, &[("local.retention.bytes", "1")])
            .error_code,
        0
    );
    fill(&mut c, "m", 100);
    // Wait until the history has left the hot tier.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while c.list_offset("m", 0, -4).offset < 500 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let local_start = c.list_offset("m", 0, -4).offset;
    assert!(local_start >= 500, "history did not move to the cold tier");
    // Give the store's copy of the manifest a pass to catch up, then crash
    // and break the local manifest: half of it gone, and a stray half-written
    // temporary file beside it.
    std::thread::sleep(std::time::Duration::from_millis(500));
    broker.kill();
    let manifest = broker.data_dir().join("m-0/remote-manifest.json");
    let text = fs::read(&manifest).unwrap();
    fs::write(&manifest, &text[..text.len() / 2]).unwrap();
    fs::write(manifest.with_extension("json.tmp"), &text[..10]).unwrap();

    broker.restart();
    let log_text = broker.log();
    assert!(
        log_text.contains("restored the remote manifest"),
        "the broker says what it did:\n{log_text}"
    );
    let mut c = Conn::connect(&broker.addr());
    assert_eq!(
        c.list_offset("m", 0, -2).offset,
        0,
        "history is still there"
    );
    assert_eq!(c.list_offset("m", 0, -1).offset, 1000);
    // Read from offset 0 through the cold tier.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let first = loop {
        let r = try_fetch_first_offset(&mut c, "m", 0);
        if r.is_some() || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(first, Some(0));
}
