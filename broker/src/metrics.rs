//! The Prometheus endpoint: `GET /metrics` on `--metrics-listen`.
//!
//! Counters and histograms are recorded where the work happens, through the
//! `metrics` facade (request handling here in the broker, uploads, remote
//! reads and the read cache in `strata-tiering`). Per-partition gauges (log
//! sizes per tier, upload lag) are set from the partitions' state at each
//! scrape, so they are never staler than the scrape itself. The text format
//! is rendered by `metrics-exporter-prometheus`; this module only answers
//! HTTP requests with it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::broker::Broker;

/// Histogram buckets for durations in seconds: from half a millisecond (a
/// produce to the page cache) to half a minute (a large segment upload).
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Largest request head read from a scraper; Prometheus sends a few hundred
/// bytes.
const MAX_REQUEST_HEAD: usize = 8192;

/// Installs the process-wide recorder. Called once, before anything
/// records; later calls fail.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)?
        .install_recorder()?;
    describe();
    Ok(handle)
}

/// Help text for the metrics an operator looks at first.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("strata_requests_total", "Kafka requests answered, by API.");
    describe_histogram!(
        "strata_request_duration_seconds",
        Unit::Seconds,
        "Time from a request's arrival to its response, by API."
    );
    describe_gauge!("strata_connections_open", "Open client connections.");
    describe_counter!(
        "strata_connections_accepted_total",
        "Client connections accepted."
    );
    describe_counter!(
        "strata_topic_bytes_in_total",
        "Record batch bytes appended, by topic."
    );
    describe_counter!(
        "strata_topic_bytes_out_total",
        "Record batch bytes fetched, by topic."
    );
    describe_gauge!(
        "strata_partition_bytes",
        "Bytes of a partition's log in each tier (local: hot tier, remote: object store)."
    );
    describe_gauge!(
        "strata_partition_dirty_ratio",
        "Compacted partitions: the share of the cleanable log not yet cleaned."
    );
    describe_gauge!(
        "strata_partition_seconds_since_clean",
        "Compacted partitions: seconds since the cleaner's last pass over the partition."
    );
    describe_counter!(
        "strata_cleaner_passes_total",
        "Cleaning passes finished, by partition."
    );
    describe_counter!(
        "strata_cleaner_dirty_bytes_cleaned_total",
        "Bytes of dirty log the cleaner covered, by partition."
    );
    describe_counter!(
        "strata_cleaner_bytes_read_total",
        "Bytes the cleaner read (the dirty section to map it, then every segment it rewrote)."
    );
    describe_counter!(
        "strata_cleaner_bytes_written_total",
        "Bytes of cleaned segments the cleaner wrote."
    );
    describe_counter!(
        "strata_cleaner_records_removed_total",
        "Superseded records and expired tombstones the cleaner removed."
    );
    describe_gauge!(
        "strata_partition_upload_lag_bytes",
        "Bytes of sealed segments not yet copied to the object store."
    );
    describe_gauge!(
        "strata_partition_upload_lag_segments",
        "Sealed segments not yet copied to the object store."
    );
    describe_counter!(
        "strata_remote_upload_bytes_total",
        "Segment bytes copied to the object store."
    );
    describe_counter!(
        "strata_remote_upload_segments_total",
        "Segments copied to the object store."
    );
    describe_counter!(
        "strata_remote_read_bytes_total",
        "Bytes read from the object store by fetches."
    );
    describe_histogram!(
        "strata_remote_read_duration_seconds",
        Unit::Seconds,
        "Duration of one ranged GET of a remote segment."
    );
    describe_counter!(
        "strata_remote_cache_hits_total",
        "Remote chunk reads answered from memory or the on-disk cache."
    );
    describe_counter!(
        "strata_remote_cache_misses_total",
        "Remote chunk reads that went to the store."
    );
    describe_counter!(
        "strata_remote_cache_evictions_total",
        "Chunks evicted from the on-disk cache."
    );
    describe_counter!(
        "strata_object_store_errors_total",
        "Failed object-store requests, by operation."
    );
    describe_counter!(
        "strata_object_store_retries_total",
        "Failed tiering passes that will be retried after a backoff, by pass."
    );
    describe_gauge!(
        "strata_remote_index_cache_bytes",
        Unit::Bytes,
        "Remote segments' indexes held in memory, bounded by remote.log.index.file.cache.total.size.bytes."
    );
    describe_counter!(
        "strata_fetch_passes_total",
        "Reads of a Fetch request's partitions: one per request, and one more each time an append to one of them (or its deadline) wakes it."
    );
}

