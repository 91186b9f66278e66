//! Record batches of a segment turned into lake rows: one row per record
//! of a committed data batch, with its event time and declared JSON
//! columns. Pure: bytes in, rows out.

use std::collections::HashSet;

use strata_storage::batch::{BatchHeader, CONTROL_FLAG, HEADER_LEN, TRANSACTIONAL_FLAG};
use strata_storage::codec::{decompress, Codec};
use strata_storage::record::records;
use strata_storage::AbortedTxn;

use crate::config::{Column, ColumnType, EventTimeSource, LakeConfig};

/// A value of a declared JSON column.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnValue {
    Null,
    String(String),
    Long(i64),
    Double(f64),
    Boolean(bool),
    /// Milliseconds since the epoch.
    Timestamp(i64),
}

/// One record of the topic as the lake stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub partition: i32,
    pub offset: i64,
    /// The record's timestamp, in milliseconds.
    pub timestamp: i64,
    pub log_append_time: bool,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// In milliseconds since the epoch.
    pub event_time: i64,
    /// One value per declared column, in their order.
    pub columns: Vec<ColumnValue>,
}

/// Counts from turning batches into rows.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RowStats {
    /// Records of aborted transactions left out.
    pub aborted: u64,
    /// Records whose event time could not be read from their value and
    /// fell back to their timestamp.
    pub event_time_fallbacks: u64,
    /// Bytes of batches read.
    pub bytes: u64,
}

/// Kafka's read_committed rule over a partition's batches in offset order:
/// a transactional batch is left out while its producer has an aborted
/// transaction that started at or before it and whose ABORT marker has
/// not been passed yet.
#[derive(Debug, Default)]
pub struct AbortFilter {
    /// The aborted transactions not yet started, by first offset.
    pending: Vec<AbortedTxn>,
    /// Producers inside an aborted transaction.
    open: HashSet<i64>,
}

impl AbortFilter {
    pub fn new(mut aborted: Vec<AbortedTxn>) -> AbortFilter {
        // Kept newest first so that the next to start is popped off the end.
        aborted.sort_by_key(|t| std::cmp::Reverse(t.first_offset));
        AbortFilter {
            pending: aborted,
            open: HashSet::new(),
        }
    }

    /// Whether the batch's records belong in the table, advancing past it.
    pub fn keep(&mut self, h: &BatchHeader) -> bool {
        while let Some(t) = self.pending.last() {
            if t.first_offset.0 > h.base_offset {
                break;
            }
            self.open.insert(t.producer_id);
            self.pending.pop();
        }
        let transactional = h.attributes & TRANSACTIONAL_FLAG != 0;
        if h.attributes & CONTROL_FLAG != 0 {
            // The marker ends the producer's transaction either way.
            if transactional {
                self.open.remove(&h.producer_id);
            }
            return false;
        }
        !(transactional && self.open.contains(&h.producer_id))
    }
}

