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

use std::io::{Read, Write};

use bytes::BytesMut;
use kafka_protocol::compression::{Compressor, Snappy};
use strata_storage::batch::{with_records, BatchHeader, HEADER_LEN};

/// A codec by its id in a batch's attributes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Codec {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Codec {
    /// The codec a topic's `compression.type` asks for; `None` for
    /// `producer`, which keeps whatever the producer sent.
    pub fn for_topic(compression_type: &str) -> Option<Codec> {
        Some(match compression_type {
            "uncompressed" => Codec::None,
            "gzip" => Codec::Gzip,
            "snappy" => Codec::Snappy,
            "lz4" => Codec::Lz4,
            "zstd" => Codec::Zstd,
            _ => return None,
        })
    }

    fn from_id(id: u8) -> Option<Codec> {
        Some(match id {
            0 => Codec::None,
            1 => Codec::Gzip,
            2 => Codec::Snappy,
            3 => Codec::Lz4,
            4 => Codec::Zstd,
            _ => return None,
        })
    }
}

/// The topic's levels (`compression.gzip.level`, `compression.lz4.level`,
/// `compression.zstd.level`).
#[derive(Copy, Clone, Debug)]
pub struct Levels {
    pub gzip: i32,
    pub lz4: u32,
    pub zstd: i32,
}

/// Why a batch could not be recompressed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecompressError {
    #[error("record batch is malformed: {0}")]
    Malformed(String),
    #[error("record batch decompresses to more than {limit} bytes (socket.request.max.bytes)")]
    TooLarge { limit: usize },
    #[error("could not {what} the record batch: {source}")]
    Codec {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
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
            let plain = decompress(source, &batch[HEADER_LEN..], limit)?;
            check_records(&plain, header.record_count)?;
            let packed = compress(target, &plain, levels)?;
            let rebuilt = with_records(batch, target as u8, &packed);
            let o = out.get_or_insert_with(|| BytesMut::from(&records[..pos]));
            o.extend_from_slice(&rebuilt);
        }
        pos = end;
    }
    Ok(out)
}

/// Reads at most `limit` bytes from `r`; more is an error.
fn bounded(mut r: impl Read, limit: usize, what: &'static str) -> Result<Vec<u8>, RecompressError> {
    let mut out = Vec::new();
    (&mut r)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|source| RecompressError::Codec { what, source })?;
    if out.len() > limit {
        return Err(RecompressError::TooLarge { limit });
    }
    Ok(out)
}

fn decompress(codec: Codec, data: &[u8], limit: usize) -> Result<Vec<u8>, RecompressError> {
    const WHAT: &str = "decompress";
    match codec {
        Codec::None => Ok(data.to_vec()),
        Codec::Gzip => bounded(flate2::read::GzDecoder::new(data), limit, WHAT),
        Codec::Lz4 => {
            let d = lz4::Decoder::new(data)
                .map_err(|source| RecompressError::Codec { what: WHAT, source })?;
            bounded(d, limit, WHAT)
        }
        Codec::Zstd => {
            let d = zstd::stream::read::Decoder::new(data)
                .map_err(|source| RecompressError::Codec { what: WHAT, source })?;
            bounded(d, limit, WHAT)
        }
        Codec::Snappy => unsnappy(data, limit),
    }
}

