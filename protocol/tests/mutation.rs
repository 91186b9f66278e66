//! Mutation fuzzing of request decoding, in the normal suite.
//!
//! The seeds in `tests/corpus/` are request frames captured from real
//! clients (confluent-kafka and kafka-python producers, consumer groups and
//! admin calls, kcat) talking to Strata, one file per frame named
//! `KEY-vVERSION-HASH.bin`. Each round mutates a seed (bit flips, byte
//! overwrites with boundary values, truncation, extension, splices of two
//! seeds, and varint/length fields smashed to huge values) and decodes it.
//! The properties: `decode_request` returns (it never hangs), the decoder
//! never panics (the guard refuses what would make it), and no single
//! allocation during a decode is larger than a bound proportional to the
//! frame, so that no length field read from the wire sizes an allocation.
//!
//! The suite runs a few thousand rounds; longer runs on demand:
//!
//! ```sh
//! STRATA_FUZZ_SECS=3600 cargo test --release -p strata-protocol --test mutation -- --nocapture
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_protocol::{decode_request, ProtocolError};

/// The system allocator, recording the largest single allocation made by
/// the current thread while tracking is on.
struct Tracking;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the thread-local may be gone while a thread exits.
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping touches only const-initialized thread-locals, which do not
// allocate.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's layout contract is passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// The largest single allocation `f` makes on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    (out, LARGEST.with(|l| l.get()))
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 30, "the corpus is missing");
    seeds
}

/// Values that make length and count fields interesting.
const BOUNDARY: &[u8] = &[0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];

fn mutate(rng: &mut fastrand::Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.usize(..4) {
        let len = b.len();
        match rng.usize(..8) {
            0 if len > 0 => {
                let i = rng.usize(..len);
                b[i] ^= 1 << rng.usize(..8);
            }
            1 if len > 0 => {
                let i = rng.usize(..len);
                b[i] = BOUNDARY[rng.usize(..BOUNDARY.len())];
            }
            2 => b.truncate(rng.usize(..=len)),
            3 => {
                let extra = rng.usize(..64);
                for _ in 0..extra {
                    b.push(rng.u8(..));
                }
            }
            4 if len > 0 => {
                // A 32-bit length or count made huge or negative.
                let i = rng.usize(..len);
                let value: [u8; 4] = match rng.usize(..3) {
                    0 => 0x7fff_ffffu32.to_be_bytes(),
                    1 => 0xffff_ffffu32.to_be_bytes(),
                    _ => 0x0010_0000u32.to_be_bytes(),
                };
                for (k, v) in value.iter().enumerate() {
                    if let Some(x) = b.get_mut(i + k) {
                        *x = *v;
                    }
                }
            }
            5 if len > 0 => {
                // A varint (compact length) made long: continuation bytes.
                let i = rng.usize(..len);
                for k in 0..5 {
                    if let Some(x) = b.get_mut(i + k) {
                        *x = if k < 4 { 0xff } else { 0x0f };
                    }
                }
            }
            6 if !other.is_empty() => {
                // Splice: this seed's head, another's tail.
                let cut = rng.usize(..=len);
                let from = rng.usize(..other.len());
                b.truncate(cut);
                b.extend_from_slice(&other[from..]);
            }
            _ if len > 8 => {
                // Keep the header, shuffle a body range.
                let i = 8 + rng.usize(..len - 8);
                let j = 8 + rng.usize(..len - 8);
                b.swap(i, j);
            }
            _ => {}
        }
    }
    b
}

/// The largest single allocation a decode may make: the frame copied a few
/// times, and element vectors whose capacity follows the bytes actually
/// present (a struct per wire byte at most), never a count read from them.
fn allocation_bound(frame_len: usize) -> usize {
    256 * frame_len + (1 << 20)
}

#[test]
fn mutated_real_requests_never_panic_hang_or_allocate_from_lengths() {
    let seeds = corpus();
    let secs: u64 = std::env::var("STRATA_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let rounds_per_seed = if secs > 0 { usize::MAX } else { 150 };
    let seed = std::env::var("STRATA_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_cafe_f00d_u64);
    let mut rng = fastrand::Rng::with_seed(seed);
    let deadline = Instant::now() + Duration::from_secs(secs);

    // The seeds themselves decode.
    for (name, frame) in &seeds {
        decode_request(Bytes::from(frame.clone()))
            .unwrap_or_else(|e| panic!("seed {name} does not decode: {e}"));
    }

    let (mut rounds, mut accepted, mut largest_ratio) = (0u64, 0u64, 0f64);
    'outer: for _ in 0..rounds_per_seed {
        for (i, (name, frame)) in seeds.iter().enumerate() {
            let other = &seeds[(i + 1 + rng.usize(..seeds.len() - 1)) % seeds.len()].1;
            let state = rng.get_seed();
            let input = mutate(&mut rng, frame, other);
            let len = input.len();
            let (result, largest) =
                largest_allocation(|| decode_request(Bytes::from(input.clone())));
            rounds += 1;
            match &result {
                Ok(_) => accepted += 1,
                Err(ProtocolError::Malformed { reason, .. }) if reason.contains("panicked") => {
                    panic!(
                        "the decoder panicked on a mutation of {name} (rng state {state}): {:02x?}",
                        input
                    )
                }
                Err(_) => {}
            }
            assert!(
                largest <= allocation_bound(len),
                "decoding a {len}-byte mutation of {name} allocated {largest} bytes at once \
                 (rng state {state}): {input:02x?}"
            );
            largest_ratio = largest_ratio.max(largest as f64 / len.max(1) as f64);
            if secs > 0 && Instant::now() >= deadline {
                break 'outer;
            }
        }
    }
    println!(
        "mutation fuzzing: {rounds} decodes of mutated frames from {} seeds, {accepted} accepted, \
         largest allocation {largest_ratio:.1}x its frame",
        seeds.len()
    );
}
