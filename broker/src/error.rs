//! Broker errors, and the one place where errors become Kafka error codes.

use kafka_protocol::ResponseError;
use strata_storage::producer::ProducerError;
use strata_storage::StorageError;
use strata_tiering::TieringError;

use crate::config::ConfigError;
use crate::meta::MetaError;

/// What an admin operation (create, delete, alter) can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    InvalidTopic(String),
    #[error("Topic '{0}' already exists.")]
    TopicExists(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(#[from] ConfigError),
    #[error("This server does not host this topic-partition.")]
    UnknownTopic,
    #[error("Topic deletion is disabled (delete.topic.enable=false).")]
    DeletionDisabled,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("metadata: {0}")]
    Meta(#[from] MetaError),
    #[error("cold tier: {0}")]
    Tiering(#[from] TieringError),
    /// A partition's remote manifest cannot be read or restored; says what
    /// the operator can do.
    #[error("{0}")]
    ManifestUnreadable(String),
    /// A write to a read replica, which serves the primary's bucket and
    /// changes nothing: refused as a broker without write permission would
    /// refuse it.
    /// The broker does not start on this bucket; the message says why and
    /// what to do.
    #[error("{0}")]
    BucketRefused(String),
    /// Another broker wrote this broker's bucket: it no longer leads
    /// anything there, as a fenced Kafka leader no longer does.
    #[error("another broker took over the bucket {0}: this broker no longer accepts writes")]
    Fenced(String),
    #[error("this broker is a read replica of {0}: topics are changed on the primary")]
    ReadReplicaTopic(String),
    #[error("this broker is a read replica of {0}: broker configs are changed on the primary")]
    ReadReplicaCluster(String),
}

impl AdminError {
    pub fn code(&self) -> i16 {
        match self {
            AdminError::InvalidTopic(_) => ResponseError::InvalidTopicException.code(),
            AdminError::TopicExists(_) => ResponseError::TopicAlreadyExists.code(),
            AdminError::InvalidPartitions(_) => ResponseError::InvalidPartitions.code(),
            AdminError::InvalidReplicationFactor(_) => {
                ResponseError::InvalidReplicationFactor.code()
            }
            AdminError::InvalidReplicaAssignment(_) => {
                ResponseError::InvalidReplicaAssignment.code()
            }
            AdminError::InvalidConfig(_) => ResponseError::InvalidConfig.code(),
            AdminError::UnknownTopic => ResponseError::UnknownTopicOrPartition.code(),
            AdminError::DeletionDisabled => ResponseError::TopicDeletionDisabled.code(),
            AdminError::InvalidRequest(_) => ResponseError::InvalidRequest.code(),
            AdminError::Storage(e) => storage_code(e),
            AdminError::BucketRefused(_) => ResponseError::InvalidRequest.code(),
            AdminError::Fenced(_) => ResponseError::NotLeaderOrFollower.code(),
            AdminError::ReadReplicaTopic(_) => ResponseError::TopicAuthorizationFailed.code(),
            AdminError::ReadReplicaCluster(_) => ResponseError::ClusterAuthorizationFailed.code(),
            AdminError::Meta(_) | AdminError::Tiering(_) | AdminError::ManifestUnreadable(_) => {
                ResponseError::KafkaStorageError.code()
            }
        }
    }
}

/// The Kafka error code for a storage error.
pub fn storage_code(e: &StorageError) -> i16 {
    match e {
        StorageError::CorruptBatch { .. } => ResponseError::CorruptMessage.code(),
        StorageError::BatchTooLarge { .. } => ResponseError::MessageTooLarge.code(),
        StorageError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp.code(),
        StorageError::KeylessRecord { .. } => ResponseError::InvalidRecord.code(),
        StorageError::UnreadableRecords { .. } => ResponseError::CorruptMessage.code(),
        StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        StorageError::Closed { .. } => ResponseError::UnknownTopicOrPartition.code(),
        StorageError::Io { .. } => ResponseError::KafkaStorageError.code(),
        StorageError::Producer(ProducerError::Fenced { .. }) => {
            ResponseError::InvalidProducerEpoch.code()
        }
        StorageError::Producer(ProducerError::OutOfOrder { .. }) => {
            ResponseError::OutOfOrderSequenceNumber.code()
        }
        // A failure this build does not know yet: the client may retry.
        _ => ResponseError::KafkaStorageError.code(),
    }
}

/// The Kafka error code for a cold-tier error: a local storage error keeps
/// its own code; a store failure is KAFKA_STORAGE_ERROR, which clients retry.
pub fn tiering_code(e: &TieringError) -> i16 {
    match e {
        TieringError::Storage(e) => storage_code(e),
        _ => ResponseError::KafkaStorageError.code(),
    }
}