/// The xerial framing Kafka's Java clients write (a magic header, then
/// blocks each with a 4-byte length), or one raw snappy block.
fn unsnappy(data: &[u8], limit: usize) -> Result<Vec<u8>, RecompressError> {
    const MAGIC: &[u8] = b"\x82SNAPPY\x00";
    let bad = |e: snap::Error| RecompressError::Codec {
        what: "decompress",
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    };
    let mut out = Vec::new();
    let block = |b: &[u8], out: &mut Vec<u8>| -> Result<(), RecompressError> {
        let n = snap::raw::decompress_len(b).map_err(bad)?;
        if out.len() + n > limit {
            return Err(RecompressError::TooLarge { limit });
        }
        let start = out.len();
        out.resize(start + n, 0);
        snap::raw::Decoder::new()
            .decompress(b, &mut out[start..])
            .map_err(bad)?;
        Ok(())
    };
    if !data.starts_with(MAGIC) {
        block(data, &mut out)?;
        return Ok(out);
    }
    // Magic (8 bytes), then a version and a compatible version (4 each).
    let mut pos = 16;
    while pos < data.len() {
        let len = data
            .get(pos..pos + 4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or_else(|| RecompressError::Malformed("truncated snappy block length".into()))?;
        pos += 4;
        let b = data
            .get(pos..pos.saturating_add(len))
            .ok_or_else(|| RecompressError::Malformed("truncated snappy block".into()))?;
        block(b, &mut out)?;
        pos += len;
    }
    Ok(out)
}

fn compress(codec: Codec, plain: &[u8], levels: Levels) -> Result<Vec<u8>, RecompressError> {
    let io = |source| RecompressError::Codec {
        what: "compress",
        source,
    };
    match codec {
        Codec::None => Ok(plain.to_vec()),
        Codec::Gzip => {
            let level = if levels.gzip < 0 {
                flate2::Compression::default()
            } else {
                flate2::Compression::new(levels.gzip as u32)
            };
            let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
            e.write_all(plain).map_err(io)?;
            e.finish().map_err(io)
        }
        Codec::Lz4 => {
            let mut e = lz4::EncoderBuilder::new()
                .level(levels.lz4)
                .build(Vec::new())
                .map_err(io)?;
            e.write_all(plain).map_err(io)?;
            let (out, result) = e.finish();
            result.map_err(io)?;
            Ok(out)
        }
        // One-shot compression writes the content size into the frame
        // header, which some decoders (the zstd-codec package KafkaJS users
        // register, for one) need.
        Codec::Zstd => zstd::bulk::compress(plain, levels.zstd).map_err(io),
        Codec::Snappy => {
            let mut out = BytesMut::new();
            Snappy::compress(&mut out, |buf: &mut BytesMut| {
                buf.extend_from_slice(plain);
                Ok(())
            })
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
            Ok(out.to_vec())
        }
    }
}

/// A zigzag varint's byte length and value, as records use them.
fn varint(buf: &[u8], pos: usize) -> Option<(usize, i64)> {
    let mut raw = 0u64;
    for (i, shift) in (0..70).step_by(7).enumerate() {
        let b = *buf.get(pos + i)?;
        raw |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some((i + 1, ((raw >> 1) as i64) ^ -((raw & 1) as i64)));
        }
    }
    None
}

/// The records area holds exactly `count` length-prefixed records.
fn check_records(plain: &[u8], count: i32) -> Result<(), RecompressError> {
    let mut pos = 0;
    for i in 0..count {
        let (n, len) = varint(plain, pos)
            .ok_or_else(|| RecompressError::Malformed(format!("record {i} has no length")))?;
        let len = usize::try_from(len)
            .map_err(|_| RecompressError::Malformed(format!("record {i} has a negative length")))?;
        pos = pos
            .checked_add(n + len)
            .filter(|&p| p <= plain.len())
            .ok_or_else(|| RecompressError::Malformed(format!("record {i} runs past the batch")))?;
    }
    if pos != plain.len() {
        return Err(RecompressError::Malformed(format!(
            "{} bytes after the batch's {count} records",
            plain.len() - pos
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::compression::{Gzip, Lz4, Snappy as KSnappy, Zstd};
    use kafka_protocol::records::{Compression, RecordBatchDecoder};
    use strata_storage::batch::validate;
    use strata_storage::testing::{BatchBuilder, Compress, TestRecord};

    const LEVELS: Levels = Levels {
        gzip: -1,
        lz4: 9,
        zstd: 3,
    };

    fn with<C: Compressor<BytesMut, BufMut = BytesMut>>(data: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        C::compress(&mut out, |buf: &mut BytesMut| {
            buf.extend_from_slice(data);
            Ok(())
        })
        .unwrap();
        out.to_vec()
    }

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
        let codec: Option<Compress> = match compression {
            Compression::None => None,
            Compression::Gzip => Some((1, with::<Gzip>)),
            Compression::Snappy => Some((2, with::<KSnappy>)),
            Compression::Lz4 => Some((3, with::<Lz4>)),
            Compression::Zstd => Some((4, with::<Zstd>)),
        };
        match codec {
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
        let packed = zstd::stream::encode_all(&zeros[..], 3).unwrap();
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
