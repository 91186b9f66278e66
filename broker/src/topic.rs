//! The topic registry's entries: a topic's name, id, configs and
//! partitions as they are now, its traffic counters, and Kafka's rules for
//! topic names.

use std::collections::BTreeMap;
use std::sync::Arc;

use strata_tiering::TieredPartition;
use uuid::Uuid;

use crate::error::AdminError;
use crate::meta::TopicRecord;

/// A topic as it is now. Immutable: changes replace the whole `Arc<Topic>`
/// in the broker's map, sharing the partitions that stay.
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<Arc<TieredPartition>>,
    pub counters: TopicCounters,
}

/// A topic's traffic counters, registered once when the topic is opened so
/// that produce and fetch only add to them (no label formatting or registry
/// lookup per request). Cheap to clone; safe to use from any thread.
#[derive(Clone)]
pub struct TopicCounters {
    pub bytes_in: metrics::Counter,
    pub records_in: metrics::Counter,
    pub bytes_out: metrics::Counter,
}

impl TopicCounters {
    pub fn new(topic: &str) -> TopicCounters {
        TopicCounters {
            bytes_in: metrics::counter!("strata_topic_bytes_in_total", "topic" => topic.to_string()),
            records_in: metrics::counter!("strata_topic_records_in_total", "topic" => topic.to_string()),
            bytes_out: metrics::counter!("strata_topic_bytes_out_total", "topic" => topic.to_string()),
        }
    }
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<TieredPartition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    pub(crate) fn record(&self) -> TopicRecord {
        TopicRecord {
            name: self.name.clone(),
            id: self.id,
            partitions: self.partitions.len() as u32,
            configs: self.configs.clone(),
        }
    }
}

/// Kafka's topic name rules.
pub fn validate_topic_name(name: &str) -> Result<(), AdminError> {
    let invalid = |why: &str| {
        Err(AdminError::InvalidTopic(format!(
            "Topic name \"{name}\" is illegal, {why}"
        )))
    };
    if name.is_empty() {
        return invalid("it can't be empty");
    }
    if name == "." || name == ".." {
        return invalid("it can't be '.' or '..'");
    }
    if name.len() > 249 {
        return invalid("it can't be longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid("it contains a character other than ASCII alphanumerics, '.', '_' and '-'");
    }
    Ok(())
}
