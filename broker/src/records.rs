//! Looking inside one stored record batch: the offset and timestamp of each
//! record, read with storage's codecs and records reader, without building
//! the records. The batch was written by a client, so decompression is
//! bounded and nothing sizes an allocation from a count inside it.

use bytes::Bytes;
use strata_storage::batch::{BatchHeader, HEADER_LEN};
use strata_storage::codec::{self, Codec};
use strata_storage::{record, Offset};

/// The most a stored batch's records may decompress to when looked into.
/// Stored batches passed `max.message.bytes` compressed; this bounds what a
/// compressed one can make the broker allocate.
const MAX_RECORDS_AREA: usize = 256 * 1024 * 1024;

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
    let area = batch.get(HEADER_LEN..header.total_len().min(batch.len()))?;
    let plain = codec::decompress(
        Codec::from_id(header.compression())?,
        area,
        MAX_RECORDS_AREA,
    )
    .ok()?;
    record::records(&plain, header.record_count)
        .ok()?
        .iter()
        .map(|r| {
            (
                header.base_timestamp.wrapping_add(r.timestamp_delta),
                header.base_offset + r.offset_delta,
            )
        })
        .find(|&(t, offset)| wanted(t, offset))
}

/// [`first_record_at_or_after`] in the shape the tiered partition asks for
/// (its `RecordFinder`), with offsets as `Offset`.
pub fn find_record(batch: &Bytes, ts: i64, max: bool, from: Offset) -> Option<(i64, Offset)> {
    first_record_at_or_after(batch, ts, max, from.0).map(|(t, o)| (t, Offset(o)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
    use kafka_protocol::records::Compression;
    use strata_storage::testing::{BatchBuilder, Compress, TestRecord};

    /// Compresses with kafka-protocol's codec `C`, as clients built on it
    /// write batches.
    fn with<C: Compressor<BytesMut, BufMut = BytesMut>>(data: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        C::compress(&mut out, |buf: &mut BytesMut| {
            buf.extend_from_slice(data);
            Ok(())
        })
        .unwrap();
        out.to_vec()
    }

    /// The batch builder's compressor for `compression`, with
    /// kafka-protocol's codecs (what clients built on it write).
    pub(crate) fn kafka_codec(compression: Compression) -> Option<Compress> {
        match compression {
            Compression::None => None,
            Compression::Gzip => Some((1, with::<Gzip>)),
            Compression::Snappy => Some((2, with::<Snappy>)),
            Compression::Lz4 => Some((3, with::<Lz4>)),
            Compression::Zstd => Some((4, with::<Zstd>)),
        }
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
        let codec = kafka_codec(compression);
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
