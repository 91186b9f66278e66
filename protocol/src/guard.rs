//! A structural check of request bytes before `kafka-protocol` decodes them.
//!
//! The decoder sizes every array with `Vec::with_capacity(count)` straight
//! from the count on the wire, so a 20-byte frame claiming two billion
//! topics makes it request a buffer of hundreds of gigabytes, and a failed
//! allocation aborts the process: no panic to catch. This module walks the
//! frame along each supported request's schema first and refuses any array,
//! string or byte count larger than the bytes left in the frame (every array
//! element takes at least one byte, so such a count is impossible). The walk
//! allocates nothing.
//!
//! The schemas mirror Kafka's message definitions for exactly the versions in
//! [`crate::SUPPORTED_APIS`]; the version-sweep test exercises each one with
//! real requests, so a schema that refused a valid request would fail it.

use kafka_protocol::messages::ApiKey;

/// The wire type of a field, enough to step over it.
#[derive(Clone, Copy)]
enum Ty {
    I8,
    I16,
    I32,
    I64,
    Uuid,
    Bool,
    Str,
    Bytes,
    Array(&'static [F]),
    ArrayI32,
    ArrayStr,
    /// A struct in place, not in an array.
    Struct(&'static [F]),
    /// A nullable struct: an `i8` that is 1 when the struct follows, as
    /// the decoder reads it (any other value: null, nothing follows).
    OptStruct(&'static [F]),
    /// A tagged field the decoder knows: wherever its tag appears in the
    /// struct's tagged-field section, the decoder reads it as this type from
    /// the bytes that follow, whatever size the section claims for it. The
    /// guard must step over it the same way, or the two part ways there.
    Tagged(u32, &'static Ty),
}

/// A field present from version `since` to version `until`, inclusive.
#[derive(Clone, Copy)]
struct F {
    since: i16,
    until: i16,
    ty: Ty,
}

const ANY: i16 = i16::MAX;

const fn f(since: i16, until: i16, ty: Ty) -> F {
    F { since, until, ty }
}

const fn all(ty: Ty) -> F {
    f(0, ANY, ty)
}

use Ty::*;

// Produce v3-v13 (v12 only tells the broker the client knows transactions
// v2; v13 names topics by id).
const PRODUCE_PARTITION: &[F] = &[all(I32), all(Bytes)];
const PRODUCE_TOPIC: &[F] = &[
    f(0, 12, Str),
    f(13, ANY, Uuid),
    all(Array(PRODUCE_PARTITION)),
];
const PRODUCE: &[F] = &[
    f(3, ANY, Str),
    all(I16),
    all(I32),
    all(Array(PRODUCE_TOPIC)),
];

// Fetch v4-v18.
const FETCH_PARTITION: &[F] = &[
    all(I32),
    f(9, ANY, I32),
    all(I64),
    f(12, ANY, I32),
    f(5, ANY, I64),
    all(I32),
    f(17, ANY, Tagged(0, &Uuid)),
    f(18, ANY, Tagged(1, &I64)),
];
const FETCH_REPLICA_STATE: &[F] = &[all(I32), all(I64)];
const FETCH_TOPIC: &[F] = &[f(0, 12, Str), f(13, ANY, Uuid), all(Array(FETCH_PARTITION))];
const FORGOTTEN_TOPIC: &[F] = &[f(0, 12, Str), f(13, ANY, Uuid), all(ArrayI32)];
const FETCH: &[F] = &[
    f(0, 14, I32),
    all(I32),
    all(I32),
    f(3, ANY, I32),
    f(4, ANY, I8),
    f(7, ANY, I32),
    f(7, ANY, I32),
    all(Array(FETCH_TOPIC)),
    f(7, ANY, Array(FORGOTTEN_TOPIC)),
    f(11, ANY, Str),
    f(12, ANY, Tagged(0, &Str)),
    f(15, ANY, Tagged(1, &Struct(FETCH_REPLICA_STATE))),
];

// ListOffsets v1-v10.
const LIST_OFFSETS_PARTITION: &[F] = &[all(I32), f(4, ANY, I32), all(I64), f(0, 0, I32)];
const LIST_OFFSETS_TOPIC: &[F] = &[all(Str), all(Array(LIST_OFFSETS_PARTITION))];
const LIST_OFFSETS: &[F] = &[
    all(I32),
    f(2, ANY, I8),
    all(Array(LIST_OFFSETS_TOPIC)),
    f(10, ANY, I32),
];

// Metadata v0-v13.
const METADATA_TOPIC: &[F] = &[f(10, ANY, Uuid), all(Str)];
const METADATA: &[F] = &[
    all(Array(METADATA_TOPIC)),
    f(4, ANY, Bool),
    f(8, 10, Bool),
    f(8, ANY, Bool),
];

// ApiVersions v0-v4.
const API_VERSIONS: &[F] = &[f(3, ANY, Str), f(3, ANY, Str)];

// CreateTopics v2-v7.
const CREATE_ASSIGNMENT: &[F] = &[all(I32), all(ArrayI32)];
const CREATE_CONFIG: &[F] = &[all(Str), all(Str)];
const CREATE_TOPIC: &[F] = &[
    all(Str),
    all(I32),
    all(I16),
    all(Array(CREATE_ASSIGNMENT)),
    all(Array(CREATE_CONFIG)),
];
const CREATE_TOPICS: &[F] = &[all(Array(CREATE_TOPIC)), all(I32), f(1, ANY, Bool)];

// DeleteTopics v1-v6.
const DELETE_TOPIC_STATE: &[F] = &[all(Str), all(Uuid)];
const DELETE_TOPICS: &[F] = &[
    f(6, ANY, Array(DELETE_TOPIC_STATE)),
    f(0, 5, ArrayStr),
    all(I32),
];

// DescribeConfigs v1-v4.
const DESCRIBE_RESOURCE: &[F] = &[all(I8), all(Str), all(ArrayStr)];
const DESCRIBE_CONFIGS: &[F] = &[
    all(Array(DESCRIBE_RESOURCE)),
    f(1, ANY, Bool),
    f(3, ANY, Bool),
];

// CreatePartitions v0-v3.
const PARTITIONS_ASSIGNMENT: &[F] = &[all(ArrayI32)];
const PARTITIONS_TOPIC: &[F] = &[all(Str), all(I32), all(Array(PARTITIONS_ASSIGNMENT))];
const CREATE_PARTITIONS: &[F] = &[all(Array(PARTITIONS_TOPIC)), all(I32), all(Bool)];

// AlterConfigs v0-v2.
const ALTER_ENTRY: &[F] = &[all(Str), all(Str)];
const ALTER_RESOURCE: &[F] = &[all(I8), all(Str), all(Array(ALTER_ENTRY))];
const ALTER_CONFIGS: &[F] = &[all(Array(ALTER_RESOURCE)), all(Bool)];

// IncrementalAlterConfigs v0-v1.
const INCREMENTAL_ENTRY: &[F] = &[all(Str), all(I8), all(Str)];
const INCREMENTAL_RESOURCE: &[F] = &[all(I8), all(Str), all(Array(INCREMENTAL_ENTRY))];
const INCREMENTAL_ALTER_CONFIGS: &[F] = &[all(Array(INCREMENTAL_RESOURCE)), all(Bool)];

// FindCoordinator v0-v6.
const FIND_COORDINATOR: &[F] = &[f(0, 3, Str), f(1, ANY, I8), f(4, ANY, ArrayStr)];

// JoinGroup v0-v9.
const JOIN_PROTOCOL: &[F] = &[all(Str), all(Bytes)];
const JOIN_GROUP: &[F] = &[
    all(Str),
    all(I32),
    f(1, ANY, I32),
    all(Str),
    f(5, ANY, Str),
    all(Str),
    all(Array(JOIN_PROTOCOL)),
    f(8, ANY, Str),
];

// SyncGroup v0-v5.
const SYNC_ASSIGNMENT: &[F] = &[all(Str), all(Bytes)];
const SYNC_GROUP: &[F] = &[
    all(Str),
    all(I32),
    all(Str),
    f(3, ANY, Str),
    f(5, ANY, Str),
    f(5, ANY, Str),
    all(Array(SYNC_ASSIGNMENT)),
];

// Heartbeat v0-v4.
const HEARTBEAT: &[F] = &[all(Str), all(I32), all(Str), f(3, ANY, Str)];

// LeaveGroup v0-v5.
const LEAVE_MEMBER: &[F] = &[all(Str), all(Str), f(5, ANY, Str)];
const LEAVE_GROUP: &[F] = &[all(Str), f(0, 2, Str), f(3, ANY, Array(LEAVE_MEMBER))];

// OffsetCommit v2-v9.
const COMMIT_PARTITION: &[F] = &[all(I32), all(I64), f(6, ANY, I32), f(1, 1, I64), all(Str)];
const COMMIT_TOPIC: &[F] = &[all(Str), all(Array(COMMIT_PARTITION))];
const OFFSET_COMMIT: &[F] = &[
    all(Str),
    f(1, ANY, I32),
    f(1, ANY, Str),
    f(7, ANY, Str),
    f(2, 4, I64),
    all(Array(COMMIT_TOPIC)),
];

// OffsetFetch v1-v9.
const FETCH_OFFSETS_TOPIC: &[F] = &[all(Str), all(ArrayI32)];
const FETCH_OFFSETS_GROUP: &[F] = &[
    all(Str),
    f(9, ANY, Str),
    f(9, ANY, I32),
    all(Array(FETCH_OFFSETS_TOPIC)),
];
const OFFSET_FETCH: &[F] = &[
    f(0, 7, Str),
    f(0, 7, Array(FETCH_OFFSETS_TOPIC)),
    f(8, ANY, Array(FETCH_OFFSETS_GROUP)),
    f(7, ANY, Bool),
];

// ListGroups v0-v5.
const LIST_GROUPS: &[F] = &[f(4, ANY, ArrayStr), f(5, ANY, ArrayStr)];

// DescribeGroups v0-v6.
const DESCRIBE_GROUPS: &[F] = &[all(ArrayStr), f(3, ANY, Bool)];

// InitProducerId v0-v5.
const INIT_PRODUCER_ID: &[F] = &[all(Str), all(I32), f(3, ANY, I64), f(3, ANY, I16)];

// AddPartitionsToTxn v0-v5: one transaction up to v3, a batch of them
// (with the verify-only flag) from v4.
const TXN_TOPIC: &[F] = &[all(Str), all(ArrayI32)];
const TXN_TRANSACTION: &[F] = &[
    all(Str),
    all(I64),
    all(I16),
    all(Bool),
    all(Array(TXN_TOPIC)),
];
const ADD_PARTITIONS_TO_TXN: &[F] = &[
    f(4, ANY, Array(TXN_TRANSACTION)),
    f(0, 3, Str),
    f(0, 3, I64),
    f(0, 3, I16),
    f(0, 3, Array(TXN_TOPIC)),
];

// AddOffsetsToTxn v0-v4 and EndTxn v0-v5.
const ADD_OFFSETS_TO_TXN: &[F] = &[all(Str), all(I64), all(I16), all(Str)];
const END_TXN: &[F] = &[all(Str), all(I64), all(I16), all(Bool)];

// TxnOffsetCommit v0-v5.
const TXN_COMMIT_PARTITION: &[F] = &[all(I32), all(I64), f(2, ANY, I32), all(Str)];
const TXN_COMMIT_TOPIC: &[F] = &[all(Str), all(Array(TXN_COMMIT_PARTITION))];
const TXN_OFFSET_COMMIT: &[F] = &[
    all(Str),
    all(Str),
    all(I64),
    all(I16),
    f(3, ANY, I32),
    f(3, ANY, Str),
    f(3, ANY, Str),
    all(Array(TXN_COMMIT_TOPIC)),
];

// DescribeTransactions v0, ListTransactions v0-v2, DescribeProducers v0.
const DESCRIBE_TRANSACTIONS: &[F] = &[all(ArrayStr)];
const PRODUCER_ID_FILTER: &[F] = &[all(I64)];
const LIST_TRANSACTIONS: &[F] = &[
    all(ArrayStr),
    all(Array(PRODUCER_ID_FILTER)),
    f(1, ANY, I64),
    f(2, ANY, Str),
];
const DESCRIBE_PRODUCERS_TOPIC: &[F] = &[all(Str), all(ArrayI32)];
const DESCRIBE_PRODUCERS: &[F] = &[all(Array(DESCRIBE_PRODUCERS_TOPIC))];

// DeleteGroups v0-v2 and OffsetDelete v0.
const DELETE_GROUPS: &[F] = &[all(ArrayStr)];
const OFFSET_DELETE_PARTITION: &[F] = &[all(I32)];
const OFFSET_DELETE_TOPIC: &[F] = &[all(Str), all(Array(OFFSET_DELETE_PARTITION))];
const OFFSET_DELETE: &[F] = &[all(Str), all(Array(OFFSET_DELETE_TOPIC))];

// OffsetForLeaderEpoch v2-v4.
const EPOCH_PARTITION: &[F] = &[all(I32), all(I32), all(I32)];
const EPOCH_TOPIC: &[F] = &[all(Str), all(Array(EPOCH_PARTITION))];
const OFFSET_FOR_LEADER_EPOCH: &[F] = &[f(3, ANY, I32), all(Array(EPOCH_TOPIC))];

// DescribeLogDirs v1-v4: a nullable array of topics.
const LOG_DIRS_TOPIC: &[F] = &[all(Str), all(ArrayI32)];
const DESCRIBE_LOG_DIRS: &[F] = &[all(Array(LOG_DIRS_TOPIC))];

// DeleteRecords v0-v2.
const DELETE_RECORDS_PARTITION: &[F] = &[all(I32), all(I64)];
const DELETE_RECORDS_TOPIC: &[F] = &[all(Str), all(Array(DELETE_RECORDS_PARTITION))];
const DELETE_RECORDS: &[F] = &[all(Array(DELETE_RECORDS_TOPIC)), all(I32)];

// DescribeCluster v0-v2.
const DESCRIBE_CLUSTER: &[F] = &[all(Bool), f(1, ANY, I8), f(2, ANY, Bool)];

// AlterReplicaLogDirs v1-v2.
const REPLICA_DIR_TOPIC: &[F] = &[all(Str), all(ArrayI32)];
const REPLICA_DIR: &[F] = &[all(Str), all(Array(REPLICA_DIR_TOPIC))];
const ALTER_REPLICA_LOG_DIRS: &[F] = &[all(Array(REPLICA_DIR))];

// ElectLeaders v0-v2: a nullable array of topics (null: every partition).
const ELECT_TOPIC: &[F] = &[all(Str), all(ArrayI32)];
const ELECT_LEADERS: &[F] = &[f(1, ANY, I8), all(Array(ELECT_TOPIC)), all(I32)];

// AlterPartitionReassignments v0-v1: replicas null cancels a reassignment.
const REASSIGN_PARTITION: &[F] = &[all(I32), all(ArrayI32)];
const REASSIGN_TOPIC: &[F] = &[all(Str), all(Array(REASSIGN_PARTITION))];
const ALTER_REASSIGNMENTS: &[F] = &[all(I32), f(1, ANY, Bool), all(Array(REASSIGN_TOPIC))];

// ListPartitionReassignments v0: a nullable array of topics.
const LIST_REASSIGN_TOPIC: &[F] = &[all(Str), all(ArrayI32)];
const LIST_REASSIGNMENTS: &[F] = &[all(I32), all(Array(LIST_REASSIGN_TOPIC))];

// ConsumerGroupHeartbeat v0-v1: nullable names, regex (v1), assignor and
// owned partitions.
const HEARTBEAT_OWNED: &[F] = &[all(Uuid), all(ArrayI32)];
const CONSUMER_GROUP_HEARTBEAT: &[F] = &[
    all(Str),
    all(Str),
    all(I32),
    all(Str),
    all(Str),
    all(I32),
    all(ArrayStr),
    f(1, ANY, Str),
    all(Str),
    all(Array(HEARTBEAT_OWNED)),
];

// DescribeTopicPartitions v0: topics, a partition limit and a nullable
// cursor (topic name, partition).
const DTP_TOPIC: &[F] = &[all(Str)];
const DTP_CURSOR: &[F] = &[all(Str), all(I32)];
const DESCRIBE_TOPIC_PARTITIONS: &[F] =
    &[all(Array(DTP_TOPIC)), all(I32), all(OptStruct(DTP_CURSOR))];

// ConsumerGroupDescribe v0-v1.
const CONSUMER_GROUP_DESCRIBE: &[F] = &[all(ArrayStr), all(Bool)];

// SaslHandshake v0-1 (never flexible) and SaslAuthenticate v0-2.
const SASL_HANDSHAKE: &[F] = &[all(Str)];
const SASL_AUTHENTICATE: &[F] = &[all(Bytes)];

// DescribeAcls, CreateAcls and DeleteAcls v1-3: a binding or filter is a
// resource type, name, pattern type, principal, host, operation and
// permission type.
const ACL: &[F] = &[
    all(I8),
    all(Str),
    f(1, ANY, I8),
    all(Str),
    all(Str),
    all(I8),
    all(I8),
];
const ACL_LIST: &[F] = &[all(Array(ACL))];

// DescribeUserScramCredentials and AlterUserScramCredentials v0.
const SCRAM_USER: &[F] = &[all(Str)];
const DESCRIBE_SCRAM: &[F] = &[all(Array(SCRAM_USER))];
const SCRAM_DELETION: &[F] = &[all(Str), all(I8)];
const SCRAM_UPSERTION: &[F] = &[all(Str), all(I8), all(I32), all(Bytes), all(Bytes)];
const ALTER_SCRAM: &[F] = &[all(Array(SCRAM_DELETION)), all(Array(SCRAM_UPSERTION))];

/// The body schema and first flexible version of a supported API.
fn schema(api_key: ApiKey) -> Option<(&'static [F], i16)> {
    Some(match api_key {
        ApiKey::Produce => (PRODUCE, 9),
        ApiKey::Fetch => (FETCH, 12),
        ApiKey::ListOffsets => (LIST_OFFSETS, 6),
        ApiKey::Metadata => (METADATA, 9),
        ApiKey::ApiVersions => (API_VERSIONS, 3),
        ApiKey::CreateTopics => (CREATE_TOPICS, 5),
        ApiKey::DeleteTopics => (DELETE_TOPICS, 4),
        ApiKey::DescribeConfigs => (DESCRIBE_CONFIGS, 4),
        ApiKey::CreatePartitions => (CREATE_PARTITIONS, 2),
        ApiKey::AlterConfigs => (ALTER_CONFIGS, 2),
        ApiKey::IncrementalAlterConfigs => (INCREMENTAL_ALTER_CONFIGS, 1),
        ApiKey::FindCoordinator => (FIND_COORDINATOR, 3),
        ApiKey::JoinGroup => (JOIN_GROUP, 6),
        ApiKey::SyncGroup => (SYNC_GROUP, 4),
        ApiKey::Heartbeat => (HEARTBEAT, 4),
        ApiKey::LeaveGroup => (LEAVE_GROUP, 4),
        ApiKey::OffsetCommit => (OFFSET_COMMIT, 8),
        ApiKey::OffsetFetch => (OFFSET_FETCH, 6),
        ApiKey::ListGroups => (LIST_GROUPS, 3),
        ApiKey::DescribeGroups => (DESCRIBE_GROUPS, 5),
        ApiKey::InitProducerId => (INIT_PRODUCER_ID, 2),
        ApiKey::DeleteGroups => (DELETE_GROUPS, 2),
        ApiKey::AddPartitionsToTxn => (ADD_PARTITIONS_TO_TXN, 3),
        ApiKey::AddOffsetsToTxn => (ADD_OFFSETS_TO_TXN, 3),
        ApiKey::EndTxn => (END_TXN, 3),
        ApiKey::TxnOffsetCommit => (TXN_OFFSET_COMMIT, 3),
        ApiKey::DescribeTransactions => (DESCRIBE_TRANSACTIONS, 0),
        ApiKey::ListTransactions => (LIST_TRANSACTIONS, 0),
        ApiKey::DescribeProducers => (DESCRIBE_PRODUCERS, 0),
        ApiKey::OffsetDelete => (OFFSET_DELETE, i16::MAX),
        ApiKey::DescribeCluster => (DESCRIBE_CLUSTER, 0),
        ApiKey::DeleteRecords => (DELETE_RECORDS, 2),
        ApiKey::DescribeLogDirs => (DESCRIBE_LOG_DIRS, 2),
        ApiKey::OffsetForLeaderEpoch => (OFFSET_FOR_LEADER_EPOCH, 4),
        ApiKey::ElectLeaders => (ELECT_LEADERS, 2),
        ApiKey::AlterReplicaLogDirs => (ALTER_REPLICA_LOG_DIRS, 2),
        ApiKey::AlterPartitionReassignments => (ALTER_REASSIGNMENTS, 0),
        ApiKey::ListPartitionReassignments => (LIST_REASSIGNMENTS, 0),
        ApiKey::ConsumerGroupHeartbeat => (CONSUMER_GROUP_HEARTBEAT, 0),
        ApiKey::ConsumerGroupDescribe => (CONSUMER_GROUP_DESCRIBE, 0),
        ApiKey::DescribeTopicPartitions => (DESCRIBE_TOPIC_PARTITIONS, 0),
        ApiKey::SaslHandshake => (SASL_HANDSHAKE, i16::MAX),
        ApiKey::SaslAuthenticate => (SASL_AUTHENTICATE, 2),
        ApiKey::DescribeAcls => (ACL, 2),
        ApiKey::CreateAcls => (ACL_LIST, 2),
        ApiKey::DeleteAcls => (ACL_LIST, 2),
        ApiKey::DescribeUserScramCredentials => (DESCRIBE_SCRAM, 0),
        ApiKey::AlterUserScramCredentials => (ALTER_SCRAM, 0),
        _ => return None,
    })
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

type Check<T> = Result<T, String>;

impl Cursor<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn skip(&mut self, n: usize) -> Check<()> {
        if n > self.remaining() {
            return Err(format!(
                "{n} bytes needed at byte {} but only {} remain",
                self.pos,
                self.remaining()
            ));
        }
        self.pos += n;
        Ok(())
    }

    fn fixed<const N: usize>(&mut self) -> Check<[u8; N]> {
        let at = self.pos;
        self.skip(N)?;
        Ok(self.buf[at..at + N].try_into().expect("N bytes"))
    }

    fn uvarint(&mut self) -> Check<u64> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let [b] = self.fixed::<1>()?;
            value |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint too long at byte {}", self.pos))
    }

    /// A length or count: `None` for null. Refuses counts larger than the
    /// bytes left, given at least `min_each` bytes per unit.
    fn count(&mut self, flexible: bool, wide: bool) -> Check<Option<usize>> {
        let n: i64 = if flexible {
            self.uvarint()? as i64 - 1
        } else if wide {
            i32::from_be_bytes(self.fixed()?) as i64
        } else {
            i16::from_be_bytes(self.fixed()?) as i64
        };
        if n < -1 {
            return Err(format!("negative length {n} at byte {}", self.pos));
        }
        if n == -1 {
            return Ok(None);
        }
        if n as u64 > self.remaining() as u64 {
            return Err(format!(
                "length {n} at byte {} exceeds the {} bytes left in the request",
                self.pos,
                self.remaining()
            ));
        }
        Ok(Some(n as usize))
    }

    /// A tagged-field section. Its count is a plain unsigned varint, not a
    /// compact length (which stores the count plus one): reading it as one
    /// would make the guard and the decoder disagree by a field. Tags in
    /// `fields` (those of the struct's, for `version`) are walked as their
    /// type; others are skipped by their size, as the decoder does.
    fn tagged_fields(&mut self, fields: &[F], version: i16) -> Check<()> {
        let n = self.uvarint()?;
        if n > self.remaining() as u64 {
            return Err(format!(
                "{n} tagged fields at byte {} exceed the {} bytes left in the request",
                self.pos,
                self.remaining()
            ));
        }
        for _ in 0..n {
            let tag = self.uvarint()?;
            let size = self.uvarint()?;
            let known = fields.iter().find_map(|f| match f.ty {
                Tagged(t, ty) if t as u64 == tag && f.since <= version && version <= f.until => {
                    Some(*ty)
                }
                _ => None,
            });
            match known {
                Some(ty) => self.field(ty, version, true)?,
                None => self.skip(
                    usize::try_from(size).map_err(|_| "tagged field too large".to_string())?,
                )?,
            }
        }
        Ok(())
    }

    fn walk(&mut self, fields: &[F], version: i16, flexible: bool) -> Check<()> {
        for field in fields
            .iter()
            .filter(|f| f.since <= version && version <= f.until)
        {
            self.field(field.ty, version, flexible)?;
        }
        if flexible {
            self.tagged_fields(fields, version)?;
        }
        Ok(())
    }

    /// Steps over one field in its place in the struct; tagged fields have
    /// no place there and are walked in the tagged-field section.
    fn field(&mut self, ty: Ty, version: i16, flexible: bool) -> Check<()> {
        match ty {
            I8 | Bool => self.skip(1)?,
            I16 => self.skip(2)?,
            I32 => self.skip(4)?,
            I64 => self.skip(8)?,
            Uuid => self.skip(16)?,
            Str => {
                let n = self.count(flexible, false)?.unwrap_or(0);
                self.skip(n)?
            }
            Bytes => {
                let n = self.count(flexible, true)?.unwrap_or(0);
                self.skip(n)?
            }
            ArrayI32 => {
                let n = self.count(flexible, true)?.unwrap_or(0);
                self.skip(n.saturating_mul(4))?
            }
            ArrayStr => {
                for _ in 0..self.count(flexible, true)?.unwrap_or(0) {
                    let n = self.count(flexible, false)?.unwrap_or(0);
                    self.skip(n)?;
                }
            }
            Array(element) => {
                for _ in 0..self.count(flexible, true)?.unwrap_or(0) {
                    self.walk(element, version, flexible)?;
                }
            }
            Struct(fields) => self.walk(fields, version, flexible)?,
            OptStruct(fields) => {
                let present = *self
                    .buf
                    .get(self.pos)
                    .ok_or("nullable struct past the end")?;
                self.skip(1)?;
                if present == 1 {
                    self.walk(fields, version, flexible)?
                }
            }
            Tagged(..) => {}
        }
        Ok(())
    }
}

/// Walks a whole request frame (header and body) of a supported API and
/// version, refusing it if any length or count cannot fit in the frame.
pub(crate) fn check_request(frame: &[u8], api_key: ApiKey, version: i16) -> Result<(), String> {
    let Some((body, first_flexible)) = schema(api_key) else {
        return Ok(());
    };
    let mut c = Cursor { buf: frame, pos: 0 };
    // Header: api key, version, correlation id, then a nullable client id
    // that keeps its 2-byte length even in flexible headers.
    c.skip(8)?;
    let client_id = c.count(false, false)?.unwrap_or(0);
    c.skip(client_id)?;
    let flexible = version >= first_flexible;
    if api_key.request_header_version(version) >= 2 {
        c.tagged_fields(&[], version)?;
    }
    c.walk(body, version, flexible)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_impossible_array_counts() {
        // Metadata v1 claiming i32::MAX topics in a 20-byte frame.
        let mut frame = vec![0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff];
        frame.extend_from_slice(&i32::MAX.to_be_bytes());
        frame.extend_from_slice(&[0, 3, b'a', b'b', b'c']);
        let e = check_request(&frame, ApiKey::Metadata, 1).unwrap_err();
        assert!(e.contains("exceeds"), "{e}");
        // The same with a count that fits.
        frame[10..14].copy_from_slice(&1i32.to_be_bytes());
        check_request(&frame, ApiKey::Metadata, 1).unwrap();
        // A compact (flexible) array count.
        let mut flex = vec![0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0];
        flex.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(check_request(&flex, ApiKey::Metadata, 12).is_err());
    }

    /// Found by the mutation fuzzer: an OffsetFetch v9 from librdkafka whose
    /// header's tagged-field count was changed from 0 to 1. The decoder then
    /// skips the first body bytes as a tagged field and reads a group count
    /// of 805 million from the rest, which the guard must see too.
    #[test]
    fn counts_tagged_fields_as_the_decoder_does() {
        let mut frame = vec![0, 9, 0, 9, 0, 0, 0, 8, 0, 7];
        frame.extend_from_slice(b"rdkafka");
        frame.extend_from_slice(&[
            0x01, 0x02, 0x03, 0x67, 0x31, 0x00, 0xff, 0xff, 0xff, 0xff, 0x02, 0x03, 0x63, 0x31,
            0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00,
        ]);
        let e = check_request(&frame, ApiKey::OffsetFetch, 9).unwrap_err();
        assert!(e.contains("exceeds"), "{e}");
    }

    /// Found by the mutation fuzzer: a Fetch v17 whose partition carries
    /// tagged field 0 (the replica directory id) with a claimed size of 0.
    /// The decoder reads the 16-byte id anyway; a guard that skipped the
    /// claimed size saw the id's bytes as the rest of the request, while the
    /// decoder read a forgotten-topics count of half a billion after them and
    /// aborted the broker on a 24 GiB allocation.
    #[test]
    fn walks_known_tagged_fields_as_the_decoder_does() {
        // Header v2: Fetch v17, correlation id, null client id, no tags.
        let mut frame = vec![0, 1, 0, 17, 0, 0, 0, 1, 0xff, 0xff, 0];
        // max wait, min bytes, max bytes, isolation, session id and epoch.
        frame.extend_from_slice(&[0; 4 * 3 + 1 + 4 * 2]);
        // One topic (by id) with one partition.
        frame.push(2);
        frame.extend_from_slice(&[7; 16]);
        frame.push(2);
        frame.extend_from_slice(&[0; 4 + 4 + 8 + 4 + 8 + 4]);
        // The partition's tagged fields: tag 0, claimed size 0, then the
        // id's 16 bytes, which read as the end of the request when the
        // claimed size is believed: no topic tags, no forgotten topics, an
        // empty rack id, no request tags.
        frame.extend_from_slice(&[1, 0, 0]);
        let id_start = frame.len();
        frame.extend_from_slice(&[0, 1, 1, 0]);
        frame.resize(id_start + 16, 0);
        // After the id as the decoder reads it: no topic tags, then a
        // forgotten-topics count of 2^29.
        frame.extend_from_slice(&[0, 0x80, 0x80, 0x80, 0x80, 0x02, 1, 0]);
        let e = check_request(&frame, ApiKey::Fetch, 17).unwrap_err();
        assert!(e.contains("exceeds"), "{e}");
        // With the size it should claim and a forgotten-topics count that
        // fits, the same request passes.
        frame[id_start - 1] = 16;
        let n = frame.len();
        frame[n - 7..].copy_from_slice(&[1, 1, 0, 0, 0, 0, 0]);
        check_request(&frame, ApiKey::Fetch, 17).unwrap();
        let req = crate::decode_request(bytes::Bytes::from(frame)).unwrap();
        let kafka_protocol::messages::RequestKind::Fetch(fetch) = req.body else {
            panic!("not a fetch: {req:?}");
        };
        assert_eq!(fetch.topics[0].partitions.len(), 1);
        assert!(fetch.forgotten_topics_data.is_empty());
    }
}
