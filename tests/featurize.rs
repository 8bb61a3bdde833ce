//! Integration tests of the featurizers on real data: a subset of the SpamAssassin corpus
//! (see `common::spamassassin`), the executables in `tests/fixtures/bin`, and synthetic
//! malformed inputs. A missing corpus FAILS the tests (it does not skip them). The
//! `featurize` command is in tests/cli_featurize.rs.

mod common;

use common::{
    first_emails, fixture_bin, per_folder, spamassassin, spamassassin_subset, tar_builder, tempdir,
    SPAMASSASSIN_FOLDERS,
};
use nonneg::features::bytes::BytesSpec;
use nonneg::features::corpus::{featurize_corpus, spec_path_for, write_corpus, SpecSource};
use nonneg::features::text::{InputKind, TextOptions, TextSpec, ValueMode, Vocabulary};
use nonneg::features::{source, Featurized, FeaturizerSpec};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

fn build(options: TextOptions, min_df: usize) -> SpecSource {
    SpecSource::BuildVocabulary {
        options,
        min_df,
        max_features: None,
        email_defaults: false,
    }
}

/// Every token option on, with the command line's default input kind.
fn all_options() -> TextOptions {
    TextOptions {
        input_kind: InputKind::Auto,
        subject_words: true,
        header_tokens: true,
        url_hosts: true,
        raw_headers: true,
        ..Default::default()
    }
}

/// `after` keeps every feature of `before`, with a value at least as high.
fn assert_superset(before: &Featurized, after: &Featurized, what: &str) {
    let a: HashMap<u32, f32> = after
        .indices
        .iter()
        .copied()
        .zip(after.values.iter().copied())
        .collect();
    for (i, v) in before.indices.iter().zip(&before.values) {
        match a.get(i) {
            None => panic!("{what}: feature {i} switched off by appending"),
            Some(w) => assert!(w >= v, "{what}: feature {i} fell from {v} to {w}"),
        }
    }
}

fn assert_well_formed(f: &Featurized, n_features: usize) {
    assert_eq!(f.indices.len(), f.values.len());
    assert!(
        f.indices.windows(2).all(|w| w[0] < w[1]),
        "indices not sorted/unique"
    );
    assert!(f.indices.iter().all(|&i| (i as usize) < n_features));
}

#[test]
fn full_corpus_folder_counts_match() {
    // Listing only (cheap): every email of every folder is found.
    let root = spamassassin();
    for (f, _, n) in SPAMASSASSIN_FOLDERS {
        let l = source::list(&root.join(f)).unwrap();
        assert_eq!(l.samples.len(), n, "{f}");
        assert_eq!(l.skipped_non_regular, 0);
    }
}

#[test]
fn counts_labels_and_summary() {
    let tmp = tempdir();
    let classes = spamassassin_subset(tmp.path());
    let c = featurize_corpus(&classes, "spam", build(all_options(), 2)).unwrap();
    let n = |f: usize| per_folder().min(SPAMASSASSIN_FOLDERS[f].2);
    assert_eq!(c.x.rows, (0..5).map(n).sum::<usize>());
    assert_eq!(
        c.summary.classes,
        vec![
            ("ham".to_owned(), n(0) + n(1) + n(2)),
            ("spam".to_owned(), n(3) + n(4))
        ]
    );
    assert_eq!(c.y.iter().filter(|&&y| y == 1.0).count(), n(3) + n(4));
    for (y, cl) in c.y.iter().zip(&c.class) {
        assert_eq!(*y == 1.0, cl == "spam");
    }
    assert_eq!(
        c.summary.samples_with_problems,
        c.problems.iter().filter(|p| !p.is_empty()).count()
    );
    assert!(c.x.cols > 1000, "vocabulary too small: {}", c.x.cols);
    for r in 0..c.x.rows {
        let (idx, val) = c.x.row(r);
        assert!(idx.windows(2).all(|w| w[0] < w[1]));
        assert!(val.iter().all(|&v| v == 1.0));
        assert!(!idx.is_empty(), "empty row {}", c.names[r]);
    }
    let text = c.summary.to_string();
    assert!(text.contains("samples with problems"), "{text}");

    // Unknown positive class is an error, not a silent all-zero labelling.
    assert!(featurize_corpus(&classes, "nope", build(all_options(), 2)).is_err());
}

fn tar_folder(dir: &Path, out: &Path) {
    let mut b = tar_builder(out);
    // Append in reverse order so the archive order differs from the sorted order.
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names.reverse();
    let base = dir.file_name().unwrap();
    for p in names {
        b.append_path_with_name(&p, Path::new(base).join(p.file_name().unwrap()))
            .unwrap();
    }
    b.into_inner().unwrap().flush().unwrap();
}

