//! Looking inside one stored record batch: the offset and timestamp of each
//! record, found by stepping over the records' length prefixes (after
//! decompressing), without building them. The batch was written by a client,
//! so nothing here sizes an allocation from a count inside it.

use bytes::Bytes;
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};
use strata_storage::batch::{BatchHeader, HEADER_LEN};
use strata_storage::Offset;

/// A zigzag-encoded varint, as records use them; `None` if malformed.
fn varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut raw = 0u64;
    for shift in (0..70).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        raw |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    None
}

/// The first record satisfying `wanted(timestamp, offset)` in the
/// uncompressed records area, as (timestamp, offset).
fn scan(
    records: &[u8],
    header: &BatchHeader,
    wanted: &dyn Fn(i64, i64) -> bool,
) -> Option<(i64, i64)> {
    let mut pos = 0;
    for _ in 0..header.record_count {
        let len = usize::try_from(varint(records, &mut pos)?).ok()?;
        let end = pos.checked_add(len)?;
        if end > records.len() {
            return None;
        }
        let mut p = pos + 1; // attributes
        let timestamp = header.base_timestamp.wrapping_add(varint(records, &mut p)?);
        let offset = header.base_offset + varint(records, &mut p)?;
        if wanted(timestamp, offset) {
            return Some((timestamp, offset));
        }
        pos = end;
    }
    None
}

/// Finds in `batch` the first record at or after offset `from` with a
/// timestamp `>= ts`, or with `max` the first record carrying the batch's
/// max timestamp. `from` is the log start: a batch may straddle it after
/// DeleteRecords, and records below it are gone for clients.
pub fn first_record_at_or_after(
    batch: &Bytes,
    ts: i64,
    max: bool,
    from: i64,
) -> Option<(i64, i64)> {
    let header = BatchHeader::parse(batch).ok()?;
    if header.is_log_append_time() {
        // Every record of the batch has the broker's append time.
        return Some((header.max_timestamp, header.base_offset.max(from)));
    }
    let target = if max { header.max_timestamp } else { ts };
    let wanted =
        move |t: i64, offset: i64| offset >= from && if max { t == target } else { t >= target };
    let mut area = batch.slice(HEADER_LEN..header.total_len().min(batch.len()));
    match header.compression() {
        0 => scan(&area, &header, &wanted),
        1 => Gzip::decompress(&mut area, |b: &mut Bytes| Ok(scan(b, &header, &wanted))).ok()?,
        2 => Snappy::decompress(&mut area, |b: &mut Bytes| Ok(scan(b, &header, &wanted))).ok()?,
        3 => Lz4::decompress(&mut area, |b: &mut Bytes| Ok(scan(b, &header, &wanted))).ok()?,
        4 => Zstd::decompress(&mut area, |b: &mut Bytes| Ok(scan(b, &header, &wanted))).ok()?,
        _ => None,
    }
}

/// [`first_record_at_or_after`] in the shape the tiered partition asks for
/// (its `RecordFinder`), with offsets as `Offset`.
pub fn find_record(batch: &Bytes, ts: i64, max: bool, from: Offset) -> Option<(i64, Offset)> {
    first_record_at_or_after(batch, ts, max, from.0).map(|(t, o)| (t, Offset(o)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::compression::Compressor;
    use kafka_protocol::records::Compression;
    use strata_storage::testing::{BatchBuilder, Compress, TestRecord};

    /// Compresses with kafka-protocol's codec `C`.
    fn with<C: Compressor<BytesMut, BufMut = BytesMut>>(data: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        C::compress(&mut out, |buf: &mut BytesMut| {
            buf.extend_from_slice(data);
            Ok(())
        })
        .unwrap();
        out.to_vec()
    }

    /// Records of 300 bytes with these timestamps, at offsets 100 on.
    fn batch(timestamps: &[i64], compression: Compression) -> Bytes {
        let records = timestamps
            .iter()
            .map(|&ts| TestRecord {
                key: None,
                value: Some(vec![b'x'; 300]),
                timestamp_delta: ts - timestamps[0],
            })
            .collect();
        let codec: Option<Compress> = match compression {
            Compression::None => None,
            Compression::Gzip => Some((1, with::<Gzip>)),
            Compression::Snappy => Some((2, with::<Snappy>)),
            Compression::Lz4 => Some((3, with::<Lz4>)),
            Compression::Zstd => Some((4, with::<Zstd>)),
        };
        let mut b = BatchBuilder::records(records)
            .base_offset(100)
            .timestamp(timestamps[0]);
        if let Some(c) = codec {
            b = b.compressed(c);
        }
        Bytes::from(b.build())
    }

    #[test]
    fn finds_records_by_timestamp_in_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            // Timestamps need not be ordered inside a batch.
            let b = batch(&[1000, 3000, 2000, 3000], c);
            assert_eq!(
                first_record_at_or_after(&b, 1500, false, i64::MIN),
                Some((3000, 101)),
                "{c:?}"
            );
            assert_eq!(
                first_record_at_or_after(&b, 0, false, i64::MIN),
                Some((1000, 100))
            );
            assert_eq!(first_record_at_or_after(&b, 3001, false, i64::MIN), None);
            assert_eq!(
                first_record_at_or_after(&b, 0, true, i64::MIN),
                Some((3000, 101))
            );
            assert_eq!(
                first_record_at_or_after(&b, 0, false, 101),
                Some((3000, 101)),
                "records below the log start are skipped"
            );
        }
    }

    #[test]
    fn survives_lying_counts() {
        let mut b = batch(&[1, 2], Compression::None).to_vec();
        // Claim two billion records: the scan stops at the end of the bytes.
        b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(
            first_record_at_or_after(&Bytes::from(b), 10, false, i64::MIN),
            None
        );
    }
}
