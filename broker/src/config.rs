//! Broker and topic configuration under Kafka's own names.
//!
//! Every key Strata accepts is in [`DEFS`] with its type, default and, for
//! broker keys that set a topic default, the topic-level name. Values are
//! kept as the strings the user gave and parsed when used, so that
//! DescribeConfigs shows exactly what was set.

use std::collections::BTreeMap;
use std::path::Path;

use strata_storage::codec::Levels;
use strata_storage::{LogConfig, TimestampType};
use strata_tiering::TierPolicy;

use crate::kafka_keys::{is_kafka_broker_key, is_kafka_dynamic};

/// The type of a config value, as DescribeConfigs reports it.
/// Kafka's class names of its two server-side assignors, which
/// `group.consumer.assignors` takes as well as their short names.
const UNIFORM_ASSIGNOR: &str = "org.apache.kafka.coordinator.group.assignor.UniformAssignor";
const RANGE_ASSIGNOR: &str = "org.apache.kafka.coordinator.group.assignor.RangeAssignor";

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    Long,
    /// One of the listed strings.
    Choice(&'static [&'static str]),
    /// Any string.
    Text,
    /// A floating-point number.
    Double,
    /// A comma-separated list; its items must be among the listed strings
    /// when there are any.
    List(&'static [&'static str]),
}

impl Kind {
    /// Kafka's `ConfigType` code for DescribeConfigs v3+.
    pub fn type_code(self) -> i8 {
        match self {
            Kind::Bool => 1,
            Kind::Choice(_) | Kind::Text => 2,
            Kind::Int => 3,
            Kind::Long => 5,
            Kind::Double => 6,
            Kind::List(_) => 7,
        }
    }
}

/// Whether a key configures the broker or a topic.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Broker,
    Topic,
}

/// One accepted config key.
#[derive(Debug)]
pub struct Def {
    pub name: &'static str,
    pub scope: Scope,
    pub kind: Kind,
    pub default: &'static str,
    /// Smallest accepted number (for Int and Long).
    pub min: i64,
    /// For a topic key, the broker key that sets its default.
    pub broker_synonym: Option<&'static str>,
    pub doc: &'static str,
}

const I64_MAX: &str = "9223372036854775807";

/// `compression.type`'s values, Kafka's: `producer` keeps the producer's
/// codec; a codec makes the broker recompress batches that have another
/// (`recompress.rs`).
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

macro_rules! def {
    ($name:expr, $scope:ident, $kind:expr, $default:expr, $min:expr, $syn:expr, $doc:expr) => {
        Def {
            name: $name,
            scope: Scope::$scope,
            kind: $kind,
            default: $default,
            min: $min,
            broker_synonym: $syn,
            doc: $doc,
        }
    };
}

