//! The log cleaner on a real log directory: the latest record of every
//! key survives with its original offset, tombstones last their
//! `delete.retention.ms`, compressed batches keep their codec, keyless
//! records are refused, and an interrupted swap is finished or rolled back
//! when the log is opened again.

use std::collections::BTreeMap;

use strata_storage::batch::BatchHeader;
use strata_storage::codec::{self, Codec, Levels};
use strata_storage::record;
use strata_storage::testing::{BatchBuilder, TestRecord};
use strata_storage::{Log, LogConfig, Offset, StorageError};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        compact: true,
        min_cleanable_ratio_ppm: 0,
        delete_retention_ms: 1000,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

fn rec(key: &str, value: Option<&str>) -> TestRecord {
    TestRecord {
        key: Some(key.as_bytes().to_vec()),
        value: value.map(|v| v.as_bytes().to_vec()),
        timestamp_delta: 0,
    }
}

fn gz(data: &[u8]) -> Vec<u8> {
    codec::compress(Codec::Gzip, data, Levels::default()).unwrap()
}

/// Appends `records` as one batch; returns the offsets given.
fn append(log: &Log, records: Vec<TestRecord>, compressed: bool) -> Vec<i64> {
    let n = records.len() as i64;
    let mut b = BatchBuilder::records(records).timestamp(1_000);
    if compressed {
        b = b.compressed((1, gz));
    }
    let mut data = b.build();
    let info = log.append(&mut data, 10_000).unwrap();
    (info.base_offset.0..info.base_offset.0 + n).collect()
}

/// Every record from offset 0: (offset, key, value, timestamp).
fn read_all(log: &Log) -> Vec<(i64, String, Option<String>, i64)> {
    let data = log.read(Offset(0), 64 << 20, true).unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    let bytes = &data.records[..];
    while pos < bytes.len() {
        let h = BatchHeader::parse(&bytes[pos..]).unwrap();
        let batch = &bytes[pos..pos + h.total_len()];
        strata_storage::batch::validate(batch).expect("CRC valid");
        let plain = codec::decompress(
            Codec::from_id(h.compression()).unwrap(),
            &batch[61..],
            1 << 26,
        )
        .unwrap();
        for r in record::records(&plain, h.record_count).unwrap() {
            let value = if r.tombstone {
                None
            } else {
                // The value follows the key in `tail`; decode it by hand.
                let key_len = r.key.map_or(0, |k| k.len());
                let mut p = 1 + key_len; // one-byte key length varint
                let mut raw = 0u64;
                let mut shift = 0;
                loop {
                    let b = r.tail[p];
                    p += 1;
                    raw |= ((b & 0x7f) as u64) << shift;
                    shift += 7;
                    if b & 0x80 == 0 {
                        break;
                    }
                }
                let len = ((raw >> 1) as i64 ^ -((raw & 1) as i64)) as usize;
                Some(String::from_utf8(r.tail[p..p + len].to_vec()).unwrap())
            };
            out.push((
                h.base_offset + r.offset_delta,
                String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                value,
                h.base_timestamp + r.timestamp_delta,
            ));
        }
        pos += h.total_len();
    }
    out
}

fn fill(log: &Log, rounds: usize, compressed: bool) -> BTreeMap<String, (i64, Option<String>)> {
    let mut latest = BTreeMap::new();
    for round in 0..rounds {
        let mut batch = Vec::new();
        for k in 0..10 {
            let key = format!("key-{k}");
            let value = if round % 7 == 6 && k % 3 == 0 {
                None
            } else {
                Some(format!("v{round}-{k}-{}", "x".repeat(40)))
            };
            batch.push((key, value));
        }
        let records = batch.iter().map(|(k, v)| rec(k, v.as_deref())).collect();
        let offsets = append(log, records, compressed);
        for ((k, v), o) in batch.into_iter().zip(offsets) {
            latest.insert(k, (o, v));
        }
    }
    latest
}

fn check_latest(log: &Log, latest: &BTreeMap<String, (i64, Option<String>)>, tombstones: bool) {
    let got = read_all(log);
    let offsets: Vec<i64> = got.iter().map(|r| r.0).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "offsets increase");
    let mut by_key: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
    for (o, k, v, ts) in &got {
        assert_eq!(*ts, 1_000, "timestamps survive a delete horizon");
        by_key.insert(k.clone(), (*o, v.clone()));
    }
    let want: BTreeMap<_, _> = latest
        .iter()
        .filter(|(_, (_, v))| tombstones || v.is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(by_key, want);
}