#[test]
fn tar_equals_directory() {
    let tmp = tempdir();
    let classes = spamassassin_subset(tmp.path());
    let out_dir = tmp.path().join("dir.svm");
    let c = featurize_corpus(&classes, "spam", build(all_options(), 2)).unwrap();
    write_corpus(&out_dir, &c).unwrap();
    let want = std::fs::read(&out_dir).unwrap();
    let want_spec = std::fs::read(spec_path_for(&out_dir)).unwrap();
    for ext in ["tar", "tar.gz", "tar.bz2"] {
        let tar_classes: Vec<(String, PathBuf)> = classes
            .iter()
            .map(|(cl, p)| {
                let t = tmp.path().join(format!(
                    "{}.{ext}",
                    p.file_name().unwrap().to_string_lossy()
                ));
                tar_folder(p, &t);
                (cl.clone(), t)
            })
            .collect();
        let out = tmp.path().join(format!("{ext}.svm"));
        let c2 = featurize_corpus(&tar_classes, "spam", build(all_options(), 2)).unwrap();
        write_corpus(&out, &c2).unwrap();
        assert!(
            std::fs::read(&out).unwrap() == want,
            "{ext} output differs from the folder's"
        );
        assert!(
            std::fs::read(spec_path_for(&out)).unwrap() == want_spec,
            "{ext} spec differs"
        );
    }
}

#[test]
fn vocabulary_from_training_only_and_reused() {
    let tmp = tempdir();
    let classes = spamassassin_subset(tmp.path());
    let (train, test): (Vec<_>, Vec<_>) = classes
        .iter()
        .cloned()
        .partition(|(_, p)| !p.ends_with("easy-ham-2") && !p.ends_with("spam-2"));
    let tr = featurize_corpus(&train, "spam", build(TextOptions::default(), 2)).unwrap();
    let terms: HashSet<String> = tr.spec.feature_names().unwrap().into_iter().collect();
    // Every term occurs in >= 2 training documents; every token in >= 2 training docs is a term.
    let mut df: HashMap<String, usize> = HashMap::new();
    for (_, p) in &train {
        for s in source::list(p).unwrap().samples {
            let toks: HashSet<String> = tr.spec.tokens(&s.bytes().unwrap()).into_iter().collect();
            for t in toks {
                *df.entry(t).or_insert(0) += 1;
            }
        }
    }
    let expected: HashSet<String> = df
        .iter()
        .filter(|(_, &n)| n >= 2)
        .map(|(t, _)| t.clone())
        .collect();
    assert_eq!(terms, expected);

    // Featurizing the test data with the saved spec: same width, same spec, and tokens
    // seen only in test data get no feature.
    let te = featurize_corpus(&test, "spam", SpecSource::Fixed(tr.spec.clone())).unwrap();
    assert_eq!(te.spec, tr.spec);
    assert_eq!(te.x.cols, tr.x.cols);
    let mut test_only = 0;
    for (_, p) in &test {
        for s in source::list(p).unwrap().samples {
            for t in tr.spec.tokens(&s.bytes().unwrap()) {
                if !df.contains_key(&t) {
                    test_only += 1;
                    assert!(!terms.contains(&t));
                }
            }
        }
    }
    assert!(
        test_only > 0,
        "test data should have tokens unseen in training"
    );

    // max_features keeps the most frequent.
    let small = featurize_corpus(
        &train,
        "spam",
        SpecSource::BuildVocabulary {
            options: TextOptions::default(),
            min_df: 1,
            max_features: Some(100),
            email_defaults: false,
        },
    )
    .unwrap();
    let kept = small.spec.feature_names().unwrap();
    assert_eq!(kept.len(), 100);
    let min_kept = kept.iter().map(|t| df[t]).min().unwrap();
    assert!(df
        .iter()
        .filter(|(_, &n)| n > min_kept)
        .all(|(t, _)| kept.contains(t)));
}

#[test]
fn deterministic_across_runs_and_threads() {
    let tmp = tempdir();
    let classes = spamassassin_subset(tmp.path());
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let c = featurize_corpus(&classes, "spam", build(all_options(), 1)).unwrap();
            let out = tmp.path().join(format!("t{threads}.svm"));
            write_corpus(&out, &c).unwrap();
            (
                std::fs::read(&out).unwrap(),
                serde_json::to_string(&c.spec).unwrap(),
            )
        })
    };
    let a = run(1);
    let b = run(4);
    let c = run(4);
    assert!(a == b && b == c);
    // Hashing too.
    let spec = FeaturizerSpec::text(TextSpec {
        options: all_options(),
        vocabulary: Vocabulary::Hashing { bits: 18 },
        idf: None,
    });
    let raw = source::list(&classes[3].1).unwrap().samples[0]
        .bytes()
        .unwrap()
        .into_owned();
    let f1 = spec.featurize(&raw);
    assert_eq!(f1, spec.featurize(&raw));
    assert_well_formed(&f1, spec.n_features());
    assert!(!f1.indices.is_empty());
}

