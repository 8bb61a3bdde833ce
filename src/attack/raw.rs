//! The "good-words" attack in raw space: a spammer appends real words to a detected spam
//! email until the model lets it through.
//!
//! Unlike the feature-space attacks of [`crate::attack`], every step edits the raw email
//! and measures the result through the whole pipeline: the modified bytes are parsed and
//! featurized again with the model's own featurizer and scored with [`Model::logits`].
//!
//! **Placing a word.** A word is inserted where the featurizer reads it ([`word_slots`],
//! [`insert_word`]): for a single-part message, `"\n word"` at the end of the raw bytes;
//! for a multipart message, `" word\n"` at the start of a boundary line (`--...`), so it
//! ends the part before it (words after the closing boundary are not read). The first slot
//! whose result is checked to (a) raise the word's feature and (b) keep every feature
//! already on at least as high is kept for the following words ([`RawEmail::append_word`]);
//! a word that cannot be placed that way is a failed step (it uses one unit of budget, the
//! email stays as it was, and the word is not tried again).
//!
//! **Candidate words.** Vocabulary terms that the tokenizer reads back as themselves
//! (lowercase alphanumeric, 2 to 40 characters: `subject:...`/`host:...` tokens cannot be
//! written into a body); with a hashed vocabulary, the words of the ham samples, one per
//! feature (the first in byte order). Only words whose feature is off in the current email
//! are candidates (in counts mode: absent words, which appending once sets to 1).
//!
//! **Word choice.**
//! - [`WordSource::Model`] (white box, greedy in raw space): each step scores adding every
//!   candidate word's feature exactly with [`Attacker`], appends the best one and
//!   re-featurizes; it stops at a local minimum, where no single word lowers the logit
//!   (at once, on a monotone model). Queries per step: the candidates scored plus one.
//! - [`WordSource::Ham`] (black box): words ranked once by how much more often they occur
//!   in the ham samples than in the spam samples (document frequency difference), appended
//!   in that order, skipping words already in the email, without looking at the model.
//!   One query per placed word.

use super::search::lowers;
use super::{
    summarize, AttackConfig, Attacker, BudgetResult, Method, RowRef, Scoring, TargetOutcome,
    Workspace,
};
use crate::data::{CsrMatrix, Features};
use crate::error::{Error, Result};
use crate::features::text::{MAX_TOKEN_CHARS, MIN_TOKEN_CHARS};
use crate::features::{hash_index, Featurized, FeaturizerKind, FeaturizerSpec};
use crate::model::Model;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Where the attacker's words come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum WordSource {
    /// White box: greedy on the model's logit.
    Model,
    /// Black box: words much more frequent in ham than in spam.
    Ham,
}

impl WordSource {
    /// The name in outputs (the same as on the command line).
    pub fn name(self) -> &'static str {
        match self {
            WordSource::Model => "model",
            WordSource::Ham => "ham",
        }
    }
}

/// What to attack and how.
#[derive(Clone, Debug)]
pub struct GoodWordsConfig {
    /// Budgets (words appended, failed placements included); the attack runs to the largest.
    pub budgets: Vec<usize>,
    pub source: WordSource,
    /// The label whose detected samples are attacked.
    pub label: usize,
    /// Attack only the first N detected samples (sample order).
    pub limit: Option<usize>,
    /// Keep each target's final modified email in its outcome.
    pub keep_raw: bool,
}

impl GoodWordsConfig {
    pub fn new(source: WordSource, budgets: Vec<usize>) -> Self {
        GoodWordsConfig {
            budgets,
            source,
            label: 0,
            limit: None,
            keep_raw: false,
        }
    }
}

/// What happened to one email.
#[derive(Clone, Debug, Serialize)]
pub struct GoodWordsOutcome {
    /// The sample's name.
    pub name: String,
    /// Steps, logits and queries as in the feature-space attacks (`row`: index in the
    /// samples given; `added`: the feature of each word tried).
    pub outcome: TargetOutcome,
    /// The word tried at each step.
    pub words: Vec<String>,
    /// Whether each word could be placed (false: a failed step).
    pub placed: Vec<bool>,
    /// The final modified email (with `keep_raw`).
    #[serde(skip)]
    pub raw: Option<Vec<u8>>,
}