/// Every config key Strata accepts, with Kafka's defaults.
pub static DEFS: &[Def] = &[
    def!("node.id", Broker, Kind::Int, "0", 0, None, "The id of this broker in metadata responses."),
    def!("num.partitions", Broker, Kind::Int, "1", 1, None, "Partitions of an automatically created topic, or of one created with -1."),
    def!("default.replication.factor", Broker, Kind::Int, "1", 1, None, "Replication factor of automatically created topics (1: single node)."),
    def!("auto.create.topics.enable", Broker, Kind::Bool, "true", 0, None, "Create unknown topics named in Metadata requests."),
    def!("delete.topic.enable", Broker, Kind::Bool, "true", 0, None, "Allow DeleteTopics."),
    def!("message.max.bytes", Broker, Kind::Int, "1048588", 0, None, "Largest record batch accepted (topic default for max.message.bytes)."),
    def!("fetch.sendfile.enable", Broker, Kind::Bool, "true", 0, None, "Strata: send the records of Fetch answers read from local segments to the socket with sendfile(2), without copying them through the broker's memory; false reads them into memory first. Changes at run time."),
    def!("socket.request.max.bytes", Broker, Kind::Int, "104857600", 1, None, "Largest request frame accepted; larger frames close the connection."),
    def!("max.connections", Broker, Kind::Int, "2147483647", 0, None, "Most client connections open at once; at the limit new connections wait in the listen backlog until one closes."),
    def!("max.connections.per.ip", Broker, Kind::Int, "2147483647", 0, None, "Most connections open at once from one IP address; more are closed at once."),
    def!("queued.max.requests", Broker, Kind::Int, "500", 1, None, "Most requests read and being handled at once across all connections; a connection waits for a slot before reading its next request."),
    def!("listeners", Broker, Kind::Text, "", 0, None, "The listeners, as NAME://HOST:PORT separated by commas (an empty host is every interface, port 0 picks a free port); a name is a security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) or mapped to one by listener.security.protocol.map. Empty: the one PLAINTEXT listener of --listen."),
    def!("advertised.listeners", Broker, Kind::Text, "", 0, None, "What clients of each listener are told to connect to, as NAME://HOST:PORT; a listener not named here advertises its own address (localhost when bound to every interface)."),
    def!("listener.security.protocol.map", Broker, Kind::Text, "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", 0, None, "The security protocol of each listener name, as NAME:PROTOCOL pairs."),
    def!("ssl.keystore.type", Broker, Kind::Choice(&["PEM"]), "PEM", 0, None, "The key store's format: PEM only (Kafka's default, JKS, is not read; convert it with keytool and openssl)."),
    def!("ssl.keystore.location", Broker, Kind::Text, "", 0, None, "A PEM file with the TLS listeners' private key (unencrypted PKCS#8) and certificate chain. Reloaded for new connections when the file changes."),
    def!("ssl.keystore.certificate.chain", Broker, Kind::Text, "", 0, None, "The TLS listeners' certificate chain as PEM text, with ssl.keystore.key, instead of ssl.keystore.location."),
    def!("ssl.keystore.key", Broker, Kind::Text, "", 0, None, "The TLS listeners' private key as PEM text (unencrypted PKCS#8), with ssl.keystore.certificate.chain."),
    def!("ssl.key.password", Broker, Kind::Text, "", 0, None, "Not supported: encrypted private keys are refused at start; give an unencrypted key and protect the file."),
    def!("ssl.truststore.type", Broker, Kind::Choice(&["PEM"]), "PEM", 0, None, "The trust store's format: PEM only."),
    def!("ssl.truststore.location", Broker, Kind::Text, "", 0, None, "A PEM file of the CA certificates client certificates must chain to (ssl.client.auth). Reloaded for new connections when the file changes."),
    def!("ssl.truststore.certificates", Broker, Kind::Text, "", 0, None, "The trust store's CA certificates as PEM text, instead of ssl.truststore.location."),
    def!("ssl.client.auth", Broker, Kind::Choice(&["required", "requested", "none"]), "none", 0, None, "Whether TLS clients must (required) or may (requested) present a certificate; its subject becomes the principal, User:CN=...,O=... as Kafka writes it."),
    def!("ssl.enabled.protocols", Broker, Kind::List(&["TLSv1.2", "TLSv1.3"]), "TLSv1.2,TLSv1.3", 1, None, "The TLS versions TLS listeners accept."),
    def!("ssl.reload.interval.ms", Broker, Kind::Long, "30000", 100, None, "Strata: how often the files of ssl.keystore.location and ssl.truststore.location are looked at; a changed file is loaded for the connections that follow, without a restart."),
    def!("sasl.enabled.mechanisms", Broker, Kind::List(&["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"]), "SCRAM-SHA-256,SCRAM-SHA-512", 1, None, "The SASL mechanisms SASL listeners offer. PLAIN checks the password against the user's SCRAM credential (the broker keeps no other form of it). GSSAPI and OAUTHBEARER are accepted, so that copied Kafka configs start, but not offered: a SASL listener needs one of the others."),
    def!("connections.max.reauth.ms", Broker, Kind::Long, "0", 0, None, "KIP-368: when positive, a SASL session lasts at most this long; the client must re-authenticate on its connection before then, or the connection is closed at its next request."),
    def!("authorizer.class.name", Broker, Kind::Text, "", 0, None, "Set to org.apache.kafka.metadata.authorizer.StandardAuthorizer (or kafka.security.authorizer.AclAuthorizer, or strata) to enforce ACLs with Strata's built-in authorizer. Empty: every client may do everything."),
    def!("super.users", Broker, Kind::Text, "", 0, None, "Principals allowed everything whatever the ACLs, separated by semicolons: User:admin;User:CN=ops,O=Example."),
    def!("allow.everyone.if.no.acl.found", Broker, Kind::Bool, "false", 0, None, "With an authorizer: whether a resource no ACL covers is open to everyone (false: only super users may use it)."),
    def!("metrics.basic.auth.enable", Broker, Kind::Bool, "false", 0, None, "Strata: GET /metrics asks for HTTP Basic credentials of a SCRAM user (checked as SASL PLAIN is); with an authorizer the user also needs DESCRIBE on the cluster. The endpoint's address is --metrics-listen (127.0.0.1 by default)."),
                def!("offsets.retention.minutes", Broker, Kind::Int, "10080", 1, None, "How long the offsets of a group without members are kept after its last member left or its last commit."),
    def!("offsets.topic.segment.bytes", Broker, Kind::Int, "104857600", 1024, None, "Segment size of the committed-offsets log, which the log cleaner compacts like any compacted topic."),
    def!("group.session.check.interval.ms", Broker, Kind::Long, "500", 1, None, "How often expired group members are looked for."),
    def!("group.min.session.timeout.ms", Broker, Kind::Int, "6000", 0, None, "The shortest session timeout a group member may ask for; a join asking for less gets INVALID_SESSION_TIMEOUT."),
    def!("group.max.session.timeout.ms", Broker, Kind::Int, "1800000", 0, None, "The longest session timeout a group member may ask for; a join asking for more gets INVALID_SESSION_TIMEOUT."),
    def!("group.consumer.session.timeout.ms", Broker, Kind::Int, "45000", 1, None, "KIP-848 consumer groups: a member that sends no ConsumerGroupHeartbeat for this long leaves the group."),
    def!("transaction.max.timeout.ms", Broker, Kind::Int, "900000", 1, None, "The longest transaction.timeout.ms a transactional producer may ask for; a longer one is refused with INVALID_TRANSACTION_TIMEOUT."),
    def!("transactional.id.expiration.ms", Broker, Kind::Int, "604800000", 1, None, "A transactional id with no transaction for this long is forgotten, with its producer id."),
    def!("transaction.abort.timed.out.transaction.cleanup.interval.ms", Broker, Kind::Int, "10000", 1, None, "How often transactions open past their timeout are looked for and aborted."),
    def!("transaction.remove.expired.transaction.cleanup.interval.ms", Broker, Kind::Int, "3600000", 1, None, "How often expired transactional ids (transactional.id.expiration.ms) are removed."),
    def!("transaction.state.log.segment.bytes", Broker, Kind::Int, "104857600", 1024, None, "Segment size of the transaction state log, which the log cleaner compacts like any compacted topic."),
    def!("group.consumer.heartbeat.interval.ms", Broker, Kind::Int, "5000", 1, None, "KIP-848 consumer groups: how often members are told to heartbeat."),
    def!("group.consumer.assignors", Broker, Kind::List(&["uniform", "range", UNIFORM_ASSIGNOR, RANGE_ASSIGNOR]), "org.apache.kafka.coordinator.group.assignor.UniformAssignor,org.apache.kafka.coordinator.group.assignor.RangeAssignor", 1, None, "KIP-848 consumer groups: the server-side assignors members may name, the first used when they name none (uniform or range, by short or Kafka class name)."),
    def!("group.consumer.max.size", Broker, Kind::Int, "2147483647", 1, None, "KIP-848 consumer groups: the most members a group takes; one more gets GROUP_MAX_SIZE_REACHED."),
    def!("max.request.partition.size.limit", Broker, Kind::Int, "2000", 1, None, "The most partitions one DescribeTopicPartitions response describes; the rest come with the next cursor."),
    def!("group.initial.rebalance.delay.ms", Broker, Kind::Int, "3000", 0, None, "How long a new group waits for more members before its first rebalance ends."),
    def!("log.segment.bytes", Broker, Kind::Int, "1073741824", 14, None, "Default segment.bytes."),
    def!("log.roll.ms", Broker, Kind::Long, "604800000", 1, None, "Default segment.ms."),
    def!("log.roll.hours", Broker, Kind::Int, "168", 1, None, "Default segment.ms in hours, used when log.roll.ms is not set."),
    def!("log.retention.ms", Broker, Kind::Long, "-1", -1, None, "Default retention.ms (both tiers); -1, the default, keeps data forever."),
    def!("log.retention.minutes", Broker, Kind::Int, "-1", -1, None, "Default retention.ms in minutes, used when log.retention.ms is not set."),
    def!("log.retention.hours", Broker, Kind::Int, "-1", -1, None, "Default retention.ms in hours, used when neither log.retention.ms nor log.retention.minutes is set."),
    def!("log.local.retention.ms", Broker, Kind::Long, "3600000", -2, None, "Default local.retention.ms: how long the hot tier keeps uploaded segments; -2 follows retention.ms."),
    def!("log.local.retention.bytes", Broker, Kind::Long, "-2", -2, None, "Default local.retention.bytes; -2 follows retention.bytes."),
    def!("remote.log.storage.system.enable", Broker, Kind::Bool, "true", 0, None, "Enable the cold tier for topics with remote.storage.enable=true."),
    def!("remote.log.storage.url", Broker, Kind::Text, "", 0, None, "Object store for the cold tier: file:///dir, s3://bucket/prefix, gs://..., az://...; empty means DATA_DIR/remote."),
    def!("remote.log.manager.task.interval.ms", Broker, Kind::Long, "30000", 1, None, "How often sealed segments are looked for and uploaded."),
    def!("remote.log.owner.lease.ms", Broker, Kind::Long, "10000", 500, None, "Strata: the bucket's owner lease. The broker writing to a bucket renews _strata/owner.json every quarter of this; a broker starting on the bucket waits up to this long to see whether another one is alive on it."),
    def!("remote.log.read.replica", Broker, Kind::Text, "", 0, None, "Strata: a read replica of this broker as NODE_ID@HOST:PORT. Consumers that set client.rack and fetch history from the cold tier are sent to it (KIP-392 preferred_read_replica), and it answers as this broker's follower."),
    def!("remote.log.replica.refresh.ms", Broker, Kind::Long, "2000", 100, None, "Strata: how often a read replica (--read-replica) reads the bucket's catalogue and manifests; new segments appear on it within this plus remote.log.manager.task.interval.ms of their roll."),
    def!("remote.log.reader.cache.bytes", Broker, Kind::Long, "1073741824", 0, None, "Size of the on-disk cache of remote segment chunks."),
    def!("remote.log.reader.chunk.bytes", Broker, Kind::Int, "4194304", 65536, None, "Size of one ranged GET of a remote segment, and of one cache entry."),
    def!("remote.log.manager.copy.max.bytes.per.second", Broker, Kind::Long, "9223372036854775807", 1, None, "The most bytes per second uploads to the cold tier send, over all partitions; changes at run time."),
    def!("lake.translation.interval.ms", Broker, Kind::Long, "5000", 100, None, "Strata: how often topics with lake.enable=true are looked at for uploaded segments to translate into their lake tables."),
    def!("lake.retention.check.interval.ms", Broker, Kind::Long, "300000", 100, None, "Strata: how often each lake table is checked for event-time partitions past its topic's lake.retention.ms."),
    def!("lake.translation.max.bytes.per.second", Broker, Kind::Long, "52428800", 1, None, "Strata: the most bytes per second the lake's translation reads from the cold tier, over all topics; changes at run time."),
    def!("remote.log.manager.fetch.max.bytes.per.second", Broker, Kind::Long, "9223372036854775807", 1, None, "The most bytes per second reads from the cold tier (fetches and their read-ahead) download, over all partitions; changes at run time."),
    def!("remote.log.reader.max.inflight.gets", Broker, Kind::Int, "64", 1, None, "Strata: the most ranged GETs of remote segments in flight at once, over all partitions. Read-ahead leaves a quarter of them to fetches that wait."),
    def!("remote.log.reader.readahead.max.bytes", Broker, Kind::Long, "67108864", 1, None, "Strata: how far ahead of a sequential reader one partition's cold tier is read at most. The read-ahead starts at one chunk after a seek, doubles while the reader waits for the store and halves under cache pressure or throttling; unread chunks never take more than half of remote.log.reader.cache.bytes."),
    def!("remote.fetch.max.wait.ms", Broker, Kind::Int, "500", 1, None, "How long a Fetch waits for the cold tier before answering without those records."),
    def!("remote.log.index.file.cache.total.size.bytes", Broker, Kind::Long, "1073741824", 1, None, "Memory for remote segments' offset and time indexes, over all partitions; the least recently used go first."),
    def!("producer.id.expiration.ms", Broker, Kind::Int, "86400000", 1, None, "An idempotent producer that appends nothing to a partition for this long is forgotten there."),
    def!("log.retention.bytes", Broker, Kind::Long, "-1", -1, None, "Default retention.bytes; -1 is unlimited."),
    def!("log.retention.check.interval.ms", Broker, Kind::Long, "300000", 1, None, "How often retention runs."),
    def!("log.flush.interval.messages", Broker, Kind::Long, I64_MAX, 1, None, "Default flush.messages."),
    def!("log.flush.interval.ms", Broker, Kind::Long, I64_MAX, 0, None, "Default flush.ms."),
    def!("log.flush.scheduler.interval.ms", Broker, Kind::Long, "1000", 1, None, "How often logs are checked against flush.ms."),
    def!("log.index.interval.bytes", Broker, Kind::Int, "4096", 0, None, "Default index.interval.bytes."),
    def!("log.index.size.max.bytes", Broker, Kind::Int, "10485760", 4, None, "Default segment.index.bytes."),
    def!("log.message.timestamp.type", Broker, Kind::Choice(&["CreateTime", "LogAppendTime"]), "CreateTime", 0, None, "Default message.timestamp.type."),
    def!("log.message.timestamp.before.max.ms", Broker, Kind::Long, I64_MAX, 0, None, "Default message.timestamp.before.max.ms."),
    def!("log.message.timestamp.after.max.ms", Broker, Kind::Long, "3600000", 0, None, "Default message.timestamp.after.max.ms."),
    def!("log.cleanup.policy", Broker, Kind::List(&["delete", "compact"]), "delete", 1, None, "Default cleanup.policy."),
    def!("log.cleaner.enable", Broker, Kind::Bool, "true", 0, None, "Run the log cleaner, which compacts topics with cleanup.policy=compact."),
    def!("log.cleaner.threads", Broker, Kind::Int, "1", 0, None, "Cleaner threads; each cleans one log at a time, at low priority."),
    def!("log.cleaner.dedupe.buffer.size", Broker, Kind::Long, "134217728", 1, None, "Memory for the cleaners' key maps, shared among the threads; a log with more distinct dirty keys than fit is cleaned over several passes."),
    def!("log.cleaner.io.max.bytes.per.second", Broker, Kind::Double, "1.7976931348623157E308", 0, None, "The most bytes per second the cleaners read, together."),
    def!("log.cleaner.backoff.ms", Broker, Kind::Long, "15000", 0, None, "How long a cleaner sleeps when no log needs cleaning."),
    def!("compression.type", Broker, Kind::Choice(COMPRESSION_TYPES), "producer", 0, None, "Default compression.type."),
    def!("compression.gzip.level", Broker, Kind::Int, "-1", -1, None, "Default compression.gzip.level."),
    def!("compression.lz4.level", Broker, Kind::Int, "9", 1, None, "Default compression.lz4.level."),
    def!("compression.zstd.level", Broker, Kind::Int, "3", -131072, None, "Default compression.zstd.level."),
    def!("min.insync.replicas", Broker, Kind::Int, "1", 1, None, "Default min.insync.replicas."),
    def!("unclean.leader.election.enable", Broker, Kind::Bool, "false", 0, None, "Default unclean.leader.election.enable."),
    def!("log.preallocate", Broker, Kind::Bool, "false", 0, None, "Default preallocate."),
    def!("log.roll.jitter.ms", Broker, Kind::Long, "0", 0, None, "Default segment.jitter.ms."),
    def!("log.segment.delete.delay.ms", Broker, Kind::Long, "60000", 0, None, "Default file.delete.delay.ms."),
    def!("log.cleaner.delete.retention.ms", Broker, Kind::Long, "86400000", 0, None, "Default delete.retention.ms."),
    def!("log.cleaner.min.compaction.lag.ms", Broker, Kind::Long, "0", 0, None, "Default min.compaction.lag.ms."),
    def!("log.cleaner.max.compaction.lag.ms", Broker, Kind::Long, I64_MAX, 1, None, "Default max.compaction.lag.ms."),
    def!("log.cleaner.min.cleanable.ratio", Broker, Kind::Double, "0.5", 0, None, "Default min.cleanable.dirty.ratio."),
    def!("segment.bytes", Topic, Kind::Int, "1073741824", 14, Some("log.segment.bytes"), "Roll a segment before it grows past this size."),
    def!("segment.ms", Topic, Kind::Long, "604800000", 1, Some("log.roll.ms"), "Roll a non-empty segment this old."),
    def!("retention.ms", Topic, Kind::Long, "-1", -1, Some("log.retention.ms"), "Total retention, both tiers: delete segments whose newest record is older; -1 keeps forever."),
    def!("retention.bytes", Topic, Kind::Long, "-1", -1, Some("log.retention.bytes"), "Total retention, both tiers: delete old segments while the partition is larger; -1 is unlimited."),
    def!("remote.storage.enable", Topic, Kind::Bool, "true", 0, None, "Upload sealed segments to the cold tier (Strata's default is true, except for compacted topics, which Kafka does not tier: they default to false and refuse true)."),
    def!("local.retention.ms", Topic, Kind::Long, "3600000", -2, Some("log.local.retention.ms"), "Hot-tier retention of uploaded segments; -2 follows retention.ms."),
    def!("local.retention.bytes", Topic, Kind::Long, "-2", -2, Some("log.local.retention.bytes"), "Hot-tier size of uploaded segments; -2 follows retention.bytes."),
    def!("max.message.bytes", Topic, Kind::Int, "1048588", 0, Some("message.max.bytes"), "Largest record batch accepted."),
    def!("flush.messages", Topic, Kind::Long, I64_MAX, 1, Some("log.flush.interval.messages"), "fsync after this many records."),
    def!("flush.ms", Topic, Kind::Long, I64_MAX, 0, Some("log.flush.interval.ms"), "fsync when the oldest unflushed record is this old."),
    def!("index.interval.bytes", Topic, Kind::Int, "4096", 0, Some("log.index.interval.bytes"), "Bytes of log between two index entries."),
    def!("segment.index.bytes", Topic, Kind::Int, "10485760", 4, Some("log.index.size.max.bytes"), "Preallocated size of an index file."),
    def!("message.timestamp.type", Topic, Kind::Choice(&["CreateTime", "LogAppendTime"]), "CreateTime", 0, Some("log.message.timestamp.type"), "Keep the producer's timestamp or stamp the broker's."),
    def!("cleanup.policy", Topic, Kind::List(&["delete", "compact"]), "delete", 1, Some("log.cleanup.policy"), "delete: time and size retention; compact: the cleaner keeps the latest record of every key (records need a key); compact,delete: both."),
    def!("compression.type", Topic, Kind::Choice(COMPRESSION_TYPES), "producer", 0, Some("compression.type"), "The codec batches are stored with: producer keeps the producer's; uncompressed, gzip, snappy, lz4 or zstd makes the broker recompress batches with another codec, keeping their records, producer ids and sequence numbers."),
    def!("compression.gzip.level", Topic, Kind::Int, "-1", -1, Some("compression.gzip.level"), "gzip level for broker-side compression (1 to 9, -1 for the codec's default)."),
    def!("compression.lz4.level", Topic, Kind::Int, "9", 1, Some("compression.lz4.level"), "lz4 level for broker-side compression (1 to 17)."),
    def!("compression.zstd.level", Topic, Kind::Int, "3", -131072, Some("compression.zstd.level"), "zstd level for broker-side compression (-131072 to 22)."),
    def!("message.timestamp.before.max.ms", Topic, Kind::Long, I64_MAX, 0, Some("log.message.timestamp.before.max.ms"), "CreateTime records older than this are refused with INVALID_TIMESTAMP."),
    def!("message.timestamp.after.max.ms", Topic, Kind::Long, "3600000", 0, Some("log.message.timestamp.after.max.ms"), "CreateTime records further in the future than this are refused with INVALID_TIMESTAMP."),
    def!("min.insync.replicas", Topic, Kind::Int, "1", 1, Some("min.insync.replicas"), "Replicas that must have an acks=all write; a single node is its only replica, so 1 is all it can meet (more gives NOT_ENOUGH_REPLICAS)."),
    def!("unclean.leader.election.enable", Topic, Kind::Bool, "false", 0, Some("unclean.leader.election.enable"), "Accepted and reported; a single replica has no other to elect."),
    def!("leader.replication.throttled.replicas", Topic, Kind::List(&[]), "", 0, None, "Accepted and reported: partition:broker pairs or *; a single node has no replication to throttle."),
    def!("follower.replication.throttled.replicas", Topic, Kind::List(&[]), "", 0, None, "Accepted and reported: partition:broker pairs or *; a single node has no replication to throttle."),
    def!("preallocate", Topic, Kind::Bool, "false", 0, Some("log.preallocate"), "Accepted and reported; segment files grow as they are written."),
    def!("segment.jitter.ms", Topic, Kind::Long, "0", 0, Some("log.roll.jitter.ms"), "Accepted and reported; segments roll at segment.ms exactly."),
    def!("file.delete.delay.ms", Topic, Kind::Long, "60000", 0, Some("log.segment.delete.delay.ms"), "Accepted and reported; deleted segments go at once (readers keep their open files)."),
    def!("delete.retention.ms", Topic, Kind::Long, "86400000", 0, Some("log.cleaner.delete.retention.ms"), "How long a tombstone of a compacted topic stays readable after the cleaner first saw it."),
    def!("min.compaction.lag.ms", Topic, Kind::Long, "0", 0, Some("log.cleaner.min.compaction.lag.ms"), "The youngest a record may be and still be compacted."),
    def!("max.compaction.lag.ms", Topic, Kind::Long, I64_MAX, 1, Some("log.cleaner.max.compaction.lag.ms"), "A compacted log with a dirty record older than this is cleaned whatever its dirty ratio."),
    def!("min.cleanable.dirty.ratio", Topic, Kind::Double, "0.5", 0, Some("log.cleaner.min.cleanable.ratio"), "The share of a compacted log that must be dirty (not yet cleaned) before the cleaner cleans it (0 to 1)."),
    def!("lake.enable", Topic, Kind::Bool, "false", 0, None, "Strata: translate the topic's uploaded history into an Apache Iceberg table under lake/<topic>/ in the cold tier's bucket (needs remote.storage.enable=true)."),
    def!("lake.partition", Topic, Kind::Choice(&["hour", "day"]), "hour", 0, None, "Strata: the lake table's event-time partitions, hour or day; fixed when the table is created."),
    def!("lake.event.time", Topic, Kind::Text, "timestamp", 0, None, "Strata: a lake row's event time: timestamp (the record's) or a JSON pointer into JSON values such as /event_ts (milliseconds since the epoch or an RFC 3339 string; records without it use their timestamp)."),
    def!("lake.columns", Topic, Kind::Text, "", 0, None, "Strata: top-level fields of JSON values extracted as typed lake columns, name:type pairs (string, long, double, boolean, timestamp), e.g. user:string,amount:double; fixed when the table is created."),
    def!("lake.commit.interval.ms", Topic, Kind::Long, "300000", 1, None, "Strata: commit a lake snapshot at least this often while translated rows wait."),
    def!("lake.commit.bytes", Topic, Kind::Long, "134217728", 1, None, "Strata: commit a lake snapshot once this many bytes of records wait."),
    def!("lake.retention.ms", Topic, Kind::Long, "-1", -1, None, "Strata: drop the lake table's event-time partitions whose whole hour or day is older than this (by event time), independently of retention.ms; -1 keeps them forever."),
    def!("remote.log.copy.disable", Topic, Kind::Bool, "false", 0, None, "Accepted and reported; uploads follow remote.storage.enable."),
    def!("remote.log.delete.on.disable", Topic, Kind::Bool, "false", 0, None, "Accepted and reported; remote copies follow retention."),
];

