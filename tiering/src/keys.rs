//! Where a partition's cold tier lives in the object store: its directory
//! (topic, topic id, partition) and the names of its objects (see FORMAT.md).

use strata_storage::{Offset, SegmentFile};
use uuid::Uuid;

/// Names a partition in the object store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionKey {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

impl PartitionKey {
    /// `<topic>-<topic id>/<partition>`: the id keeps a topic deleted and
    /// created again under the same name apart from the old one.
    pub fn dir(&self) -> String {
        format!(
            "{}-{}/{}",
            self.topic,
            self.topic_id.simple(),
            self.partition
        )
    }

    /// Prefix of everything the topic has in the store.
    pub fn topic_dir(&self) -> String {
        format!("{}-{}", self.topic, self.topic_id.simple())
    }

    /// The name of one file of a remote segment: `<dir>/<base offset, 20
    /// digits>-<segment id>.<extension>`. The id keeps a segment uploaded
    /// again after an interrupted copy apart from the objects of the first
    /// attempt.
    pub fn segment_object(&self, base_offset: Offset, id: Uuid, file: SegmentFile) -> String {
        format!(
            "{}/{:020}-{}.{}",
            self.dir(),
            base_offset.0,
            id.simple(),
            file.extension()
        )
    }

    /// The name of the copy of the manifest kept next to the segments.
    pub fn manifest_object(&self) -> String {
        format!("{}/manifest.json", self.dir())
    }
}
