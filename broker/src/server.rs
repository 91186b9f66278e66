//! The TCP server: one task per connection, requests answered in order.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::BytesMut;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use strata_protocol::{
    decode_request, encode_response, frame_len, unsupported_api_versions_response, ProtocolError,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, WriteHalf};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use crate::broker::Broker;
use crate::handlers;
use crate::handlers::access::Checked;
use crate::security::sasl::{Admission, Authentication, Stage};
use crate::security::tls::certificate_principal;
use crate::security::{Listener, Session, ANONYMOUS};
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

/// A bound listener: its socket and what its connections know of it.
pub struct Endpoint {
    pub socket: TcpListener,
    pub listener: Arc<Listener>,
}

/// Accepts connections on every listener until `shutdown` turns true. At
/// `max.connections` open connections (over all listeners) it stops
/// accepting until one closes, as Kafka does; a connection beyond
/// `max.connections.per.ip` is closed at once.
pub async fn serve(broker: Arc<Broker>, endpoints: Vec<Endpoint>, shutdown: watch::Receiver<bool>) {
    let config = broker.config();
    let limits = Arc::new(Limits {
        connections: Arc::new(Semaphore::new(permits(config.i64("max.connections")))),
        per_ip_max: permits(config.i64("max.connections.per.ip")),
        per_ip: Mutex::new(HashMap::new()),
        requests: Arc::new(Semaphore::new(permits(config.i64("queued.max.requests")))),
    });
    let loops: Vec<_> = endpoints
        .into_iter()
        .map(|e| {
            tokio::spawn(accept_loop(
                Arc::clone(&broker),
                Arc::clone(&limits),
                e,
                shutdown.clone(),
            ))
        })
        .collect();
    for l in loops {
        let _ = l.await;
    }
}

async fn accept_loop(
    broker: Arc<Broker>,
    limits: Arc<Limits>,
    endpoint: Endpoint,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&limits.connections).acquire_owned() => p.expect("never closed"),
            _ = shutdown.changed() => break,
        };
        tokio::select! {
            accepted = endpoint.socket.accept() => match accepted {
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
                    let listener = Arc::clone(&endpoint.listener);
                    tokio::spawn(async move {
                        open_connection(broker, stream, peer, listener, requests, shutdown).await;
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

/// How long a TLS client has to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the TLS handshake on a TLS listener, then serves the connection.
/// A client that does not speak TLS (or does not finish in time) is
/// dropped; nobody else notices.
async fn open_connection(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<Listener>,
    requests: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    if !listener.protocol.tls() {
        let (rd, wr) = stream.into_split();
        let conn = Conn {
            reader: BufReader::with_capacity(READ_BUFFER, Box::new(rd)),
            writer: Writer::Tcp(wr),
            principal: ANONYMOUS.to_string(),
        };
        return connection(broker, conn, peer, listener, requests, shutdown).await;
    }
    let Some(tls) = broker.security.tls.as_ref() else {
        return;
    };
    let accepted = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await;
    let stream = match accepted {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            metrics::counter!("strata_tls_handshake_failures_total").increment(1);
            info!(%peer, listener = %listener.name, error = %e, "TLS handshake failed: closing");
            return;
        }
        Err(_) => {
            metrics::counter!("strata_tls_handshake_failures_total").increment(1);
            info!(%peer, listener = %listener.name, "no TLS handshake within 10 s: closing");
            return;
        }
    };
    let principal = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| certificate_principal(c))
        .unwrap_or_else(|| ANONYMOUS.to_string());
    let (rd, wr) = tokio::io::split(stream);
    let conn = Conn {
        reader: BufReader::with_capacity(READ_BUFFER, Box::new(rd)),
        writer: Writer::Tls(Box::new(wr)),
        principal,
    };
    connection(broker, conn, peer, listener, requests, shutdown).await
}

/// Bytes buffered for reading from a connection: enough for the 4-byte
/// prefix and a small request in one read; larger frames are read straight
/// into their own buffer. Kept small so that idle connections cost little.
const READ_BUFFER: usize = 8 * 1024;

type Reader = BufReader<Box<dyn AsyncRead + Send + Unpin>>;

/// A connection's write side: a plain socket, whose Fetch answers may go
/// out with sendfile, or a TLS stream, which must see every byte.
enum Writer {
    Tcp(OwnedWriteHalf),
    Tls(Box<WriteHalf<tokio_rustls::server::TlsStream<TcpStream>>>),
}

impl Writer {
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Writer::Tcp(w) => w.write_all(bytes).await,
            Writer::Tls(w) => {
                w.write_all(bytes).await?;
                w.flush().await
            }
        }
    }
}

/// An accepted connection, ready for requests.
struct Conn {
    reader: Reader,
    writer: Writer,
    /// The principal the transport named (a client certificate's), or
    /// `User:ANONYMOUS`.
    principal: String,
}