#[test]
fn appending_text_never_switches_features_off() {
    let tmp = tempdir();
    let classes = spamassassin_subset(tmp.path());
    let c = featurize_corpus(&classes, "spam", build(all_options(), 1)).unwrap();
    let FeaturizerSpec {
        kind: nonneg::features::FeaturizerKind::Text(ts),
        ..
    } = &c.spec
    else {
        panic!()
    };
    let counts = FeaturizerSpec::text(TextSpec {
        options: TextOptions {
            value: ValueMode::Counts { cap: 3 },
            ..ts.options.clone()
        },
        ..ts.clone()
    });
    let hashed = FeaturizerSpec::text(TextSpec {
        options: all_options(),
        vocabulary: Vocabulary::Hashing { bits: 16 },
        idf: None,
    });
    let good_words = "\nthanks meeting tomorrow regards project http://www.example.org/x \
                      Subject: hello from: bob free money click remove";
    let mut checked = 0;
    for (_, p) in &classes {
        for s in source::list(p).unwrap().samples {
            let raw = s.bytes().unwrap().into_owned();
            let mut longer = raw.clone();
            longer.extend_from_slice(good_words.as_bytes());
            let mut twice = longer.clone();
            twice.extend_from_slice(good_words.as_bytes());
            for spec in [&c.spec, &counts, &hashed] {
                let (a, b, b2) = (
                    spec.featurize(&raw),
                    spec.featurize(&longer),
                    spec.featurize(&twice),
                );
                assert_superset(&a, &b, &s.name);
                assert_superset(&b, &b2, &s.name);
            }
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        SPAMASSASSIN_FOLDERS
            .iter()
            .map(|f| per_folder().min(f.2))
            .sum::<usize>()
    );
    // The spec reports itself monotone; tf-idf / normalisation do not.
    assert!(c.spec.add_monotone().is_ok());
    let mut bad = ts.clone();
    bad.options.normalize = true;
    let why = FeaturizerSpec::text(bad).add_monotone().unwrap_err();
    assert!(why.contains("normalisation"), "{why}");
}

/// Small deterministic generator (xorshift) for random bytes.
fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn appending_bytes_never_switches_features_off() {
    let spec = FeaturizerSpec::bytes(BytesSpec {
        ngram: 4,
        hash_bits: 16,
        imports: true,
    });
    let mut inputs: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| {
            (
                format!("random{i}"),
                random_bytes(i + 1, 100 + 997 * i as usize),
            )
        })
        .collect();
    for f in std::fs::read_dir(fixture_bin("")).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "md") {
            continue;
        }
        inputs.push((p.display().to_string(), std::fs::read(&p).unwrap()));
    }
    for (name, raw) in &inputs {
        let a = spec.featurize(raw);
        assert_well_formed(&a, spec.n_features());
        for (k, extra) in [
            random_bytes(99, 1),
            random_bytes(7, 3),
            random_bytes(5, 5000),
        ]
        .iter()
        .enumerate()
        {
            let mut longer = raw.clone();
            longer.extend_from_slice(extra);
            let b = spec.featurize(&longer);
            assert_superset(&a, &b, &format!("{name} + extra {k}"));
        }
    }
}

#[test]
fn executables_imports_and_truncation() {
    let spec = BytesSpec {
        ngram: 4,
        hash_bits: 20,
        imports: true,
    };
    let elf = std::fs::read(fixture_bin("elf-true")).unwrap();
    let (toks, problems) = spec.import_tokens(&elf);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(toks.contains(&"import:libc.so.6".to_owned()), "{toks:?}");
    assert!(toks.iter().any(|t| t.starts_with("import:!")), "{toks:?}");

    let pe = std::fs::read(fixture_bin("pe-clam-aspack.exe")).unwrap();
    let (toks, problems) = spec.import_tokens(&pe);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(
        toks.iter().any(|t| t.starts_with("import:kernel32.dll!")),
        "{toks:?}"
    );

    // Import features are on top of the n-grams.
    let plain = BytesSpec {
        imports: false,
        ..spec.clone()
    };
    let with = spec.featurize(&pe);
    let without = plain.featurize(&pe);
    assert_superset(&without, &with, "imports");
    assert!(with.indices.len() > without.indices.len());

    // Truncated executables: bytes featurized, parse failure reported, no crash.
    for name in ["elf-true.truncated", "pe-clam-aspack.exe.truncated"] {
        let raw = std::fs::read(fixture_bin(name)).unwrap();
        let f = spec.featurize(&raw);
        assert!(!f.indices.is_empty(), "{name}");
        assert_eq!(f.indices, plain.featurize(&raw).indices, "{name}");
        assert!(
            f.problems
                .iter()
                .any(|p| p.starts_with("executable parse failed")),
            "{name}: {:?}",
            f.problems
        );
    }
    // Streaming a file equals featurizing it in memory.
    let streamed = plain.featurize_path(&fixture_bin("elf-echo")).unwrap();
    assert_eq!(
        streamed,
        plain.featurize(&std::fs::read(fixture_bin("elf-echo")).unwrap())
    );
}