/// Appends the rows of every whole batch in `bytes` with offsets in
/// `range` to `out`; returns the offset after the last batch read.
/// Batches are validated only as far as parsing needs; the cold tier holds
/// what the log accepted.
pub fn append_rows(
    bytes: &[u8],
    partition: i32,
    range: std::ops::Range<i64>,
    config: &LakeConfig,
    filter: &mut AbortFilter,
    out: &mut Vec<Row>,
    stats: &mut RowStats,
) -> Result<i64, String> {
    let (from, until) = (range.start, range.end);
    let mut pos = 0;
    let mut next = from;
    while pos + HEADER_LEN <= bytes.len() {
        let h = BatchHeader::parse(&bytes[pos..]).map_err(|e| format!("at byte {pos}: {e}"))?;
        let end = pos + h.total_len();
        if end > bytes.len() {
            break;
        }
        if h.base_offset >= until {
            break;
        }
        let batch = &bytes[pos..end];
        pos = end;
        stats.bytes += batch.len() as u64;
        let keep = filter.keep(&h);
        if h.last_offset() < from {
            continue;
        }
        next = h.last_offset() + 1;
        if !keep {
            if h.attributes & CONTROL_FLAG == 0 {
                stats.aborted += h.record_count.max(0) as u64;
            }
            continue;
        }
        let codec = Codec::from_id(h.compression()).ok_or_else(|| {
            format!(
                "batch at {}: unknown codec {}",
                h.base_offset,
                h.compression()
            )
        })?;
        let plain = decompress(codec, &batch[HEADER_LEN..], 256 << 20)
            .map_err(|e| format!("batch at {}: {e}", h.base_offset))?;
        let recs = records(&plain, h.record_count)
            .map_err(|e| format!("batch at {}: {e}", h.base_offset))?;
        for r in recs {
            let offset = h.base_offset + r.offset_delta;
            if offset < from || offset >= until {
                continue;
            }
            let body = r
                .body()
                .ok_or_else(|| format!("record at {offset} is malformed"))?;
            let timestamp = if h.is_log_append_time() {
                h.max_timestamp
            } else {
                h.base_timestamp + r.timestamp_delta
            };
            let json = needs_json(config)
                .then(|| {
                    body.value
                        .and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
                })
                .flatten();
            let event_time = match &config.event_time {
                EventTimeSource::Timestamp => timestamp,
                EventTimeSource::Pointer(p) => {
                    match json.as_ref().and_then(|j| j.pointer(p)).and_then(time_of) {
                        Some(t) => t,
                        None => {
                            stats.event_time_fallbacks += 1;
                            timestamp
                        }
                    }
                }
            };
            let columns = config
                .columns
                .iter()
                .map(|c| column_value(json.as_ref(), c))
                .collect();
            out.push(Row {
                partition,
                offset,
                timestamp,
                log_append_time: h.is_log_append_time(),
                key: body.key.map(<[u8]>::to_vec),
                value: body.value.map(<[u8]>::to_vec),
                headers: body
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            String::from_utf8_lossy(k).into_owned(),
                            v.map(<[u8]>::to_vec),
                        )
                    })
                    .collect(),
                event_time,
                columns,
            });
        }
    }
    Ok(next)
}

fn needs_json(config: &LakeConfig) -> bool {
    !config.columns.is_empty() || matches!(config.event_time, EventTimeSource::Pointer(_))
}

/// Milliseconds since the epoch from a JSON number or an RFC 3339 string.
fn time_of(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis()),
        _ => None,
    }
}

/// The declared column's value in a JSON object; `Null` when the field is
/// missing or of another type (a row is never dropped for its columns).
fn column_value(json: Option<&serde_json::Value>, c: &Column) -> ColumnValue {
    use serde_json::Value as J;
    let Some(v) = json.and_then(|j| j.get(&c.name)) else {
        return ColumnValue::Null;
    };
    match (c.ty, v) {
        (ColumnType::String, J::String(s)) => ColumnValue::String(s.clone()),
        (ColumnType::String, J::Number(_) | J::Bool(_)) => ColumnValue::String(v.to_string()),
        (ColumnType::Long, J::Number(n)) => n.as_i64().map_or(ColumnValue::Null, ColumnValue::Long),
        (ColumnType::Double, J::Number(n)) => {
            n.as_f64().map_or(ColumnValue::Null, ColumnValue::Double)
        }
        (ColumnType::Boolean, J::Bool(b)) => ColumnValue::Boolean(*b),
        (ColumnType::Timestamp, _) => time_of(v).map_or(ColumnValue::Null, ColumnValue::Timestamp),
        _ => ColumnValue::Null,
    }
}

#[cfg(test)]
mod tests {
    use strata_storage::testing::{BatchBuilder, TestRecord};
    use strata_storage::Offset;

    use super::*;
    use crate::config::{Granularity, LakeConfig};

    fn config(event_time: EventTimeSource, columns: Vec<Column>) -> LakeConfig {
        LakeConfig {
            enabled: true,
            granularity: Granularity::Hour,
            event_time,
            columns,
            commit_interval_ms: 1000,
            commit_bytes: 1 << 20,
            retention_ms: -1,
        }
    }