/// A good-words run on one model.
#[derive(Clone, Debug, Serialize)]
pub struct GoodWordsReport {
    pub source: WordSource,
    pub label: usize,
    /// Samples given, those the model detects, and the candidate words.
    pub positives: usize,
    pub detected: usize,
    pub words: usize,
    /// Steps whose word could not be placed, over all targets.
    pub failed_steps: usize,
    pub results: Vec<BudgetResult>,
    pub outcomes: Vec<GoodWordsOutcome>,
    pub seconds: f64,
}

/// A place in a raw email where a word can be inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The end of the raw bytes: `"\n word"` is appended.
    End,
    /// Byte offset of the start of a boundary line: `" word\n"` is inserted there.
    Before(usize),
}

/// Candidate slots of `raw`, the most likely to work first: for a multipart message
/// (a `boundary=` in the header block) the start of every body line beginning with `--`
/// and a non-space, then the end; otherwise only the end.
pub fn word_slots(raw: &[u8]) -> Vec<Slot> {
    let (head_end, body_start) = split_header(raw);
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let mut slots = Vec::new();
    if head.contains("boundary=") {
        let mut start = body_start;
        while start < raw.len() {
            let end = raw[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(raw.len(), |p| start + p);
            let line = &raw[start..end];
            if line.len() > 2 && line.starts_with(b"--") && !line[2].is_ascii_whitespace() {
                slots.push(Slot::Before(start));
            }
            start = end + 1;
        }
    }
    slots.push(Slot::End);
    slots
}

/// End of the header block and start of the body (after the first empty line).
fn split_header(raw: &[u8]) -> (usize, usize) {
    let mut start = 0;
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' {
            let line = &raw[start..i];
            if line.is_empty() || line == b"\r" {
                return (start, i + 1);
            }
            start = i + 1;
        }
    }
    (raw.len(), raw.len())
}

/// `raw` with `word` inserted at `slot`, and the slot where the next word goes (so
/// successive words follow each other).
pub fn insert_word(raw: &[u8], slot: Slot, word: &str) -> (Vec<u8>, Slot) {
    match slot {
        Slot::End => {
            let mut out = Vec::with_capacity(raw.len() + word.len() + 2);
            out.extend_from_slice(raw);
            out.extend_from_slice(b"\n ");
            out.extend_from_slice(word.as_bytes());
            (out, Slot::End)
        }
        Slot::Before(p) => {
            let p = p.min(raw.len());
            let ins = format!(" {word}\n");
            let mut out = Vec::with_capacity(raw.len() + ins.len());
            out.extend_from_slice(&raw[..p]);
            out.extend_from_slice(ins.as_bytes());
            out.extend_from_slice(&raw[p..]);
            (out, Slot::Before(p + ins.len()))
        }
    }
}

/// Value of feature `j` in a featurized row (0 when absent).
pub fn feature_value(f: &Featurized, j: u32) -> f32 {
    f.indices.binary_search(&j).map_or(0.0, |k| f.values[k])
}

/// Whether every feature of `before` is at least as high in `after`.
pub fn keeps_features(before: &Featurized, after: &Featurized) -> bool {
    before
        .indices
        .iter()
        .zip(&before.values)
        .all(|(&j, &v)| feature_value(after, j) >= v)
}

/// An email under attack: its current bytes, their features, and where words go.
#[derive(Clone, Debug)]
pub struct RawEmail {
    pub raw: Vec<u8>,
    pub features: Featurized,
    slot: Option<Slot>,
}

impl RawEmail {
    pub fn new(spec: &FeaturizerSpec, raw: Vec<u8>) -> Self {
        let features = spec.featurize(&raw);
        RawEmail {
            raw,
            features,
            slot: None,
        }
    }

