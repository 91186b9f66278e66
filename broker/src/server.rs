//! The TCP server: one task per connection, requests answered in order.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use strata_protocol::{
    decode_request, encode_response, frame_len, unsupported_api_versions_response, ProtocolError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use crate::broker::Broker;
use crate::handlers;
use crate::send;
use strata_tiering::ReadForm;

/// The limits every connection shares: open connections (in total and per
/// IP address) and requests in progress. Shared by the accept loop and
/// every connection task.
struct Limits {
    connections: Arc<Semaphore>,
    per_ip_max: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    requests: Arc<Semaphore>,
}

/// A connection's hold on the limits, given back when it closes.
struct Admitted {
    limits: Arc<Limits>,
    ip: IpAddr,
    _connection: OwnedSemaphorePermit,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut per_ip = self.limits.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

impl Limits {
    /// Counts a new connection from `ip`, or refuses it when the address
    /// already has `max.connections.per.ip` open.
    fn admit(self: &Arc<Self>, ip: IpAddr, permit: OwnedSemaphorePermit) -> Option<Admitted> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= self.per_ip_max {
            return None;
        }
        *n += 1;
        Some(Admitted {
            limits: Arc::clone(self),
            ip,
            _connection: permit,
        })
    }
}

fn permits(n: i64) -> usize {
    (n.max(0) as usize).min(Semaphore::MAX_PERMITS)
}

/// Accepts connections until `shutdown` turns true. At `max.connections`
/// open connections it stops accepting until one closes, as Kafka does; a
/// connection beyond `max.connections.per.ip` is closed at once.
pub async fn serve(
    broker: Arc<Broker>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = broker.config();
    let limits = Arc::new(Limits {
        connections: Arc::new(Semaphore::new(permits(config.i64("max.connections")))),
        per_ip_max: permits(config.i64("max.connections.per.ip")),
        per_ip: Mutex::new(HashMap::new()),
        requests: Arc::new(Semaphore::new(permits(config.i64("queued.max.requests")))),
    });
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&limits.connections).acquire_owned() => p.expect("never closed"),
            _ = shutdown.changed() => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(admitted) = limits.admit(peer.ip(), permit) else {
                        metrics::counter!("strata_connections_refused_total", "reason" => "max.connections.per.ip").increment(1);
                        debug!(%peer, "closing a connection beyond max.connections.per.ip");
                        drop(stream);
                        continue;
                    };
                    let broker = Arc::clone(&broker);
                    let shutdown = shutdown.clone();
                    let requests = Arc::clone(&limits.requests);
                    tokio::spawn(async move {
                        connection(broker, stream, peer, requests, shutdown).await;
                        drop(admitted);
                    });
                }
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}

/// Bytes buffered for reading from a connection: enough for the 4-byte
/// prefix and a small request in one read; larger frames are read straight
/// into their own buffer. Kept small so that idle connections cost little.
const READ_BUFFER: usize = 8 * 1024;