    fn rec(value: &str, delta: i64) -> TestRecord {
        TestRecord {
            key: Some(b"k".to_vec()),
            value: Some(value.as_bytes().to_vec()),
            timestamp_delta: delta,
        }
    }

    #[test]
    fn event_times_and_columns_come_from_json() {
        let batch = BatchBuilder::records(vec![
            rec(r#"{"event_ts": 5000, "user": "ann", "amount": 2.5}"#, 0),
            rec(r#"{"event_ts": "1970-01-01T00:00:10Z", "amount": "x"}"#, 1),
            rec("not json", 2),
        ])
        .base_offset(7)
        .timestamp(1_000_000)
        .build();
        let cfg = config(
            EventTimeSource::Pointer("/event_ts".into()),
            vec![
                Column {
                    name: "user".into(),
                    ty: ColumnType::String,
                },
                Column {
                    name: "amount".into(),
                    ty: ColumnType::Double,
                },
            ],
        );
        let mut out = Vec::new();
        let mut stats = RowStats::default();
        let next = append_rows(
            &batch,
            3,
            0..i64::MAX,
            &cfg,
            &mut AbortFilter::default(),
            &mut out,
            &mut stats,
        )
        .unwrap();
        assert_eq!(next, 10);
        assert_eq!(out.iter().map(|r| r.offset).collect::<Vec<_>>(), [7, 8, 9]);
        assert_eq!(
            out.iter().map(|r| r.event_time).collect::<Vec<_>>(),
            [5000, 10_000, 1_000_002]
        );
        assert_eq!(
            out[0].columns,
            [ColumnValue::String("ann".into()), ColumnValue::Double(2.5)]
        );
        assert_eq!(out[1].columns, [ColumnValue::Null, ColumnValue::Null]);
        assert_eq!(stats.event_time_fallbacks, 1);
        assert_eq!(out[2].partition, 3);
        assert_eq!(out[2].timestamp, 1_000_002);
    }

    #[test]
    fn offsets_outside_the_range_are_skipped() {
        let mut bytes = BatchBuilder::records(vec![rec("a", 0), rec("b", 0)])
            .base_offset(0)
            .build();
        bytes.extend(
            BatchBuilder::records(vec![rec("c", 0)])
                .base_offset(2)
                .build(),
        );
        let cfg = config(EventTimeSource::Timestamp, vec![]);
        let mut out = Vec::new();
        let next = append_rows(
            &bytes,
            0,
            1..2,
            &cfg,
            &mut AbortFilter::default(),
            &mut out,
            &mut RowStats::default(),
        )
        .unwrap();
        assert_eq!(out.iter().map(|r| r.offset).collect::<Vec<_>>(), [1]);
        assert_eq!(next, 2);
    }

    #[test]
    fn aborted_transactions_are_left_out() {
        let data = |base: i64, pid: i64| {
            BatchBuilder::records(vec![rec("x", 0)])
                .base_offset(base)
                .producer(pid, 0, 0)
                .transactional()
                .build()
        };
        let mut bytes = data(0, 1);
        bytes.extend(data(1, 2));
        // Offset 2 is producer 1's ABORT marker: a control batch.
        let mut marker = data(2, 1);
        let attrs = i16::from_be_bytes([marker[21], marker[22]]) | CONTROL_FLAG;
        marker[21..23].copy_from_slice(&attrs.to_be_bytes());
        bytes.extend(marker);
        bytes.extend(data(3, 1));
        let aborted = vec![AbortedTxn {
            producer_id: 1,
            first_offset: Offset(0),
            last_offset: Offset(2),
            last_stable_offset: Offset(0),
        }];
        let cfg = config(EventTimeSource::Timestamp, vec![]);
        let mut out = Vec::new();
        let mut stats = RowStats::default();
        let next = append_rows(
            &bytes,
            0,
            0..i64::MAX,
            &cfg,
            &mut AbortFilter::new(aborted),
            &mut out,
            &mut stats,
        )
        .unwrap();
        assert_eq!(out.iter().map(|r| r.offset).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(stats.aborted, 1);
        assert_eq!(next, 4);
    }
}