/// The definition of a key of `scope` (a broker key and a topic key may
/// share a name, as `compression.type` does).
pub fn def(name: &str, scope: Scope) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.name == name && d.scope == scope)
}

/// Broker keys that are not a topic default but still change at run time.
const DYNAMIC_EXTRA: &[&str] = &[
    "log.retention.minutes",
    "log.retention.hours",
    "log.roll.hours",
    "remote.fetch.max.wait.ms",
    "fetch.sendfile.enable",
    "lake.translation.max.bytes.per.second",
    "remote.log.manager.copy.max.bytes.per.second",
    "remote.log.manager.fetch.max.bytes.per.second",
    "producer.id.expiration.ms",
    // The cleaner reads these before every pass, as Kafka reconfigures its
    // cleaner at run time.
    "log.cleaner.threads",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.backoff.ms",
];

/// Whether a broker key may be changed at run time (AlterConfigs on the
/// broker resource), as Kafka's cluster-wide dynamic configs: the defaults
/// of topic configs, which every topic without an override follows at
/// once, and the few keys read afresh on each use.
pub fn is_dynamic(d: &Def) -> bool {
    d.scope == Scope::Broker
        && (DEFS.iter().any(|t| t.broker_synonym == Some(d.name))
            || DYNAMIC_EXTRA.contains(&d.name))
}

