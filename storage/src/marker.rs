//! Transaction markers: the control batches a transaction coordinator
//! writes to every partition of a transaction when it ends, one record whose
//! key says COMMIT or ABORT (Kafka's `EndTransactionMarker`).
//!
//! ```text
//! control batch: a v2 batch, attributes CONTROL | TRANSACTIONAL, the
//!   producer's id and epoch, base sequence -1, one uncompressed record:
//!   key   = version (i16, 0), type (i16: 0 ABORT, 1 COMMIT)
//!   value = version (i16, 0), coordinator epoch (i32)
//! ```

use crate::batch::{self, BatchHeader, CONTROL_FLAG, HEADER_LEN, TRANSACTIONAL_FLAG};
use crate::record;

/// How a transaction ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Marker {
    Abort,
    Commit,
}

impl Marker {
    fn code(self) -> i16 {
        match self {
            Marker::Abort => 0,
            Marker::Commit => 1,
        }
    }
}

/// A control batch for `marker` of producer `producer_id` at `epoch`, base
/// offset 0 (the append assigns it), with a valid CRC.
pub fn control_batch(
    producer_id: i64,
    epoch: i16,
    marker: Marker,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Vec<u8> {
    let mut rec_body = Vec::new();
    rec_body.push(0u8); // record attributes
    record::put_varint(&mut rec_body, 0); // timestamp delta
    record::put_varint(&mut rec_body, 0); // offset delta
    let mut key = 0i16.to_be_bytes().to_vec();
    key.extend_from_slice(&marker.code().to_be_bytes());
    record::put_varint(&mut rec_body, key.len() as i64);
    rec_body.extend_from_slice(&key);
    let mut value = 0i16.to_be_bytes().to_vec();
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    record::put_varint(&mut rec_body, value.len() as i64);
    rec_body.extend_from_slice(&value);
    record::put_varint(&mut rec_body, 0); // headers
    let mut records = Vec::new();
    record::put_varint(&mut records, rec_body.len() as i64);
    records.extend_from_slice(&rec_body);

    let mut out = Vec::with_capacity(HEADER_LEN + records.len());
    out.extend_from_slice(&0i64.to_be_bytes());
    let length = (HEADER_LEN - batch::LOG_OVERHEAD + records.len()) as i32;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, set below
    out.extend_from_slice(&(CONTROL_FLAG | TRANSACTIONAL_FLAG).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&producer_id.to_be_bytes());
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    out.extend_from_slice(&1i32.to_be_bytes()); // record count
    out.extend_from_slice(&records);
    let crc = batch::compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// The marker a control batch carries, `None` when `batch` is not one or
/// its record cannot be read.
pub fn parse(header: &BatchHeader, batch: &[u8]) -> Option<Marker> {
    if header.attributes & CONTROL_FLAG == 0 || header.compression() != 0 {
        return None;
    }
    let records = record::records(batch.get(HEADER_LEN..)?, header.record_count).ok()?;
    let key = records.first()?.key?;
    match i16::from_be_bytes(key.get(2..4)?.try_into().ok()?) {
        0 => Some(Marker::Abort),
        1 => Some(Marker::Commit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_batch_is_valid_and_says_what_it_marks() {
        for m in [Marker::Abort, Marker::Commit] {
            let b = control_batch(42, 3, m, 0, 1_700_000_000_000);
            let h = batch::validate(&b).unwrap();
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.record_count),
                (42, 3, 1)
            );
            assert_eq!(parse(&h, &b), Some(m));
        }
    }
}