    /// Inserts `word` (feature `feature`) where re-featurizing shows its feature raised and
    /// no feature lowered: the slot used last, else the first of [`word_slots`] that works.
    /// Returns false, leaving the email unchanged, when no slot works.
    pub fn append_word(&mut self, spec: &FeaturizerSpec, word: &str, feature: u32) -> bool {
        let before = feature_value(&self.features, feature);
        let try_slot = |slot: Slot| -> Option<(Vec<u8>, Featurized, Slot)> {
            let (raw, next) = insert_word(&self.raw, slot, word);
            let f = spec.featurize(&raw);
            (feature_value(&f, feature) > before && keeps_features(&self.features, &f))
                .then_some((raw, f, next))
        };
        let found = self.slot.and_then(try_slot).or_else(|| {
            word_slots(&self.raw)
                .into_iter()
                .filter(|&s| Some(s) != self.slot)
                .find_map(try_slot)
        });
        match found {
            Some((raw, f, next)) => {
                self.raw = raw;
                self.features = f;
                self.slot = Some(next);
                true
            }
            None => false,
        }
    }
}

/// Whether the tokenizer reads `t` back as itself.
fn plain_word(t: &str) -> bool {
    let n = t.chars().count();
    (MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(&n)
        && t.chars().all(|c| c.is_alphanumeric())
        && t.to_lowercase() == t
}

/// Distinct plain words of each sample (in parallel, sample order).
fn word_sets(spec: &FeaturizerSpec, samples: &[(String, Vec<u8>)]) -> Vec<HashSet<String>> {
    samples
        .par_iter()
        .map(|(_, raw)| {
            spec.tokens(raw)
                .into_iter()
                .filter(|t| plain_word(t))
                .collect()
        })
        .collect()
}

/// The attacker's words with their features, in feature order: plain vocabulary terms, or
/// with hashing, the plain words of `ham` (one per feature, the first in byte order).
pub fn candidate_words(
    spec: &FeaturizerSpec,
    ham: Option<&[(String, Vec<u8>)]>,
) -> Result<Vec<(String, u32)>> {
    let FeaturizerKind::Text(text) = &spec.kind else {
        return Err(Error::invalid(
            "the good-words attack needs a text featurizer (emails)",
        ));
    };
    match text.vocabulary {
        crate::features::Vocabulary::Terms(ref terms) => Ok(terms
            .iter()
            .enumerate()
            .filter(|(_, t)| plain_word(t))
            .map(|(i, t)| (t.clone(), i as u32))
            .collect()),
        crate::features::Vocabulary::Hashing { bits } => {
            let ham = ham.filter(|h| !h.is_empty()).ok_or_else(|| {
                Error::invalid(
                    "the model hashes its tokens: give ham samples (the `class` option, ham=PATH) to take words from",
                )
            })?;
            let mut by_feature: BTreeMap<u32, String> = BTreeMap::new();
            for set in word_sets(spec, ham) {
                for w in set {
                    let j = hash_index(w.as_bytes(), bits);
                    match by_feature.get(&j) {
                        Some(old) if *old <= w => {}
                        _ => {
                            by_feature.insert(j, w);
                        }
                    }
                }
            }
            Ok(by_feature.into_iter().map(|(j, w)| (w, j)).collect())
        }
    }
}

/// Candidate words ordered for the black-box attack: by document frequency in `ham`
/// minus that in `spam` (fractions of the samples), highest first, ties by word; only
/// words more frequent in ham.
pub fn ham_ranked_words(
    spec: &FeaturizerSpec,
    words: &[(String, u32)],
    ham: &[(String, Vec<u8>)],
    spam: &[(String, Vec<u8>)],
) -> Vec<(String, u32)> {
    let df = |samples: &[(String, Vec<u8>)]| -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for set in word_sets(spec, samples) {
            for w in set {
                *m.entry(w).or_insert(0) += 1;
            }
        }
        m
    };
    let (dh, ds) = (df(ham), df(spam));
    let (nh, ns) = (ham.len().max(1) as f64, spam.len().max(1) as f64);
    let mut scored: Vec<(f64, &String, u32)> = words
        .iter()
        .map(|(w, j)| {
            let h = dh.get(w).copied().unwrap_or(0) as f64 / nh;
            let s = ds.get(w).copied().unwrap_or(0) as f64 / ns;
            (h - s, w, *j)
        })
        .filter(|(d, _, _)| *d > 0.0)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().map(|(_, w, j)| (w.clone(), j)).collect()
}