#[test]
fn keeps_the_latest_value_of_each_key_at_its_offset() {
    for compressed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config(), true, 0).unwrap();
        let latest = fill(&log, if compressed { 600 } else { 60 }, compressed);
        let before = log.segment_count();
        assert!(before > 5);
        let c = log.cleanability(10_000).unwrap();
        assert!(c.due() && c.dirty_bytes > 0);
        let stats = log.clean(1 << 20, 10_000, &mut |_| {}).unwrap().unwrap();
        assert!(stats.records_removed > 0);
        assert!(stats.bytes_written < stats.bytes_read / 4);
        // The next pass merges the small cleaned segments, as Kafka's
        // cleaner groups segments by their size before the pass.
        let mut latest = latest;
        latest.extend(fill(&log, 8, compressed));
        log.roll_if_older_than(i64::MAX, 0).unwrap();
        log.clean(1 << 20, 10_000, &mut |_| {}).unwrap().unwrap();
        assert!(
            log.segment_count() <= before / 2,
            "small cleaned segments merge: {before} -> {}",
            log.segment_count()
        );
        // Tombstones of the latest round are still readable.
        check_latest(&log, &latest, true);
        // Compressed batches keep their codec.
        let data = log.read(Offset(0), 1 << 20, true).unwrap();
        let h = BatchHeader::parse(&data.records).unwrap();
        assert_eq!(h.compression(), if compressed { 1 } else { 0 });
        // Nothing dirty left below the active segment.
        assert_eq!(log.cleanability(10_000).unwrap().dirty_bytes, 0);
        log.close().unwrap();
        // Reopened, the same; a later pass past the delete horizon removes
        // the tombstones.
        let log = Log::open(dir.path(), config(), true, 0).unwrap();
        check_latest(&log, &latest, true);
        append(&log, vec![rec("other", Some("o"))], compressed);
        log.roll_if_older_than(i64::MAX, -1).ok();
        let mut data = BatchBuilder::records(vec![rec("other", Some("p"))])
            .timestamp(1_000)
            .build();
        log.append(&mut data, 10_000).unwrap();
        let mut data = BatchBuilder::records(vec![rec("force-roll", Some(&"r".repeat(5000)))])
            .timestamp(1_000)
            .build();
        log.append(&mut data, 10_000).unwrap();
        log.clean(1 << 20, 20_000, &mut |_| {}).unwrap();
        let got = read_all(&log);
        assert!(
            got.iter().all(|r| r.2.is_some() || r.1 == "force-roll"),
            "tombstones gone after delete.retention.ms: {got:?}"
        );
    }
}

#[test]
fn a_bounded_map_cleans_in_several_passes() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config(), true, 0).unwrap();
    let mut latest = BTreeMap::new();
    for round in 0..40 {
        let records: Vec<TestRecord> = (0..5)
            .map(|k| {
                rec(
                    &format!("k{}", (round * 5 + k) % 60),
                    Some(&format!("v{round}")),
                )
            })
            .collect();
        let keys: Vec<String> = records
            .iter()
            .map(|r| String::from_utf8(r.key.clone().unwrap()).unwrap())
            .collect();
        for (k, o) in keys.into_iter().zip(append(&log, records, false)) {
            latest.insert(k, (o, Some(format!("v{round}"))));
        }
    }
    // Room for about ten keys per pass.
    let mut passes = 0;
    while log.cleanability(10_000).unwrap().dirty_bytes > 0 {
        log.clean(10 * 52, 10_000, &mut |_| {}).unwrap();
        passes += 1;
        assert!(passes < 100);
    }
    assert!(passes > 1);
    let got = read_all(&log);
    let sealed_latest: BTreeMap<_, _> = got
        .iter()
        .map(|r| (r.1.clone(), (r.0, r.2.clone())))
        .collect();
    for (k, v) in &sealed_latest {
        assert_eq!(&latest[k], v);
    }
}