async fn connection(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    requests: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    debug!(%peer, "connection opened");
    metrics::counter!("strata_connections_accepted_total").increment(1);
    let open = metrics::gauge!("strata_connections_open");
    open.increment(1.0);
    // Responses are written whole with one write_all, so the writer needs
    // no buffer of its own.
    let (rd, mut writer) = stream.into_split();
    let mut reader = BufReader::with_capacity(READ_BUFFER, rd);
    let max = broker.config().i64("socket.request.max.bytes") as usize;
    loop {
        let mut prefix = [0u8; 4];
        tokio::select! {
            read = reader.read_exact(&mut prefix) => if read.is_err() { break },
            _ = shutdown.changed() => break,
        }
        let len = match frame_len(prefix, max) {
            Ok(len) => len,
            Err(e) => {
                warn!(%peer, error = %e, "closing connection");
                break;
            }
        };
        // A request slot is taken before the frame's memory: at most
        // `queued.max.requests` frames are held at once.
        let mut slot = tokio::select! {
            p = Arc::clone(&requests).acquire_owned() => Some(p.expect("never closed")),
            _ = shutdown.changed() => break,
        };
        let mut frame = BytesMut::zeroed(len);
        if reader.read_exact(&mut frame).await.is_err() {
            break;
        }
        let arrived = std::time::Instant::now();
        let response = match decode_request(frame.freeze()) {
            Ok(request) => {
                let api_key = request.api_key;
                if api_key == ApiKey::Fetch {
                    // A fetch may wait up to its max wait for records; its
                    // small frame is decoded, so it gives its slot back
                    // rather than hold it while parked, as Kafka's fetches
                    // leave the request queue for purgatory.
                    drop(slot.take());
                }
                let version = request.version();
                let correlation_id = request.header.correlation_id;
                let client = handlers::groups::Client {
                    id: request
                        .header
                        .client_id
                        .as_deref()
                        .unwrap_or_default()
                        .to_string(),
                    host: format!("/{}", peer.ip()),
                };
                let answer = dispatch(&broker, request.body, version, &client).await;
                if let Some((count, duration)) = api_metrics().get(&api_key) {
                    count.increment(1);
                    duration.record(arrived.elapsed().as_secs_f64());
                }
                let body = match answer {
                    Some(Answer::Body(body)) => body,
                    Some(Answer::Fetch(fetch)) if fetch.files.is_empty() => {
                        ResponseKind::Fetch(fetch.response)
                    }
                    Some(Answer::Fetch(fetch)) => {
                        // Records from segment files go to the socket
                        // without passing through user space.
                        let written = match send::fetch_parts(&fetch, version, correlation_id) {
                            Ok(parts) => send::write_fetch(&mut writer, parts, fetch).await,
                            Err(e) => Err(std::io::Error::other(e)),
                        };
                        if let Err(e) = written {
                            warn!(%peer, error = %e, "closing connection");
                            break;
                        }
                        continue;
                    }
                    None => continue,
                };
                match encode_response(api_key, version, correlation_id, &body) {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        warn!(%peer, error = %e, "closing connection");
                        break;
                    }
                }
            }
            Err(ProtocolError::UnsupportedVersion {
                api_key: ApiKey::ApiVersions,
                correlation_id,
                version,
            }) => {
                debug!(%peer, version, "ApiVersions version unsupported: answering with v0");
                unsupported_api_versions_response(correlation_id)
            }
            Err(e) => {
                warn!(%peer, error = %e, "closing connection");
                break;
            }
        };
        if writer.write_all(&response).await.is_err() {
            break;
        }
    }
    open.decrement(1.0);
    debug!(%peer, "connection closed");
}

/// The request counter and latency histogram of every supported API,
/// registered once (on the first request, after the recorder is installed)
/// so that a request costs no label formatting or registry lookup.
fn api_metrics() -> &'static HashMap<ApiKey, (metrics::Counter, metrics::Histogram)> {
    static METRICS: OnceLock<HashMap<ApiKey, (metrics::Counter, metrics::Histogram)>> =
        OnceLock::new();
    METRICS.get_or_init(|| {
        strata_protocol::SUPPORTED_APIS
            .iter()
            .map(|&(key, _, _)| {
                let api = format!("{key:?}");
                (
                    key,
                    (
                        metrics::counter!("strata_requests_total", "api" => api.clone()),
                        metrics::histogram!("strata_request_duration_seconds", "api" => api),
                    ),
                )
            })
            .collect()
    })
}

/// Routes a request to its handler. `None` means no response is sent
/// (Produce with acks=0).
/// A handler's answer: a response to encode, or a Fetch answer whose hot
/// records may travel beside it as file regions.
enum Answer {
    Body(ResponseKind),
    Fetch(handlers::fetch::FetchAnswer),
}

