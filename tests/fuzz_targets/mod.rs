//! A mutation fuzzer for the readers, on stable Rust (cargo-fuzz needs nightly). It is NOT
//! coverage-guided: every execution takes a random seed input, applies 1 to 4 random
//! mutations (bit flips, byte inserts and deletes, splices with another seed, interesting
//! integers in binary and in text), and calls the reader in-process under `catch_unwind`.
//! A panic is a crash: counted, and its input kept. Readers that take a path read the
//! input from one scratch file (in /dev/shm when there is one).
//!
//! Shared by `tests/fuzz.rs` (a few thousand executions per target in CI) and
//! `examples/fuzz.rs` (the long runs whose figures are in the README).

#![allow(dead_code)]

use nonneg::data::{self, LoadOptions};
use nonneg::features::{FeaturizerSpec, TextOptions, TextSpec, Vocabulary};
use nonneg::rng::Rng;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a target does with one input; `Err` is a clean rejection, a panic a crash.
type Run = Box<dyn Fn(&[u8]) -> bool + Sync>;

pub struct Target {
    pub name: &'static str,
    pub seeds: Vec<Vec<u8>>,
    run: Run,
}

pub struct Report {
    pub name: &'static str,
    pub executions: u64,
    /// Inputs the reader accepted (the rest were clean errors).
    pub accepted: u64,
    pub crashes: Vec<Vec<u8>>,
    pub seconds: f64,
}

