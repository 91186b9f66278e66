//! `strata topics describe`: the tiering status of a running broker's
//! partitions, asked with the Kafka protocol like any admin client would:
//! Metadata for the partitions, ListOffsets with Kafka's special timestamps
//! (-2 log start, -4 local start, -5 last tiered offset, -1 high watermark),
//! DescribeLogDirs for the bytes in each tier and DescribeConfigs for
//! `remote.storage.enable` and `cleanup.policy`. For compacted topics, the
//! cleaner's state (dirty ratio, time since the last pass) is not in the
//! Kafka protocol: it is read from the broker's metrics endpoint when
//! `--metrics` names it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, DescribeConfigsRequest, DescribeLogDirsRequest, ListOffsetsRequest, MetadataRequest,
    TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::ResponseError;
use strata_protocol::{decode_response, encode_request};

use crate::cli_security::{ClientSecurity, Stream};

const CLIENT_ID: &str = "strata-cli";
const EARLIEST: i64 = -2;
const LATEST: i64 = -1;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// One blocking connection to a broker, one request at a time.
pub(crate) struct Client {
    stream: Stream,
    next_correlation: i32,
}

impl Client {
    /// Connects with `security`'s transport, and authenticates when it
    /// names a SASL protocol.
    pub(crate) fn connect(addr: &str, security: &ClientSecurity) -> anyhow::Result<Client> {
        let mut c = Client {
            stream: security.connect(addr)?,
            next_correlation: 1,
        };
        if security.protocol.sasl() {
            c.authenticate(security)?;
        }
        Ok(c)
    }

    /// SaslHandshake, then SaslAuthenticate rounds (PLAIN or SCRAM).
    fn authenticate(&mut self, security: &ClientSecurity) -> anyhow::Result<()> {
        use crate::security::scram::{ClientExchange, Mechanism};
        use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
        let mechanism = security.mechanism.as_str();
        let hs = self.request(
            1,
            &SaslHandshakeRequest::default().with_mechanism(str_bytes(mechanism)),
        )?;
        if hs.error_code != 0 {
            bail!(
                "the broker does not take SASL mechanism {mechanism} ({:?}); it offers {:?}",
                ResponseError::try_from_code(hs.error_code),
                hs.mechanisms
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
            );
        }
        let send = |c: &mut Client, token: Vec<u8>| -> anyhow::Result<Vec<u8>> {
            let r = c.request(
                1,
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
            )?;
            if r.error_code != 0 {
                bail!(
                    "SASL authentication failed: {}",
                    r.error_message.map(|m| m.to_string()).unwrap_or_default()
                );
            }
            Ok(r.auth_bytes.to_vec())
        };
        if mechanism == "PLAIN" {
            let token = format!("\0{}\0{}", security.username, security.password).into_bytes();
            send(self, token)?;
            return Ok(());
        }
        let m = Mechanism::from_name(mechanism).ok_or_else(|| {
            anyhow!("sasl.mechanism={mechanism}: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
        })?;
        let mut exchange = ClientExchange::new(m, &security.username, &security.password);
        let first = send(self, exchange.first())?;
        let last = send(self, exchange.last(&first)?)?;
        exchange.verify(&last)?;
        Ok(())
    }

    pub(crate) fn request<R: Request>(
        &mut self,
        version: i16,
        body: &R,
    ) -> anyhow::Result<R::Response> {
        let correlation_id = self.next_correlation;
        self.next_correlation += 1;
        let frame = encode_request(version, correlation_id, CLIENT_ID, body)?;
        self.stream.write_all(&frame)?;
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .context("the broker closed the connection")?;
        let len = u32::from_be_bytes(len) as usize;
        if len > 64 << 20 {
            bail!("response of {len} bytes is implausibly large");
        }
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf)?;
        let (got, response) = decode_response::<R>(Bytes::from(buf), version)?;
        if got != correlation_id {
            bail!("response to request {got} while waiting for {correlation_id}");
        }
        Ok(response)
    }
}

/// One partition's place in the two tiers.
#[derive(Debug, Default)]
struct Row {
    topic: String,
    partition: i32,
    log_start: i64,
    local_start: i64,
    /// Offset of the last record in the object store, -1 if none.
    last_tiered: i64,
    high_watermark: i64,
    local_bytes: i64,
    remote_bytes: i64,
    tiering: bool,
    compacted: bool,
    /// From the metrics endpoint: the dirty ratio and seconds since the
    /// last cleaning pass.
    dirty_ratio: Option<f64>,
    since_clean: Option<f64>,
}

