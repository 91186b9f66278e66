//! Harness for the end-to-end tests: starts the real `strata` binary on an
//! ephemeral port with a fresh data directory, and stops it the way a test
//! asks (SIGKILL, SIGTERM).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub mod fault_proxy;

/// A librdkafka consumer assigned to partitions `0..partitions` of `topic`
/// from the beginning. librdkafka wants a group id even for manual
/// assignment; offsets are never committed, so no group coordinator is used.
pub fn consumer_from_start(
    addr: &str,
    topic: &str,
    partitions: i32,
) -> rdkafka::consumer::BaseConsumer {
    use rdkafka::consumer::Consumer;
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "strata-tests")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    consumer
}

/// The settings of a crash loop's producer: idempotent, acks=all, and
/// patient enough (five minutes per record, quick reconnects) to ride out
/// the broker being killed and restarted under it.
pub fn crash_producer_config(addr: &str) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", addr)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "300000")
        .set("queue.buffering.max.messages", "20000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "200");
    c
}

/// Path of the broker binary: `$STRATA_BIN`, or `strata` next to the test's
/// own target directory (`cargo build` puts it there).
/// How many kill-and-restart cycles a crash loop runs: `STRATA_CRASH_CYCLES`,
/// or the suite's `default`.
pub fn crash_cycles(default: usize) -> usize {
    std::env::var("STRATA_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The seed of a crash loop's kill schedule: `STRATA_CRASH_SEED` to replay
/// a run, else a new one from the clock.
pub fn crash_seed() -> u64 {
    std::env::var("STRATA_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

/// The text of the metrics endpoint at `addr` (one plain HTTP/1.0 GET).
pub fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("metrics endpoint");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .expect("metrics request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("metrics answer");
    body
}

/// The sum of a metric's samples on `broker`'s metrics endpoint, over all
/// its labels (0 if absent).
pub fn metric(broker: &Broker, name: &str) -> f64 {
    scrape(broker.metrics_addr())
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split([' ', '{']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn strata_bin() -> PathBuf {
    if let Ok(p) = std::env::var("STRATA_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/strata
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("strata");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --bin strata` first",
        bin.display()
    );
    bin
}

/// Small segments, frequent upload and retention passes, and a hot tier
/// that keeps nothing once it is uploaded.
pub const SMALL_TIERED: &[&str] = &[
    "--set",
    "log.segment.bytes=65536",
    "--set",
    "remote.log.manager.task.interval.ms=200",
    "--set",
    "log.retention.check.interval.ms=200",
    "--set",
    "log.local.retention.bytes=1",
];

/// A running broker. Dropping it kills the process; the data directory is
/// removed with the harness.
pub struct Broker {
    child: Option<Child>,
    data: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    metrics_addr: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Broker {
    /// Starts a broker on a free port with a fresh data directory and the
    /// given extra arguments (e.g. `["--set", "num.partitions=3"]`).
    pub fn start(args: &[&str]) -> Broker {
        Self::start_with_env(args, &[])
    }

    /// Starts a broker with extra environment variables too (e.g. the
    /// `AWS_*` settings of an S3 server).
    pub fn start_with_env(args: &[&str], env: &[(String, String)]) -> Broker {
        Self::start_in(None, args, env)
    }

    /// Starts a broker whose data directory is `data_dir` (for a test that
    /// puts it on a filesystem of its own) instead of a fresh temporary one.
    pub fn start_with_data_dir(data_dir: &Path, args: &[&str]) -> Broker {
        Self::start_in(Some(data_dir.to_owned()), args, &[])
    }

    /// Starts a broker on `data_dir` with extra environment variables (a
    /// second broker on the same bucket, or a restore into a new directory).
    pub fn start_in_dir(data_dir: &Path, args: &[&str], env: &[(String, String)]) -> Broker {
        Self::start_in(Some(data_dir.to_owned()), args, env)
    }

    fn start_in(data_dir: Option<PathBuf>, args: &[&str], env: &[(String, String)]) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = data_dir.unwrap_or_else(|| dir.path().join("data"));
        let mut b = Broker {
            data,
            child: None,
            dir,
            port: 0,
            metrics_addr: String::new(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env.to_vec(),
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("broker.log"))
            .expect("broker log");
        let mut child = Command::new(strata_bin())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["--metrics-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("STRATA_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start strata");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read broker stdout");
        let Some(addr) = line.trim().strip_prefix("strata listening on ") else {
            let _ = child.kill();
            panic!("broker did not start: {line:?}\n{}", self.log());
        };
        self.port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in the listening line");
        // The metrics line follows at once; it is read before the pipe is
        // closed, so that the broker never writes to a closed stdout.
        line.clear();
        stdout.read_line(&mut line).expect("read broker stdout");
        let Some(metrics) = line.trim().strip_prefix("strata metrics on ") else {
            let _ = child.kill();
            panic!(
                "broker did not announce its metrics address: {line:?}\n{}",
                self.log()
            );
        };
        self.metrics_addr = metrics.to_string();
        self.child = Some(child);
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT` of the Prometheus endpoint.
    pub fn metrics_addr(&self) -> &str {
        &self.metrics_addr
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    /// What the broker logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }

    /// Kills the broker with SIGKILL: no flush, no clean shutdown.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the broker with SIGTERM and waits for it to exit; returns
    /// whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        for _ in 0..200 {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// Starts the broker again on the same port and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the broker before restarting it");
        self.spawn();
    }

    /// Restarts the broker with `extra` arguments for this start only
    /// (`--restore`, say).
    pub fn restart_with(&mut self, extra: &[&str]) {
        assert!(self.child.is_none(), "stop the broker before restarting it");
        let args = self.args.clone();
        self.args.extend(extra.iter().map(|s| s.to_string()));
        self.spawn();
        self.args = args;
    }

    /// The broker's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The arguments the broker was started with.
    pub fn args(&self) -> Vec<String> {
        self.args.clone()
    }
}

/// Runs the strata binary with `args` until it exits (killing it after
/// `timeout`), for commands and for starts that must be refused: its exit
/// code (`None` if it was killed), standard output and standard error.
pub fn run_strata(
    args: &[&str],
    env: &[(String, String)],
    timeout: Duration,
) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(strata_bin())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .spawn()
        .expect("run strata");
    let deadline = std::time::Instant::now() + timeout;
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        code,
        std::fs::read_to_string(out).unwrap_or_default(),
        std::fs::read_to_string(err).unwrap_or_default(),
    )
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real S3 protocol server (s3s-fs, installed by
/// `scripts/install-test-deps.sh`) on 127.0.0.1, storing objects as files in
/// a temporary directory, with one bucket. It can be stopped and started
/// again on the same port and data to play an outage.
pub struct S3Server {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    log_requests: bool,
}

pub const S3_BUCKET: &str = "strata";

impl S3Server {
    fn bin() -> PathBuf {
        if let Ok(p) = std::env::var("S3S_FS_BIN") {
            return PathBuf::from(p);
        }
        let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/s3s/bin/s3s-fs");
        assert!(
            bin.exists(),
            "{} not found: run scripts/install-test-deps.sh",
            bin.display()
        );
        bin
    }

    pub fn start() -> S3Server {
        Self::start_inner(false)
    }

    /// A server that logs every request, for counting them.
    pub fn start_logging_requests() -> S3Server {
        Self::start_inner(true)
    }

    fn start_inner(log_requests: bool) -> S3Server {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("data").join(S3_BUCKET)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = S3Server {
            child: None,
            dir,
            port,
            log_requests,
        };
        s.restart();
        s
    }

    /// How many requests of each HTTP method the server has logged (only
    /// with [`S3Server::start_logging_requests`]).
    pub fn request_counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for f in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            if !f.file_name().to_string_lossy().starts_with("s3s-") {
                continue;
            }
            let text = std::fs::read_to_string(f.path()).unwrap_or_default();
            for line in text.lines() {
                if let Some(rest) = line.split("req: Request { method: ").nth(1) {
                    let method = rest.split(',').next().unwrap_or_default().to_string();
                    *counts.entry(method).or_default() += 1;
                }
            }
        }
        counts
    }

    /// Starts the server (again) on its port and data.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        let log = File::options()
            .create(true)
            .append(true)
            .open(
                self.dir
                    .path()
                    .join(format!("s3s-{}.log", std::process::id())),
            )
            .unwrap();
        let child = Command::new(Self::bin())
            .env(
                "RUST_LOG",
                if self.log_requests {
                    "s3s=debug"
                } else {
                    "warn"
                },
            )
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--access-key",
                "strata-test",
                "--secret-key",
                "strata-test-secret",
            ])
            .arg(self.dir.path().join("data"))
            // s3s-fs logs to stdout.
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start s3s-fs");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("s3s-fs did not start listening");
    }

    /// Stops the server (SIGKILL): the store is down.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The `--remote` URL and environment a broker needs to use the bucket.
    pub fn broker_env(&self) -> (String, Vec<(String, String)>) {
        self.broker_env_through(self.port)
    }

    /// The port the server listens on, for a proxy to forward to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// As [`S3Server::broker_env`], with the broker sending its requests to
    /// `port` on 127.0.0.1 (a proxy in front of this server).
    pub fn broker_env_through(&self, port: u16) -> (String, Vec<(String, String)>) {
        let env = [
            ("AWS_ENDPOINT", format!("http://127.0.0.1:{port}")),
            ("AWS_ACCESS_KEY_ID", "strata-test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "strata-test-secret".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ];
        (
            format!("s3://{S3_BUCKET}/cluster-a"),
            env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        )
    }

    /// Files the server holds for the bucket, i.e. the objects.
    pub fn objects(&self) -> Vec<PathBuf> {
        files_under(&self.dir.path().join("data").join(S3_BUCKET))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A raw Kafka protocol connection for the tests that need exact bytes on
/// the wire: bad input, and every advertised API version.
pub mod raw {
    use std::io::{ErrorKind, Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::produce_response::PartitionProduceResponse;
    use kafka_protocol::messages::{
        ApiKey, BrokerId, CreateTopicsRequest, FetchRequest, ListOffsetsRequest, ProduceRequest,
        RequestHeader, TopicName,
    };
    use kafka_protocol::protocol::{Encodable, Request, StrBytes};
    use strata_storage::testing::{BatchBuilder, TestRecord};

    pub struct Conn {
        stream: TcpStream,
        next_correlation: i32,
    }

    impl Conn {
        pub fn connect(addr: &str) -> Conn {
            let stream = TcpStream::connect(addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(15)))
                .unwrap();
            Conn {
                stream,
                next_correlation: 1,
            }
        }

        /// Writes raw bytes as they are.
        pub fn write_raw(&mut self, bytes: &[u8]) {
            // The broker may already have closed the connection.
            let _ = self.stream.write_all(bytes);
        }

        /// Writes a frame: length prefix and body.
        pub fn write_frame(&mut self, body: &[u8]) {
            let mut buf = (body.len() as i32).to_be_bytes().to_vec();
            buf.extend_from_slice(body);
            self.write_raw(&buf);
        }

        /// Encodes a request frame body for any API key and version.
        pub fn encode<T: Encodable>(
            api_key: i16,
            version: i16,
            correlation_id: i32,
            body: &T,
        ) -> Bytes {
            let header = RequestHeader::default()
                .with_request_api_key(api_key)
                .with_request_api_version(version)
                .with_correlation_id(correlation_id)
                .with_client_id(Some(StrBytes::from_static_str("strata-raw-test")));
            let header_version = ApiKey::try_from(api_key)
                .map(|k| k.request_header_version(version))
                .unwrap_or(1);
            let mut buf = BytesMut::new();
            header.encode(&mut buf, header_version).unwrap();
            body.encode(&mut buf, version).unwrap();
            buf.freeze()
        }

        /// Reads one response frame; `None` if the broker closed the connection.
        pub fn read_frame(&mut self) -> Option<Bytes> {
            let mut len = [0u8; 4];
            match self.stream.read_exact(&mut len) {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                    ) =>
                {
                    return None
                }
                Err(e) => panic!("reading a response: {e}"),
            }
            let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
            self.stream.read_exact(&mut buf).ok()?;
            Some(Bytes::from(buf))
        }

        /// Whether the broker closed the connection (instead of answering).
        pub fn is_closed(&mut self) -> bool {
            self.read_frame().is_none()
        }

        /// Sends a request and decodes its response.
        pub fn request<R: Request>(&mut self, version: i16, body: &R) -> R::Response {
            let correlation_id = self.next_correlation;
            self.next_correlation += 1;
            let frame = Self::encode(R::KEY, version, correlation_id, body);
            self.write_frame(&frame);
            let resp = self.read_frame().unwrap_or_else(|| {
                panic!(
                    "connection closed instead of answering API {} v{version}",
                    R::KEY
                )
            });
            let (got, decoded) = strata_protocol::decode_response::<R>(resp, version)
                .unwrap_or_else(|e| panic!("API {} v{version}: {e}", R::KEY));
            assert_eq!(got, correlation_id);
            decoded
        }
    }

    pub fn topic_name(name: &str) -> TopicName {
        TopicName(StrBytes::from_string(name.to_string()))
    }

    impl Conn {
        /// CreateTopics v7 for one topic with replication factor 1.
        pub fn create_topic(
            &mut self,
            topic: &str,
            partitions: i32,
            configs: &[(&str, &str)],
        ) -> CreatableTopicResult {
            let configs = configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.to_string()))
                        .with_value(Some(StrBytes::from_string(v.to_string())))
                })
                .collect();
            let t = CreatableTopic::default()
                .with_name(topic_name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(1)
                .with_configs(configs);
            self.request(7, &CreateTopicsRequest::default().with_topics(vec![t]))
                .topics
                .remove(0)
        }

        /// Produce v9 with acks=-1 of `records` to one partition.
        pub fn produce(
            &mut self,
            topic: &str,
            partition: i32,
            records: Bytes,
        ) -> PartitionProduceResponse {
            let data = PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records));
            let req = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(topic_name(topic))
                    .with_partition_data(vec![data])]);
            self.request(9, &req)
                .responses
                .remove(0)
                .partition_responses
                .remove(0)
        }

        /// OffsetCommit v8 of one partition's offset outside any generation
        /// (as an admin tool commits); the partition's error code.
        pub fn commit_offset(
            &mut self,
            group: &str,
            topic: &str,
            partition: i32,
            offset: i64,
        ) -> i16 {
            use kafka_protocol::messages::offset_commit_request::{
                OffsetCommitRequestPartition, OffsetCommitRequestTopic,
            };
            use kafka_protocol::messages::{GroupId, OffsetCommitRequest};
            let req = OffsetCommitRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![OffsetCommitRequestPartition::default()
                        .with_partition_index(partition)
                        .with_committed_offset(offset)])]);
            self.request(8, &req).topics[0].partitions[0].error_code
        }

        /// OffsetFetch v7 of one partition's committed offset (-1: none).
        pub fn committed_offset(&mut self, group: &str, topic: &str, partition: i32) -> i64 {
            use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
            use kafka_protocol::messages::{GroupId, OffsetFetchRequest};
            let req = OffsetFetchRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(topic_name(topic))
                    .with_partition_indexes(vec![partition])]));
            self.request(7, &req).topics[0].partitions[0].committed_offset
        }

        /// ListOffsets v9 for one partition and timestamp (-1 latest, -2 earliest, ...).
        pub fn list_offset(
            &mut self,
            topic: &str,
            partition: i32,
            timestamp: i64,
        ) -> ListOffsetsPartitionResponse {
            let p = ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp);
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![p])]);
            self.request(9, &req).topics.remove(0).partitions.remove(0)
        }
    }

    /// A Fetch of `topic`'s `(partition, offset, partition max bytes)`,
    /// waiting up to `max_wait_ms` for one byte, at most `max_bytes` in all.
    pub fn fetch_request(
        topic: &str,
        partitions: &[(i32, i64, i32)],
        max_wait_ms: i32,
        max_bytes: i32,
    ) -> FetchRequest {
        FetchRequest::default()
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|&(p, offset, max)| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_fetch_offset(offset)
                                .with_partition_max_bytes(max)
                        })
                        .collect(),
                )])
    }

    /// One batch of `n` records from an idempotent producer, starting at
    /// sequence `seq`.
    pub fn idempotent_batch(n: usize, producer_id: i64, epoch: i16, seq: i32) -> Bytes {
        let records = (0..n)
            .map(|i| TestRecord {
                key: None,
                value: Some(format!("seq-{}", seq + i as i32).into_bytes()),
                timestamp_delta: i as i64,
            })
            .collect();
        let b = BatchBuilder::records(records)
            .timestamp(1000)
            .producer(producer_id, epoch, seq);
        Bytes::from(b.build())
    }

    /// One batch of `n` records (not from an idempotent producer: producer
    /// id and base sequence -1) with timestamps from `timestamp` on.
    pub fn batch(n: usize, value_len: usize, timestamp: i64) -> Bytes {
        let records = (0..n)
            .map(|i| TestRecord {
                key: Some(format!("k{i}").into_bytes()),
                value: Some(vec![b'v'; value_len]),
                timestamp_delta: i as i64,
            })
            .collect();
        Bytes::from(BatchBuilder::records(records).timestamp(timestamp).build())
    }
}