/// The scratch folder for path-based readers.
fn scratch() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("nonneg-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `input` to `path` (truncating) and returns the path.
fn to_file(path: &Path, input: &[u8]) -> PathBuf {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(input).unwrap();
    path.to_path_buf()
}

fn text_spec() -> FeaturizerSpec {
    let options = TextOptions {
        header_tokens: true,
        url_hosts: true,
        raw_headers: true,
        ..TextOptions::default()
    };
    let terms = ["cash", "click", "free", "host:example.com", "money", "win"];
    FeaturizerSpec::text(TextSpec {
        options,
        vocabulary: Vocabulary::Terms(terms.iter().map(|s| s.to_string()).collect()),
        idf: None,
    })
}

/// A `.npy` with a verbatim header shape.
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut h =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}").into_bytes();
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(b' ');
    }
    h.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h);
    out.extend(data);
    out
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i32s(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A stored (uncompressed) zip of `.npy` members, so mutations reach the arrays.
fn npz(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in members {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file(format!("{name}.npy"), opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap().into_inner()
}

const EMAIL: &[u8] =
    b"From: a@example.com\r\nTo: b@example.com\r\nSubject: =?utf-8?q?win_cash?=\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"XX\"\r\n\r\n--XX\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
free money =E2=82=AC click http://example.com/x\r\n--XX\r\nContent-Type: text/html\r\n\
Content-Transfer-Encoding: base64\r\n\r\nPGI+d2luIGNhc2g8L2I+ICZlYWN1dGU7\r\n--XX--\r\n";

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A small trained model's bytes (monotone, with a skip connection and a scaler).
fn model_bytes() -> Vec<u8> {
    use nonneg::data::{Dataset, DenseMatrix, Features};
    use nonneg::pipeline::{fit, FitOptions};
    use nonneg::train::{Preset, TrainConfig};
    let mut values = Vec::new();
    let mut y = Vec::new();
    for r in 0..32 {
        values.extend([(r % 5) as f32, (r % 3) as f32, (r % 7) as f32]);
        y.push(((r % 5) + (r % 3) > 3) as u8 as f32);
    }
    let ds = Dataset {
        x: Features::Dense(DenseMatrix {
            rows: 32,
            cols: 3,
            values,
        }),
        y: Some(y),
        n_labels: 1,
        label_names: vec!["label".into()],
        feature_names: Some(vec!["a".into(), "b".into(), "c".into()]),
        source: "fuzz".into(),
    };
    let mut cfg = TrainConfig::new(vec![4], Preset::Monotone);
    cfg.epochs = 1;
    let m = fit(&FitOptions::new(cfg), &ds, None, &mut |_| {})
        .unwrap()
        .model;
    nonneg::model::io::to_bytes(&m).unwrap()
}

/// A reader of data files at a fixed scratch path (the extension picks the reader).
fn data_target(name: &'static str, file: &str, seeds: Vec<Vec<u8>>) -> Target {
    let path = scratch().join(file);
    Target {
        name,
        seeds,
        run: Box::new(move |input| {
            let p = to_file(&path, input);
            let labelled = data::load(&p, &LoadOptions::labelled()).is_ok();
            labelled | data::load(&p, &LoadOptions::default()).is_ok()
        }),
    }
}

/// Every target: svmlight, csv, npz, email (MIME), tar (of emails), model.
pub fn targets() -> Vec<Target> {
    let svm = vec![
        b"1 1:1 2:0.5\n0 3:2\n1 2:1e-3 7:4\n".to_vec(),
        b"1,2 1:1\n0 2:1 # comment\n3 1:0 4:1\n".to_vec(),
        b"+1 0:1 1:1\n-1 0:2 5:1\n".to_vec(),
    ];
    let csv = vec![
        b"a,b,label\n1,2,0\n3,4.5,1\n-1,0,0\n".to_vec(),
        b"\"x y\",z,type\n1,\"2\",1\n3,4,0\n".to_vec(),
        b"a;b,c,label\r\n1e3,2,1\r\n0,-0.5,0\r\n".to_vec(),
    ];
    let dense = npz(&[
        (
            "X",
            npy("<f4", "(2,3)", &f32s(&[1.0, 2.0, 0.0, 0.5, 0.0, 3.0])),
        ),
        ("y", npy("<f4", "(2,)", &f32s(&[0.0, 1.0]))),
    ]);
    let mut fmt = Vec::new();
    for c in ['c', 's', 'r'] {
        fmt.extend((c as u32).to_le_bytes());
    }
    let sparse = npz(&[
        ("format", npy("<U3", "()", &fmt)),
        ("shape", npy("<i4", "(2,)", &i32s(&[3, 4]))),
        ("indptr", npy("<i4", "(4,)", &i32s(&[0, 1, 3, 4]))),
        ("indices", npy("<i4", "(4,)", &i32s(&[0, 1, 3, 2]))),
        ("data", npy("<f4", "(4,)", &f32s(&[1.0, 2.0, 3.0, 4.0]))),
        ("y", npy("<f4", "(3,)", &f32s(&[0.0, 1.0, 1.0]))),
    ]);
    let plain = b"URGENT: you have won\n\nClaim your free cash now, click here.\n".to_vec();
    let spec = std::sync::Arc::new(text_spec());
    let spec2 = spec.clone();
    let tar_path = scratch().join("fuzz.tar");
    vec![
        data_target("svmlight", "fuzz.svm", svm),
        data_target("csv", "fuzz.csv", csv),
        data_target("npz", "fuzz.npz", vec![dense, sparse]),
        Target {
            name: "email",
            seeds: vec![EMAIL.to_vec(), plain.clone()],
            run: Box::new(move |input| {
                let f = spec.featurize(input);
                let _ = spec.tokens(input);
                f.problems.is_empty()
            }),
        },
        Target {
            name: "tar",
            seeds: vec![tar_of(&[("a/1.eml", EMAIL), ("a/2.txt", &plain)])],
            run: Box::new(move |input| {
                let p = to_file(&tar_path, input);
                match nonneg::features::source::list(&p) {
                    Ok(listing) => {
                        for s in &listing.samples {
                            if let Ok(b) = s.bytes() {
                                spec2.featurize(&b);
                            }
                        }
                        true
                    }
                    Err(_) => false,
                }
            }),
        },
        Target {
            name: "model",
            seeds: vec![model_bytes()],
            run: Box::new(|input| {
                let Ok(m) = nonneg::model::io::from_bytes(input, Path::new("fuzz.safetensors"))
                else {
                    return false;
                };
                // A model that loads must also run: one all-ones row.
                let x = nonneg::data::Features::Dense(nonneg::data::DenseMatrix {
                    rows: 1,
                    cols: m.mlp.input_dim,
                    values: vec![1.0; m.mlp.input_dim],
                });
                m.decide(&m.logits(&x));
                true
            }),
        },
    ]
}

const INTERESTING_BIN: [u64; 12] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 32,
    1 << 62,
    u64::MAX,
];
const INTERESTING_TEXT: [&str; 14] = [
    "0",
    "-1",
    "-0",
    "1e39",
    "nan",
    "inf",
    "4294967295",
    "4294967296",
    "18446744073709551616",
    "9223372036854775807",
    ",",
    "\n",
    ":",
    "\"",
];

/// One random mutation of `input` in place.
fn mutate(input: &mut Vec<u8>, seeds: &[Vec<u8>], rng: &mut Rng) {
    let pos = |rng: &mut Rng, len: usize| rng.below(len as u64 + 1) as usize;
    match rng.below(7) {
        0 if !input.is_empty() => {
            let i = rng.below(input.len() as u64) as usize;
            input[i] ^= 1 << rng.below(8);
        }
        1 => {
            let i = pos(rng, input.len());
            input.insert(i, rng.below(256) as u8);
        }
        2 if !input.is_empty() => {
            let i = rng.below(input.len() as u64) as usize;
            let n = (1 + rng.below(16) as usize).min(input.len() - i);
            input.drain(i..i + n);
        }
        3 => {
            // Splice: a chunk of another seed at a random place.
            let other = &seeds[rng.below(seeds.len() as u64) as usize];
            if !other.is_empty() {
                let a = rng.below(other.len() as u64) as usize;
                let b = a + (rng.below((other.len() - a) as u64) as usize).min(64);
                let i = pos(rng, input.len());
                input.splice(i..i, other[a..=b.min(other.len() - 1)].iter().copied());
            }
        }
        4 if input.len() >= 8 => {
            let v = INTERESTING_BIN[rng.below(INTERESTING_BIN.len() as u64) as usize];
            let width = [1usize, 2, 4, 8][rng.below(4) as usize];
            let i = rng.below((input.len() - width + 1) as u64) as usize;
            input[i..i + width].copy_from_slice(&v.to_le_bytes()[..width]);
        }
        5 => {
            let t = INTERESTING_TEXT[rng.below(INTERESTING_TEXT.len() as u64) as usize];
            let i = pos(rng, input.len());
            // Replace a short token (digits) or insert.
            let end = (i..input.len())
                .find(|&k| !input[k].is_ascii_alphanumeric() && input[k] != b'.')
                .unwrap_or(input.len());
            input.splice(i..end.min(i + 24), t.bytes());
        }
        _ => {
            // Duplicate a chunk (repetition finds length and count bugs).
            if !input.is_empty() {
                let a = rng.below(input.len() as u64) as usize;
                let n = (1 + rng.below(32) as usize).min(input.len() - a);
                let chunk = input[a..a + n].to_vec();
                let i = pos(rng, input.len());
                input.splice(i..i, chunk);
            }
        }
    }
}

/// Runs `target` for `executions` mutated inputs from `seed`.
pub fn fuzz(target: &Target, executions: u64, seed: u64) -> Report {
    let mut rng = Rng::new(seed);
    let start = std::time::Instant::now();
    let mut report = Report {
        name: target.name,
        executions: 0,
        accepted: 0,
        crashes: Vec::new(),
        seconds: 0.0,
    };
    // Seeds must be accepted as they are (or the fuzzer measures nothing).
    for (i, s) in target.seeds.iter().enumerate() {
        assert!((target.run)(s), "{}: seed {i} is rejected", target.name);
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for _ in 0..executions {
        let mut input = target.seeds[rng.below(target.seeds.len() as u64) as usize].clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut input, &target.seeds, &mut rng);
        }
        let run = &target.run;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&input))) {
            Ok(true) => report.accepted += 1,
            Ok(false) => {}
            Err(_) => report.crashes.push(input),
        }
        report.executions += 1;
    }
    std::panic::set_hook(previous);
    report.seconds = start.elapsed().as_secs_f64();
    report
}
