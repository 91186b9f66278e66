//! `strata bucket check [--repair]`: prints what `strata_tiering::bucket_check`
//! finds in a bucket, and with `--repair` deletes the orphans older than
//! the grace period.

use std::path::Path;
use std::time::Duration;

use strata_tiering::bucket_check::{check, delete_orphans};
use strata_tiering::RemoteStore;

use crate::clock::now_ms;
use crate::error::AdminError;

/// Checks (and repairs) the bucket; returns whether it is clean at the end.
pub async fn run(
    remote: Option<&str>,
    data_dir: &Path,
    repair: bool,
    grace: Duration,
) -> Result<bool, AdminError> {
    let store = match remote {
        Some(url) => RemoteStore::open(url)?,
        None => RemoteStore::local(&data_dir.join("remote"))?,
    };
    let report = check(&store).await?;
    println!(
        "bucket {}: {} objects, {} partitions with manifests checked",
        store.url, report.objects, report.partitions
    );
    let now = now_ms();
    for o in &report.orphans {
        println!(
            "orphan      {}  ({} bytes, {} s old)",
            o.key,
            o.size,
            (now - o.last_modified_ms).max(0) / 1000
        );
    }
    for key in &report.missing {
        println!("missing     {key}");
    }
    for (key, expected, actual) in &report.size_mismatches {
        println!("size        {key}  (manifest {expected} bytes, store {actual} bytes)");
    }
    let mut orphans_left = report.orphans.len();
    if repair {
        let cutoff = now - grace.as_millis() as i64;
        let deleted = delete_orphans(&store, &report, cutoff).await?;
        for key in &deleted {
            println!("deleted     {key}");
        }
        orphans_left -= deleted.len();
        if orphans_left > 0 {
            println!(
                "{orphans_left} orphans are younger than the grace period ({} s) and were kept",
                grace.as_secs()
            );
        }
    }
    let clean = orphans_left == 0 && report.missing.is_empty() && report.size_mismatches.is_empty();
    println!(
        "{}: {} orphans, {} missing, {} size mismatches",
        if clean { "clean" } else { "problems found" },
        report.orphans.len(),
        report.missing.len(),
        report.size_mismatches.len()
    );
    Ok(clean)
}