async fn connection(
    broker: Arc<Broker>,
    conn: Conn,
    peer: SocketAddr,
    listener: Arc<Listener>,
    requests: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    debug!(%peer, listener = %listener.name, "connection opened");
    metrics::counter!("strata_connections_accepted_total").increment(1);
    let open = metrics::gauge!("strata_connections_open");
    open.increment(1.0);
    let Conn {
        mut reader,
        mut writer,
        principal,
    } = conn;
    let mut auth = Authentication::new(listener.protocol.sasl(), principal);
    let mut session = Session {
        principal: auth.principal.clone(),
        host: peer.ip().to_string(),
        listener: Arc::clone(&listener),
    };
    // After a v0 SaslHandshake the tokens come as bare frames, not as
    // SaslAuthenticate requests.
    let mut raw_sasl = false;
    let max = broker.config().i64("socket.request.max.bytes") as usize;
    loop {
        let mut prefix = [0u8; 4];
        tokio::select! {
            read = reader.read_exact(&mut prefix) => if read.is_err() { break },
            _ = shutdown.changed() => break,
        }
        // Before authentication a frame is at most a SASL token: Kafka
        // bounds it so that an unauthenticated client cannot make the
        // broker allocate much.
        let limit = if matches!(auth.stage, Stage::Authenticated { .. } | Stage::Transport) {
            max
        } else {
            max.min(512 * 1024)
        };
        let len = match frame_len(prefix, limit) {
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
        if raw_sasl {
            let peer_text = peer.to_string();
            let (result, close) =
                handlers::sasl::authenticate(&broker.security, &mut auth, &frame, &peer_text);
            match result {
                Ok(bytes) if !close => {
                    let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
                    out.extend_from_slice(&bytes);
                    if writer.write_all(&out).await.is_err() {
                        break;
                    }
                    if matches!(auth.stage, Stage::Authenticated { .. }) {
                        raw_sasl = false;
                        session.principal = auth.principal.clone();
                    }
                    continue;
                }
                _ => break,
            }
        }
        let arrived = std::time::Instant::now();
        let response = match decode_request(frame.freeze()) {
            Ok(request) => {
                let api_key = request.api_key;
                if let Admission::Close(why) = auth.admit(api_key as i16, arrived) {
                    metrics::counter!("strata_connections_closed_unauthenticated_total")
                        .increment(1);
                    info!(%peer, api = ?api_key, reason = why, "closing connection");
                    break;
                }
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
                let mut close_after = false;
                let answer = match request.body {
                    RequestKind::SaslHandshake(r) => {
                        let resp = handlers::sasl::handshake(&broker.security, &mut auth, r);
                        raw_sasl = version == 0 && resp.error_code == 0;
                        close_after =
                            resp.error_code != 0 && !matches!(auth.stage, Stage::Transport);
                        Some(Answer::Body(ResponseKind::SaslHandshake(resp)))
                    }
                    RequestKind::SaslAuthenticate(r) => {
                        let peer_text = peer.to_string();
                        let (result, close) = handlers::sasl::authenticate(
                            &broker.security,
                            &mut auth,
                            handlers::sasl::token(&r),
                            &peer_text,
                        );
                        close_after = close;
                        session.principal = auth.principal.clone();
                        Some(Answer::Body(ResponseKind::SaslAuthenticate(
                            handlers::sasl::authenticate_response(&broker.security, result),
                        )))
                    }
                    body => {
                        let zero_copy = matches!(writer, Writer::Tcp(_));
                        dispatch(&broker, body, version, &client, &session, zero_copy).await
                    }
                };
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
                        let Writer::Tcp(tcp) = &mut writer else {
                            unreachable!("file regions are only read for plain sockets")
                        };
                        let written = match send::fetch_parts(&fetch, version, correlation_id) {
                            Ok(parts) => send::write_fetch(tcp, parts, fetch).await,
                            Err(e) => Err(std::io::Error::other(e)),
                        };
                        if let Err(e) = written {
                            warn!(%peer, error = %e, "closing connection");
                            break;
                        }
                        continue;
                    }
                    Some(Answer::Close) => {
                        info!(%peer, api = ?api_key, "refused request with no response: closing connection");
                        break;
                    }
                    None => continue,
                };
                let bytes = match encode_response(api_key, version, correlation_id, &body) {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        warn!(%peer, error = %e, "closing connection");
                        break;
                    }
                };
                if close_after {
                    let _ = writer.write_all(&bytes).await;
                    break;
                }
                bytes
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

/// A handler's answer: a response to encode, or a Fetch answer whose hot
/// records may travel beside it as file regions.
enum Answer {
    Body(ResponseKind),
    Fetch(handlers::fetch::FetchAnswer),
    /// Close the connection without an answer.
    Close,
}

async fn dispatch(
    broker: &Arc<Broker>,
    body: RequestKind,
    version: i16,
    client: &handlers::groups::Client,
    session: &Session,
    zero_copy: bool,
) -> Option<Answer> {
    let access = broker.security.access(session);
    let (body, patch) = if access.enforced() {
        match handlers::access::check(&access, broker, body, version) {
            Checked::Refuse(r) => return Some(Answer::Body(r)),
            Checked::Close => return Some(Answer::Close),
            Checked::Pass(body, patch) => (body, patch),
        }
    } else {
        (body, None)
    };
    let mut answer = handle(broker, body, version, client, session, zero_copy).await;
    match &mut answer {
        Some(Answer::Body(r)) => {
            if let Some(p) = patch {
                p(r, &access);
            }
            advertise(broker, session, r);
        }
        Some(Answer::Fetch(f)) => {
            if let Some(p) = patch {
                let mut r = ResponseKind::Fetch(std::mem::take(&mut f.response));
                p(&mut r, &access);
                if let ResponseKind::Fetch(r) = r {
                    f.response = r;
                }
            }
        }
        _ => {}
    }
    answer
}

/// Tells a client of a listener other than the first that listener's
/// address wherever a response names this broker.
fn advertise(broker: &Broker, session: &Session, r: &mut ResponseKind) {
    let l = &session.listener;
    if l.advertised_host == broker.advertised_host && l.advertised_port == broker.advertised_port {
        return;
    }
    let host = || StrBytes::from_string(l.advertised_host.clone());
    let me = BrokerId(broker.node_id);
    match r {
        ResponseKind::Metadata(m) => {
            for b in m.brokers.iter_mut().filter(|b| b.node_id == me) {
                b.host = host();
                b.port = l.advertised_port;
            }
        }
        ResponseKind::FindCoordinator(f) => {
            // Up to v3 the one coordinator is at the top; from v4 those
            // fields are absent and must stay at their defaults.
            if f.coordinators.is_empty() && f.node_id == me {
                f.host = host();
                f.port = l.advertised_port;
            }
            for c in f.coordinators.iter_mut().filter(|c| c.node_id == me) {
                c.host = host();
                c.port = l.advertised_port;
            }
        }
        ResponseKind::DescribeCluster(d) => {
            for b in d.brokers.iter_mut().filter(|b| b.broker_id == me) {
                b.host = host();
                b.port = l.advertised_port;
            }
        }
        _ => {}
    }
}

/// Routes a request to its handler. `None` means no response is sent
/// (Produce with acks=0).
async fn handle(
    broker: &Arc<Broker>,
    body: RequestKind,
    version: i16,
    client: &handlers::groups::Client,
    session: &Session,
    zero_copy: bool,
) -> Option<Answer> {
    use handlers::groups;
    if let RequestKind::Fetch(r) = body {
        let form = if zero_copy && broker.config().bool("fetch.sendfile.enable") {
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
        RequestKind::CreateAcls(r) => {
            ResponseKind::CreateAcls(handlers::acls::create(broker, r, session).await)
        }
        RequestKind::DescribeAcls(r) => {
            ResponseKind::DescribeAcls(handlers::acls::describe(broker, r, session))
        }
        RequestKind::DeleteAcls(r) => {
            ResponseKind::DeleteAcls(handlers::acls::delete(broker, r, session).await)
        }
        RequestKind::DescribeUserScramCredentials(r) => ResponseKind::DescribeUserScramCredentials(
            handlers::scram_credentials::describe(broker, r, session),
        ),
        RequestKind::AlterUserScramCredentials(r) => ResponseKind::AlterUserScramCredentials(
            handlers::scram_credentials::alter(broker, r, session).await,
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

/// Logs the first listener's bound address in a stable form the tests and
/// scripts read.
pub fn announce(addr: SocketAddr, advertised: (&str, i32)) {
    info!(listen = %addr, advertised_host = advertised.0, advertised_port = advertised.1, "listening");
    println!("strata listening on {addr}");
}

/// Prints every listener's name, protocol and bound address, after the
/// metrics line: `strata listener NAME PROTOCOL on ADDR`, when `listeners`
/// configured them (without it, the listening line says it all). A reader
/// that took only the first two lines may have closed standard output:
/// the lines are then lost, never the broker.
pub fn announce_listeners(endpoints: &[(String, &'static str, SocketAddr)], print: bool) {
    use std::io::Write;
    let mut out = std::io::stdout();
    for (name, protocol, addr) in endpoints {
        info!(listener = %name, protocol, listen = %addr, "listener");
        if print {
            let _ = writeln!(out, "strata listener {name} {protocol} on {addr}");
        }
    }
    let _ = out.flush();
}