impl Row {
    /// Records written but not in the object store yet (they include the
    /// active segment, which is uploaded once it rolls).
    fn not_tiered(&self) -> i64 {
        let tiered_end = if self.last_tiered >= 0 {
            self.last_tiered + 1
        } else {
            self.log_start
        };
        (self.high_watermark - tiered_end.max(self.log_start)).max(0)
    }
}

/// One ListOffsets round for every partition of `partitions` (topic →
/// partition ids) at `timestamp` (Kafka's special values included), with
/// `isolation` (1 for read_committed): (topic, partition, offset) each.
pub(crate) fn list_offsets(
    c: &mut Client,
    partitions: &BTreeMap<String, Vec<i32>>,
    timestamp: i64,
    isolation: i8,
) -> anyhow::Result<Vec<(String, i32, i64)>> {
    let topics = partitions
        .iter()
        .map(|(name, ids)| {
            ListOffsetsTopic::default()
                .with_name(TopicName(str_bytes(name)))
                .with_partitions(
                    ids.iter()
                        .map(|&p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_timestamp(timestamp)
                        })
                        .collect(),
                )
        })
        .collect();
    let answer = c.request(
        9,
        &ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(isolation)
            .with_topics(topics),
    )?;
    let mut out = Vec::new();
    for t in answer.topics {
        for p in t.partitions {
            if p.error_code != 0 {
                bail!(
                    "ListOffsets {} partition {}: error code {}",
                    &*t.name.0,
                    p.partition_index,
                    p.error_code
                );
            }
            out.push((t.name.0.to_string(), p.partition_index, p.offset));
        }
    }
    Ok(out)
}

/// Prints the tiering status of `topic`, or of every topic.
pub fn topics_describe(
    bootstrap: &str,
    security: &ClientSecurity,
    topic: Option<&str>,
    metrics: Option<&str>,
) -> anyhow::Result<()> {
    let mut c = Client::connect(bootstrap, security)?;
    let mut rows = status(&mut c, topic)?;
    if let Some(addr) = metrics {
        let samples = scrape(addr)?;
        for row in &mut rows {
            let labels = format!("topic=\"{}\",partition=\"{}\"", row.topic, row.partition);
            row.dirty_ratio = samples
                .get(&format!("strata_partition_dirty_ratio{{{labels}}}"))
                .copied();
            row.since_clean = samples
                .get(&format!("strata_partition_seconds_since_clean{{{labels}}}"))
                .copied();
        }
    }
    print!("{}", render(&rows));
    Ok(())
}

