//! `strata lake status` and `strata lake handoff`: what a topic's lake
//! table covers, read from the bucket, beside the stream's offsets, read
//! from the broker; and placing a consumer group at a snapshot's end
//! offsets, so that a job that read the table up to that snapshot goes on
//! in the stream at the next record.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, MetadataRequest, OffsetCommitRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use strata_lake::{Coverage, TableView};
use strata_tiering::RemoteStore;

use crate::cli::{list_offsets, Client};

/// Where the lake's table is and which broker serves the stream.
pub struct Target<'a> {
    pub store: RemoteStore,
    pub bootstrap: &'a str,
    /// How to connect to it.
    pub security: crate::cli_security::ClientSecurity,
    pub topic: &'a str,
}

/// One partition's stream offsets.
#[derive(Copy, Clone, Debug, Default)]
struct StreamOffsets {
    log_start: i64,
    last_stable: i64,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn table(target: &Target<'_>) -> anyhow::Result<TableView> {
    strata_lake::describe(&target.store, target.topic)
        .await?
        .ok_or_else(|| {
            anyhow!(
                "topic {:?} has no lake table in {} (is lake.enable=true set on it, and has a segment been uploaded?)",
                target.topic,
                target.store.url
            )
        })
}

/// The snapshot `id`, or the newest.
fn snapshot(view: &TableView, id: Option<i64>) -> anyhow::Result<Coverage> {
    match id {
        Some(id) => view
            .snapshots
            .iter()
            .find(|c| c.snapshot_id == Some(id))
            .cloned()
            .ok_or_else(|| anyhow!("the table has no snapshot {id} written by Strata")),
        None => Ok(view.snapshots.last().cloned().unwrap_or_default()),
    }
}

/// Each partition's log start and last stable offset.
fn stream_offsets(c: &mut Client, topic: &str) -> anyhow::Result<BTreeMap<i32, StreamOffsets>> {
    let metadata = c.request(
        12,
        &MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(TopicName(s(topic))))
            ]))
            .with_allow_auto_topic_creation(false),
    )?;
    let t = metadata
        .topics
        .first()
        .ok_or_else(|| anyhow!("no metadata for {topic:?}"))?;
    if t.error_code == ResponseError::UnknownTopicOrPartition.code() {
        bail!("topic {topic:?} does not exist");
    }
    if t.error_code != 0 {
        bail!("topic {topic:?}: error code {}", t.error_code);
    }
    let ids: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
    let mut out: BTreeMap<i32, StreamOffsets> =
        ids.iter().map(|&p| (p, StreamOffsets::default())).collect();
    // Earliest, then the latest a read_committed consumer sees.
    let ids = BTreeMap::from([(topic.to_string(), ids)]);
    for (timestamp, isolation) in [(-2i64, 0i8), (-1, 1)] {
        for (_, p, offset) in list_offsets(c, &ids, timestamp, isolation)? {
            let o = out.entry(p).or_default();
            if timestamp == -2 {
                o.log_start = offset;
            } else {
                o.last_stable = offset;
            }
        }
    }
    Ok(out)
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// Prints the newest snapshot, per partition its end offset, watermark and
/// the records the lake lags behind the stream.
pub async fn status(target: Target<'_>, json: bool) -> anyhow::Result<()> {
    let view = table(&target).await?;
    let cov = snapshot(&view, None)?;
    let mut c = Client::connect(target.bootstrap, &target.security)?;
    let stream = stream_offsets(&mut c, target.topic)?;
    if json {
        let partitions: Vec<serde_json::Value> = stream
            .iter()
            .map(|(p, o)| {
                let end = cov.resume_at(*p, o.log_start);
                serde_json::json!({
                    "partition": p,
                    "end_offset": end,
                    "watermark_ms": cov.watermarks.get(p),
                    "last_stable_offset": o.last_stable,
                    "lag_records": (o.last_stable - end).max(0),
                })
            })
            .collect();
        let out = serde_json::json!({
            "topic": target.topic,
            "metadata_location": view.metadata_location,
            "snapshot_id": cov.snapshot_id,
            "committed_ms": cov.committed_ms,
            "snapshots": view.snapshots.len(),
            "partitions": partitions,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("topic      {}", target.topic);
    println!("table      {}", view.metadata_location);
    match (cov.snapshot_id, cov.committed_ms) {
        (Some(id), Some(at)) => println!(
            "snapshot   {id} (committed {}, {} in all)",
            iso(at),
            view.snapshots.len()
        ),
        _ => println!("snapshot   none yet"),
    }
    println!(
        "{:>9} {:>14} {:>26} {:>14} {:>12}",
        "partition", "end offset", "watermark", "stream LSO", "lag"
    );
    for (p, o) in &stream {
        let end = cov.resume_at(*p, o.log_start);
        let wm = cov
            .watermarks
            .get(p)
            .map(|w| iso(*w))
            .unwrap_or_else(|| "-".into());
        println!(
            "{p:>9} {end:>14} {wm:>26} {:>14} {:>12}",
            o.last_stable,
            (o.last_stable - end).max(0)
        );
    }
    Ok(())
}

/// Commits group `group`'s offsets at snapshot `snapshot_id`'s end offsets
/// (the newest snapshot's without one). The group must have no active
/// members, as for Kafka's `kafka-consumer-groups --reset-offsets`.
pub async fn handoff(
    target: Target<'_>,
    group: &str,
    snapshot_id: Option<i64>,
) -> anyhow::Result<()> {
    let view = table(&target).await?;
    let cov = snapshot(&view, snapshot_id)?;
    let Some(id) = cov.snapshot_id else {
        bail!("the table has no snapshot yet");
    };
    let mut c = Client::connect(target.bootstrap, &target.security)?;
    let stream = stream_offsets(&mut c, target.topic)?;
    let partitions: Vec<OffsetCommitRequestPartition> = stream
        .iter()
        .map(|(p, o)| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(cov.resume_at(*p, o.log_start))
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(s(&format!("strata lake handoff: snapshot {id}"))))
        })
        .collect();
    let answer = c
        .request(
            8,
            &OffsetCommitRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_generation_id_or_member_epoch(-1)
                .with_member_id(s(""))
                .with_retention_time_ms(-1)
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(target.topic)))
                    .with_partitions(partitions.clone())]),
        )
        .context("OffsetCommit")?;
    for t in &answer.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                let name = ResponseError::try_from_code(p.error_code)
                    .map(|e| format!("{e:?}"))
                    .unwrap_or_else(|| p.error_code.to_string());
                bail!(
                    "group {group:?} refused the offsets ({name}); a group with active members must be stopped first"
                );
            }
        }
    }
    println!("group {group} placed at snapshot {id} of {}:", target.topic);
    for p in &partitions {
        println!(
            "  partition {:>4}  offset {}",
            p.partition_index, p.committed_offset
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_in_utc() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_764_633_600_123), "2025-12-02T00:00:00.123Z");
    }
}
