//! The raw-space good-words insertion on SpamAssassin emails (see `common::spamassassin`
//! for where the corpus is): words appended to a raw email are really read by the
//! featurizer and never switch a feature off. The attack itself, on trained models, is in
//! tests/cli_good_words.rs.

mod common;

use common::first_emails;
use nonneg::attack::raw::{feature_value, insert_word, keeps_features, word_slots, RawEmail};
use nonneg::features::{FeaturizerSpec, TextOptions, TextSpec, Vocabulary};

fn hashed_spec() -> FeaturizerSpec {
    FeaturizerSpec::text(TextSpec {
        options: TextOptions {
            header_tokens: true,
            url_hosts: true,
            ..TextOptions::default()
        },
        vocabulary: Vocabulary::Hashing { bits: 22 },
        idf: None,
    })
}

#[test]
fn raw_insertion_is_read_and_keeps_every_feature_on() {
    let spec = hashed_spec();
    let word = "zqxgoodword";
    let j = match &spec.kind {
        nonneg::features::FeaturizerKind::Text(t) => t.index_of(word).unwrap(),
        _ => unreachable!(),
    };
    let mut emails = Vec::new();
    for folder in ["spam-1", "spam-2", "easy-ham-1", "hard-ham-1"] {
        emails.extend(first_emails(folder, 400).into_iter().step_by(5));
    }
    let (mut placed, mut multipart) = (0, 0);
    for (name, raw) in &emails {
        let before = spec.featurize(raw);
        let slots = word_slots(raw);
        if slots.len() > 1 {
            multipart += 1;
        }
        // Every slot: wherever the word is read, nothing that was on goes off.
        for &slot in &slots {
            let (out, _) = insert_word(raw, slot, word);
            let after = spec.featurize(&out);
            if feature_value(&after, j) > 0.0 {
                assert!(
                    keeps_features(&before, &after),
                    "{name}: inserting at {slot:?} switched a feature off"
                );
            }
        }
        // Three words in a row, each read, all earlier features kept.
        let mut email = RawEmail::new(&spec, raw.clone());
        let mut ok = true;
        for w in ["zqxone", "zqxtwo", "zqxthree"] {
            let f = match &spec.kind {
                nonneg::features::FeaturizerKind::Text(t) => t.index_of(w).unwrap(),
                _ => unreachable!(),
            };
            let prev = email.features.clone();
            if email.append_word(&spec, w, f) {
                assert!(keeps_features(&prev, &email.features), "{name}");
                assert!(keeps_features(&before, &email.features), "{name}");
                assert!(feature_value(&email.features, f) > 0.0);
                let text = String::from_utf8_lossy(&email.raw);
                assert!(text.contains(w), "{name}");
                assert_eq!(
                    spec.featurize(&email.raw),
                    email.features,
                    "{name}: features are those of the bytes"
                );
            } else {
                eprintln!("{name}: {w} could not be placed");
                ok = false;
            }
        }
        placed += ok as usize;
    }
    eprintln!(
        "{placed} of {} emails took 3 words ({multipart} multipart)",
        emails.len()
    );
    assert!(multipart > 10, "{multipart}");
    assert!(
        placed * 100 >= emails.len() * 97,
        "only {placed} of {} emails took the words",
        emails.len()
    );
}
