//! An HTTP/1.1 proxy that sits between the broker and the S3 test server and
//! misbehaves on a schedule: it delays requests, answers 500 and 503 itself,
//! drops connections before or after the server has done the work, and cuts
//! response bodies short. Requests are forwarded byte for byte (the `Host`
//! header included), so the client's SigV4 signatures stay valid.
//!
//! In [`Mode::Bucket`] it behaves instead like a real object store seen
//! from a machine in its region: every answer waits for a time to first
//! byte, every connection carries a limited bandwidth, and requests beyond a
//! rate are refused with S3's `503 SlowDown`, so that tests and benchmarks
//! see the latencies a reader of S3, GCS or Azure sees.
//!
//! It is deliberately simple: one thread per client connection, a fresh
//! upstream connection per request, and whole messages held in memory, which
//! is plenty for test objects of a few megabytes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the proxy does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Forward it untouched.
    Pass,
    /// Wait this long, then forward it.
    Delay(Duration),
    /// Answer with this status (500 or 503) and an S3 error document,
    /// without forwarding.
    Status(u16),
    /// Close the connection without forwarding: the server never saw it.
    DropRequest,
    /// Forward it, then close the connection instead of answering: the work
    /// was done but the client cannot know.
    DropResponse,
    /// Forward it, then send the response head and half of its body (the
    /// `Content-Length` still promising all of it) and close.
    TruncateBody,
}

impl Fault {
    /// A name for counting, without the parameters.
    pub fn kind(self) -> &'static str {
        match self {
            Fault::Pass => "pass",
            Fault::Delay(_) => "delay",
            Fault::Status(500) => "status 500",
            Fault::Status(503) => "status 503",
            Fault::Status(_) => "status",
            Fault::DropRequest => "drop request",
            Fault::DropResponse => "drop response",
            Fault::TruncateBody => "truncate body",
        }
    }
}

/// How the proxy treats the requests it receives from now on.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Every request passes.
    Pass,
    /// Each request gets a fault with probability `rate` (chosen uniformly
    /// among the kinds, delays up to `max_delay`), from a generator seeded
    /// with the proxy's seed.
    Faults { rate: f64, max_delay: Duration },
    /// Requests are held unanswered until the mode changes, then their
    /// connection is closed: a store that has stopped responding.
    Stall,
    /// A real bucket's latency, bandwidth and request-rate limit.
    Bucket(BucketProfile),
}

/// How an emulated bucket answers ([`Mode::Bucket`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketProfile {
    /// Every answer's first byte leaves this long after its request
    /// arrived (S3 in-region: 20-100 ms for a GET).
    pub first_byte: Duration,
    /// Uniformly random extra up to this much on each first byte.
    pub jitter: Duration,
    /// Bytes per second one connection carries in either direction (0:
    /// unlimited). S3 gives one connection on the order of 100 MB/s.
    pub bytes_per_sec: u64,
    /// Requests per second over all connections before the bucket answers
    /// `503 SlowDown` (0: unlimited), as S3 does past a prefix's rate.
    pub requests_per_sec: u32,
}

impl BucketProfile {
    /// 30 ms (plus up to 10 ms) to the first byte, 100 MB/s per connection,
    /// no request limit: the realistic bucket.
    pub fn realistic() -> BucketProfile {
        BucketProfile {
            first_byte: Duration::from_millis(30),
            jitter: Duration::from_millis(10),
            bytes_per_sec: 100_000_000,
            requests_per_sec: 0,
        }
    }
}

/// The request-rate limit of an emulated bucket: a token bucket of one
/// second's worth of requests, empty when the mode is set.
struct RateLimit {
    tokens: f64,
    at: Instant,
}

struct Shared {
    mode: Mutex<(Mode, fastrand::Rng)>,
    rate: Mutex<RateLimit>,
    /// Requests seen per fault kind (`"delay"`), per method (`"GET"`) and per
    /// both (`"GET delay"`).
    counts: Mutex<BTreeMap<String, usize>>,
    stop: AtomicBool,
}

impl Shared {
    fn next_fault(&self) -> Fault {
        let mut guard = self.mode.lock().unwrap();
        let (mode, rng) = &mut *guard;
        match *mode {
            Mode::Pass | Mode::Stall | Mode::Bucket(_) => Fault::Pass,
            Mode::Faults { rate, max_delay } => {
                if rng.f64() >= rate {
                    return Fault::Pass;
                }
                match rng.u8(0..6) {
                    0 => Fault::Delay(Duration::from_millis(
                        rng.u64(1..=max_delay.as_millis().max(1) as u64),
                    )),
                    1 => Fault::Status(500),
                    2 => Fault::Status(503),
                    3 => Fault::DropRequest,
                    4 => Fault::DropResponse,
                    _ => Fault::TruncateBody,
                }
            }
        }
    }

