//! The bad-input suite: every case of `tests/bad_inputs.tsv` runs the command line on
//! hostile files and options and checks the exit code and a fragment of the message.
//! Whatever the case: no panic, no abort (exit 101 or a signal), no hang, and no file left
//! behind by a command that failed (no half-written output, no temp file).
//!
//! Table format (tab-separated, `#` comments):
//! `name  setup  command  exit  fragment`. Lines starting `@prelude` build the shared
//! files every case starts from (a copy per case). `setup` is `-` or steps joined by
//! ` ; ` (see [`setup_step`]); `command` is the nonneg arguments split on spaces, where
//! `>/dev/full` and `2>/dev/full` redirect stdout or stderr; `fragment` must occur in
//! stderr (in stdout + stderr for exit 0), `-` for none.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TABLE: &str = include_str!("bad_inputs.tsv");

struct Case {
    line: usize,
    name: String,
    setup: String,
    command: String,
    exit: i32,
    fragment: String,
}

fn parse_table() -> (Vec<String>, Vec<Case>) {
    let mut prelude = Vec::new();
    let mut cases = Vec::new();
    for (i, line) in TABLE.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(step) = line.strip_prefix("@prelude\t") {
            prelude.push(step.to_string());
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 5, "bad_inputs.tsv:{}: 5 fields expected", i + 1);
        cases.push(Case {
            line: i + 1,
            name: f[0].to_string(),
            setup: f[1].to_string(),
            command: f[2].to_string(),
            exit: f[3].parse().expect("exit code"),
            fragment: f[4].to_string(),
        });
    }
    (prelude, cases)
}

/// `\n`, `\t`, `\\` and `\xHH` escapes.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'0' => out.push(0),
                b'x' => {
                    out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The outcome of one command: exit code (`None`: killed by a signal), stdout, stderr.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    timed_out: bool,
}

fn nonneg(dir: &Path, args: &[&str], stdout: Stdio, stderr_full: bool) -> Outcome {
    let out_file = dir.join(".stdout");
    let err_file = dir.join(".stderr");
    let mut c = Command::new(env!("CARGO_BIN_EXE_nonneg"));
    c.current_dir(dir).args(args).stdin(Stdio::null());
    c.env("RUST_BACKTRACE", "0");
    c.stdout(stdout);
    if stderr_full {
        c.stderr(
            std::fs::File::options()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        );
    } else {
        c.stderr(std::fs::File::create(&err_file).unwrap());
    }
    let mut child = c.spawn().expect("spawn nonneg");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read = |p: &Path| {
        let s = std::fs::read(p).map(|b| String::from_utf8_lossy(&b).into_owned());
        let _ = std::fs::remove_file(p);
        s.unwrap_or_default()
    };
    Outcome {
        code: status.and_then(|s| s.code()),
        stdout: read(&out_file),
        stderr: read(&err_file),
        timed_out: status.is_none(),
    }
}

/// Runs `nonneg args` in `dir`, which must succeed (setup).
fn must_run(dir: &Path, args: &[&str]) {
    let stdout = Stdio::from(std::fs::File::create(dir.join(".stdout")).unwrap());
    let o = nonneg(dir, args, stdout, false);
    assert_eq!(
        o.code,
        Some(0),
        "setup `nonneg {}` failed: {}",
        args.join(" "),
        o.stderr
    );
}

/// A `.npy` array: `descr` one of `<f4 <f8 <i4 <i8 |u1`, the header's shape text taken
/// verbatim (it may lie), values as listed.
fn npy(descr: &str, shape: &str, values: &str) -> Vec<u8> {
    let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let mut h = header.into_bytes();
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(b' ');
    }
    h.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h);
    for v in values.split(',').filter(|v| !v.is_empty()) {
        match descr {
            "<f4" => out.extend(v.parse::<f32>().unwrap().to_le_bytes()),
            "<f8" => out.extend(v.parse::<f64>().unwrap().to_le_bytes()),
            "<i4" => out.extend(v.parse::<i32>().unwrap().to_le_bytes()),
            "<i8" => out.extend(v.parse::<i64>().unwrap().to_le_bytes()),
            "<U3" => {
                let mut chars: Vec<char> = v.chars().collect();
                chars.resize(3, '\0');
                out.extend(chars.iter().flat_map(|&c| (c as u32).to_le_bytes()));
            }
            "|u1" => out.push(v.parse::<u8>().unwrap()),
            d => panic!("descr {d}"),
        }
    }
    out
}

