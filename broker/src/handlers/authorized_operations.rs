//! The authorized operations Metadata, DescribeCluster and DescribeGroups
//! report when a client asks for them. Strata has no authorizer yet, so
//! every client may do everything Kafka defines for the resource type; the
//! answer is Kafka's bit field of those operations (bit n for operation
//! code n). Unrequested, Kafka's marker `i32::MIN` is sent instead.

/// Kafka's "authorized operations were not requested" marker.
pub const OMITTED: i32 = i32::MIN;

/// Kafka's `AclOperation` codes.
const READ: i32 = 3;
const WRITE: i32 = 4;
const CREATE: i32 = 5;
const DELETE: i32 = 6;
const ALTER: i32 = 7;
const DESCRIBE: i32 = 8;
const CLUSTER_ACTION: i32 = 9;
const DESCRIBE_CONFIGS: i32 = 10;
const ALTER_CONFIGS: i32 = 11;
const IDEMPOTENT_WRITE: i32 = 12;

const fn bits(ops: &[i32]) -> i32 {
    let mut out = 0;
    let mut i = 0;
    while i < ops.len() {
        out |= 1 << ops[i];
        i += 1;
    }
    out
}

/// Every operation Kafka defines on a topic.
const TOPIC: i32 = bits(&[
    READ,
    WRITE,
    CREATE,
    DELETE,
    ALTER,
    DESCRIBE,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
]);

/// Every operation Kafka defines on the cluster.
const CLUSTER: i32 = bits(&[
    CREATE,
    ALTER,
    DESCRIBE,
    CLUSTER_ACTION,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
    IDEMPOTENT_WRITE,
]);

/// Every operation Kafka defines on a group.
const GROUP: i32 = bits(&[READ, DELETE, DESCRIBE]);

fn answer(requested: bool, all: i32) -> i32 {
    if requested {
        all
    } else {
        OMITTED
    }
}

pub fn topic(requested: bool) -> i32 {
    answer(requested, TOPIC)
}

pub fn cluster(requested: bool) -> i32 {
    answer(requested, CLUSTER)
}

pub fn group(requested: bool) -> i32 {
    answer(requested, GROUP)
}
