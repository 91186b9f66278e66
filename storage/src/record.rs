//! The records inside a v2 batch's (decompressed) records area, as far as
//! the log needs them: each record's offset delta, key and whether its
//! value is null (a tombstone), and where its bytes are. Nothing here sizes
//! an allocation from a length inside the records.

/// One record of a records area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The record's attributes byte (unused by Kafka so far, kept as is).
    pub attributes: u8,
    pub offset_delta: i64,
    pub timestamp_delta: i64,
    pub key: Option<&'a [u8]>,
    /// The value is null: a tombstone in a compacted topic.
    pub tombstone: bool,
    /// The whole record, its length prefix included.
    pub bytes: &'a [u8],
    /// The record from its key on (key, value, headers): what stays the
    /// same when its timestamp delta is rewritten.
    pub tail: &'a [u8],
}

/// A zigzag varint appended to `out`.
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

impl RecordView<'_> {
    /// The record encoded again with another timestamp delta, appended to
    /// `out`.
    pub fn encode_with_timestamp_delta(
        &self,
        attributes: u8,
        timestamp_delta: i64,
        out: &mut Vec<u8>,
    ) {
        let mut body = Vec::with_capacity(self.tail.len() + 12);
        body.push(attributes);
        put_varint(&mut body, timestamp_delta);
        put_varint(&mut body, self.offset_delta);
        body.extend_from_slice(self.tail);
        put_varint(out, body.len() as i64);
        out.extend_from_slice(&body);
    }
}

/// A zigzag varint at `pos`, which moves past it; `None` if malformed.
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

/// A nullable byte field (varint length, -1 for null) at `pos`.
fn bytes_field<'a>(buf: &'a [u8], pos: &mut usize) -> Option<Option<&'a [u8]>> {
    let len = varint(buf, pos)?;
    if len < 0 {
        return Some(None);
    }
    let end = pos.checked_add(usize::try_from(len).ok()?)?;
    let b = buf.get(*pos..end)?;
    *pos = end;
    Some(Some(b))
}

/// A record's key, value and headers, parsed from its `tail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordBody<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// Each header's key (UTF-8 by Kafka's rules, kept as bytes) and value.
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

impl<'a> RecordView<'a> {
    /// The record's key, value and headers, for readers that need all of a
    /// record (the lake view); `None` when they are malformed. The header
    /// count is checked against the bytes left before anything is sized
    /// from it.
    pub fn body(&self) -> Option<RecordBody<'a>> {
        let tail = self.tail;
        let mut p = 0;
        let key = bytes_field(tail, &mut p)?;
        let value = bytes_field(tail, &mut p)?;
        let count = varint(tail, &mut p)?;
        // A header takes at least two bytes (two one-byte lengths).
        if count < 0 || count as usize > tail.len().saturating_sub(p) / 2 {
            return None;
        }
        let mut headers = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let k = bytes_field(tail, &mut p)?.unwrap_or_default();
            let v = bytes_field(tail, &mut p)?;
            headers.push((k, v));
        }
        Some(RecordBody {
            key,
            value,
            headers,
        })
    }
}

/// Every record of `plain`, which must hold exactly `count` of them; the
/// error says what is wrong.
pub fn records(plain: &[u8], count: i32) -> Result<Vec<RecordView<'_>>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    for i in 0..count.max(0) {
        let start = pos;
        let len = varint(plain, &mut pos).ok_or_else(|| format!("record {i} has no length"))?;
        let len = usize::try_from(len).map_err(|_| format!("record {i} has a negative length"))?;
        let end = pos
            .checked_add(len)
            .filter(|&e| e <= plain.len())
            .ok_or_else(|| format!("record {i} runs past the batch"))?;
        let body = &plain[pos..end];
        let mut p = 1; // attributes
        let parsed = (|| {
            let timestamp_delta = varint(body, &mut p)?;
            let offset_delta = varint(body, &mut p)?;
            let tail = p;
            let key = bytes_field(body, &mut p)?;
            let value = bytes_field(body, &mut p)?;
            Some((timestamp_delta, offset_delta, tail, key, value.is_none()))
        })();
        let (timestamp_delta, offset_delta, tail, key, tombstone) =
            parsed.ok_or_else(|| format!("record {i} is malformed"))?;
        out.push(RecordView {
            attributes: body.first().copied().unwrap_or(0),
            offset_delta,
            timestamp_delta,
            key,
            tombstone,
            bytes: &plain[start..end],
            tail: &body[tail..],
        });
        pos = end;
    }
    if pos != plain.len() {
        return Err(format!(
            "{} bytes after the batch's {count} records",
            plain.len() - pos
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::HEADER_LEN;
    use crate::testing::{BatchBuilder, TestRecord};

    #[test]
    fn reads_keys_tombstones_and_offsets() {
        let batch = BatchBuilder::records(vec![
            TestRecord {
                key: Some(b"a".to_vec()),
                value: Some(b"1".to_vec()),
                timestamp_delta: 0,
            },
            TestRecord {
                key: None,
                value: Some(b"2".to_vec()),
                timestamp_delta: 5,
            },
            TestRecord {
                key: Some(b"a".to_vec()),
                value: None,
                timestamp_delta: 7,
            },
        ])
        .build();
        let rs = records(&batch[HEADER_LEN..], 3).unwrap();
        assert_eq!(
            rs.iter()
                .map(|r| (r.offset_delta, r.timestamp_delta, r.key, r.tombstone))
                .collect::<Vec<_>>(),
            vec![
                (0, 0, Some(&b"a"[..]), false),
                (1, 5, None, false),
                (2, 7, Some(&b"a"[..]), true)
            ]
        );
        assert!(records(&batch[HEADER_LEN..], 4).is_err());
        assert!(records(&batch[HEADER_LEN..], 2).is_err());
    }

    #[test]
    fn bodies_carry_values_and_headers() {
        // One record by hand: attributes, timestamp and offset deltas, key
        // "k", value "v", two headers ("a" = "1", "b" = null).
        let mut body = vec![0u8];
        put_varint(&mut body, 0);
        put_varint(&mut body, 0);
        for field in [&b"k"[..], &b"v"[..]] {
            put_varint(&mut body, field.len() as i64);
            body.extend_from_slice(field);
        }
        put_varint(&mut body, 2);
        put_varint(&mut body, 1);
        body.extend_from_slice(b"a");
        put_varint(&mut body, 1);
        body.extend_from_slice(b"1");
        put_varint(&mut body, 1);
        body.extend_from_slice(b"b");
        put_varint(&mut body, -1);
        let mut plain = Vec::new();
        put_varint(&mut plain, body.len() as i64);
        plain.extend_from_slice(&body);
        let rs = records(&plain, 1).unwrap();
        let b = rs[0].body().unwrap();
        assert_eq!(b.key, Some(&b"k"[..]));
        assert_eq!(b.value, Some(&b"v"[..]));
        assert_eq!(
            b.headers,
            vec![(&b"a"[..], Some(&b"1"[..])), (&b"b"[..], None)]
        );

        // A header count larger than the bytes left is refused, not sized.
        let mut tail = Vec::new();
        put_varint(&mut tail, 1);
        tail.push(b'k');
        put_varint(&mut tail, 1);
        tail.push(b'v');
        put_varint(&mut tail, 1_000_000);
        let view = RecordView {
            attributes: 0,
            offset_delta: 0,
            timestamp_delta: 0,
            key: Some(b"k"),
            tombstone: false,
            bytes: &tail,
            tail: &tail,
        };
        assert!(view.body().is_none());
    }
}
