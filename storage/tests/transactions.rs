//! Transactions on a real log directory: the last stable offset held back
//! by an open transaction, markers ending it, aborted transactions indexed
//! per segment and reported for a range, read_committed reads stopping at
//! the last stable offset, and all of it restored after a clean or an
//! unclean restart. The cleaner drops aborted records of a compacted log.

use strata_storage::testing::{BatchBuilder, TestRecord};
use strata_storage::{AbortedTxn, Log, LogConfig, Marker, Offset, StorageError};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// Appends a transactional batch of `n` records of producer `pid`.
fn txn_batch(log: &Log, pid: i64, seq: i32, n: i32) -> Offset {
    let mut b = BatchBuilder::new(n)
        .producer(pid, 0, seq)
        .transactional()
        .payload(40)
        .build();
    log.append(&mut b, 0).unwrap().base_offset
}

fn plain_batch(log: &Log) -> Offset {
    let mut b = BatchBuilder::new(1).payload(40).build();
    log.append(&mut b, 0).unwrap().base_offset
}

fn offsets_read(log: &Log, from: Offset, end: Offset) -> Vec<i64> {
    let data = log.read_until(from, 1 << 20, true, end).unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    let r = &data.records;
    while pos < r.len() {
        let h = strata_storage::batch::BatchHeader::parse(&r[pos..]).unwrap();
        out.push(h.base_offset);
        pos += h.total_len();
    }
    out
}

#[test]
fn open_transactions_hold_the_last_stable_offset_and_aborts_are_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config(), true, 0).unwrap();
    plain_batch(&log); // 0
    let a = txn_batch(&log, 7, 0, 2); // 1-2, producer 7
    assert_eq!(log.last_stable_offset(), a);
    let b = txn_batch(&log, 8, 0, 1); // 3, producer 8
    txn_batch(&log, 7, 2, 1); // 4
    assert_eq!(log.last_stable_offset(), a);
    assert_eq!(log.open_txns().len(), 2);
    // read_committed stops before the open transaction.
    assert_eq!(
        offsets_read(&log, Offset(0), log.last_stable_offset()),
        vec![0]
    );

    // Producer 7 aborts; 8 is still open, so the LSO moves to 8's start.
    let abort = log.append_marker(7, 0, Marker::Abort, 0, 0).unwrap();
    assert_eq!(abort.base_offset, Offset(5));
    assert_eq!(log.last_stable_offset(), b);
    let entry = AbortedTxn {
        producer_id: 7,
        first_offset: a,
        last_offset: Offset(5),
        last_stable_offset: b,
    };
    assert_eq!(
        log.aborted_txns(Offset(0), Offset(10)).unwrap(),
        vec![entry]
    );
    assert!(log.aborted_txns(Offset(6), Offset(10)).unwrap().is_empty());

    log.append_marker(8, 0, Marker::Commit, 0, 0).unwrap();
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    assert!(log.open_txns().is_empty());
    // Control batches come from the coordinator only.
    let mut forged = strata_storage::marker::control_batch(9, 0, Marker::Commit, 0, 0);
    assert!(matches!(
        log.append(&mut forged, 0),
        Err(StorageError::ControlBatchFromClient { .. })
    ));

    // A third transaction stays open across a clean restart.
    let c = txn_batch(&log, 9, 0, 1);
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), config(), true, 0).unwrap();
    assert_eq!(log.last_stable_offset(), c);
    assert_eq!(
        log.aborted_txns(Offset(0), Offset(10)).unwrap(),
        vec![entry]
    );
    log.append_marker(9, 0, Marker::Abort, 0, 0).unwrap();
    assert_eq!(
        log.aborted_txns(Offset(0), log.high_watermark())
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn an_unclean_restart_rebuilds_open_transactions_and_the_index() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config(), true, 0).unwrap();
        // Enough to roll several segments, so that recovery replays from a
        // producer snapshot.
        let mut seq = 0;
        for round in 0..20 {
            txn_batch(&log, 7, seq, 3);
            seq += 3;
            plain_batch(&log);
            let m = if round % 2 == 0 {
                Marker::Abort
            } else {
                Marker::Commit
            };
            log.append_marker(7, 0, m, 0, 0).unwrap();
            log.flush_sealed().unwrap();
        }
        txn_batch(&log, 7, seq, 3);
        assert!(log.segment_count() > 3);
        // No close: the process dies here.
        let expected = log.aborted_txns(Offset(0), log.high_watermark()).unwrap();
        assert_eq!(expected.len(), 10);
        let lso = log.last_stable_offset();
        drop(log);
        // Lose every index entry, as if none had reached the disk.
        for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "txnindex") {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "snapshot") {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        let log = Log::open(dir.path(), config(), false, 0).unwrap();
        assert_eq!(log.last_stable_offset(), lso);
        assert_eq!(
            log.aborted_txns(Offset(0), log.high_watermark()).unwrap(),
            expected
        );
    }
}

#[test]
fn the_cleaner_drops_aborted_records_and_stops_at_the_last_stable_offset() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 300,
        compact: true,
        min_cleanable_ratio_ppm: 0,
        retention_ms: -1,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), cfg, true, 0).unwrap();
    let rec = |k: &str, v: &str| TestRecord {
        key: Some(k.as_bytes().to_vec()),
        value: Some(v.as_bytes().to_vec()),
        timestamp_delta: 0,
    };
    let mut b = BatchBuilder::records(vec![rec("k", "committed")]).build();
    log.append(&mut b, 0).unwrap();
    // An aborted newer value of the same key must not win.
    let mut b = BatchBuilder::records(vec![rec("k", "aborted")])
        .producer(7, 0, 0)
        .transactional()
        .build();
    let aborted_at = log.append(&mut b, 0).unwrap().base_offset;
    log.append_marker(7, 0, Marker::Abort, 0, 0).unwrap();
    for i in 0..20 {
        let mut b = BatchBuilder::records(vec![rec(&format!("f{i}"), "x")]).build();
        log.append(&mut b, 0).unwrap();
    }
    // An open transaction near the end: nothing from it on is cleaned.
    let mut b = BatchBuilder::records(vec![rec("k", "open")])
        .producer(8, 0, 0)
        .transactional()
        .build();
    let open_at = log.append(&mut b, 0).unwrap().base_offset;
    for i in 0..10 {
        let mut b = BatchBuilder::records(vec![rec(&format!("g{i}"), "x")]).build();
        log.append(&mut b, 0).unwrap();
    }
    log.flush_sealed().unwrap();
    let stats = log.clean(1 << 20, 0, &mut |_| {}).unwrap().unwrap();
    assert!(stats.records_removed >= 1);
    let all = offsets_read(&log, log.log_start_offset(), Offset(i64::MAX));
    assert!(all.contains(&0), "the committed value stays: {all:?}");
    assert!(
        !all.contains(&aborted_at.0),
        "the aborted value goes: {all:?}"
    );
    assert!(
        all.contains(&open_at.0),
        "the open transaction is untouched"
    );
}