/// Sets `pointer=json` in a JSON value (creating the last key).
fn set(v: &mut serde_json::Value, assignment: &str) {
    let (pointer, value) = assignment.split_once('=').expect("pointer=json");
    let value: serde_json::Value = serde_json::from_str(value).expect("json value");
    let (parent, key) = pointer.rsplit_once('/').expect("/pointer");
    let target = v
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"));
    match target {
        serde_json::Value::Array(a) => a[key.parse::<usize>().unwrap()] = value,
        serde_json::Value::Object(o) => {
            o.insert(key.to_string(), value);
        }
        _ => panic!("{parent} is not a container"),
    }
}

/// Rewrites a model file's safetensors header: `meta` edits the `nonneg` metadata JSON,
/// `header` the tensor table. The tensor bytes stay as they were.
fn edit_model(src: &Path, dst: &Path, edits: &[&str], inner: bool) {
    let bytes = std::fs::read(src).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    if inner {
        let text = header["__metadata__"]["nonneg"]
            .as_str()
            .unwrap()
            .to_string();
        let mut meta: serde_json::Value = serde_json::from_str(&text).unwrap();
        for e in edits {
            set(&mut meta, e);
        }
        header["__metadata__"]["nonneg"] = meta.to_string().into();
    } else {
        for e in edits {
            set(&mut header, e);
        }
    }
    let mut h = header.to_string().into_bytes();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(&bytes[8 + n..]);
    std::fs::write(dst, out).unwrap();
}

/// A 1 KiB tar whose only member's header claims 2^62 bytes (base-256 size field).
fn huge_tar() -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path("a.eml").unwrap();
    h.set_size(5);
    h.set_cksum();
    let mut block = h.as_bytes().to_vec();
    let size: u64 = 1 << 62;
    block[124] = 0x80;
    for i in 0..8 {
        block[135 - i] = (size >> (8 * i)) as u8;
    }
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| b as u32).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    block.extend(b"hello");
    block.resize(1024, 0);
    block
}

/// One setup step, in `dir`:
/// `write NAME TEXT` (escapes), `fifo NAME`, `mkdir NAME`, `nonneg ARGS...` (must
/// succeed), `meta NAME SRC /pointer=json...` and `header NAME SRC /pointer=json...`
/// (edited copies of a model), `npz NAME member:descr:shape:v,v,...` (shape may lie),
/// `npy NAME descr:shape:values`, `gz NAME SRC`, `tar NAME FILE...`, `hugetar NAME`,
/// `truncate NAME SRC BYTES`, `flip NAME SRC OFFSET` (xor 0xff at a byte offset).
fn setup_step(dir: &Path, step: &str) {
    let p = |name: &str| dir.join(name);
    let (op, rest) = step.trim().split_once(' ').unwrap_or((step.trim(), ""));
    let args: Vec<&str> = rest.split(' ').filter(|s| !s.is_empty()).collect();
    match op {
        "write" => {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            std::fs::write(p(name), unescape(text)).unwrap();
        }
        "fifo" => {
            let c = std::ffi::CString::new(p(args[0]).to_str().unwrap()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        }
        "mkdir" => std::fs::create_dir_all(p(args[0])).unwrap(),
        "nonneg" => must_run(dir, &args),
        "meta" | "header" => edit_model(&p(args[1]), &p(args[0]), &args[2..], op == "meta"),
        "npz" => {
            let f = std::fs::File::create(p(args[0])).unwrap();
            let mut z = zip::ZipWriter::new(f);
            for m in &args[1..] {
                let parts: Vec<&str> = m.splitn(4, ':').collect();
                let opts = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated);
                z.start_file(format!("{}.npy", parts[0]), opts).unwrap();
                z.write_all(&npy(parts[1], parts[2], parts[3])).unwrap();
            }
            z.finish().unwrap();
        }
        "npy" => {
            let parts: Vec<&str> = args[1].splitn(3, ':').collect();
            std::fs::write(p(args[0]), npy(parts[0], parts[1], parts[2])).unwrap();
        }
        "gz" => {
            let data = std::fs::read(p(args[1])).unwrap();
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&data).unwrap();
            std::fs::write(p(args[0]), e.finish().unwrap()).unwrap();
        }
        "tar" => {
            let mut b = tar::Builder::new(std::fs::File::create(p(args[0])).unwrap());
            for f in &args[1..] {
                b.append_path_with_name(p(f), f).unwrap();
            }
            b.finish().unwrap();
        }
        "hugetar" => std::fs::write(p(args[0]), huge_tar()).unwrap(),
        "truncate" => {
            let data = std::fs::read(p(args[1])).unwrap();
            let n: usize = args[2].parse().unwrap();
            std::fs::write(p(args[0]), &data[..n.min(data.len())]).unwrap();
        }
        "flip" => {
            let mut data = std::fs::read(p(args[1])).unwrap();
            let at: usize = args[2].parse().unwrap();
            data[at] ^= 0xff;
            std::fs::write(p(args[0]), data).unwrap();
        }
        _ => panic!("unknown setup step `{step}`"),
    }
}