/// Serves `/metrics` on `listener` until `shutdown` turns true.
pub async fn serve(
    broker: Arc<Broker>,
    handle: PrometheusHandle,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    // Histograms need periodic upkeep when no exporter thread does it.
    let upkeep = handle.clone();
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tick.tick() => upkeep.run_upkeep(),
                _ = stop.changed() => return,
            }
        }
    });
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let (broker, handle) = (Arc::clone(&broker), handle.clone());
                    tokio::spawn(async move {
                        if let Err(e) = answer(broker, handle, stream, peer).await {
                            debug!(%peer, error = %e, "metrics request failed");
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}

/// Answers one HTTP/1.x request: the metrics for `GET /metrics`, 404 for
/// other paths, 405 for other methods. The connection is closed after it.
async fn answer(
    broker: Arc<Broker>,
    handle: PrometheusHandle,
    mut stream: TcpStream,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(10), read_head)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head"))??;
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let authorized = if broker.config().bool("metrics.basic.auth.enable") {
        let header = String::from_utf8_lossy(&head).to_string();
        let b = Arc::clone(&broker);
        tokio::task::spawn_blocking(move || basic_auth_allows(&b, &header, peer))
            .await
            .map_err(std::io::Error::other)?
    } else {
        true
    };
    let (status, body) = match (method, path) {
        ("GET", "/metrics") if !authorized => (
            "401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"strata\"",
            "credentials of a SCRAM user are needed (metrics.basic.auth.enable)\n".to_string(),
        ),
        ("GET", "/metrics") => {
            // The gauges take each partition's mutex, which a cleaner or an
            // append may hold for a while: off the executor's threads, so
            // that a scrape never stalls the requests they serve.
            let rendered = tokio::task::spawn_blocking(move || {
                broker.record_partition_gauges();
                handle.render()
            })
            .await
            .map_err(std::io::Error::other)?;
            ("200 OK", rendered)
        }
        ("GET", _) => (
            "404 Not Found",
            "not found; metrics are at /metrics\n".to_string(),
        ),
        _ => ("405 Method Not Allowed", "only GET is served\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Whether the request head carries HTTP Basic credentials of a SCRAM user
/// (checked as SASL PLAIN is) who, with an authorizer, may DESCRIBE the
/// cluster. Blocking (the password check is deliberately slow).
fn basic_auth_allows(broker: &Broker, head: &str, peer: SocketAddr) -> bool {
    use base64::Engine;
    let Some(encoded) = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        if !name.trim().eq_ignore_ascii_case("authorization") {
            return None;
        }
        let value = value.trim();
        value
            .get(..6)
            .filter(|p| p.eq_ignore_ascii_case("basic "))
            .map(|_| value[6..].trim().to_string())
    }) else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    let mut token = vec![0u8];
    token.extend_from_slice(&decoded[..colon]);
    token.push(0);
    token.extend_from_slice(&decoded[colon + 1..]);
    let security = &broker.security;
    match crate::security::sasl::SaslServer::Plain.step(&token, &security.credentials) {
        Ok(crate::security::sasl::Outcome::Success { user, .. }) => security.authorizer.authorize(
            &format!("User:{user}"),
            &peer.ip().to_string(),
            crate::security::acl::Operation::Describe,
            crate::security::acl::ResourceType::Cluster,
            crate::security::acl::CLUSTER_NAME,
        ),
        _ => {
            metrics::counter!("strata_metrics_authentication_failures_total").increment(1);
            tracing::warn!(%peer, "metrics request without valid credentials");
            false
        }
    }
}

/// Logs the metrics address and prints it on stdout after the listening
/// line, in a stable form the tests read.
pub fn announce(addr: SocketAddr) {
    tracing::info!(metrics_listen = %addr, "serving metrics");
    println!("strata metrics on {addr}");
}
