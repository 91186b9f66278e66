//! Record batches for tests (the `testing` feature, and this crate's own
//! tests): the one builder every test of the workspace uses to make v2
//! record batches. It writes the batch format itself (FORMAT.md): a header
//! with its CRC-32C, then either real records, which any Kafka client
//! decodes, or an opaque records area of a given size, which is all the log
//! looks at. Compressed batches take the codec from the caller, as this
//! crate has none.

use crate::batch::{compute_crc, HEADER_LEN};
use crate::record::put_varint as varint;

/// One record of a batch being built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Milliseconds after the batch's first timestamp.
    pub timestamp_delta: i64,
}

/// Compresses a records area: `(codec id, the function)`, codec ids as the
/// batch attributes number them (1 gzip, 2 snappy, 3 lz4, 4 zstd).
pub type Compress = (u8, fn(&[u8]) -> Vec<u8>);

/// Builds one v2 record batch.
#[derive(Clone, Debug)]
pub struct BatchBuilder {
    count: i32,
    base_offset: i64,
    timestamp: i64,
    payload: usize,
    records: Option<Vec<TestRecord>>,
    producer: (i64, i16, i32),
    compress: Option<Compress>,
    transactional: bool,
}

fn bytes_field(out: &mut Vec<u8>, b: &Option<Vec<u8>>) {
    match b {
        Some(b) => {
            varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        None => varint(out, -1),
    }
}

impl BatchBuilder {
    /// A batch of `count` records with an opaque records area, timestamp
    /// 0, not from an idempotent producer (producer id, epoch and sequence
    /// -1).
    pub fn new(count: i32) -> BatchBuilder {
        BatchBuilder {
            count,
            base_offset: 0,
            timestamp: 0,
            payload: 0,
            records: None,
            producer: (-1, -1, -1),
            compress: None,
            transactional: false,
        }
    }

    /// A batch of these records, encoded as clients encode them.
    pub fn records(records: Vec<TestRecord>) -> BatchBuilder {
        BatchBuilder {
            count: records.len() as i32,
            records: Some(records),
            ..BatchBuilder::new(0)
        }
    }

    /// The batch's base offset, as a log would assign it.
    pub fn base_offset(mut self, offset: i64) -> BatchBuilder {
        self.base_offset = offset;
        self
    }

    /// The batch's first timestamp.
    pub fn timestamp(mut self, timestamp: i64) -> BatchBuilder {
        self.timestamp = timestamp;
        self
    }

    /// Bytes in the opaque records area (for batches without records).
    pub fn payload(mut self, bytes: usize) -> BatchBuilder {
        self.payload = bytes;
        self
    }

    /// From an idempotent producer: its id, epoch and the batch's first
    /// sequence number.
    pub fn producer(mut self, id: i64, epoch: i16, first_sequence: i32) -> BatchBuilder {
        self.producer = (id, epoch, first_sequence);
        self
    }

    /// Part of its producer's transaction (attributes bit 4).
    pub fn transactional(mut self) -> BatchBuilder {
        self.transactional = true;
        self
    }

    /// Compresses the records with the caller's codec.
    pub fn compressed(mut self, compress: Compress) -> BatchBuilder {
        self.compress = Some(compress);
        self
    }

    /// The records area and the largest timestamp delta.
    fn body(&self) -> (Vec<u8>, i64) {
        let Some(records) = &self.records else {
            let opaque = (0..self.payload).map(|i| i as u8).collect();
            return (opaque, 0);
        };
        let mut out = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let mut rec = vec![0u8]; // attributes
            varint(&mut rec, r.timestamp_delta);
            varint(&mut rec, i as i64);
            bytes_field(&mut rec, &r.key);
            bytes_field(&mut rec, &r.value);
            varint(&mut rec, 0); // no headers
            varint(&mut out, rec.len() as i64);
            out.extend_from_slice(&rec);
        }
        let max_delta = records.iter().map(|r| r.timestamp_delta).max().unwrap_or(0);
        (out, max_delta)
    }

    pub fn build(&self) -> Vec<u8> {
        let (mut body, max_delta) = self.body();
        let mut attributes: i16 = 0;
        if let Some((codec, compress)) = self.compress {
            body = compress(&body);
            attributes |= codec as i16;
        }
        if self.transactional {
            attributes |= crate::batch::TRANSACTIONAL_FLAG;
        }
        let mut b = vec![0u8; HEADER_LEN];
        b.extend_from_slice(&body);
        b[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        // Clients leave the partition leader epoch unknown.
        let leader_epoch: i32 = if self.records.is_some() { -1 } else { 0 };
        b[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
        b[16] = 2;
        b[21..23].copy_from_slice(&attributes.to_be_bytes());
        b[23..27].copy_from_slice(&(self.count - 1).to_be_bytes());
        b[27..35].copy_from_slice(&self.timestamp.to_be_bytes());
        b[35..43].copy_from_slice(&(self.timestamp + max_delta).to_be_bytes());
        b[43..51].copy_from_slice(&self.producer.0.to_be_bytes());
        b[51..53].copy_from_slice(&self.producer.1.to_be_bytes());
        b[53..57].copy_from_slice(&self.producer.2.to_be_bytes());
        b[57..61].copy_from_slice(&self.count.to_be_bytes());
        let crc = compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }
}