/// The samples of the broker's Prometheus endpoint at `addr` (host:port),
/// by series as written (`name{labels}`), with one plain HTTP/1.0 GET.
fn scrape(addr: &str) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut stream =
        TcpStream::connect(addr).with_context(|| format!("cannot connect to metrics at {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(|| anyhow!("the metrics endpoint at {addr} sent no body"))?;
    Ok(body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect())
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn status(c: &mut Client, topic: Option<&str>) -> anyhow::Result<Vec<Row>> {
    let metadata = c.request(
        12,
        &MetadataRequest::default()
            .with_topics(topic.map(|t| {
                vec![MetadataRequestTopic::default().with_name(Some(TopicName(str_bytes(t))))]
            }))
            .with_allow_auto_topic_creation(false),
    )?;
    let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for t in &metadata.topics {
        let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        if t.error_code == ResponseError::UnknownTopicOrPartition.code() {
            bail!("topic {name:?} does not exist");
        }
        if t.error_code != 0 {
            bail!("topic {name:?}: error code {}", t.error_code);
        }
        if t.is_internal {
            continue;
        }
        let mut ids: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
        ids.sort_unstable();
        partitions.insert(name, ids);
    }
    let mut rows: BTreeMap<(String, i32), Row> = BTreeMap::new();
    for (name, ids) in &partitions {
        for &p in ids {
            rows.insert(
                (name.clone(), p),
                Row {
                    topic: name.clone(),
                    partition: p,
                    last_tiered: -1,
                    ..Row::default()
                },
            );
        }
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }

    for timestamp in [EARLIEST, EARLIEST_LOCAL, LATEST_TIERED, LATEST] {
        for (topic, partition, offset) in list_offsets(c, &partitions, timestamp, 0)? {
            let Some(row) = rows.get_mut(&(topic, partition)) else {
                continue;
            };
            match timestamp {
                EARLIEST => row.log_start = offset,
                EARLIEST_LOCAL => row.local_start = offset,
                LATEST_TIERED => row.last_tiered = offset,
                _ => row.high_watermark = offset,
            }
        }
    }

    let dirs = c.request(
        4,
        &DescribeLogDirsRequest::default().with_topics(Some(
            partitions
                .iter()
                .map(|(name, ids)| {
                    DescribableLogDirTopic::default()
                        .with_topic(TopicName(str_bytes(name)))
                        .with_partitions(ids.clone())
                })
                .collect(),
        )),
    )?;
    for dir in dirs.results {
        let remote = dir.log_dir.starts_with("remote:");
        for t in dir.topics {
            for p in t.partitions {
                if let Some(row) = rows.get_mut(&(t.name.0.to_string(), p.partition_index)) {
                    if remote {
                        row.remote_bytes = p.partition_size;
                    } else {
                        row.local_bytes = p.partition_size;
                    }
                }
            }
        }
    }

    let configs = c.request(
        4,
        &DescribeConfigsRequest::default().with_resources(
            partitions
                .keys()
                .map(|name| {
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(str_bytes(name))
                        .with_configuration_keys(Some(vec![
                            str_bytes("remote.storage.enable"),
                            str_bytes("cleanup.policy"),
                        ]))
                })
                .collect(),
        ),
    )?;
    for result in configs.results {
        let value = |name: &str| {
            result
                .configs
                .iter()
                .find(|e| &*e.name == name)
                .and_then(|e| e.value.as_deref().map(str::to_string))
                .unwrap_or_default()
        };
        let enabled = value("remote.storage.enable") == "true";
        let compacted = value("cleanup.policy").split(',').any(|p| p == "compact");
        for row in rows.values_mut() {
            if row.topic == *result.resource_name {
                row.tiering = enabled;
                row.compacted = compacted;
            }
        }
    }
    Ok(rows.into_values().collect())
}

/// `n` bytes for people: exact below a KiB, else one decimal in binary units.
fn human_bytes(n: i64) -> String {
    if n < 0 {
        return "-".into();
    }
    let units = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < units.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", units[unit])
}

fn render(rows: &[Row]) -> String {
    let header = [
        "TOPIC",
        "PARTITION",
        "LOG-START",
        "LOCAL-START",
        "LAST-TIERED",
        "HIGH-WATERMARK",
        "LOCAL-BYTES",
        "REMOTE-BYTES",
        "UPLOAD-LAG",
        "CLEANER",
    ];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for r in rows {
        table.push(vec![
            r.topic.clone(),
            r.partition.to_string(),
            r.log_start.to_string(),
            r.local_start.to_string(),
            if r.last_tiered >= 0 {
                r.last_tiered.to_string()
            } else {
                "-".into()
            },
            r.high_watermark.to_string(),
            human_bytes(r.local_bytes),
            human_bytes(r.remote_bytes),
            if r.tiering {
                format!("{} records", r.not_tiered())
            } else {
                "tiering off".into()
            },
            cleaner_cell(r),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| table.iter().map(|row| row[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The cleaner's state of a compacted partition: its dirty share and how
/// long ago the last pass was, when the metrics were read.
fn cleaner_cell(r: &Row) -> String {
    if !r.compacted {
        return "-".into();
    }
    let dirty = r
        .dirty_ratio
        .map_or("?".to_string(), |d| format!("{:.0}%", d * 100.0));
    let last = r
        .since_clean
        .map_or("not yet".to_string(), |s| format!("{s:.0}s ago"));
    if r.dirty_ratio.is_none() && r.since_clean.is_none() {
        return "compacted (--metrics for more)".into();
    }
    format!("compacted, dirty {dirty}, cleaned {last}")
}

/// A broker address from `--bootstrap`, which may list several
/// (`host:port,host:port`): the first one is used.
pub fn first_bootstrap(bootstrap: &str) -> anyhow::Result<&str> {
    bootstrap
        .split(',')
        .map(str::trim)
        .find(|s| !s.is_empty())
        .ok_or_else(|| anyhow!("--bootstrap is empty"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_lag_counts_records_not_in_the_store() {
        let row = |log_start, last_tiered, hw| Row {
            log_start,
            last_tiered,
            high_watermark: hw,
            ..Row::default()
        };
        assert_eq!(row(0, -1, 100).not_tiered(), 100);
        assert_eq!(row(0, 79, 100).not_tiered(), 20);
        assert_eq!(row(90, 79, 100).not_tiered(), 10, "after DeleteRecords");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12), "12 B");
    }
}
