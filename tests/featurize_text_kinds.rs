//! The text featurizer's input kinds (plain text vs email), HTML entities and Subject
//! words: what the command line's defaults read, and what older spec files keep reading.

mod common;

use common::{first_emails, SPAMASSASSIN_FOLDERS};
use nonneg::features::text::{has_mail_header_block, InputKind, TextOptions, TextSpec};
use nonneg::features::{FeaturizerSpec, Vocabulary};

/// A hashing spec (every token is a feature) with the given input kind and Subject words.
fn spec(input_kind: InputKind, subject_words: bool, header_tokens: bool) -> FeaturizerSpec {
    FeaturizerSpec::text(TextSpec {
        options: TextOptions {
            input_kind,
            subject_words,
            header_tokens,
            ..TextOptions::default()
        },
        vocabulary: Vocabulary::Hashing { bits: 18 },
        idf: None,
    })
}

const SMS: &[u8] = b"URGENT: You have won a 1000 cash prize call now";

#[test]
fn auto_reads_every_spamassassin_email_as_email() {
    let mut n = 0;
    for (folder, _, count) in SPAMASSASSIN_FOLDERS {
        let emails = first_emails(folder, usize::MAX);
        assert_eq!(emails.len(), count, "{folder}");
        for (name, raw) in emails {
            assert!(has_mail_header_block(&raw), "{folder}/{name} read as text");
            n += 1;
        }
    }
    assert_eq!(n, 6046);
}

#[test]
fn plain_text_with_a_colon_first_line_keeps_its_words() {
    let words = [
        "urgent", "you", "have", "won", "1000", "cash", "prize", "call", "now",
    ];
    for kind in [InputKind::Auto, InputKind::Text] {
        let s = spec(kind, true, true);
        assert_eq!(s.tokens(SMS), words, "{kind:?}");
        assert!(s.featurize(SMS).problems.is_empty(), "{kind:?}");
    }
    // The behaviour of older specs: the first line is taken for a header.
    let legacy = spec(InputKind::Email, false, false);
    assert!(legacy.tokens(SMS).is_empty());
    let plain = b"just words, no header";
    let problems = legacy.featurize(plain).problems;
    assert!(
        problems.iter().any(|p| p.starts_with("no headers")),
        "{problems:?}"
    );
    // `text` never parses headers, even of a real email.
    let email = b"From: a@b.example\nSubject: hi there\n\nbody";
    assert!(spec(InputKind::Text, true, false)
        .tokens(email)
        .contains(&"example".to_owned()));
}

#[test]
fn html_entities_decode_to_their_characters() {
    let email = b"From: a@b.example\nContent-Type: text/html; charset=utf-8\n\n\
                  <p>Caf&eacute; cr&egrave;me &#233;t&#xE9;</p>";
    let toks = spec(InputKind::Auto, true, false).tokens(email);
    assert_eq!(toks, ["café", "crème", "été"]);
}

#[test]
fn subject_words_are_body_words_and_header_tokens_stay() {
    let email = b"From: a@b.example\nSubject: Free Money\n\nhello";
    assert_eq!(
        spec(InputKind::Auto, true, false).tokens(email),
        ["free", "money", "hello"]
    );
    assert_eq!(spec(InputKind::Auto, false, false).tokens(email), ["hello"]);
    let both = spec(InputKind::Auto, true, true).tokens(email);
    for t in ["free", "subject:free", "subject:money", "hello"] {
        assert!(both.contains(&t.to_owned()), "{t} missing from {both:?}");
    }
}

#[test]
fn spec_files_without_the_new_fields_read_as_before() {
    let new = spec(InputKind::Auto, true, false);
    let json = serde_json::to_string(&new).unwrap();
    assert!(json.contains(r#""input_kind":"auto""#), "{json}");
    assert!(json.contains(r#""subject_words":true"#), "{json}");
    assert_eq!(serde_json::from_str::<FeaturizerSpec>(&json).unwrap(), new);
    let old = json
        .replace(r#""input_kind":"auto","#, "")
        .replace(r#""subject_words":true,"#, "");
    assert!(
        !old.contains("input_kind") && !old.contains("subject_words"),
        "{old}"
    );
    let old: FeaturizerSpec = serde_json::from_str(&old).unwrap();
    assert_eq!(old, spec(InputKind::Email, false, false));
}