    fn bucket(&self) -> Option<BucketProfile> {
        match self.mode.lock().unwrap().0 {
            Mode::Bucket(p) => Some(p),
            _ => None,
        }
    }

    /// Whether an emulated bucket with `limit` requests per second takes
    /// one more request now.
    fn admit(&self, limit: u32) -> bool {
        if limit == 0 {
            return true;
        }
        let mut r = self.rate.lock().unwrap();
        let now = Instant::now();
        let refill = now.duration_since(r.at).as_secs_f64() * limit as f64;
        r.tokens = (r.tokens + refill).min(limit as f64);
        r.at = now;
        if r.tokens >= 1.0 {
            r.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// A first-byte wait with its jitter.
    fn first_byte(&self, p: &BucketProfile) -> Duration {
        let jitter = p.jitter.as_micros() as u64;
        let extra = if jitter == 0 {
            0
        } else {
            self.mode.lock().unwrap().1.u64(0..=jitter)
        };
        p.first_byte + Duration::from_micros(extra)
    }

    fn stalled(&self) -> bool {
        matches!(self.mode.lock().unwrap().0, Mode::Stall)
    }

    fn count(&self, key: &str) {
        *self
            .counts
            .lock()
            .unwrap()
            .entry(key.to_string())
            .or_default() += 1;
    }
}

/// A running proxy on 127.0.0.1; stops when dropped. Safe to use from any
/// thread: its mode and counters are behind mutexes.
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy in front of `127.0.0.1:upstream_port`, passing
    /// everything until [`FaultProxy::set_mode`] says otherwise.
    pub fn start(upstream_port: u16, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            mode: Mutex::new((Mode::Pass, fastrand::Rng::with_seed(seed))),
            rate: Mutex::new(RateLimit {
                tokens: 0.0,
                at: Instant::now(),
            }),
            counts: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            while !s.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let s = Arc::clone(&s);
                        std::thread::spawn(move || {
                            let _ = serve(client, upstream_port, &s);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy { port, shared }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set_mode(&self, mode: Mode) {
        if let Mode::Bucket(_) = mode {
            // The rate limit starts with no burst allowance, so that the
            // first requests after the switch meet it.
            *self.shared.rate.lock().unwrap() = RateLimit {
                tokens: 0.0,
                at: Instant::now(),
            };
        }
        self.shared.mode.lock().unwrap().0 = mode;
    }

    /// Requests seen so far, per fault kind, per HTTP method and per both
    /// (`"PUT drop response"`).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.shared.counts.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// One HTTP message as read off the wire: the head (start line and headers,
/// with the blank line) and the body in its wire framing.
struct Message {
    head: Vec<u8>,
    body: Vec<u8>,
}

/// Header names (lower case) and values.
type Headers = Vec<(String, String)>;

/// Reads one message's head (raw, and its headers parsed), or `None` at a
/// clean end of stream.
fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<(Vec<u8>, Headers)>> {
    let mut head = Vec::new();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        head.extend_from_slice(line.as_bytes());
        if line == "\r\n" {
            return Ok(Some((head, headers)));
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Reads a body framed by `Content-Length` or chunked encoding, keeping the
/// framing; with neither, a request has no body and a response runs to the
/// end of the stream.
fn read_body(
    r: &mut impl BufRead,
    headers: &[(String, String)],
    is_response: bool,
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if header(headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut line = String::new();
            r.read_line(&mut line)?;
            body.extend_from_slice(line.as_bytes());
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| std::io::Error::other("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the blank line.
                loop {
                    let mut t = String::new();
                    r.read_line(&mut t)?;
                    body.extend_from_slice(t.as_bytes());
                    if t == "\r\n" || t.is_empty() {
                        return Ok(body);
                    }
                }
            }
            let start = body.len();
            body.resize(start + size + 2, 0);
            r.read_exact(&mut body[start..])?;
        }
    } else if let Some(len) = header(headers, "content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| std::io::Error::other("bad content-length"))?;
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    } else if is_response {
        r.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// Serves one client connection until it closes or a fault closes it.
fn serve(client: TcpStream, upstream_port: u16, shared: &Shared) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    // A head and a body in separate writes would otherwise meet Nagle's
    // algorithm and the client's delayed ACK: 40 ms per answer that no
    // real bucket adds.
    client.set_nodelay(true)?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut writer = client;
    loop {
        let Some((head, headers)) = read_head(&mut reader)? else {
            return Ok(());
        };
        let body = read_body(&mut reader, &headers, false)?;
        let method = String::from_utf8_lossy(&head)
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_string();
        shared.count(&method);

        if shared.stalled() {
            shared.count("stall");
            let until = Instant::now() + Duration::from_secs(120);
            while shared.stalled() && Instant::now() < until && !shared.stop.load(Ordering::Relaxed)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = writer.shutdown(Shutdown::Both);
            return Ok(());
        }

        if let Some(profile) = shared.bucket() {
            let arrived = Instant::now();
            if !shared.admit(profile.requests_per_sec) {
                shared.count("slow down");
                shared.count(&format!("{method} slow down"));
                std::thread::sleep(shared.first_byte(&profile));
                write_error(&mut writer, 503)?;
                continue;
            }
            pace(body.len(), profile.bytes_per_sec, arrived);
            let response = forward(upstream_port, &method, &head, &body)?;
            let first_byte = arrived + shared.first_byte(&profile);
            std::thread::sleep(first_byte.saturating_duration_since(Instant::now()));
            writer.write_all(&response.head)?;
            write_paced(&mut writer, &response.body, profile.bytes_per_sec)?;
            writer.flush()?;
            continue;
        }

        let fault = shared.next_fault();
        shared.count(fault.kind());
        shared.count(&format!("{method} {}", fault.kind()));
        match fault {
            Fault::Status(code) => {
                write_error(&mut writer, code)?;
                continue;
            }
            Fault::DropRequest => {
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
            Fault::Delay(d) => std::thread::sleep(d),
            _ => {}
        }

        let response = forward(upstream_port, &method, &head, &body)?;
        match fault {
            Fault::DropResponse => {
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
            Fault::TruncateBody => {
                writer.write_all(&response.head)?;
                writer.write_all(&response.body[..response.body.len() / 2])?;
                writer.flush()?;
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
            _ => {
                writer.write_all(&response.head)?;
                writer.write_all(&response.body)?;
                writer.flush()?;
            }
        }
    }
}

/// Answers with `code` (503: S3's SlowDown, otherwise InternalError) and
/// an S3 error document.
fn write_error(writer: &mut impl Write, code: u16) -> std::io::Result<()> {
    let (name, reason) = if code == 503 {
        ("SlowDown", "Service Unavailable")
    } else {
        ("InternalError", "Internal Server Error")
    };
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <Error><Code>{name}</Code><Message>injected by the test proxy</Message></Error>"
    );
    write!(
        writer,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{doc}",
        doc.len()
    )?;
    writer.flush()
}

/// Waits until `len` bytes at `bytes_per_sec` would have arrived since
/// `since`: a request body's upload over a limited connection.
fn pace(len: usize, bytes_per_sec: u64, since: Instant) {
    if bytes_per_sec == 0 {
        return;
    }
    let done = since + Duration::from_secs_f64(len as f64 / bytes_per_sec as f64);
    std::thread::sleep(done.saturating_duration_since(Instant::now()));
}

/// Writes `body` no faster than `bytes_per_sec`, in pieces of 64 KiB.
fn write_paced(writer: &mut impl Write, body: &[u8], bytes_per_sec: u64) -> std::io::Result<()> {
    let start = Instant::now();
    let mut sent = 0;
    for piece in body.chunks(64 * 1024) {
        writer.write_all(piece)?;
        sent += piece.len();
        pace(sent, bytes_per_sec, start);
    }
    Ok(())
}

/// Sends one request to the server on a fresh connection and reads its
/// whole response.
fn forward(upstream_port: u16, method: &str, head: &[u8], body: &[u8]) -> std::io::Result<Message> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream_port))?;
    up.set_nodelay(true)?;
    up.write_all(head)?;
    up.write_all(body)?;
    up.flush()?;
    let mut r = BufReader::new(up);
    let (head, headers) = read_head(&mut r)?.ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let status: u16 = String::from_utf8_lossy(&head)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status)
    {
        Vec::new()
    } else {
        read_body(&mut r, &headers, true)?
    };
    Ok(Message { head, body })
}
