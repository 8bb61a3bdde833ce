//! `nonneg serve`: every route on an ephemeral port, scores equal to `nonneg predict` to
//! the bit (JSON rows and raw emails), reload with a good and a bad file, SIGHUP and
//! graceful SIGTERM, the limits, and a short run of the load test.

mod common;
#[allow(dead_code)]
#[path = "../examples/loadtest.rs"]
mod loadtest;

use common::{first_emails, path_in, run, run_stdout, spambase, tempdir, SPAMBASE_LABEL};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use nonneg::serve::{Config, Limits, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// Models trained once for every test here.
struct Models {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    /// Spambase, monotone (certified) and unconstrained.
    mono: String,
    free: String,
    /// Raw emails, with the featurizer stored in the model.
    email: String,
}

fn models() -> &'static Models {
    static M: OnceLock<Models> = OnceLock::new();
    M.get_or_init(|| {
        let d = tempdir();
        let dir = d.path().to_path_buf();
        let (mono, free, email) = (
            path_in(&dir, "mono.safetensors"),
            path_in(&dir, "free.safetensors"),
            path_in(&dir, "email.safetensors"),
        );
        common::train_spambase(
            &spambase(),
            &mono,
            &["--constraint", "monotone", "--epochs", "2"],
        );
        common::train_spambase(&spambase(), &free, &["--epochs", "2"]);
        let (train, _) = common::small_email_training_set(&dir);
        run(&[
            "train", "--data", &train, "--out", &email, "--epochs", "2", "--hidden", "16", "-q",
        ]);
        Models {
            _dir: d,
            dir,
            mono,
            free,
            email,
        }
    })
}

fn config(models: &[(&str, &str)]) -> Config {
    Config {
        models: models
            .iter()
            .map(|(n, p)| (n.to_string(), PathBuf::from(p)))
            .collect(),
        addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: None,
        admin_token: Some("secret".into()),
        limits: Limits::default(),
    }
}

/// A server running in this process until the returned sender is dropped or sent.
async fn start(config: Config) -> (String, tokio::sync::oneshot::Sender<()>, Option<String>) {
    let server = Server::bind(config).await.expect("server binds");
    let addr = server.local_addr().unwrap().to_string();
    let admin = server.admin_addr().map(|a| a.to_string());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    (addr, tx, admin)
}

/// One request on a fresh connection: status and body.
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> (u16, Vec<u8>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = send
        .send_request(req.body(Full::new(body.into())).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (
        status,
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

async fn post_json(addr: &str, path: &str, body: &str) -> (u16, Value) {
    let (s, b) = http(
        addr,
        "POST",
        path,
        &[("content-type", "application/json")],
        body.to_owned(),
    )
    .await;
    (
        s,
        serde_json::from_slice(&b)
            .unwrap_or_else(|_| panic!("JSON reply, got {:?}", String::from_utf8_lossy(&b))),
    )
}

async fn get_json(addr: &str, path: &str) -> (u16, Value) {
    let (s, b) = http(addr, "GET", path, &[], Bytes::new()).await;
    (s, serde_json::from_slice(&b).unwrap())
}

/// A float from a reply as float32 (what the server computed: shortest round-trip text).
fn f32_of(v: &Value) -> f32 {
    v.as_f64().expect("a number") as f32
}

/// `nonneg predict --format jsonl` lines as (logit, score) float32 pairs.
fn predict_jsonl(args: &[&str]) -> Vec<(Option<String>, f32, f32)> {
    let mut a = vec!["predict", "--format", "jsonl", "-q"];
    a.extend(args);
    run_stdout(&a)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let p = v.get("scores").map_or(&v, |s| &s[0]);
            let sample = v.get("sample").and_then(|s| s.as_str()).map(str::to_owned);
            (
                sample,
                p["logit"].to_string().parse().unwrap(),
                p["score"].to_string().parse().unwrap(),
            )
        })
        .collect()
}

fn spambase_rows() -> Vec<String> {
    std::fs::read_to_string(spambase())
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.rsplit_once(',').unwrap().0.to_owned())
        .collect()
}

