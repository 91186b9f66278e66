//! Mutation fuzzing of the storage's batch parsing, in the normal suite.
//!
//! Seeds are the record batches inside the Produce requests of the
//! protocol crate's corpus (frames captured from real clients: every
//! compression codec, idempotent and plain producers). Each round mutates a
//! batch and hands it to `Log::append`, which must validate it before
//! writing anything. The properties: no panic; a refused batch leaves the
//! log as it was; an accepted batch reads back byte for byte (its base
//! offset rewritten); and after all rounds a crash-style reopen (no clean
//! shutdown, so recovery scans every batch) keeps exactly what was
//! acknowledged.
//!
//! `STRATA_FUZZ_SECS` runs it longer.

use std::time::{Duration, Instant};

use strata_storage::batch::{validate, HEADER_LEN};
use strata_storage::{Log, LogConfig, Offset};

/// Every valid v2 batch found inside the corpus' Produce frames (API key 0).
fn seeds() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/tests/corpus");
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("00-"))
        .collect();
    names.sort();
    for path in names {
        let frame = std::fs::read(&path).unwrap();
        let mut i = 0;
        while i + HEADER_LEN <= frame.len() {
            if let Ok(header) = validate(&frame[i..]) {
                let end = i + header.total_len();
                out.push(frame[i..end].to_vec());
                i = end;
            } else {
                i += 1;
            }
        }
    }
    assert!(out.len() >= 5, "no record batches found in the corpus");
    out
}

fn mutate(rng: &mut fastrand::Rng, batch: &[u8]) -> Vec<u8> {
    let mut b = batch.to_vec();
    for _ in 0..1 + rng.usize(..3) {
        let len = b.len();
        match rng.usize(..6) {
            0 if len > 0 => {
                let i = rng.usize(..len);
                b[i] ^= 1 << rng.usize(..8);
            }
            1 => b.truncate(rng.usize(..=len)),
            2 => {
                for _ in 0..rng.usize(..80) {
                    b.push(rng.u8(..));
                }
            }
            3 if len >= HEADER_LEN => {
                // A header field made extreme: length, count, offset delta.
                let at = [8usize, 23, 57][rng.usize(..3)];
                let v = [0x7fff_ffffu32, 0xffff_ffff, 0, 1][rng.usize(..4)];
                b[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
            4 => {
                // Two batches back to back, the second one damaged or not.
                let copy = b.clone();
                b.extend_from_slice(&copy);
            }
            _ => {}
        }
    }
    b
}

/// The batches with their base offsets (the first 8 bytes of each, which
/// the log assigns) zeroed.
fn without_base_offsets(batches: &[u8]) -> Vec<u8> {
    let mut out = batches.to_vec();
    let mut pos = 0;
    while pos + HEADER_LEN <= out.len() {
        let len = validate(&out[pos..])
            .expect("stored batches are valid")
            .total_len();
        out[pos..pos + 8].fill(0);
        pos += len;
    }
    out
}

#[test]
fn mutated_client_batches_are_refused_or_stored_intact() {
    let seeds = seeds();
    let secs: u64 = std::env::var("STRATA_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let rounds = if secs > 0 { usize::MAX } else { 3000 };
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut rng = fastrand::Rng::with_seed(0x0bad_5eed);
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 256 * 1024,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config.clone(), true, 0).unwrap();
    let mut stored: Vec<(Offset, Vec<u8>)> = Vec::new();
    let (mut accepted, mut refused) = (0u64, 0u64);
    for round in 0..rounds {
        let seed = &seeds[round % seeds.len()];
        let mut data = mutate(&mut rng, seed);
        let before = log.log_end_offset();
        let original = data.clone();
        match log.append(&mut data, 1_000_000) {
            Ok(info) if info.duplicate => {
                // A repeat of an idempotent producer's batch: answered with
                // the original offsets, not written again.
                assert_eq!(
                    log.log_end_offset(),
                    before,
                    "round {round}: a duplicate was written"
                );
            }
            Ok(info) => {
                accepted += 1;
                // An accepted append is the batches given, offsets rewritten.
                let read = log.read(info.base_offset, usize::MAX, true).unwrap();
                assert_eq!(read.records.len(), original.len(), "round {round}");
                assert_eq!(
                    without_base_offsets(&read.records),
                    without_base_offsets(&original),
                    "round {round}: stored bytes differ beyond the base offsets"
                );
                stored.push((info.base_offset, read.records.to_vec()));
            }
            Err(_) => {
                refused += 1;
                assert_eq!(
                    log.log_end_offset(),
                    before,
                    "round {round}: a refused append moved the log"
                );
            }
        }
        if secs > 0 && Instant::now() >= deadline {
            break;
        }
    }
    let end = log.log_end_offset();
    drop(log);

    // A crash-style reopen recovers every batch and keeps them all.
    let log = Log::open(dir.path(), config, false, 0).unwrap();
    assert_eq!(log.log_end_offset(), end);
    for (offset, bytes) in &stored {
        let read = log.read(*offset, bytes.len(), true).unwrap();
        assert_eq!(
            &read.records[..bytes.len()],
            &bytes[..],
            "offset {offset:?} after recovery"
        );
    }
    println!(
        "storage mutation fuzzing: {} seeds, {accepted} mutated appends accepted, {refused} refused, {} records stored",
        seeds.len(),
        end.0
    );
    assert!(refused > 0 && accepted > 0);
}