/// Coarser keys consulted, in order, when a millisecond key is not set.
fn fallbacks(key: &str) -> &'static [&'static str] {
    match key {
        "log.retention.ms" => &["log.retention.minutes", "log.retention.hours"],
        "log.roll.ms" => &["log.roll.hours"],
        _ => &[],
    }
}

/// The two resources of dynamic broker configs: the cluster-wide default
/// (the broker resource with an empty name, `kafka-configs --entity-default`)
/// and this broker (its node id), which wins over the default.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Layer {
    ClusterDefault,
    ThisBroker,
}

/// Why a config key or value was refused. The message names the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown config key {0:?}{hint}", hint = did_you_mean(.0, Scope::Broker))]
    UnknownKey(String),
    #[error("{key} is a topic config; {hint}")]
    TopicKeyOnBroker { key: String, hint: String },
    #[error("unknown topic config {0:?}{hint}", hint = did_you_mean(.0, Scope::Topic))]
    UnknownTopicKey(String),
    #[error("invalid value {value:?} for {key}: {reason}")]
    BadValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("Cannot update these configs dynamically: [{0}]")]
    NotDynamic(String),
    #[error("{file}:{line}: expected KEY=VALUE")]
    BadLine { file: String, line: usize },
    #[error("cannot read {file}: {reason}")]
    Unreadable { file: String, reason: String },
}

