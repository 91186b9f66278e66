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
    /// `cleanup.policy` includes `compact`: the cleaner keeps the latest
    /// record of every key, and records without a key are refused.
    pub compact: bool,
    /// `min.cleanable.dirty.ratio`, in millionths (so that the config stays
    /// `Eq`): the share of the log that must be dirty before it is cleaned.
    pub min_cleanable_ratio_ppm: u32,
    /// `min.compaction.lag.ms`: a record stays uncompacted at least this
    /// long after it was written.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log with a dirty record older than this is
    /// cleaned whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone stays readable after the
    /// cleaner first saw it.
    pub delete_retention_ms: i64,
    /// The most bytes a batch's records may decompress to when the log
    /// must look inside (keys of compacted logs); the broker sets it to
    /// `socket.request.max.bytes`.
    pub max_decompressed_bytes: usize,
    /// `compression.{gzip,lz4,zstd}.level`: the levels the cleaner writes
    /// compressed batches back with.
    pub compression_levels: crate::codec::Levels,
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
            compact: false,
            min_cleanable_ratio_ppm: 500_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            max_decompressed_bytes: 100 * 1024 * 1024,
            compression_levels: crate::codec::Levels::default(),
        }
    }
}
