//! The fixed header of a Kafka v2 record batch ("magic 2"), parsed and
//! patched in place. Records inside a batch are never decoded here.
//!
//! ```text
//! offset  size  field
//!      0     8  base offset
//!      8     4  batch length (bytes after this field)
//!     12     4  partition leader epoch
//!     16     1  magic (2)
//!     17     4  CRC-32C of bytes 21..end
//!     21     2  attributes
//!     23     4  last offset delta
//!     27     8  base timestamp
//!     35     8  max timestamp
//!     43     8  producer id
//!     51     2  producer epoch
//!     53     4  base sequence
//!     57     4  record count
//!     61        records
//! ```

/// Bytes before the batch length field ends: base offset and length.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the whole fixed header.
pub const HEADER_LEN: usize = 61;

const MAGIC_POS: usize = 16;
const CRC_POS: usize = 17;
const ATTRIBUTES_POS: usize = 21;
const MAX_TIMESTAMP_POS: usize = 35;
const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
/// The attributes bit of control batches (transaction markers).
pub const CONTROL_FLAG: i16 = 0x20;
/// The attributes bit of batches written inside a transaction.
pub const TRANSACTIONAL_FLAG: i16 = 0x10;

/// Why a batch was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    #[error("batch header needs {needed} bytes but only {available} remain")]
    Truncated { needed: usize, available: usize },
    #[error("batch length {0} is smaller than the v2 header")]
    BadLength(i32),
    #[error("unsupported magic byte {0}: only v2 record batches are accepted")]
    BadMagic(i8),
    #[error("CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("record count {count} does not match last offset delta {last_offset_delta}")]
    BadRecordCount { count: i32, last_offset_delta: i32 },
}

/// The fields of a v2 batch header that the log needs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

impl BatchHeader {
    /// Parses the header at the start of `buf`, checking only that the bytes
    /// are there and that the length and magic are plausible.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        let batch_length = be_i32(buf, 8);
        if (batch_length as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 {
            return Err(BatchError::BadLength(batch_length));
        }
        let magic = buf[MAGIC_POS] as i8;
        if magic != 2 {
            return Err(BatchError::BadMagic(magic));
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length,
            magic,
            crc: be_i32(buf, CRC_POS) as u32,
            attributes: be_i16(buf, ATTRIBUTES_POS),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_POS),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            record_count: be_i32(buf, 57),
        })
    }

    /// Bytes the whole batch occupies, header included.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> u8 {
        (self.attributes & 0x07) as u8
    }

    /// Whether the batch's timestamps are the broker's `LogAppendTime`.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_FLAG != 0
    }
}

/// Computes the CRC-32C a v2 batch must carry: over everything from the
/// attributes to the end.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_POS..])
}

/// Parses and fully validates one whole batch (`batch` is exactly the batch).
pub fn validate(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if batch.len() < header.total_len() {
        return Err(BatchError::Truncated {
            needed: header.total_len(),
            available: batch.len(),
        });
    }
    let computed = compute_crc(&batch[..header.total_len()]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    if header.record_count <= 0
        || header.last_offset_delta < 0
        || header.last_offset_delta < header.record_count - 1
    {
        return Err(BatchError::BadRecordCount {
            count: header.record_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok(header)
}

/// The length of the longest run of whole batches at the start of
/// `records` that fits in `limit` bytes; with `min_one_batch` the first batch
/// counts even when it is larger (KIP-74). Used to cut an answer assembled
/// from several reads to a request's byte limit without splitting a batch.
pub fn whole_batches_within(records: &[u8], limit: usize, min_one_batch: bool) -> usize {
    let mut end = 0;
    while end < records.len() {
        let Ok(header) = BatchHeader::parse(&records[end..]) else {
            break;
        };
        let next = end + header.total_len();
        if next > records.len() || (next > limit && !(end == 0 && min_one_batch)) {
            break;
        }
        end = next;
    }
    end
}

/// Writes a new base offset. The base offset is outside the CRC, so the
/// checksum stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Marks the batch as `LogAppendTime` stamped with `now_ms` and recomputes
/// its CRC, as Kafka does for topics with `message.timestamp.type=LogAppendTime`.
/// Readers take the max timestamp as every record's timestamp in that case.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = be_i16(batch, ATTRIBUTES_POS) | TIMESTAMP_TYPE_FLAG;
    batch[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
}

/// The attributes bit saying the batch's base timestamp is the time after
/// which its tombstones may be removed (Kafka's delete horizon, KIP-534).
pub const DELETE_HORIZON_FLAG: i16 = 0x40;

/// Changes [`rewrite`] makes to a batch header besides its records.
#[derive(Copy, Clone, Debug, Default)]
pub struct HeaderEdit {
    pub record_count: Option<i32>,
    /// A new base timestamp, with the delete-horizon flag set.
    pub delete_horizon_ms: Option<i64>,
}

/// The batch with another records area, codec and header edits; every other
/// header field is kept and the length and CRC computed for the new bytes.
pub fn rewrite(batch: &[u8], codec: u8, records: &[u8], edit: HeaderEdit) -> Vec<u8> {
    let mut out = with_records(batch, codec, records);
    if let Some(count) = edit.record_count {
        out[57..61].copy_from_slice(&count.to_be_bytes());
    }
    if let Some(horizon) = edit.delete_horizon_ms {
        out[27..35].copy_from_slice(&horizon.to_be_bytes());
        let attributes = be_i16(&out, ATTRIBUTES_POS) | DELETE_HORIZON_FLAG;
        out[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
    }
    let crc = compute_crc(&out);
    out[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

/// The same batch with another records area and codec (0 none, 1 gzip,
/// 2 snappy, 3 lz4, 4 zstd): every other header field (producer id, epoch,
/// base sequence, timestamps, record count) is kept, and the length and CRC
/// are computed for the new bytes. `batch` must start with a whole header.
pub fn with_records(batch: &[u8], codec: u8, records: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + records.len());
    out.extend_from_slice(&batch[..HEADER_LEN]);
    out.extend_from_slice(records);
    let length = (out.len() - LOG_OVERHEAD) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let attributes = (be_i16(batch, ATTRIBUTES_POS) & !0x07) | i16::from(codec & 0x07);
    out[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = compute_crc(&out);
    out[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use crate::testing::BatchBuilder;

    /// A batch of `count` opaque records of `payload` bytes in all.
    pub fn make_batch(count: i32, timestamp: i64, payload: usize) -> Vec<u8> {
        BatchBuilder::new(count)
            .timestamp(timestamp)
            .payload(payload)
            .build()
    }

    #[test]
    fn validates_and_rejects_flipped_bits() {
        let mut b = make_batch(3, 1000, 40);
        let h = validate(&b).unwrap();
        assert_eq!(h.record_count, 3);
        assert_eq!(h.total_len(), b.len());
        b[70] ^= 1;
        assert!(matches!(validate(&b), Err(BatchError::CrcMismatch { .. })));
    }

    #[test]
    fn rewrites_offset_and_append_time_keeping_crc_valid() {
        let mut b = make_batch(2, 1000, 10);
        set_base_offset(&mut b, 42);
        set_log_append_time(&mut b, 5000);
        let h = validate(&b).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.max_timestamp, 5000);
        assert!(h.is_log_append_time());
    }

    #[test]
    fn rejects_short_and_wrong_magic() {
        assert!(matches!(
            BatchHeader::parse(&[0; 10]),
            Err(BatchError::Truncated { .. })
        ));
        let mut b = make_batch(1, 0, 0);
        b[MAGIC_POS] = 1;
        assert!(matches!(validate(&b), Err(BatchError::BadMagic(1))));
    }
}
