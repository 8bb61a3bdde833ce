//! Load test for `nonneg serve`: starts the server on a loopback port, sends a bounded
//! number of requests (stopping at a time limit too), a share of them malformed, and
//! reports throughput, latency percentiles, status counts and the server's RSS.
//!
//! ```sh
//! cargo build --release
//! # single Spambase rows, 10^6 requests (at most 10 minutes):
//! cargo run --release --example loadtest -- --model mono.safetensors \
//!     --data data/spambase.csv --requests 1000000 --seconds 600
//! # raw SpamAssassin emails, one per request:
//! cargo run --release --example loadtest -- --model sa.safetensors \
//!     --emails ../shared/data/spamassassin/spam-2 --requests 20000
//! ```
//!
//! Options: `--bin` (default target/release/nonneg), `--concurrency` (connections, 16),
//! `--malformed` (share, 0.1), `--seconds` (60). Exit 1 when a valid request got a 5xx
//! or a malformed one got anything but a 4xx.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The server's body limit in the test: the "huge body" requests exceed it.
const MAX_BODY: usize = 1 << 20;
/// No request may take longer than this (a hung server ends the test, not hangs it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct Options {
    pub bin: PathBuf,
    pub model: PathBuf,
    /// Single feature rows from this CSV (label in the last column) ...
    pub data: Option<PathBuf>,
    /// ... or raw samples, one file of this folder per request.
    pub emails: Option<PathBuf>,
    pub requests: u64,
    pub seconds: f64,
    pub concurrency: usize,
    pub malformed: f64,
}

#[derive(Debug, Default)]
pub struct Report {
    pub sent: u64,
    pub valid: u64,
    pub valid_2xx: u64,
    pub valid_4xx: u64,
    pub valid_5xx: u64,
    pub malformed: u64,
    pub malformed_4xx: u64,
    /// Malformed requests answered with anything but a 4xx.
    pub malformed_other: u64,
    /// Connections the server closed on an oversized body before reading it (expected).
    pub malformed_closed: u64,
    /// Valid requests that failed at the transport level (must be 0).
    pub valid_failed: u64,
    pub seconds: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub rss_start_kib: u64,
    pub rss_warm_kib: u64,
    pub rss_end_kib: u64,
}

impl Report {
    pub fn per_second(&self) -> f64 {
        self.sent as f64 / self.seconds.max(1e-9)
    }
    /// RSS growth from the end of warm-up (the first 10% of requests) to the end.
    pub fn rss_growth(&self) -> f64 {
        self.rss_end_kib as f64 / self.rss_warm_kib.max(1) as f64 - 1.0
    }
    pub fn passed(&self) -> bool {
        self.valid_5xx == 0 && self.valid_failed == 0 && self.malformed_other == 0
    }
    pub fn print(&self) {
        println!(
            "requests {} in {:.2} s: {:.0} requests/s; valid {} (2xx {}, 4xx {}, 5xx {}, failed {}); malformed {} (4xx {}, closed on oversized body {}, other {})",
            self.sent, self.seconds, self.per_second(), self.valid, self.valid_2xx, self.valid_4xx,
            self.valid_5xx, self.valid_failed, self.malformed, self.malformed_4xx,
            self.malformed_closed, self.malformed_other
        );
        println!(
            "latency of valid requests: p50 {} us, p99 {} us",
            self.p50_us, self.p99_us
        );
        println!(
            "server RSS: {} KiB at start, {} KiB after warm-up, {} KiB at the end ({:+.1}% since warm-up)",
            self.rss_start_kib, self.rss_warm_kib, self.rss_end_kib, 100.0 * self.rss_growth()
        );
    }
}

/// One request body: valid or a kind of malformed.
struct Body {
    content_type: &'static str,
    bytes: Bytes,
    valid: bool,
    /// Over the server's body limit: the server may close the connection unread.
    oversized: bool,
}