#[test]
fn keyless_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config(), true, 0).unwrap();
    let mut data = BatchBuilder::records(vec![
        rec("a", Some("1")),
        TestRecord {
            key: None,
            value: Some(b"2".to_vec()),
            timestamp_delta: 0,
        },
    ])
    .compressed((1, gz))
    .build();
    assert!(matches!(
        log.append(&mut data, 10_000),
        Err(StorageError::KeylessRecord { .. })
    ));
    assert_eq!(log.log_end_offset(), Offset(0));
}

#[test]
fn an_interrupted_swap_is_finished_or_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config(), true, 0).unwrap();
    let latest = fill(&log, 40, false);
    let before = read_all(&log);
    log.close().unwrap();
    drop(log);
    // A copy that was being written when the broker died: rolled back.
    let staging = dir.path().join(format!("cleaned-{:020}-{:020}", 0, 10));
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join(format!("{:020}.log", 0)), b"partial").unwrap();
    let log = Log::open(dir.path(), config(), false, 0).unwrap();
    assert!(!staging.exists());
    assert_eq!(read_all(&log), before);
    // A committed swap whose old segments were not yet deleted: finished.
    // The copy is made by a real pass over a scratch copy of the log, and
    // its first cleaned segment is staged in `swap-0-<end>` as the commit
    // point leaves it, beside the uncleaned segments it replaces.
    log.close().unwrap();
    drop(log);
    let scratch = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
        std::fs::copy(e.path(), scratch.path().join(e.file_name())).unwrap();
    }
    let copy = Log::open(scratch.path(), config(), true, 0).unwrap();
    copy.clean(1 << 20, 10_000, &mut |_| {}).unwrap();
    let cleaned = read_all(&copy);
    check_latest(&copy, &latest, true);
    copy.close().unwrap();
    drop(copy);
    let bases = |d: &std::path::Path| -> Vec<i64> {
        let mut b: Vec<i64> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.strip_suffix(".log")?.parse().ok()
            })
            .collect();
        b.sort_unstable();
        b
    };
    // The first cleaned segment replaced every old one below the next base,
    // and holds less than they do.
    let end = bases(scratch.path())[1];
    let below = |rs: &[(i64, String, Option<String>, i64)]| rs.iter().filter(|r| r.0 < end).count();
    assert!(
        below(&cleaned) < below(&before),
        "the staged copy differs from the old segments"
    );
    let swap = dir.path().join(format!("swap-{:020}-{end:020}", 0));
    std::fs::create_dir_all(&swap).unwrap();
    for ext in ["log", "index", "timeindex"] {
        let name = format!("{:020}.{ext}", 0);
        std::fs::copy(scratch.path().join(&name), swap.join(&name)).unwrap();
    }
    let log = Log::open(dir.path(), config(), false, 0).unwrap();
    assert!(!swap.exists());
    // Below `end`, the cleaned copy; from `end` on, the old segments.
    let want: Vec<_> = cleaned
        .iter()
        .filter(|r| r.0 < end)
        .chain(before.iter().filter(|r| r.0 >= end))
        .cloned()
        .collect();
    assert_eq!(read_all(&log), want);
    assert_eq!(bases(dir.path()).iter().filter(|&&b| b < end).count(), 1);
}

#[test]
fn reads_from_any_offset_start_where_they_should_after_many_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config(), true, 0).unwrap();
    for round in 0..24 {
        fill(&log, 20, round % 2 == 0);
        log.clean(1 << 20, 10_000, &mut |_| {}).unwrap();
        check_reads(&log, round);
        if round % 5 == 3 {
            log.close().unwrap();
            drop(log);
            log = Log::open(dir.path(), config(), round % 2 == 0, 0).unwrap();
            check_reads(&log, round);
        }
    }
}

fn check_reads(log: &Log, round: usize) {
    let all: Vec<i64> = read_all(log).iter().map(|r| r.0).collect();
    let end = log.log_end_offset().0;
    for from in 0..end {
        let data = log.read(Offset(from), 1, true).unwrap();
        let want = all.iter().copied().find(|&o| o >= from);
        if data.records.is_empty() {
            assert_eq!(want, None, "round {round}: read from {from}");
            continue;
        }
        let h = BatchHeader::parse(&data.records).unwrap();
        let first = want.expect("a record at or after");
        assert!(
            h.base_offset <= first && first <= h.last_offset(),
            "round {round}: read from {from}: batch {}..={} does not hold {first}",
            h.base_offset,
            h.last_offset()
        );
    }
}