/// Every file under `dir` (relative names), for the no-leftover check.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            }
            let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
            if !rel.starts_with(".stdout") && !rel.starts_with(".stderr") {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else if ft.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Runs one case; returns what went wrong, if anything.
fn run_case(case: &Case, prelude: &Path, root: &Path) -> Option<String> {
    let dir = root.join(&case.name);
    copy_dir(prelude, &dir);
    if case.setup != "-" {
        for step in case.setup.split(" ; ") {
            setup_step(&dir, step);
        }
    }
    let before = listing(&dir);
    let mut stdout_full = false;
    let mut stderr_full = false;
    let args: Vec<&str> = case
        .command
        .split(' ')
        .filter(|a| match *a {
            ">/dev/full" => {
                stdout_full = true;
                false
            }
            "2>/dev/full" => {
                stderr_full = true;
                false
            }
            a => !a.is_empty(),
        })
        .collect();
    let stdout = if stdout_full {
        Stdio::from(
            std::fs::File::options()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
    } else {
        Stdio::from(std::fs::File::create(dir.join(".stdout")).unwrap())
    };
    let o = nonneg(&dir, &args, stdout, stderr_full);
    let both = format!("{}{}", o.stdout, o.stderr);
    let mut problems = Vec::new();
    if o.timed_out {
        problems.push("hung (killed after 60 s)".to_string());
    }
    match o.code {
        None if !o.timed_out => problems.push("killed by a signal (abort?)".into()),
        Some(101) => problems.push("exit 101 (panic)".into()),
        Some(c) if c != case.exit => problems.push(format!("exit {c}, expected {}", case.exit)),
        _ => {}
    }
    if both.contains("panicked") {
        problems.push("panicked".into());
    }
    let haystack = if case.exit == 0 { &both } else { &o.stderr };
    if case.fragment != "-" && !haystack.contains(&case.fragment) {
        problems.push(format!("message lacks `{}`", case.fragment));
    }
    if o.code != Some(0) {
        // With stdout or stderr unwritable the outputs were complete before the failed
        // message; only temp files must not be left then.
        let redirected = stdout_full || stderr_full;
        let after = listing(&dir);
        let new: Vec<_> = after
            .iter()
            .filter(|f| !before.contains(f))
            .filter(|f| {
                !redirected
                    || f.to_string_lossy().contains("/.")
                    || f.to_string_lossy().starts_with('.')
            })
            .collect();
        if !new.is_empty() {
            problems.push(format!("a failed command left files behind: {new:?}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    (!problems.is_empty()).then(|| {
        format!(
            "bad_inputs.tsv:{} {}: {}\n  nonneg {}\n  stderr: {}",
            case.line,
            case.name,
            problems.join("; "),
            case.command,
            o.stderr.trim()
        )
    })
}

#[test]
fn every_bad_input_is_a_clear_error_never_a_crash_hang_or_leftover() {
    let (prelude_steps, cases) = parse_table();
    assert!(cases.len() >= 150, "{} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
    let tmp = common::tempdir();
    let prelude = tmp.path().join("prelude");
    std::fs::create_dir(&prelude).unwrap();
    for step in &prelude_steps {
        setup_step(&prelude, step);
    }
    let _ = std::fs::remove_file(prelude.join(".stdout"));
    let only = std::env::var("BAD_INPUTS_ONLY").ok();
    let failures: Vec<String> = cases
        .iter()
        .filter(|c| only.as_deref().is_none_or(|o| c.name.contains(o)))
        .filter_map(|c| run_case(c, &prelude, tmp.path()))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
