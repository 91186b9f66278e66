/// Which timestamp a batch keeps: the producer's (`CreateTime`) or the
/// broker's clock at append (`LogAppendTime`). Kafka's `message.timestamp.type`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// The per-partition settings the local log obeys. The broker derives it from
/// Kafka's topic configs (`segment.bytes`, `retention.ms`, ...) and may replace
/// it at run time with [`crate::Log::set_config`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: a segment is rolled before it would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: a non-empty segment older than this is rolled.
    pub segment_ms: i64,
    /// `retention.ms` for the local tier; negative means unlimited.
    pub retention_ms: i64,
    /// `retention.bytes` for the local tier; negative means unlimited.
    pub retention_bytes: i64,
    /// `max.message.bytes`: the largest record batch accepted.
    pub max_message_bytes: usize,
    /// `index.interval.bytes`: bytes of log between two index entries.
    pub index_interval_bytes: u32,
    /// `segment.index.bytes`: the size an index file is preallocated to.
    pub segment_index_bytes: u32,
    /// `flush.messages`: fsync after this many records; `i64::MAX` leaves
    /// flushing to `flush.ms`, segment rolls and shutdown.
    pub flush_messages: i64,
    /// `flush.ms`: fsync when the oldest unflushed append is this old.
    pub flush_ms: i64,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `producer.id.expiration.ms`: an idempotent producer that appends
    /// nothing for this long is forgotten.
    pub producer_id_expiration_ms: i64,
    /// `message.timestamp.before.max.ms`: how far behind the broker's clock
    /// a `CreateTime` record may be.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far ahead of it.
    pub timestamp_after_max_ms: i64,
}

impl Default for LogConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1024 * 1024 + 12,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            timestamp_type: TimestampType::CreateTime,
            producer_id_expiration_ms: 24 * 60 * 60 * 1000,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
        }
    }
}
