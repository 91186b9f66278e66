//! Broker-side compression, as Kafka gives effect to a topic's
//! `compression.type` when it names a codec: a produced batch with another
//! codec is decompressed and its records area compressed again with the
//! topic's codec and level. Only the records area changes: the records keep
//! their bytes (offset and timestamp deltas, keys, values, headers), and the
//! header keeps its producer id, epoch, base sequence and timestamps, so
//! idempotent producers stay deduplicated; the length and CRC are computed
//! afresh.
//!
//! The batch comes from a client, so decompression is bounded: a batch may
//! not decompress to more than a limit (the broker's
//! `socket.request.max.bytes`, the most an uncompressed request could
//! carry), and the records inside must be exactly as many as the header
//! says. Snappy is read block by block with each block's claimed length
//! checked before anything is allocated for it.

use bytes::BytesMut;
use strata_storage::batch::{with_records, BatchHeader, HEADER_LEN};
use strata_storage::codec::{self, Codec, CodecError, Levels};

/// The codec a topic's `compression.type` asks for; `None` for `producer`,
/// which keeps whatever the producer sent.
pub fn topic_codec(compression_type: &str) -> Option<Codec> {
    Some(match compression_type {
        "uncompressed" => Codec::None,
        "gzip" => Codec::Gzip,
        "snappy" => Codec::Snappy,
        "lz4" => Codec::Lz4,
        "zstd" => Codec::Zstd,
        _ => return None,
    })
}

/// Why a batch could not be recompressed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecompressError {
    #[error("record batch is malformed: {0}")]
    Malformed(String),
    #[error("record batch decompresses to more than {limit} bytes (socket.request.max.bytes)")]
    TooLarge { limit: usize },
    #[error("record batch could not be recompressed: {0}")]
    Codec(#[source] CodecError),
}

impl From<CodecError> for RecompressError {
    fn from(e: CodecError) -> RecompressError {
        match e {
            CodecError::TooLarge { limit } => RecompressError::TooLarge { limit },
            e => RecompressError::Codec(e),
        }
    }
}

/// Rewrites every batch in `records` whose codec is not `target`. Returns
/// `None` when every batch already has it (the bytes are used as they are).
pub fn recompress(
    records: &[u8],
    target: Codec,
    levels: Levels,
    limit: usize,
) -> Result<Option<BytesMut>, RecompressError> {
    let mut pos = 0;
    let mut out: Option<BytesMut> = None;
    while pos < records.len() {
        let header = BatchHeader::parse(&records[pos..])
            .map_err(|e| RecompressError::Malformed(e.to_string()))?;
        let end = pos
            .checked_add(header.total_len())
            .filter(|&e| e <= records.len())
            .ok_or_else(|| RecompressError::Malformed("batch longer than the request".into()))?;
        let batch = &records[pos..end];
        // The client's CRC is checked before the batch is rewritten, so that
        // a batch damaged on the way is refused rather than sealed under a
        // new checksum.
        strata_storage::batch::validate(batch)
            .map_err(|e| RecompressError::Malformed(e.to_string()))?;
        // Control batches (transaction markers) are never compressed.
        let control = header.attributes & 0x20 != 0;
        if control || header.compression() == target as u8 {
            if let Some(o) = out.as_mut() {
                o.extend_from_slice(batch);
            }
        } else {
            let source = Codec::from_id(header.compression()).ok_or_else(|| {
                RecompressError::Malformed(format!("unknown codec {}", header.compression()))
            })?;
            let plain = codec::decompress(source, &batch[HEADER_LEN..], limit)?;
            strata_storage::record::records(&plain, header.record_count)
                .map_err(RecompressError::Malformed)?;
            let packed = codec::compress(target, &plain, levels)?;
            let rebuilt = with_records(batch, target as u8, &packed);
            let o = out.get_or_insert_with(|| BytesMut::from(&records[..pos]));
            o.extend_from_slice(&rebuilt);
        }
        pos = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{Compression, RecordBatchDecoder};
    use strata_storage::batch::validate;
    use strata_storage::testing::{BatchBuilder, TestRecord};

    const LEVELS: Levels = Levels {
        gzip: -1,
        lz4: 9,
        zstd: 3,
    };

    fn batch(compression: Compression) -> Vec<u8> {
        let records = (0..5)
            .map(|i| TestRecord {
                key: Some(format!("k{i}").into_bytes()),
                value: Some(vec![b'v'; 80 + i]),
                timestamp_delta: i as i64,
            })
            .collect();
        let b = BatchBuilder::records(records)
            .producer(42, 3, 17)
            .timestamp(1_700_000_000_000);
        match crate::records::tests::kafka_codec(compression) {
            Some(c) => b.compressed(c).build(),
            None => b.build(),
        }
    }

    #[test]
    fn every_codec_to_every_codec_keeps_records_and_producer_state() {
        let codecs = [
            (Compression::None, Codec::None),
            (Compression::Gzip, Codec::Gzip),
            (Compression::Snappy, Codec::Snappy),
            (Compression::Lz4, Codec::Lz4),
            (Compression::Zstd, Codec::Zstd),
        ];
        for (from, _) in codecs {
            let original = batch(from);
            let mut plain = BytesMut::from(&original[..]);
            let want = RecordBatchDecoder::decode_all(&mut plain).unwrap();
            for (_, to) in codecs {
                let out = recompress(&original, to, LEVELS, 1 << 20).unwrap();
                let bytes = out.map(|b| b.to_vec()).unwrap_or_else(|| original.clone());
                let header = validate(&bytes).expect("a valid batch with its CRC");
                assert_eq!(header.compression(), to as u8, "{from:?} -> {to:?}");
                assert_eq!(
                    (
                        header.producer_id,
                        header.producer_epoch,
                        header.base_sequence
                    ),
                    (42, 3, 17)
                );
                let mut buf = BytesMut::from(&bytes[..]);
                let got = RecordBatchDecoder::decode_all(&mut buf).unwrap();
                assert_eq!(got[0].records, want[0].records, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn a_decompression_bomb_is_refused() {
        let zeros = vec![0u8; 4 << 20];
        let packed = codec::compress(Codec::Zstd, &zeros, LEVELS).unwrap();
        let b = batch(Compression::None);
        let bomb = with_records(&b, Codec::Zstd as u8, &packed);
        assert!(matches!(
            recompress(&bomb, Codec::Gzip, LEVELS, 1 << 20),
            Err(RecompressError::TooLarge { .. })
        ));
        // A raw snappy block claiming gigabytes allocates nothing.
        let mut claim = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
        claim.extend_from_slice(&[0; 8]);
        let lie = with_records(&b, Codec::Snappy as u8, &claim);
        assert!(recompress(&lie, Codec::Gzip, LEVELS, 1 << 20).is_err());
        // Records that do not match the count are malformed.
        let plain = vec![2, 0, 0];
        let short = with_records(&b, Codec::None as u8, &plain);
        assert!(matches!(
            recompress(&short, Codec::Zstd, LEVELS, 1 << 20),
            Err(RecompressError::Malformed(_))
        ));
    }
}
