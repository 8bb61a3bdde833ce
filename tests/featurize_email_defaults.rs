//! `featurize text`'s email defaults: an all-email corpus gets header tokens, URL hosts and
//! raw headers unless told otherwise; plain text (alone or mixed with emails) is featurized
//! byte for byte as without them; explicit flags are taken as given.

mod common;

use common::{copy_to, first_emails, path_in, run, tempdir};
use std::path::Path;

/// Featurizes `classes` with `extra` flags into `dir/name.svm`; returns the spec's
/// three email options, the data file's bytes and stderr.
fn featurize(
    dir: &Path,
    name: &str,
    classes: &[(&str, &str)],
    extra: &[&str],
) -> ([bool; 3], Vec<u8>, String) {
    let out = path_in(dir, &format!("{name}.svm"));
    let mut args = vec!["featurize".to_string(), "text".to_string()];
    for (c, p) in classes {
        args.push("--class".into());
        args.push(format!("{c}={p}"));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["--out".to_string(), out.clone()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&argv);
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{out}.featurizer.json")).unwrap())
            .unwrap();
    let flag = |k: &str| spec[k].as_bool().unwrap_or(false);
    (
        [
            flag("header_tokens"),
            flag("url_hosts"),
            flag("raw_headers"),
        ],
        std::fs::read(&out).unwrap(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Short plain-text messages, one a file, with URLs and a `Word:` first line.
fn texts(dir: &Path) -> String {
    let samples: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| {
            let body = format!(
                "URGENT: claim prize {i} at http://win{}.example.com now\nthanks see you",
                i % 3
            );
            (format!("t{i}.txt"), body.into_bytes())
        })
        .collect();
    copy_to(dir, &samples)
}

#[test]
fn an_all_email_corpus_gets_the_email_defaults() {
    let dir = tempdir();
    let spam = copy_to(&dir.path().join("spam"), &first_emails("spam-1", 25));
    let ham = copy_to(&dir.path().join("ham"), &first_emails("easy-ham-1", 25));
    let classes = [("spam", spam.as_str()), ("ham", ham.as_str())];
    let (on, with, err) = featurize(dir.path(), "default", &classes, &[]);
    assert_eq!(on, [true; 3]);
    assert!(
        err.contains("email defaults: header tokens, URL hosts, raw headers"),
        "{err}"
    );
    let (off, without, err) = featurize(dir.path(), "off", &classes, &["--no-email-defaults"]);
    assert_eq!(off, [false; 3]);
    assert!(!err.contains("email defaults"), "{err}");
    assert_ne!(with, without, "the defaults add header and host tokens");
    // An explicit flag is taken as given: only it.
    let (one, _, _) = featurize(dir.path(), "one", &classes, &["--url-hosts"]);
    assert_eq!(one, [false, true, false]);
}

#[test]
fn plain_text_is_featurized_as_without_the_defaults() {
    let dir = tempdir();
    let spam = texts(&dir.path().join("spam"));
    let ham = copy_to(
        &dir.path().join("ham"),
        &[(
            "h.txt".to_string(),
            b"see you at lunch http://cafe.example.org".to_vec(),
        )],
    );
    let classes = [("spam", spam.as_str()), ("ham", ham.as_str())];
    let (on, with, err) = featurize(dir.path(), "default", &classes, &[]);
    assert_eq!(on, [false; 3]);
    assert!(
        err.contains("email defaults not applied: 21 of 21 samples are plain text"),
        "{err}"
    );
    let (_, without, _) = featurize(dir.path(), "off", &classes, &["--no-email-defaults"]);
    assert_eq!(with, without);

    // Mixed with emails: plain text still keeps its features, so nothing is turned on.
    let emails = copy_to(&dir.path().join("mail"), &first_emails("spam-1", 5));
    let mixed = [("spam", emails.as_str()), ("ham", spam.as_str())];
    let (on, _, err) = featurize(dir.path(), "mixed", &mixed, &[]);
    assert_eq!(on, [false; 3]);
    assert!(err.contains("20 of 25 samples are plain text"), "{err}");
}