/// `; did you mean "KEY"?` naming the known key of `scope` nearest to the
/// unknown `key` (a typo, a transposition), or nothing when none is close.
fn did_you_mean(key: &str, scope: Scope) -> String {
    let kafka_only: &[&str] = match scope {
        Scope::Broker => crate::kafka_keys::KAFKA_BROKER_KEYS,
        Scope::Topic => &[],
    };
    let nearest = DEFS
        .iter()
        .filter(|d| d.scope == scope)
        .map(|d| d.name)
        .chain(kafka_only.iter().copied())
        .map(|name| (strsim::levenshtein(key, name), name))
        .min();
    match nearest {
        // Close: a few edits, and fewer than a third of the key's length.
        Some((distance, name)) if distance <= 3 && distance * 3 < key.len() => {
            format!("; did you mean {name:?}?")
        }
        _ => String::new(),
    }
}

/// The definition of a broker key, or why `key` is not one: unknown, or a
/// topic key (pointing at the broker key that sets its default).
fn broker_def(key: &str) -> Result<&'static Def, ConfigError> {
    if let Some(d) = def(key, Scope::Broker) {
        return Ok(d);
    }
    match def(key, Scope::Topic) {
        Some(t) => Err(topic_key_on_broker(t)),
        None => Err(ConfigError::UnknownKey(key.into())),
    }
}

/// The error for a topic key given where a broker key belongs, pointing
/// at the broker key that sets its default.
fn topic_key_on_broker(d: &Def) -> ConfigError {
    ConfigError::TopicKeyOnBroker {
        key: d.name.into(),
        hint: match d.broker_synonym {
            Some(synonym) => format!("set the broker default {synonym} instead"),
            None => "it has no broker default: set it per topic".into(),
        },
    }
}

/// Checks `value` against the definition's type and bounds.
pub fn validate(def: &Def, value: &str) -> Result<(), ConfigError> {
    let bad = |reason: String| ConfigError::BadValue {
        key: def.name.into(),
        value: value.into(),
        reason,
    };
    match def.kind {
        Kind::Bool => match value {
            "true" | "false" => Ok(()),
            _ => Err(bad("expected true or false".into())),
        },
        Kind::Int | Kind::Long => {
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| bad("expected an integer".into()))?;
            if def.kind == Kind::Int && i32::try_from(n).is_err() {
                return Err(bad("out of range for an int".into()));
            }
            if n < def.min {
                return Err(bad(format!("must be at least {}", def.min)));
            }
            Ok(())
        }
        Kind::Text => Ok(()),
        Kind::Choice(options) => {
            if options.contains(&value) {
                Ok(())
            } else {
                Err(bad(format!("expected one of {}", options.join(", "))))
            }
        }
        Kind::Double => match value.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(()),
            _ => Err(bad("expected a number".into())),
        },
        Kind::List(allowed) => {
            for item in list_items(value) {
                if !allowed.is_empty() && !allowed.contains(&item) {
                    return Err(bad(format!(
                        "{item:?} is not one of {}",
                        allowed.join(", ")
                    )));
                }
            }
            Ok(())
        }
    }?;
    validate_range(def, value).map_err(bad)
}