fn valid_bodies(o: &Options) -> Result<(Vec<Body>, &'static str), String> {
    if let Some(csv) = &o.data {
        let text = std::fs::read_to_string(csv).map_err(|e| format!("{}: {e}", csv.display()))?;
        let bodies = text
            .lines()
            .skip(1)
            .filter_map(|l| l.rsplit_once(',').map(|(features, _label)| features))
            .map(|f| Body {
                content_type: "application/json",
                bytes: Bytes::from(format!("{{\"rows\":[[{f}]]}}")),
                valid: true,
                oversized: false,
            })
            .collect();
        return Ok((bodies, "score"));
    }
    let dir = o
        .emails
        .as_ref()
        .ok_or("give --data CSV or --emails FOLDER")?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let bodies = paths
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(Body {
                content_type: "message/rfc822",
                bytes: Bytes::from(bytes),
                valid: true,
                oversized: false,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((bodies, "score/raw"))
}

/// Malformed bodies, in turn. Rows: bad JSON, a wrong width, NaN, numbers that are no
/// float32. Raw samples: a truncated multipart body, multipart without a boundary, an
/// empty body. Both: a body over the limit.
fn malformed_bodies(raw: bool) -> Vec<Body> {
    let bad = |content_type, s: &str| Body {
        content_type,
        bytes: Bytes::from(s.to_owned()),
        valid: false,
        oversized: false,
    };
    let truncated = "--XX\r\nContent-Disposition: form-data; name=\"a\"; filename=\"a.eml\"\r\n\r\nSubject: hi\r\n\r\nbody";
    let mut bodies = if raw {
        vec![
            bad("multipart/form-data; boundary=XX", truncated),
            bad("multipart/form-data", truncated),
            bad("message/rfc822", ""),
        ]
    } else {
        vec![
            bad("application/json", "{\"rows\": [[1, 2,"),
            bad("application/json", "{\"rows\": [[1, 2, 3]]}"),
            bad("application/json", "{\"rows\": [[NaN]]}"),
            bad("application/json", "{\"rows\": [[\"NaN\"]]}"),
            bad("application/json", "{\"rows\": [[1e999]]}"),
        ]
    };
    bodies.push(Body {
        content_type: if raw {
            "message/rfc822"
        } else {
            "application/json"
        },
        bytes: Bytes::from(vec![b' '; MAX_BODY + 1]),
        valid: false,
        oversized: true,
    });
    bodies
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Starts `nonneg serve` on a free loopback port; returns it and its address.
async fn start_server(o: &Options) -> Result<(Child, String), String> {
    let mut child = Command::new(&o.bin)
        .arg("-q")
        .arg("serve")
        .arg("--model")
        .arg(format!("m={}", o.model.display()))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--max-body-bytes",
            &MAX_BODY.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", o.bin.display()))?;
    let stdout = child.stdout.take().ok_or("no server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .map_err(|_| "the server did not start within 60 s")?
        .map_err(|e| e.to_string())?;
    let line = first.ok_or("the server exited before listening")?;
    // Keep reading its stdout so that a late line never meets a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .ok_or_else(|| format!("unexpected server output {line:?}"))?
        .to_owned();
    Ok((child, addr))
}

async fn connect(addr: &str) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(send)
}

/// Sends one request; the status, or `None` when the connection failed.
async fn send(
    conn: &mut SendRequest<Full<Bytes>>,
    addr: &str,
    path: &str,
    body: &Body,
) -> Option<u16> {
    let req = hyper::Request::post(path)
        .header("host", addr)
        .header("content-type", body.content_type)
        .body(Full::new(body.bytes.clone()))
        .ok()?;
    let exchange = async {
        conn.ready().await.ok()?;
        let resp = conn.send_request(req).await.ok()?;
        let status = resp.status().as_u16();
        resp.into_body().collect().await.ok()?;
        Some(status)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()
}

struct Shared {
    addr: String,
    path: String,
    valid: Vec<Body>,
    bad: Vec<Body>,
    next: AtomicU64,
    requests: u64,
    every_bad: u64,
    deadline: Instant,
}

/// One connection's loop; returns its counts and the latencies of valid requests (us).
async fn worker(s: Arc<Shared>) -> (Report, Vec<u32>) {
    let mut r = Report::default();
    let mut lat = Vec::new();
    let mut conn = connect(&s.addr).await.ok();
    loop {
        let i = s.next.fetch_add(1, Ordering::Relaxed);
        if i >= s.requests || Instant::now() >= s.deadline {
            break;
        }
        let body = if s.every_bad > 0 && i % s.every_bad == s.every_bad - 1 {
            let k = (i / s.every_bad) as usize;
            // The oversized body costs a megabyte a send: one malformed request in 50.
            let b = &s.bad[k % s.bad.len()];
            if b.oversized && k % 50 != 0 {
                &s.bad[0]
            } else {
                b
            }
        } else {
            &s.valid[(i as usize) % s.valid.len()]
        };
        if conn.is_none() {
            conn = connect(&s.addr).await.ok();
        }
        let start = Instant::now();
        let status = match conn.as_mut() {
            Some(c) => send(c, &s.addr, &s.path, body).await,
            None => None,
        };
        let us = start.elapsed().as_micros().min(u32::MAX as u128) as u32;
        r.sent += 1;
        if status.is_none() {
            conn = None;
        }
        count(&mut r, body, status);
        if body.valid {
            lat.push(us);
        }
    }
    (r, lat)
}

fn count(r: &mut Report, body: &Body, status: Option<u16>) {
    if body.valid {
        r.valid += 1;
        match status {
            Some(200..=299) => r.valid_2xx += 1,
            Some(400..=499) => r.valid_4xx += 1,
            Some(_) => r.valid_5xx += 1,
            None => r.valid_failed += 1,
        }
    } else {
        r.malformed += 1;
        match status {
            Some(400..=499) => r.malformed_4xx += 1,
            None if body.oversized => r.malformed_closed += 1,
            _ => r.malformed_other += 1,
        }
    }
}

/// Runs the whole test: start, warm up (the first 10%), measure, stop the server.
pub async fn run(o: Options) -> Result<Report, String> {
    let (valid, route) = valid_bodies(&o)?;
    if valid.is_empty() {
        return Err("no valid request bodies".into());
    }
    let (mut child, addr) = start_server(&o).await?;
    let pid = child.id().ok_or("the server exited")?;
    let rss_start = rss_kib(pid);
    let every_bad = if o.malformed > 0.0 {
        (1.0 / o.malformed).round().max(1.0) as u64
    } else {
        0
    };
    let warm = (o.requests / 10).max(1);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(o.seconds);
    let mut total = Report::default();
    let mut lat: Vec<u32> = Vec::new();
    let mut shared = Shared {
        addr: addr.clone(),
        path: format!("/v1/models/m/{route}"),
        valid,
        bad: malformed_bodies(route != "score"),
        next: AtomicU64::new(0),
        requests: warm,
        every_bad,
        deadline,
    };
    let mut rss_warm = 0;
    // Two phases on the same server: warm-up (its RSS is the baseline), then the rest.
    for phase in 0..2 {
        if phase == 1 {
            rss_warm = rss_kib(pid);
            shared.requests = o.requests;
            // Each worker drew one index past the warm-up's end: start right after it.
            shared.next.store(warm, Ordering::Relaxed);
        }
        let s = Arc::new(shared);
        let tasks: Vec<_> = (0..o.concurrency.max(1))
            .map(|_| tokio::spawn(worker(s.clone())))
            .collect();
        for t in tasks {
            let (r, l) = t.await.map_err(|e| e.to_string())?;
            merge(&mut total, &r);
            lat.extend(l);
        }
        shared = Arc::try_unwrap(s).map_err(|_| "a worker outlived its phase")?;
    }
    total.seconds = started.elapsed().as_secs_f64();
    total.rss_start_kib = rss_start;
    total.rss_warm_kib = rss_warm;
    total.rss_end_kib = rss_kib(pid);
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as u64
    };
    total.p50_us = pct(0.50);
    total.p99_us = pct(0.99);
    let _ = child.kill().await;
    Ok(total)
}

fn merge(t: &mut Report, r: &Report) {
    t.sent += r.sent;
    t.valid += r.valid;
    t.valid_2xx += r.valid_2xx;
    t.valid_4xx += r.valid_4xx;
    t.valid_5xx += r.valid_5xx;
    t.valid_failed += r.valid_failed;
    t.malformed += r.malformed;
    t.malformed_4xx += r.malformed_4xx;
    t.malformed_other += r.malformed_other;
    t.malformed_closed += r.malformed_closed;
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        bin: PathBuf::from("target/release/nonneg"),
        model: PathBuf::new(),
        data: None,
        emails: None,
        requests: 100_000,
        seconds: 60.0,
        concurrency: 16,
        malformed: 0.1,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            return Err(format!("{} needs a value", pair[0]));
        };
        let num = |what: &str| format!("{flag} takes {what}, got {value:?}");
        match flag.as_str() {
            "--bin" => o.bin = value.into(),
            "--model" => o.model = value.into(),
            "--data" => o.data = Some(value.into()),
            "--emails" => o.emails = Some(value.into()),
            "--requests" => o.requests = value.parse().map_err(|_| num("a count"))?,
            "--seconds" => o.seconds = value.parse().map_err(|_| num("seconds"))?,
            "--concurrency" => o.concurrency = value.parse().map_err(|_| num("a count"))?,
            "--malformed" => o.malformed = value.parse().map_err(|_| num("a share in 0..1"))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if o.model.as_os_str().is_empty() {
        return Err("--model is required".into());
    }
    Ok(o)
}

#[allow(dead_code)] // tests/serve.rs includes this file for `run` and has its own main.
fn main() -> std::process::ExitCode {
    let result = parse_args().and_then(|o| {
        let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        rt.block_on(run(o))
    });
    match result {
        Ok(r) => {
            r.print();
            if r.passed() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
