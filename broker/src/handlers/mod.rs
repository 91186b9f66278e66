//! One module per Kafka API. Handlers take the decoded request and return
//! the response body; the server does framing and versions.

pub mod access;
pub mod acls;
pub mod alter_configs;
pub mod alter_replica_log_dirs;
pub mod api_versions;
pub mod authorized_operations;
pub mod consumer_groups;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_log_dirs;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod fetch;
pub mod groups;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod partition_placement;
pub mod produce;
pub mod sasl;
pub mod scram_credentials;
pub mod transactions;

use kafka_protocol::protocol::StrBytes;

/// Runs blocking file work on tokio's blocking pool, off the executor's
/// threads. A panic in `f` is a bug; it is re-raised in the calling task,
/// which ends that connection only.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