/// The items of a list config's value: comma-separated, trimmed, empty
/// ones dropped.
pub fn list_items(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Kafka's bounds and formats beyond a key's type and minimum.
fn validate_range(def: &Def, value: &str) -> Result<(), String> {
    let int = || value.trim().parse::<i64>().unwrap_or(0);
    match def.name {
        n if n.starts_with("lake.") && def.scope == Scope::Topic => {
            strata_lake::config::validate(n, value)
        }
        "compression.gzip.level" if !(int() == -1 || (1..=9).contains(&int())) => {
            Err("must be -1 or from 1 to 9".into())
        }
        "compression.lz4.level" if !(1..=17).contains(&int()) => Err("must be from 1 to 17".into()),
        "compression.zstd.level" if !(-131072..=22).contains(&int()) => {
            Err("must be from -131072 to 22".into())
        }
        "min.cleanable.dirty.ratio" | "log.cleaner.min.cleanable.ratio" => {
            match value.trim().parse::<f64>() {
                Ok(x) if (0.0..=1.0).contains(&x) => Ok(()),
                _ => Err("must be from 0 to 1".into()),
            }
        }
        "leader.replication.throttled.replicas" | "follower.replication.throttled.replicas" => {
            let items = list_items(value);
            let pair = |s: &str| {
                s.split_once(':').is_some_and(|(p, b)| {
                    p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
                })
            };
            if items == ["*"] || items.iter().all(|s| pair(s)) {
                Ok(())
            } else {
                Err("expected * or a list of partition:broker pairs".into())
            }
        }
        _ => Ok(()),
    }
}

/// The broker's configuration: the keys set at start (config file, then
/// `--set`), the dynamic ones set at run time for the whole cluster and for
/// this broker, everything else at its default. Immutable once built: a
/// dynamic change builds a new one ([`BrokerConfig::with_dynamic`]), which
/// the broker swaps in; readers keep the one they hold.
#[derive(Clone, Debug, Default)]
pub struct BrokerConfig {
    explicit: BTreeMap<String, String>,
    cluster_default: BTreeMap<String, String>,
    this_broker: BTreeMap<String, String>,
}

impl BrokerConfig {
    /// Sets a broker key, refusing unknown keys, topic keys and bad values.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let key = key.trim();
        let value = value.trim();
        match broker_def(key) {
            Ok(d) => validate(d, value)?,
            // A Kafka key Strata has no use for: kept and reported.
            Err(ConfigError::UnknownKey(_)) if is_kafka_broker_key(key) => {}
            Err(e) => return Err(e),
        }
        self.explicit.insert(key.into(), value.into());
        Ok(())
    }

    /// The Kafka broker keys set in any layer that have no effect on a
    /// single node, with their values in force.
    pub fn without_effect(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for layer in [&self.explicit, &self.cluster_default, &self.this_broker] {
            for (k, v) in layer {
                if def(k, Scope::Broker).is_none() {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        out
    }

    /// Reads a Kafka-style properties file: `key=value` lines, `#` and `!`
    /// comments, blank lines.
    pub fn load_properties(&mut self, path: &Path) -> Result<(), ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .or_else(|| line.split_once(':'))
                .ok_or(ConfigError::BadLine {
                    file: file.clone(),
                    line: i + 1,
                })?;
            self.set(k, v)?;
        }
        Ok(())
    }

    /// The value of a broker key from the highest layer that sets it
    /// (this broker, the cluster default, then start-up), if any does.
    pub fn explicit(&self, key: &str) -> Option<&str> {
        self.set_values(key).first().map(|(v, _)| *v)
    }

    /// Every value set for a broker key, highest precedence first, with
    /// where it was set.
    pub fn set_values(&self, key: &str) -> Vec<(&str, Source)> {
        [
            (&self.this_broker, Source::DynamicBroker),
            (&self.cluster_default, Source::DynamicDefaultBroker),
            (&self.explicit, Source::StaticBroker),
        ]
        .into_iter()
        .filter_map(|(layer, source)| layer.get(key).map(|v| (v.as_str(), source)))
        .collect()
    }

    /// The dynamic configs of one layer.
    pub fn dynamic(&self, layer: Layer) -> &BTreeMap<String, String> {
        match layer {
            Layer::ClusterDefault => &self.cluster_default,
            Layer::ThisBroker => &self.this_broker,
        }
    }

    /// This configuration with `layer`'s dynamic configs replaced by
    /// `configs`, each checked: a known broker key, changeable at run time,
    /// with a valid value.
    pub fn with_dynamic(
        &self,
        layer: Layer,
        configs: BTreeMap<String, String>,
    ) -> Result<BrokerConfig, ConfigError> {
        let mut static_only = Vec::new();
        for (k, v) in &configs {
            let d = match broker_def(k) {
                Ok(d) => d,
                // Kafka keys without effect here change at run time where
                // Kafka lets them.
                Err(ConfigError::UnknownKey(_)) if is_kafka_broker_key(k) => {
                    if !is_kafka_dynamic(k) {
                        static_only.push(k.as_str());
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if !is_dynamic(d) {
                static_only.push(k.as_str());
                continue;
            }
            validate(d, v)?;
        }
        if !static_only.is_empty() {
            return Err(ConfigError::NotDynamic(static_only.join(", ")));
        }
        let mut next = self.clone();
        match layer {
            Layer::ClusterDefault => next.cluster_default = configs,
            Layer::ThisBroker => next.this_broker = configs,
        }
        Ok(next)
    }

    /// The value in force for a broker key: explicit or default. Keys with
    /// coarser fallbacks (`log.retention.hours`, `log.roll.hours`) are folded
    /// into their millisecond key here, as Kafka does.
    pub fn value(&self, key: &str) -> String {
        if let Some(v) = self.explicit(key) {
            return v.to_string();
        }
        let from = |k: &str, factor: i64| -> Option<String> {
            self.explicit(k).map(|v| {
                let n: i64 = v.parse().expect("validated");
                if n < 0 {
                    "-1".to_string()
                } else {
                    (n * factor).to_string()
                }
            })
        };
        match key {
            "log.retention.ms" => from("log.retention.minutes", 60_000)
                .or_else(|| from("log.retention.hours", 3_600_000))
                .unwrap_or_else(|| def(key, Scope::Broker).expect("known").default.to_string()),
            "log.roll.ms" => from("log.roll.hours", 3_600_000)
                .unwrap_or_else(|| def(key, Scope::Broker).expect("known").default.to_string()),
            _ => def(key, Scope::Broker)
                .map(|d| d.default.to_string())
                .unwrap_or_default(),
        }
    }

    pub fn i64(&self, key: &str) -> i64 {
        self.value(key).parse().expect("validated integer config")
    }

    pub fn bool(&self, key: &str) -> bool {
        self.value(key) == "true"
    }

    /// The group coordinator's settings.
    pub fn txn_settings(&self) -> crate::txn::TxnSettings {
        crate::txn::TxnSettings {
            max_timeout_ms: self.i64("transaction.max.timeout.ms"),
            expiration_ms: self.i64("transactional.id.expiration.ms"),
            segment_bytes: self.i64("transaction.state.log.segment.bytes") as u64,
        }
    }

    pub fn group_settings(&self) -> crate::group::GroupSettings {
        crate::group::GroupSettings {
            initial_delay: std::time::Duration::from_millis(
                self.i64("group.initial.rebalance.delay.ms") as u64,
            ),
            offsets_retention: std::time::Duration::from_secs(
                self.i64("offsets.retention.minutes") as u64 * 60,
            ),
            session_timeout_ms: self.i64("group.min.session.timeout.ms") as i32
                ..=self.i64("group.max.session.timeout.ms") as i32,
            offsets_segment_bytes: self.i64("offsets.topic.segment.bytes") as u64,
            consumer: crate::group::ConsumerSettings {
                session_timeout: std::time::Duration::from_millis(
                    self.i64("group.consumer.session.timeout.ms") as u64,
                ),
                heartbeat_interval: std::time::Duration::from_millis(
                    self.i64("group.consumer.heartbeat.interval.ms") as u64,
                ),
                assignors: self
                    .value("group.consumer.assignors")
                    .split(',')
                    .map(|a| match a.trim() {
                        UNIFORM_ASSIGNOR => "uniform".to_string(),
                        RANGE_ASSIGNOR => "range".to_string(),
                        short => short.to_string(),
                    })
                    .filter(|a| !a.is_empty())
                    .collect(),
                max_size: self.i64("group.consumer.max.size") as usize,
            },
        }
    }

    /// Checks a set of topic overrides as CreateTopics and AlterConfigs
    /// receive them: known keys, valid values, and Kafka's rule that the
    /// hot tier may not keep more than the total.
    pub fn validate_topic_configs(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<(), ConfigError> {
        for (k, v) in overrides {
            let d = def(k, Scope::Topic).ok_or_else(|| ConfigError::UnknownTopicKey(k.clone()))?;
            validate(d, v)?;
        }
        if self.has_policy(overrides, "compact")
            && overrides.get("remote.storage.enable").map(String::as_str) == Some("true")
        {
            return Err(ConfigError::BadValue {
                key: "remote.storage.enable".into(),
                value: "true".into(),
                reason: "Remote log storage is unsupported for the compacted topics".into(),
            });
        }
        if self.topic_value("lake.enable", overrides).0 == "true"
            && self.topic_value("remote.storage.enable", overrides).0 != "true"
        {
            return Err(ConfigError::BadValue {
                key: "lake.enable".into(),
                value: "true".into(),
                reason:
                    "the lake is translated from the cold tier: it needs remote.storage.enable=true"
                        .into(),
            });
        }
        let n = |k: &str| -> i64 { self.topic_value(k, overrides).0.parse().expect("validated") };
        for (local, total) in [
            ("local.retention.ms", "retention.ms"),
            ("local.retention.bytes", "retention.bytes"),
        ] {
            // Only a topic's own local limit is held to its total: a broker
            // default larger than a topic's total is capped to it instead.
            let (l, t) = (n(local), n(total));
            if !overrides.contains_key(local) || l == -2 || t == -1 {
                continue;
            }
            if l == -1 || l > t {
                return Err(ConfigError::BadValue {
                    key: local.into(),
                    value: l.to_string(),
                    reason: format!("the hot tier cannot keep more than {total}={t}"),
                });
            }
        }
        Ok(())
    }

    /// The lake settings of a topic with these overrides.
    pub fn lake_config(&self, overrides: &BTreeMap<String, String>) -> strata_lake::LakeConfig {
        strata_lake::LakeConfig::parse(|k| self.topic_value(k, overrides).0)
            .expect("lake configs are validated when set")
    }

    /// The tiering settings for a topic with these overrides, the local
    /// limits resolved (-2 means "as the total").
    pub fn tier_policy(&self, overrides: &BTreeMap<String, String>) -> TierPolicy {
        let n = |k: &str| -> i64 { self.topic_value(k, overrides).0.parse().expect("validated") };
        let resolve = |local: i64, total: i64| match (local, total) {
            (-2, _) => total,
            (_, t) if t >= 0 && (local < 0 || local > t) => t,
            _ => local,
        };
        let limits = self.retention_for(overrides);
        TierPolicy {
            remote: self.bool("remote.log.storage.system.enable")
                && self.topic_value("remote.storage.enable", overrides).0 == "true",
            retention_ms: limits.retention_ms,
            retention_bytes: limits.retention_bytes,
            local_retention_ms: resolve(n("local.retention.ms"), limits.retention_ms),
            local_retention_bytes: resolve(n("local.retention.bytes"), limits.retention_bytes),
        }
    }

    /// The value of a topic key for a topic with these overrides, and where
    /// it comes from.
    pub fn topic_value(&self, key: &str, overrides: &BTreeMap<String, String>) -> (String, Source) {
        if let Some(v) = overrides.get(key) {
            return (v.clone(), Source::Topic);
        }
        // Kafka does not tier compacted topics: unless set, they keep their
        // whole log on local disk.
        if key == "remote.storage.enable" && self.has_policy(overrides, "compact") {
            return ("false".into(), Source::Default);
        }
        let d = def(key, Scope::Topic).expect("known topic key");
        let Some(synonym) = d.broker_synonym else {
            return (d.default.to_string(), Source::Default);
        };
        (self.value(synonym), self.broker_source(synonym))
    }

    /// Where the value in force for a broker key comes from: the layer
    /// that sets it, or the one that sets a coarser key it is derived from
    /// (`log.retention.hours` for `log.retention.ms`), or the default.
    pub fn broker_source(&self, key: &str) -> Source {
        std::iter::once(key)
            .chain(fallbacks(key).iter().copied())
            .find_map(|k| self.set_values(k).first().map(|(_, source)| *source))
            .unwrap_or(Source::Default)
    }

    /// The synonyms of a broker key for DescribeConfigs, highest precedence
    /// first: every value set for it or for the coarser keys it falls back
    /// to, then its default.
    pub fn broker_synonyms(&self, key: &str) -> Vec<(String, String, Source)> {
        let mut out = Vec::new();
        for k in std::iter::once(key).chain(fallbacks(key).iter().copied()) {
            for (v, source) in self.set_values(k) {
                out.push((k.to_string(), v.to_string(), source));
            }
        }
        let default = def(key, Scope::Broker)
            .map(|d| d.default)
            .unwrap_or_default();
        out.push((key.to_string(), default.to_string(), Source::Default));
        out
    }

    /// The local log settings for a topic with these overrides.
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        let n = |k: &str| -> i64 {
            self.topic_value(k, overrides)
                .0
                .parse()
                .expect("validated integer config")
        };
        LogConfig {
            segment_bytes: n("segment.bytes") as u64,
            segment_ms: n("segment.ms"),
            max_message_bytes: n("max.message.bytes") as usize,
            index_interval_bytes: n("index.interval.bytes") as u32,
            segment_index_bytes: n("segment.index.bytes") as u32,
            flush_messages: n("flush.messages"),
            flush_ms: n("flush.ms"),
            timestamp_type: if self.topic_value("message.timestamp.type", overrides).0
                == "LogAppendTime"
            {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            producer_id_expiration_ms: self.i64("producer.id.expiration.ms"),
            timestamp_before_max_ms: n("message.timestamp.before.max.ms"),
            timestamp_after_max_ms: n("message.timestamp.after.max.ms"),
            compact: self.has_policy(overrides, "compact"),
            min_cleanable_ratio_ppm: (self
                .topic_value("min.cleanable.dirty.ratio", overrides)
                .0
                .parse::<f64>()
                .unwrap_or(0.5)
                .clamp(0.0, 1.0)
                * 1e6) as u32,
            min_compaction_lag_ms: n("min.compaction.lag.ms"),
            max_compaction_lag_ms: n("max.compaction.lag.ms"),
            delete_retention_ms: n("delete.retention.ms"),
            max_decompressed_bytes: self.i64("socket.request.max.bytes") as usize,
            compression_levels: self.compression_levels(overrides),
            // Without `delete` in cleanup.policy, nothing expires by time
            // or size.
            ..self.retention_for(overrides)
        }
    }

    /// The topic's `compression.{gzip,lz4,zstd}.level`, for the broker's
    /// recompression and the cleaner.
    pub fn compression_levels(&self, overrides: &BTreeMap<String, String>) -> Levels {
        let n = |k: &str| -> i64 { self.topic_value(k, overrides).0.parse().expect("validated") };
        Levels {
            gzip: n("compression.gzip.level") as i32,
            lz4: n("compression.lz4.level") as u32,
            zstd: n("compression.zstd.level") as i32,
        }
    }

    /// Whether the topic's `cleanup.policy` includes `policy`.
    pub fn has_policy(&self, overrides: &BTreeMap<String, String>, policy: &str) -> bool {
        self.topic_value("cleanup.policy", overrides)
            .0
            .split(',')
            .any(|p| p.trim() == policy)
    }

    /// The retention limits in force: the topic's, or none when its
    /// cleanup.policy lacks `delete`.
    fn retention_for(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        let n = |k: &str| -> i64 { self.topic_value(k, overrides).0.parse().expect("validated") };
        let delete = self.has_policy(overrides, "delete");
        LogConfig {
            retention_ms: if delete { n("retention.ms") } else { -1 },
            retention_bytes: if delete { n("retention.bytes") } else { -1 },
            ..LogConfig::default()
        }
    }
}

/// Where a config value comes from, with Kafka's DescribeConfigs codes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Topic,
    DynamicBroker,
    DynamicDefaultBroker,
    StaticBroker,
    Default,
}

impl Source {
    pub fn code(self) -> i8 {
        match self {
            Source::Topic => 1,
            Source::DynamicBroker => 2,
            Source::DynamicDefaultBroker => 3,
            Source::StaticBroker => 4,
            Source::Default => 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CONFIG.md as [`DEFS`] describes it.
    fn reference() -> String {
        let mut out = String::from(
            "# Configuration reference\n\n\
             Generated from `broker/src/config.rs` by the test\n\
             `config::tests::the_reference_matches_the_definitions`; do not edit by hand\n\
             (`STRATA_WRITE_CONFIG_REFERENCE=1 cargo test -p strata-broker reference`\n\
             rewrites it).\n\n\
             Broker configs are read at start, from `--config FILE` and `--set key=value`.\n\
             Those marked as changing at run time can also be set with AlterConfigs or\n\
             IncrementalAlterConfigs on the broker resource (`kafka-configs --alter\n\
             --entity-type brokers --entity-default` for the cluster-wide default,\n\
             `--entity-name 0` for this broker, which wins); such a change is persisted in\n\
             `DATA_DIR/meta/broker-configs.json`, wins over the start-up value and is\n\
             obeyed at once by every topic without its own override.\n\
             Topic configs are given at CreateTopics and changed at run time with\n\
             AlterConfigs or IncrementalAlterConfigs (`kafka-configs --alter\n\
             --entity-type topics`); a change is persisted and obeyed from the next\n\
             append or background pass. A topic config without an override takes its\n\
             broker default.\n",
        );
        for (scope, title) in [
            (Scope::Broker, "Broker configs"),
            (Scope::Topic, "Topic configs"),
        ] {
            out.push_str(&format!(
                "\n## {title}\n\n| key | type | default | minimum | {} | changes at run time | meaning |\n|---|---|---|---|---|---|---|\n",
                if scope == Scope::Topic { "broker default" } else { "sets topic default" }
            ));
            for d in DEFS.iter().filter(|d| d.scope == scope) {
                let kind = match d.kind {
                    Kind::Bool => "boolean".to_string(),
                    Kind::Int => "int".to_string(),
                    Kind::Long => "long".to_string(),
                    Kind::Choice(options) => options.join(" \\| "),
                    Kind::Text => "string".to_string(),
                    Kind::Double => "double".to_string(),
                    Kind::List([]) => "list".to_string(),
                    Kind::List(options) => format!("list of {}", options.join(", ")),
                };
                let min = match d.kind {
                    Kind::Int | Kind::Long => d.min.to_string(),
                    _ => String::new(),
                };
                let link = match scope {
                    Scope::Topic => d
                        .broker_synonym
                        .map(|b| format!("`{b}`"))
                        .unwrap_or_default(),
                    Scope::Broker => DEFS
                        .iter()
                        .filter(|t| t.broker_synonym == Some(d.name))
                        .map(|t| format!("`{}`", t.name))
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                let dynamic = if scope == Scope::Topic {
                    "yes"
                } else if is_dynamic(d) {
                    "yes (cluster-wide or per broker)"
                } else {
                    "no (restart)"
                };
                let default = if d.default.is_empty() {
                    "(none)".to_string()
                } else {
                    format!("`{}`", d.default)
                };
                out.push_str(&format!(
                    "| `{}` | {kind} | {default} | {min} | {link} | {dynamic} | {} |\n",
                    d.name, d.doc
                ));
            }
        }
        out
    }

    /// Every accepted key, its default, scope and run-time behaviour are in
    /// CONFIG.md, generated from the definitions so that it cannot drift.
    #[test]
    fn the_reference_matches_the_definitions() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../CONFIG.md");
        let want = reference();
        if std::env::var_os("STRATA_WRITE_CONFIG_REFERENCE").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "CONFIG.md is out of date: run STRATA_WRITE_CONFIG_REFERENCE=1 cargo test -p strata-broker reference"
        );
    }

    #[test]
    fn dynamic_layers_win_in_kafkas_order_and_only_for_dynamic_keys() {
        let mut c = BrokerConfig::default();
        c.set("log.retention.hours", "5").unwrap();
        assert_eq!(c.i64("log.retention.ms"), 5 * 3_600_000);
        assert_eq!(c.broker_source("log.retention.ms"), Source::StaticBroker);
        let set = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        let c = c
            .with_dynamic(Layer::ClusterDefault, set("log.retention.ms", "7200000"))
            .unwrap();
        assert_eq!(c.i64("log.retention.ms"), 7_200_000);
        assert_eq!(
            c.broker_source("log.retention.ms"),
            Source::DynamicDefaultBroker
        );
        let c = c
            .with_dynamic(Layer::ThisBroker, set("log.retention.ms", "3600000"))
            .unwrap();
        assert_eq!(c.i64("log.retention.ms"), 3_600_000);
        let (value, source) = c.topic_value("retention.ms", &BTreeMap::new());
        assert_eq!((value.as_str(), source), ("3600000", Source::DynamicBroker));
        assert_eq!(
            c.broker_synonyms("log.retention.ms")
                .iter()
                .map(|(k, v, s)| (k.as_str(), v.as_str(), *s))
                .collect::<Vec<_>>(),
            vec![
                ("log.retention.ms", "3600000", Source::DynamicBroker),
                ("log.retention.ms", "7200000", Source::DynamicDefaultBroker),
                ("log.retention.hours", "5", Source::StaticBroker),
                ("log.retention.ms", "-1", Source::Default),
            ]
        );
        assert_eq!(
            c.with_dynamic(Layer::ThisBroker, set("num.partitions", "2"))
                .unwrap_err(),
            ConfigError::NotDynamic("num.partitions".into())
        );
        assert!(matches!(
            c.with_dynamic(Layer::ThisBroker, set("log.segment.bytes", "1")),
            Err(ConfigError::BadValue { .. })
        ));
        assert!(matches!(
            c.with_dynamic(Layer::ThisBroker, set("segment.bytes", "100000")),
            Err(ConfigError::TopicKeyOnBroker { .. })
        ));
    }

    #[test]
    fn kafka_keys_without_effect_are_kept_and_reported() {
        let mut c = BrokerConfig::default();
        c.set("num.network.threads", "3").unwrap();
        c.set("listener.name.internal.ssl.keystore.type", "PEM")
            .unwrap();
        assert_eq!(
            c.without_effect(),
            BTreeMap::from([
                (
                    "listener.name.internal.ssl.keystore.type".into(),
                    "PEM".into()
                ),
                ("num.network.threads".into(), "3".into()),
            ])
        );
        let typo = c.set("num.netwrok.threads", "3").unwrap_err().to_string();
        assert!(
            typo.ends_with(r#"did you mean "num.network.threads"?"#),
            "{typo}"
        );
        // Dynamic where Kafka allows it, refused where Kafka refuses it.
        let dynamic = BTreeMap::from([("sasl.kerberos.kinit.cmd".into(), "/bin/kinit".into())]);
        let next = c.with_dynamic(Layer::ThisBroker, dynamic).unwrap();
        assert!(next
            .without_effect()
            .contains_key("sasl.kerberos.kinit.cmd"));
        let fixed = BTreeMap::from([("process.roles".into(), "broker".into())]);
        assert_eq!(
            c.with_dynamic(Layer::ThisBroker, fixed).unwrap_err(),
            ConfigError::NotDynamic("process.roles".into())
        );
    }

    #[test]
    fn unknown_keys_name_the_nearest_known_one() {
        let typo = ConfigError::UnknownKey("log.retension.ms".into()).to_string();
        assert_eq!(
            typo,
            r#"unknown config key "log.retension.ms"; did you mean "log.retention.ms"?"#
        );
        let topic = ConfigError::UnknownTopicKey("segmnt.bytes".into()).to_string();
        assert!(
            topic.ends_with(r#"did you mean "segment.bytes"?"#),
            "{topic}"
        );
        // Nothing close: no guess.
        let far = ConfigError::UnknownKey("no.such.key".into()).to_string();
        assert_eq!(far, r#"unknown config key "no.such.key""#);
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        let mut c = BrokerConfig::default();
        assert_eq!(
            c.set("no.such.key", "1"),
            Err(ConfigError::UnknownKey("no.such.key".into()))
        );
        assert!(matches!(
            c.set("num.partitions", "zero"),
            Err(ConfigError::BadValue { .. })
        ));
        assert!(matches!(
            c.set("num.partitions", "0"),
            Err(ConfigError::BadValue { .. })
        ));
        assert!(matches!(
            c.set("retention.ms", "5"),
            Err(ConfigError::TopicKeyOnBroker { .. })
        ));
        c.set("num.partitions", "3").unwrap();
        assert_eq!(c.i64("num.partitions"), 3);
    }

    #[test]
    fn hours_fold_into_ms_and_topics_inherit() {
        let mut c = BrokerConfig::default();
        c.set("log.retention.hours", "1").unwrap();
        c.set("log.local.retention.ms", "60000").unwrap();
        assert_eq!(c.i64("log.retention.ms"), 3_600_000);
        let none = BTreeMap::new();
        assert_eq!(
            c.topic_value("retention.ms", &none),
            ("3600000".into(), Source::StaticBroker)
        );
        assert_eq!(c.topic_value("segment.bytes", &none).1, Source::Default);
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "5".to_string());
        assert_eq!(c.log_config(&o).retention_ms, 5);
        o.insert("retention.ms".to_string(), "x".to_string());
        assert!(c.validate_topic_configs(&o).is_err());
    }

    #[test]
    fn local_retention_may_not_exceed_total() {
        let c = BrokerConfig::default();
        let set = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(c
            .validate_topic_configs(&set(&[
                ("retention.ms", "1000"),
                ("local.retention.ms", "500")
            ]))
            .is_ok());
        assert!(c
            .validate_topic_configs(&set(&[
                ("retention.ms", "1000"),
                ("local.retention.ms", "5000")
            ]))
            .is_err());
        assert!(c
            .validate_topic_configs(&set(&[
                ("retention.bytes", "1000"),
                ("local.retention.bytes", "-1")
            ]))
            .is_err());
        assert!(c
            .validate_topic_configs(&set(&[
                ("retention.bytes", "1000"),
                ("local.retention.bytes", "-2")
            ]))
            .is_ok());
        let t = c.tier_policy(&set(&[("retention.bytes", "1000")]));
        assert_eq!(
            (
                t.remote,
                t.local_retention_bytes,
                t.retention_ms,
                t.local_retention_ms
            ),
            (true, 1000, -1, 3_600_000)
        );
    }
}