#[test]
fn malformed_inputs_never_abort() {
    let spec = FeaturizerSpec::text(TextSpec {
        options: all_options(),
        vocabulary: Vocabulary::Hashing { bits: 18 },
        idf: None,
    });
    let good = first_emails("spam-2", 1).remove(0).1;

    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("truncated email", good[..good.len() / 3].to_vec(), None),
        ("headers only, cut mid-header", good[..40.min(good.len())].to_vec(), None),
        ("binary garbage", random_bytes(42, 5000), None),
        ("empty", Vec::new(), None),
        (
            "unknown charset",
            b"From: a@b.example\nSubject: hi\nContent-Type: text/plain; charset=x-klingon-42\n\nqapla batlh\n".to_vec(),
            Some("unknown charset"),
        ),
        (
            "invalid utf-8 in utf-8 part",
            b"From: a@b.example\nContent-Type: text/plain; charset=utf-8\n\ncaf\xe9 cr\xff\xfeme ok\n".to_vec(),
            Some("undecodable bytes"),
        ),
        (
            "broken base64 and unterminated multipart",
            b"From: a@b.example\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!not base64@@@ aGVsbG8gd29ybGQ=\n--XX\nContent-Type: text/html\n\n<p>unclosed <b>html".to_vec(),
            None,
        ),
        (
            "plain text",
            "Just some words, üñíçødé too.\nNo headers here.".as_bytes().to_vec(),
            None,
        ),
        (
            "plain latin-1 text",
            b"Caf\xe9 cr\xe8me br\xfbl\xe9e".to_vec(),
            Some("invalid utf-8"),
        ),
    ];
    for (what, raw, problem) in cases {
        let f = spec.featurize(&raw);
        assert_well_formed(&f, spec.n_features());
        if let Some(p) = problem {
            assert!(
                f.problems.iter().any(|x| x.starts_with(p)),
                "{what}: {:?}",
                f.problems
            );
        }
        let _ = spec.tokens(&raw);
    }
    // Decoded, not raw: the base64 body and the HTML come out as words.
    let toks = spec.tokens(
        b"From: a@b.example\nSubject: Free =?utf-8?q?caf=C3=A9?=\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\nPHA+SGVsbG8gPGEgaHJlZj0iaHR0cDovL3NwYW0uZXhhbXBsZS9idXkiPmJ1eTwvYT48L3A+\n",
    );
    for t in [
        "hello",
        "buy",
        "subject:free",
        "subject:café",
        "from:example",
        "host:spam.example",
    ] {
        assert!(toks.contains(&t.to_owned()), "{t} missing from {toks:?}");
    }
    assert!(!toks.contains(&"href".to_owned()), "{toks:?}");
}

#[test]
fn spec_json_roundtrip_and_validation() {
    let spec = FeaturizerSpec::text(TextSpec {
        options: TextOptions {
            header_tokens: true,
            value: ValueMode::Counts { cap: 4 },
            ..Default::default()
        },
        vocabulary: Vocabulary::Terms(vec!["a1".into(), "b2".into(), "zz".into()]),
        idf: None,
    });
    let json = serde_json::to_string(&spec).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["n_features"], 3);
    assert_eq!(v["index_base"], 1);
    assert_eq!(v["kind"], "text");
    let back: FeaturizerSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec);
    // Tampered files are refused.
    let bad = json.replace("\"n_features\":3", "\"n_features\":4");
    assert!(serde_json::from_str::<FeaturizerSpec>(&bad).is_err());
    let unsorted = json.replace("\"b2\"", "\"zzz\"");
    assert!(serde_json::from_str::<FeaturizerSpec>(&unsorted).is_err());
    let bytes = FeaturizerSpec::bytes(BytesSpec::default());
    let back: FeaturizerSpec =
        serde_json::from_str(&serde_json::to_string(&bytes).unwrap()).unwrap();
    assert_eq!(back.n_features(), 1 << 20);
    assert!(back.feature_names().is_none());
    // Counts are capped.
    let f = spec.featurize(b"a1 a1 a1 a1 a1 a1 b2 qq");
    assert_eq!(f.indices, vec![0, 1]);
    assert_eq!(f.values, vec![4.0, 1.0]);
}