/// One featurized row as a 1-row sparse matrix.
fn one_row(f: &Featurized, cols: usize) -> Features {
    Features::Sparse(CsrMatrix {
        rows: 1,
        cols,
        indptr: vec![0, f.indices.len()],
        indices: f.indices.clone(),
        values: f.values.clone(),
    })
}

/// Attacks the samples of `samples` (raw emails of the attacked class) that the model
/// detects, appending words chosen by `cfg.source`. `ham`: raw ham emails (needed for the
/// black-box source and for hashed vocabularies).
pub fn good_words_attack(
    model: &Model,
    spec: &FeaturizerSpec,
    samples: &[(String, Vec<u8>)],
    ham: Option<&[(String, Vec<u8>)]>,
    cfg: &GoodWordsConfig,
) -> Result<GoodWordsReport> {
    let t0 = std::time::Instant::now();
    check_inputs(model, spec, cfg)?;
    let words = candidate_words(spec, ham)?;
    let order = match cfg.source {
        WordSource::Ham => {
            let ham = ham
                .filter(|h| !h.is_empty())
                .ok_or_else(|| Error::invalid("the ham word source needs ham samples, got none"))?;
            ham_ranked_words(spec, &words, ham, samples)
        }
        WordSource::Model => Vec::new(),
    };
    let mut targets = detected_samples(model, spec, samples, cfg.label);
    let detected = targets.len();
    if let Some(n) = cfg.limit {
        targets.truncate(n);
    }
    let mut budgets = cfg.budgets.clone();
    budgets.sort_unstable();
    budgets.dedup();
    let max_budget = *budgets.last().expect("non-empty");
    let acfg = AttackConfig {
        addable: Some(words.iter().map(|(_, j)| *j as usize).collect()),
        max_value: Some(1.0),
        label: cfg.label,
        scoring: Scoring::Auto,
        ..AttackConfig::new(Method::Greedy, vec![max_budget])
    };
    let run = EmailAttack {
        model,
        spec,
        cfg,
        attacker: Attacker::new(model, &acfg, true)?,
        order,
        word_of: words.iter().map(|(w, j)| (*j, w.as_str())).collect(),
        max_budget,
    };
    let outcomes: Vec<GoodWordsOutcome> = targets
        .par_iter()
        .with_max_len(1)
        .map_init(Workspace::default, |ws, &r| {
            run.attack(r, &samples[r].0, &samples[r].1, ws)
        })
        .collect();
    let plain: Vec<TargetOutcome> = outcomes.iter().map(|o| o.outcome.clone()).collect();
    Ok(GoodWordsReport {
        source: cfg.source,
        label: cfg.label,
        positives: samples.len(),
        detected,
        words: words.len(),
        failed_steps: outcomes
            .iter()
            .map(|o| o.placed.iter().filter(|p| !**p).count())
            .sum(),
        results: summarize(&plain, &budgets),
        outcomes,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Budgets, the featurizer's width and the label against the model.
fn check_inputs(model: &Model, spec: &FeaturizerSpec, cfg: &GoodWordsConfig) -> Result<()> {
    if cfg.budgets.is_empty() || cfg.budgets.contains(&0) {
        return Err(Error::invalid("budgets must be positive"));
    }
    let d = model.mlp.input_dim;
    if spec.n_features() != d {
        return Err(Error::Mismatch(format!(
            "the featurizer gives {} features, the model expects {d}",
            spec.n_features()
        )));
    }
    let n_labels = model.mlp.n_labels();
    if cfg.label >= n_labels {
        return Err(Error::invalid(format!(
            "label {} is out of range: the model has {n_labels} label(s)",
            cfg.label
        )));
    }
    Ok(())
}

/// The samples the model detects for `label` (logit >= threshold), in sample order.
fn detected_samples(
    model: &Model,
    spec: &FeaturizerSpec,
    samples: &[(String, Vec<u8>)],
    label: usize,
) -> Vec<usize> {
    let feats: Vec<Featurized> = samples
        .par_iter()
        .map(|(_, raw)| spec.featurize(raw))
        .collect();
    let nnz = feats.iter().map(|f| f.indices.len()).sum();
    let mut x = CsrMatrix::with_capacity(model.mlp.input_dim, feats.len(), nnz);
    for f in &feats {
        x.push_row(&f.indices, &f.values);
    }
    let logits = model.logits(&Features::Sparse(x));
    let n_labels = model.mlp.n_labels();
    let thr = model.threshold[label];
    (0..samples.len())
        .filter(|&r| logits[r * n_labels + label] >= thr)
        .collect()
}

/// One good-words run, shared by the targets.
struct EmailAttack<'a> {
    model: &'a Model,
    spec: &'a FeaturizerSpec,
    cfg: &'a GoodWordsConfig,
    /// Scores the candidate words' features (white box).
    attacker: Attacker<'a>,
    /// The black box's words, best first.
    order: Vec<(String, u32)>,
    word_of: HashMap<u32, &'a str>,
    max_budget: usize,
}

impl EmailAttack<'_> {
    /// The model's logit for the attacked label on a featurized email (a full pass).
    fn score(&self, f: &Featurized) -> f32 {
        self.model.logits(&one_row(f, self.model.mlp.input_dim))[self.cfg.label]
    }

    /// Attacks sample `r` (`name`, `raw`), up to the largest budget.
    fn attack(&self, r: usize, name: &str, raw: &[u8], ws: &mut Workspace) -> GoodWordsOutcome {
        let thr = self.model.threshold[self.cfg.label];
        let mut email = RawEmail::new(self.spec, raw.to_vec());
        let initial = self.score(&email.features);
        let mut out = GoodWordsOutcome {
            name: name.to_string(),
            outcome: TargetOutcome::start(r, initial),
            words: Vec::new(),
            placed: Vec::new(),
            raw: None,
        };
        let mut queries = 0u64;
        let mut tried: HashSet<u32> = HashSet::new();
        let mut next = 0usize;
        for step in 1..=self.max_budget {
            let pick = match self.cfg.source {
                WordSource::Model => {
                    self.model_pick(&email, &tried, ws, &mut queries, out.outcome.final_logit)
                }
                WordSource::Ham => self.ham_pick(&email, &mut next),
            };
            // None: a local minimum (white box) or no word left (black box).
            let Some(pick) = pick else { break };
            tried.insert(pick);
            let word = self.word_of[&pick];
            let placed = email.append_word(self.spec, word, pick);
            let logit = if placed {
                queries += 1;
                self.score(&email.features)
            } else {
                out.outcome.final_logit
            };
            out.words.push(word.to_string());
            out.placed.push(placed);
            let o = &mut out.outcome;
            o.added.push(pick as usize);
            o.logits.push(logit);
            o.queries.push(queries);
            o.final_logit = logit;
            if logit < thr {
                o.evaded_at = Some(step);
                break;
            }
        }
        if self.cfg.keep_raw {
            out.raw = Some(email.raw);
        }
        out
    }

    /// White box: the feature of the untried candidate word whose addition gives the
    /// lowest logit, scored exactly on the current email, or None when it does not lower
    /// `current`.
    fn model_pick(
        &self,
        email: &RawEmail,
        tried: &HashSet<u32>,
        ws: &mut Workspace,
        queries: &mut u64,
        current: f32,
    ) -> Option<u32> {
        let st = self.attacker.start(RowRef::Sparse(
            &email.features.indices,
            &email.features.values,
        ));
        let cands = self.attacker.candidate_logits(&st, ws);
        *queries += cands.len() as u64;
        let best = cands
            .iter()
            .filter(|(j, _)| !tried.contains(&(*j as u32)))
            .fold(None::<(usize, f32)>, |b, &(j, s)| match b {
                Some((_, bs)) if bs <= s => b,
                _ => Some((j, s)),
            });
        match best {
            Some((j, s)) if lowers(s, current) => Some(j as u32),
            _ => None,
        }
    }

    /// Black box: the next ranked word whose feature is off in the email.
    fn ham_pick(&self, email: &RawEmail, next: &mut usize) -> Option<u32> {
        let order = &self.order;
        while *next < order.len() && feature_value(&email.features, order[*next].1) > 0.0 {
            *next += 1;
        }
        if *next == order.len() {
            return None;
        }
        *next += 1;
        Some(order[*next - 1].1)
    }
}
