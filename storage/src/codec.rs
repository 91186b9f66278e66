//! The record-batch codecs (Kafka's gzip, snappy, lz4 and zstd), for the
//! two places that open a batch's records area: broker-side recompression
//! and the log cleaner. Decompression is bounded, since the bytes come from
//! a client: a records area may not decompress to more than a limit, and
//! snappy's claimed block sizes are checked before anything is allocated.

use std::borrow::Cow;
use std::io::{Read, Write};

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
    pub fn from_id(id: u8) -> Option<Codec> {
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

/// Compression levels (Kafka's `compression.gzip.level`,
/// `compression.lz4.level`, `compression.zstd.level`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Levels {
    /// -1: the codec's default.
    pub gzip: i32,
    pub lz4: u32,
    pub zstd: i32,
}

impl Default for Levels {
    /// Kafka's defaults.
    fn default() -> Levels {
        Levels {
            gzip: -1,
            lz4: 9,
            zstd: 3,
        }
    }
}

/// Why a records area could not be decompressed or compressed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    #[error("records decompress to more than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("could not {what} the records: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed snappy data: {0}")]
    Snappy(String),
}

/// Reads at most `limit` bytes from `r`; more is an error.
fn bounded(mut r: impl Read, limit: usize) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    (&mut r)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|source| CodecError::Io {
            what: "decompress",
            source,
        })?;
    if out.len() > limit {
        return Err(CodecError::TooLarge { limit });
    }
    Ok(out)
}

/// The records area `data`, compressed with `codec`, decompressed into at
/// most `limit` bytes (an uncompressed area is borrowed, not copied).
pub fn decompress(codec: Codec, data: &[u8], limit: usize) -> Result<Cow<'_, [u8]>, CodecError> {
    let io = |source| CodecError::Io {
        what: "decompress",
        source,
    };
    Ok(Cow::Owned(match codec {
        Codec::None if data.len() > limit => return Err(CodecError::TooLarge { limit }),
        Codec::None => return Ok(Cow::Borrowed(data)),
        Codec::Gzip => bounded(flate2::read::GzDecoder::new(data), limit)?,
        Codec::Lz4 => bounded(lz4::Decoder::new(data).map_err(io)?, limit)?,
        Codec::Zstd => bounded(zstd::stream::read::Decoder::new(data).map_err(io)?, limit)?,
        Codec::Snappy => unsnappy(data, limit)?,
    }))
}

/// The xerial framing Kafka's Java clients write: this magic, a version and
/// a compatible version, then blocks each with a 4-byte length.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER: &[u8] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
const XERIAL_BLOCK: usize = 32 * 1024;

/// Xerial-framed snappy, or one raw snappy block.
fn unsnappy(data: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    let bad = |e: snap::Error| CodecError::Snappy(e.to_string());
    let mut out = Vec::new();
    let block = |b: &[u8], out: &mut Vec<u8>| -> Result<(), CodecError> {
        let n = snap::raw::decompress_len(b).map_err(bad)?;
        if out.len() + n > limit {
            return Err(CodecError::TooLarge { limit });
        }
        let start = out.len();
        out.resize(start + n, 0);
        snap::raw::Decoder::new()
            .decompress(b, &mut out[start..])
            .map_err(bad)?;
        Ok(())
    };
    if !data.starts_with(XERIAL_MAGIC) {
        block(data, &mut out)?;
        return Ok(out);
    }
    let mut pos = XERIAL_HEADER.len();
    while pos < data.len() {
        let len = data
            .get(pos..pos + 4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize)
            .ok_or_else(|| CodecError::Snappy("truncated block length".into()))?;
        pos += 4;
        let b = data
            .get(pos..pos.saturating_add(len))
            .ok_or_else(|| CodecError::Snappy("truncated block".into()))?;
        block(b, &mut out)?;
        pos += len;
    }
    Ok(out)
}

/// `plain` compressed with `codec` at `levels`.
pub fn compress(codec: Codec, plain: &[u8], levels: Levels) -> Result<Vec<u8>, CodecError> {
    let io = |source| CodecError::Io {
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
            // Xerial framing, as Kafka's own clients write snappy batches.
            let mut out = XERIAL_HEADER.to_vec();
            let mut encoder = snap::raw::Encoder::new();
            for chunk in plain.chunks(XERIAL_BLOCK) {
                let block = encoder
                    .compress_vec(chunk)
                    .map_err(|e| CodecError::Snappy(e.to_string()))?;
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_and_bombs_are_refused() {
        let plain: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let packed = compress(codec, &plain, Levels::default()).unwrap();
            assert_eq!(
                decompress(codec, &packed, 1 << 20).unwrap(),
                plain,
                "{codec:?}"
            );
            assert!(matches!(
                decompress(codec, &packed, 50_000),
                Err(CodecError::TooLarge { .. })
            ));
        }
        // A raw snappy block claiming gigabytes allocates nothing.
        let mut claim = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
        claim.extend_from_slice(&[0; 8]);
        assert!(decompress(Codec::Snappy, &claim, 1 << 20).is_err());
    }
}