fn same_bits(results: &[Value], want: &[(Option<String>, f32, f32)], what: &str) {
    assert_eq!(results.len(), want.len(), "{what}");
    for (i, (r, w)) in results.iter().zip(want).enumerate() {
        assert_eq!(
            f32_of(&r["logit"]).to_bits(),
            w.1.to_bits(),
            "{what}: logit of row {i}: {} vs {}",
            r["logit"],
            w.1
        );
        assert_eq!(
            f32_of(&r["score"]).to_bits(),
            w.2.to_bits(),
            "{what}: score of row {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_rows_score_as_predict_does_to_the_bit() {
    let m = models();
    let want = predict_jsonl(&[
        "--model",
        &m.mono,
        "--data",
        &spambase(),
        SPAMBASE_LABEL[0],
        SPAMBASE_LABEL[1],
        SPAMBASE_LABEL[2],
        SPAMBASE_LABEL[3],
    ]);
    let (addr, _stop, _) = start(config(&[("mono", &m.mono)])).await;
    let rows = spambase_rows();
    let path = "/v1/models/mono/score";
    // Every row alone (the lone-row path) for a sample of rows, then all rows in one batch.
    for i in (0..rows.len()).step_by(23) {
        let (s, v) = post_json(&addr, path, &format!("{{\"rows\":[[{}]]}}", rows[i])).await;
        assert_eq!(s, 200, "{v}");
        same_bits(
            v["results"].as_array().unwrap(),
            &want[i..i + 1],
            &format!("single row {i}"),
        );
    }
    let all = format!(
        "{{\"rows\":[{}]}}",
        rows.iter()
            .map(|r| format!("[{r}]"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let (s, v) = post_json(&addr, path, &all).await;
    assert_eq!(s, 200);
    same_bits(v["results"].as_array().unwrap(), &want, "all rows");
    assert_eq!(v["threshold"], json!([0.0]));
    // The same rows as feature-name maps.
    let names: Vec<String> = std::fs::read_to_string(spambase())
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    let named: Vec<String> = rows[..5]
        .iter()
        .map(|r| {
            let kv: Vec<String> = names
                .iter()
                .zip(r.split(','))
                .map(|(n, x)| format!("\"{n}\":{x}"))
                .collect();
            format!("{{{}}}", kv.join(","))
        })
        .collect();
    let (s, v) = post_json(&addr, path, &format!("{{\"named\":[{}]}}", named.join(","))).await;
    assert_eq!(s, 200, "{v}");
    same_bits(v["results"].as_array().unwrap(), &want[..5], "named rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_emails_score_as_predict_does_to_the_bit() {
    let m = models();
    let dir = tempdir();
    let mut emails = first_emails("spam-2", 15);
    emails.extend(first_emails("easy-ham-2", 15));
    let folder = common::copy_to(&dir.path().join("in"), &emails);
    let want = predict_jsonl(&["--model", &m.email, &folder]);
    let by_name = |name: &str| {
        want.iter()
            .find(|w| w.0.as_deref().is_some_and(|s| s.ends_with(name)))
            .unwrap()
            .clone()
    };
    let (addr, _stop, _) = start(config(&[("mail", &m.email)])).await;
    for (name, bytes) in &emails {
        let (s, b) = http(
            &addr,
            "POST",
            "/v1/models/mail/score/raw",
            &[("content-type", "message/rfc822")],
            bytes.clone(),
        )
        .await;
        assert_eq!(s, 200);
        let v: Value = serde_json::from_slice(&b).unwrap();
        same_bits(v["results"].as_array().unwrap(), &[by_name(name)], name);
    }
    // All of them as one multipart batch, named by their file names.
    let mut body = Vec::new();
    for (name, bytes) in &emails {
        body.extend(format!("--BOUND\r\nContent-Disposition: form-data; name=\"mail\"; filename=\"{name}\"\r\nContent-Type: message/rfc822\r\n\r\n").as_bytes());
        body.extend(bytes);
        body.extend(b"\r\n");
    }
    body.extend(b"--BOUND--\r\n");
    let (s, b) = http(
        &addr,
        "POST",
        "/v1/models/mail/score/raw",
        &[("content-type", "multipart/form-data; boundary=BOUND")],
        body,
    )
    .await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    let v: Value = serde_json::from_slice(&b).unwrap();
    let results = v["results"].as_array().unwrap();
    let want: Vec<_> = emails.iter().map(|(n, _)| by_name(n)).collect();
    same_bits(results, &want, "multipart");
    for (r, (n, _)) in results.iter().zip(&emails) {
        assert_eq!(r["sample"], json!(n));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers() {
    let m = models();
    let (addr, _stop, _) = start(config(&[
        ("mono", &m.mono),
        ("free", &m.free),
        ("mail", &m.email),
    ]))
    .await;
    let (s, v) = get_json(&addr, "/v1/models").await;
    assert_eq!(s, 200);
    let find = |n: &str| {
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(find("mono")["certificate"]["certified"], json!(true));
    assert_eq!(find("free")["certificate"]["certified"], json!(false));
    assert!(find("free")["certificate"]["verdict"]
        .as_str()
        .unwrap()
        .starts_with("NOT CERTIFIED"));
    assert_eq!(find("mono")["architecture"]["widths"][0], json!(57));
    assert_eq!(find("mail")["featurizer"]["kind"], json!("text"));
    assert_eq!(find("mono")["featurizer"], Value::Null);
    assert_eq!(get_json(&addr, "/healthz").await.0, 200);
    assert_eq!(
        get_json(&addr, "/readyz").await,
        (200, json!({"ready": true, "models": 3}))
    );
    let (s, v) = post_json(
        &addr,
        "/v1/models/free/score",
        &format!(
            "{{\"rows\":[[{}],[{}]]}}",
            spambase_rows()[0],
            spambase_rows()[1]
        ),
    )
    .await;
    assert_eq!((s, v["results"].as_array().unwrap().len()), (200, 2));
    let (s, v) = post_json(&addr, "/v1/models/nope/score", "{}").await;
    assert_eq!((s, v["field"].as_str()), (404, Some("name")));
    assert_eq!(get_json(&addr, "/nowhere").await.0, 404);
    assert_eq!(
        http(&addr, "GET", "/v1/models/mono/score", &[], Bytes::new())
            .await
            .0,
        405
    );
    let (s, b) = http(&addr, "GET", "/metrics", &[], Bytes::new()).await;
    let text = String::from_utf8(b).unwrap();
    assert_eq!(s, 200);
    for line in [
        "nonneg_requests_total{route=\"/v1/models/{name}/score\",status=\"200\"} 1",
        "nonneg_requests_total{route=\"/v1/models/{name}/score\",status=\"404\"} 1",
        "nonneg_request_errors_total{route=\"/v1/models/{name}/score\",status=\"404\"} 1",
        "nonneg_rows_scored_total{model=\"free\"} 2",
        "nonneg_model_certified{model=\"mono\"} 1",
        "nonneg_model_certified{model=\"free\"} 0",
        "nonneg_request_duration_seconds_count{route=\"/v1/models/{name}/score\"} 2",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_a_4xx_naming_the_field() {
    let m = models();
    let mut c = config(&[("mono", &m.mono), ("mail", &m.email)]);
    c.limits.max_rows = 3;
    c.limits.max_body_bytes = 4096;
    let (addr, _stop, _) = start(c).await;
    let row = spambase_rows()[0].clone();
    let score = "/v1/models/mono/score";
    let cases: Vec<(String, u16, &str)> = vec![
        ("{\"rows\": [[1, 2".into(), 400, "body"),
        ("[1, 2]".into(), 400, "body"),
        ("{}".into(), 400, "body"),
        ("{\"rows\": [[1, 2, 3]]}".into(), 400, "rows[0]"),
        (format!("{{\"rows\": [[{row}], 7]}}"), 400, "rows[1]"),
        ("{\"rows\": [[NaN]]}".into(), 400, "body"),
        (
            format!(
                "{{\"rows\": [[\"NaN\",{}]]}}",
                row.split_once(',').unwrap().1
            ),
            400,
            "rows[0][0]",
        ),
        (
            format!("{{\"rows\": [[1e999,{}]]}}", row.split_once(',').unwrap().1),
            400,
            "body",
        ),
        (
            format!("{{\"rows\": [[1e39,{}]]}}", row.split_once(',').unwrap().1),
            400,
            "rows[0][0]",
        ),
        ("{\"rows\": []}".into(), 400, "rows"),
        (
            format!("{{\"rows\": [[{row}],[{row}],[{row}],[{row}]]}}"),
            413,
            "rows",
        ),
        (
            format!("{{\"rows\": [[{row}]], \"named\": []}}"),
            400,
            "named",
        ),
        (
            "{\"named\": [{\"nonsense\": 1}]}".into(),
            400,
            "named[0].nonsense",
        ),
        ("{\"named\": [{\"make\": 1}]}".into(), 400, "named[0]"),
        (
            "{\"sparse\": [{\"indices\": [57]}]}".into(),
            400,
            "sparse[0].indices[0]",
        ),
        (
            "{\"sparse\": [{\"indices\": [1, 1]}]}".into(),
            400,
            "sparse[0].indices",
        ),
        (
            "{\"sparse\": [{\"indices\": [1], \"values\": [1, 2]}]}".into(),
            400,
            "sparse[0].values",
        ),
        (
            format!("{{\"rows\": [[{}]]}}", vec!["0.0"; 2000].join(",")),
            413,
            "body",
        ),
    ];
    for (body, status, field) in cases {
        let (s, v) = post_json(&addr, score, &body).await;
        assert_eq!(
            (s, v["field"].as_str()),
            (status, Some(field)),
            "{body:.80}: {v}"
        );
        assert!(!v["error"].as_str().unwrap().is_empty());
    }
    let (s, v) = post_json(&addr, "/v1/models/mono/score/raw", "hello").await;
    assert_eq!((s, v["field"].as_str()), (400, Some("name")), "{v}");
    let raw = "/v1/models/mail/score/raw";
    let truncated =
        "--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nSubject: hi\r\n\r\nbody";
    let (s, b) = http(
        &addr,
        "POST",
        raw,
        &[("content-type", "multipart/form-data; boundary=XX")],
        truncated,
    )
    .await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!((s, v["field"].as_str()), (400, Some("multipart[0]")), "{v}");
    let (s, b) = http(
        &addr,
        "POST",
        raw,
        &[("content-type", "message/rfc822")],
        Bytes::new(),
    )
    .await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!((s, v["field"].as_str()), (400, Some("body")), "{v}");
    // The server still answers after all that.
    assert_eq!(get_json(&addr, "/healthz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_time_limit_gets_503() {
    let m = models();
    let mut c = config(&[("mono", &m.mono)]);
    c.limits.timeout = Duration::from_micros(1);
    let (addr, _stop, _) = start(c).await;
    let rows = spambase_rows();
    let all = format!(
        "{{\"rows\":[{}]}}",
        rows.iter()
            .map(|r| format!("[{r}]"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let (s, v) = post_json(&addr, "/v1/models/mono/score", &all).await;
    assert_eq!((s, v["field"].as_str()), (503, Some("request")), "{v}");
}

fn copy(from: &str, to: &Path) {
    std::fs::copy(from, to).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_a_good_file_and_keeps_the_old_model_on_a_bad_one() {
    let m = models();
    let dir = tempdir();
    let live = dir.path().join("live.safetensors");
    copy(&m.mono, &live);
    let (addr, _stop, _) = start(config(&[("live", live.to_str().unwrap())])).await;
    let body = format!("{{\"rows\":[[{}]]}}", spambase_rows()[0]);
    let score = "/v1/models/live/score";
    let before = post_json(&addr, score, &body).await.1["results"][0]["logit"].clone();
    let reload = |token: &'static str| {
        let addr = addr.clone();
        async move {
            let (s, b) = http(
                &addr,
                "POST",
                "/v1/admin/reload",
                &[("authorization", token)],
                Bytes::new(),
            )
            .await;
            (s, serde_json::from_slice::<Value>(&b).unwrap())
        }
    };
    assert_eq!(reload("Bearer wrong").await.0, 401);
    copy(&m.free, &live);
    let (s, v) = reload("Bearer secret").await;
    assert_eq!(
        (s, &v["reloaded"][0]["ok"], &v["reloaded"][0]["generation"]),
        (200, &json!(true), &json!(2)),
        "{v}"
    );
    let after = post_json(&addr, score, &body).await.1;
    assert_ne!(after["results"][0]["logit"], before, "the new model serves");
    assert_eq!(after["generation"], json!(2));
    let (_, models) = get_json(&addr, "/v1/models").await;
    assert_eq!(
        models["models"][0]["certificate"]["certified"],
        json!(false),
        "the certificate is the new model's"
    );
    std::fs::write(&live, b"not a model").unwrap();
    let (s, v) = reload("Bearer secret").await;
    assert_eq!((s, &v["reloaded"][0]["ok"]), (422, &json!(false)), "{v}");
    assert!(
        v["reloaded"][0]["error"]
            .as_str()
            .unwrap()
            .contains("live.safetensors"),
        "{v}"
    );
    let kept = post_json(&addr, score, &body).await.1;
    assert_eq!(
        (&kept["results"][0]["logit"], &kept["generation"]),
        (&after["results"][0]["logit"], &json!(2))
    );
    let text =
        String::from_utf8(http(&addr, "GET", "/metrics", &[], Bytes::new()).await.1).unwrap();
    for line in [
        "nonneg_reloads_total{model=\"live\",outcome=\"ok\"} 1",
        "nonneg_reloads_total{model=\"live\",outcome=\"failed\"} 1",
        "nonneg_model_last_reload_ok{model=\"live\"} 0",
        "nonneg_model_generation{model=\"live\"} 2",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_live_only_on_the_admin_address() {
    let m = models();
    let mut c = config(&[("mono", &m.mono)]);
    c.admin_token = None;
    c.admin_addr = Some("127.0.0.1:0".parse().unwrap());
    let (addr, _stop, admin) = start(c).await;
    let admin = admin.unwrap();
    assert_eq!(
        http(&addr, "POST", "/v1/admin/reload", &[], Bytes::new())
            .await
            .0,
        404
    );
    let (s, b) = http(&admin, "POST", "/v1/admin/reload", &[], Bytes::new()).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
}

/// `nonneg serve` as a process: started on port 0, reloaded by SIGHUP, stopped by SIGTERM
/// with a request in flight that still completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_sigterm_finishes_requests_in_flight() {
    use tokio::io::AsyncBufReadExt;
    let m = models();
    let dir = tempdir();
    let live = dir.path().join("live.safetensors");
    copy(&m.mono, &live);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_nonneg"))
        .args(["-q", "serve", "--addr", "127.0.0.1:0", "--model"])
        .arg(&live)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    let addr = line
        .strip_prefix("listening on http://")
        .unwrap()
        .to_owned();
    let pid = child.id().unwrap() as i32;
    copy(&m.free, &live);
    unsafe { libc::kill(pid, libc::SIGHUP) };
    let mut generation = json!(1);
    for _ in 0..100 {
        generation = get_json(&addr, "/v1/models").await.1["models"][0]["generation"].clone();
        if generation == json!(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        generation,
        json!(2),
        "SIGHUP reloaded the model (named `live` after its file)"
    );
    let rows = spambase_rows();
    let all = format!(
        "{{\"rows\":[{}]}}",
        rows.iter()
            .cycle()
            .take(10_000)
            .map(|r| format!("[{r}]"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let addr2 = addr.clone();
    let in_flight =
        tokio::spawn(async move { post_json(&addr2, "/v1/models/live/score", &all).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let (s, v) = in_flight.await.unwrap();
    assert_eq!(
        (s, v["results"].as_array().map(Vec::len)),
        (200, Some(10_000))
    );
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn bad_model_files_are_refused_at_start_with_exit_2() {
    let err = common::fails(&[
        "serve",
        "--model",
        "missing.safetensors",
        "--addr",
        "127.0.0.1:0",
    ]);
    assert!(err.contains("missing.safetensors"), "{err}");
    let m = models();
    let err = common::fails(&[
        "serve",
        "--model",
        &format!("a={}", m.mono),
        "--model",
        &format!("a={}", m.free),
        "--addr",
        "127.0.0.1:0",
    ]);
    assert!(err.contains("\"a\" is given twice"), "{err}");
    let err = common::fails(&["serve", "--model", &m.mono, "--max-rows", "0"]);
    assert!(err.contains("every limit must be above 0"), "{err}");
}

/// A few seconds of the load test (examples/loadtest.rs): no 5xx, malformed requests all
/// refused with a 4xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_load_test_passes() {
    let m = models();
    let opts = loadtest::Options {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_nonneg")),
        model: PathBuf::from(&m.mono),
        data: Some(PathBuf::from(spambase())),
        emails: None,
        requests: 3000,
        seconds: 30.0,
        concurrency: 4,
        malformed: 0.1,
    };
    let r = loadtest::run(opts.clone()).await.unwrap();
    r.print();
    assert!(r.passed(), "{r:?}");
    assert_eq!(
        (r.sent, r.valid_2xx, r.malformed),
        (3000, 2700, 300),
        "{r:?}"
    );
    let emails = tempdir();
    let folder = common::copy_to(&emails.path().join("mail"), &first_emails("spam-2", 20));
    let raw = loadtest::Options {
        model: PathBuf::from(&m.email),
        data: None,
        emails: Some(PathBuf::from(folder)),
        requests: 300,
        ..opts
    };
    let r = loadtest::run(raw).await.unwrap();
    assert!(
        r.passed() && r.valid_2xx == r.valid && r.malformed == 30,
        "{r:?}"
    );
    let _ = &m.dir;
}