async fn dispatch(
    broker: &Arc<Broker>,
    body: RequestKind,
    version: i16,
    client: &handlers::groups::Client,
) -> Option<Answer> {
    use handlers::groups;
    if let RequestKind::Fetch(r) = body {
        let form = if broker.config().bool("fetch.sendfile.enable") {
            ReadForm::Files
        } else {
            ReadForm::Bytes
        };
        return Some(Answer::Fetch(
            handlers::fetch::handle(broker, r, version, form).await,
        ));
    }
    Some(Answer::Body(match body {
        RequestKind::InitProducerId(r) => ResponseKind::InitProducerId(
            handlers::init_producer_id::handle(broker, r, version).await,
        ),
        RequestKind::AddPartitionsToTxn(r) => ResponseKind::AddPartitionsToTxn(
            handlers::transactions::add_partitions(broker, r, version).await,
        ),
        RequestKind::AddOffsetsToTxn(r) => {
            ResponseKind::AddOffsetsToTxn(handlers::transactions::add_offsets(broker, r).await)
        }
        RequestKind::EndTxn(r) => {
            ResponseKind::EndTxn(handlers::transactions::end(broker, r).await)
        }
        RequestKind::DescribeTransactions(r) => {
            ResponseKind::DescribeTransactions(handlers::describe_transactions::describe(broker, r))
        }
        RequestKind::ListTransactions(r) => {
            ResponseKind::ListTransactions(handlers::describe_transactions::list(broker, r))
        }
        RequestKind::DescribeProducers(r) => ResponseKind::DescribeProducers(
            handlers::describe_transactions::describe_producers(broker, r),
        ),
        RequestKind::TxnOffsetCommit(r) => ResponseKind::TxnOffsetCommit(
            handlers::transactions::txn_offset_commit(broker, r).await,
        ),
        RequestKind::DeleteGroups(r) => {
            ResponseKind::DeleteGroups(groups::delete_groups(broker, r).await)
        }
        RequestKind::OffsetDelete(r) => {
            ResponseKind::OffsetDelete(groups::offset_delete(broker, r).await)
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(groups::find_coordinator(broker, r, version))
        }
        RequestKind::JoinGroup(r) => {
            ResponseKind::JoinGroup(groups::join(broker, r, version, client).await)
        }
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(groups::sync(broker, r).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(groups::heartbeat(broker, r)),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(groups::leave(broker, r, version)),
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(groups::offset_commit(broker, r).await)
        }
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(groups::offset_fetch(broker, r, version))
        }
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(groups::list_groups(broker, r)),
        RequestKind::ConsumerGroupHeartbeat(r) => ResponseKind::ConsumerGroupHeartbeat(
            handlers::consumer_groups::heartbeat(broker, r, version, client),
        ),
        RequestKind::DescribeTopicPartitions(r) => ResponseKind::DescribeTopicPartitions(
            handlers::describe_topic_partitions::handle(broker, r),
        ),
        RequestKind::ConsumerGroupDescribe(r) => {
            ResponseKind::ConsumerGroupDescribe(handlers::consumer_groups::describe(broker, r))
        }
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(groups::describe_groups(broker, r))
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(handlers::offset_for_leader_epoch::handle(broker, r))
        }
        RequestKind::DeleteRecords(r) => {
            ResponseKind::DeleteRecords(handlers::delete_records::handle(broker, r).await)
        }
        RequestKind::DescribeLogDirs(r) => {
            ResponseKind::DescribeLogDirs(handlers::describe_log_dirs::handle(broker, r))
        }
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(handlers::describe_cluster::handle(broker, r))
        }
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(handlers::api_versions::handle()),
        RequestKind::AlterReplicaLogDirs(r) => {
            ResponseKind::AlterReplicaLogDirs(handlers::alter_replica_log_dirs::handle(broker, r))
        }
        RequestKind::ElectLeaders(r) => {
            ResponseKind::ElectLeaders(handlers::partition_placement::elect_leaders(broker, r))
        }
        RequestKind::AlterPartitionReassignments(r) => ResponseKind::AlterPartitionReassignments(
            handlers::partition_placement::alter_reassignments(broker, r),
        ),
        RequestKind::ListPartitionReassignments(r) => ResponseKind::ListPartitionReassignments(
            handlers::partition_placement::list_reassignments(broker, r),
        ),
        RequestKind::Metadata(r) => {
            ResponseKind::Metadata(handlers::metadata::handle(broker, r, version).await)
        }
        RequestKind::Produce(r) => {
            return handlers::produce::handle(broker, r, version)
                .await
                .map(|r| Answer::Body(ResponseKind::Produce(r)))
        }
        RequestKind::Fetch(_) => unreachable!("answered above"),
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(handlers::list_offsets::handle(broker, r, version).await)
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(handlers::create_topics::handle(broker, r).await)
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(handlers::delete_topics::handle(broker, r, version).await)
        }
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(handlers::create_partitions::handle(broker, r).await)
        }
        RequestKind::AlterConfigs(r) => {
            ResponseKind::AlterConfigs(handlers::alter_configs::alter(broker, r).await)
        }
        RequestKind::IncrementalAlterConfigs(r) => ResponseKind::IncrementalAlterConfigs(
            handlers::alter_configs::incremental(broker, r).await,
        ),
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(handlers::describe_configs::handle(broker, r, version))
        }
        other => {
            // decode_request only lets supported APIs through.
            warn!(request = ?std::mem::discriminant(&other), "request without a handler");
            return None;
        }
    }))
}

/// Logs the bound address in a stable form the tests and scripts read.
pub fn announce(addr: SocketAddr, advertised: (&str, i32)) {
    info!(listen = %addr, advertised_host = advertised.0, advertised_port = advertised.1, "listening");
    println!("strata listening on {addr}");
}
