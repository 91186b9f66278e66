//! Record batches for tests (the `testing` feature, and this crate's own
//! tests): the one builder the storage and tiering tests share. The batches
//! are valid v2 batches as far as the log checks them (header, lengths,
//! CRC); the records area is opaque bytes, which the log never decodes.
//! Tests that need records a client can decode encode them with a Kafka
//! client library instead.

use crate::batch::{compute_crc, HEADER_LEN};

/// Builds one v2 record batch.
#[derive(Clone, Debug)]
pub struct BatchBuilder {
    records: i32,
    timestamp: i64,
    payload: usize,
    producer: (i64, i16, i32),
}

impl BatchBuilder {
    /// A batch of `records` records, timestamp 0, no payload, not from an
    /// idempotent producer (producer id, epoch and sequence -1).
    pub fn new(records: i32) -> BatchBuilder {
        BatchBuilder {
            records,
            timestamp: 0,
            payload: 0,
            producer: (-1, -1, -1),
        }
    }

    /// The batch's first and largest timestamp.
    pub fn timestamp(mut self, timestamp: i64) -> BatchBuilder {
        self.timestamp = timestamp;
        self
    }

    /// Bytes in the (opaque) records area.
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

    pub fn build(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN + self.payload];
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[16] = 2;
        b[23..27].copy_from_slice(&(self.records - 1).to_be_bytes());
        b[27..35].copy_from_slice(&self.timestamp.to_be_bytes());
        b[35..43].copy_from_slice(&self.timestamp.to_be_bytes());
        b[43..51].copy_from_slice(&self.producer.0.to_be_bytes());
        b[51..53].copy_from_slice(&self.producer.1.to_be_bytes());
        b[53..57].copy_from_slice(&self.producer.2.to_be_bytes());
        b[57..61].copy_from_slice(&self.records.to_be_bytes());
        for (i, x) in b[HEADER_LEN..].iter_mut().enumerate() {
            *x = i as u8;
        }
        let crc = compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }
}
