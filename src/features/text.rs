//! Email / plain-text featurizer.
//!
//! **Decoding** is [`super::email`]: headers, MIME parts and charsets to text.
//!
//! **Tokens.** Lowercased runs of Unicode alphanumeric characters (`char::is_alphanumeric`)
//! of 2..=40 characters; longer runs are dropped, not truncated. Digits-only tokens are
//! kept (as scikit-learn's default pattern does); `min_df` filters rare numbers.
//! Options: `input_kind` says which samples are emails; `subject_words` counts an email's
//! Subject words as body tokens; `header_tokens` adds the tokens of Subject, From and To prefixed by the
//! lowercase header name (`subject:free`, `from:example`); `url_hosts` adds the host of
//! every `http(s)://` URL in the text and HTML parts (HTML scanned before reduction to
//! text, so `href`s count) as `host:example.com`.
//!
//! **Values.** Binary presence (default) or counts capped at `cap`. Both only grow when
//! text is appended (checked on all 6,046 SpamAssassin emails by appending a line of words
//! to the raw bytes). Appending after the closing boundary of a multipart message adds
//! nothing (that epilogue is not displayed by mail clients, so it is not read). `tfidf` and `normalize` exist for completeness and make the spec
//! non-add-monotone ([`TextSpec::add_monotone`] says why), so certify can refuse it.
//!
//! **Vocabulary.** Either explicit terms (sorted, unique; feature `i` is `terms[i]`), built
//! from training data only by [`fit_transform`] (`min_df`, `max_features`), or hashing:
//! feature = FNV-1a-64 of the token, folded, mod `2^bits` (see [`super::hash_index`]).

pub use super::email::{decoded_text, has_mail_header_block, html_to_text, looks_like_email};
use super::email::{walk_text, Piece};
use super::{hash_index, FastMap, Featurized};
use crate::error::{Error, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Shortest token kept, in characters.
pub const MIN_TOKEN_CHARS: usize = 2;
/// Longest token kept, in characters; longer runs are dropped.
pub const MAX_TOKEN_CHARS: usize = 40;

/// How a token count becomes a feature value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueMode {
    /// 1.0 when the token occurs.
    #[default]
    Binary,
    /// The number of occurrences, capped at `cap` (>= 1).
    Counts { cap: u32 },
}

/// Token -> feature index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vocabulary {
    /// Explicit terms, sorted ascending and unique; feature `i` is `terms[i]`.
    Terms(Vec<String>),
    /// Feature = hash(token) mod 2^bits.
    Hashing { bits: u32 },
}

/// Which samples are read as emails (see [`super::email`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum InputKind {
    /// Emails when they start with a mail header block naming a common mail header
    /// (From, To, Subject, Date, Received, ...), plain text otherwise.
    Auto,
    /// Emails when the first line looks like any header field (`Word: ...`) or an mbox
    /// `From ` line. The default of the library and of spec files older than this field.
    #[default]
    Email,
    /// Every sample is plain text.
    Text,
}

impl InputKind {
    fn is_email(&self) -> bool {
        *self == InputKind::Email
    }
}

/// Settings of the text featurizer other than the vocabulary. `Default` is the behaviour
/// of spec files written before `input_kind` and `subject_words` existed; the command
/// line's default differs in `input_kind: Auto`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TextOptions {
    /// Which samples are parsed as emails. Not written when it is the old files' `email`,
    /// so specs and models made before the field keep their bytes.
    #[serde(default, skip_serializing_if = "InputKind::is_email")]
    pub input_kind: InputKind,
    /// Count the words of an email's Subject as body words (plain tokens).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub subject_words: bool,
    #[serde(default)]
    pub header_tokens: bool,
    #[serde(default)]
    pub url_hosts: bool,
    /// Add the tokens of the whole raw header block (every header, undecoded) prefixed by
    /// `hdr:`: relays, mailers and charsets that spam tools leave behind.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub raw_headers: bool,
    #[serde(default)]
    pub value: ValueMode,
    /// Multiply values by inverse document frequency. NOT add-monotone.
    #[serde(default)]
    pub tfidf: bool,
    /// Divide each row by its L2 norm. NOT add-monotone.
    #[serde(default)]
    pub normalize: bool,
}

impl TextOptions {
    /// The settings `self` asks for (differing from the default) that `saved` lacks, by
    /// field name in declaration order (`subject_words`, `header_tokens`, `url_hosts`,
    /// `raw_headers`, `value`, `tfidf`, `normalize`); `input_kind` is the caller's to
    /// compare, as every spec has one. A saved spec is used with its own settings, so
    /// asking for other ones is a mistake to report, not to ignore.
    pub fn requested_but_not_in(&self, saved: &TextOptions) -> Vec<&'static str> {
        let mut missing = Vec::new();
        let mut check = |asked: bool, has: bool, name| {
            if asked && !has {
                missing.push(name);
            }
        };
        check(self.subject_words, saved.subject_words, "subject_words");
        check(self.header_tokens, saved.header_tokens, "header_tokens");
        check(self.url_hosts, saved.url_hosts, "url_hosts");
        check(self.raw_headers, saved.raw_headers, "raw_headers");
        let counts = self.value != ValueMode::Binary;
        check(counts, saved.value == self.value, "value");
        check(self.tfidf, saved.tfidf, "tfidf");
        check(self.normalize, saved.normalize, "normalize");
        missing
    }
}

/// A complete text featurizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextSpec {
    #[serde(flatten)]
    pub options: TextOptions,
    pub vocabulary: Vocabulary,
    /// Inverse document frequencies, one per term (only with `tfidf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idf: Option<Vec<f32>>,
}

/// What one sample decodes to: its distinct tokens (in order of first appearance) with
/// their counts, stored compactly, and the problems met.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    buf: String,
    spans: Vec<(usize, usize, u32)>,
    pub problems: Vec<String>,
}

impl Analysis {
    /// Distinct tokens with their counts, in order of first appearance.
    pub fn counts(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.spans.iter().map(|&(s, e, c)| (&self.buf[s..e], c))
    }
    /// Number of distinct tokens.
    pub fn len(&self) -> usize {
        self.spans.len()
    }
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

impl TextSpec {
    pub fn validate(&self) -> Result<()> {
        if let ValueMode::Counts { cap } = self.options.value {
            if cap == 0 {
                return Err(Error::invalid("text featurizer: cap must be at least 1"));
            }
        }
        match &self.vocabulary {
            Vocabulary::Hashing { bits } => {
                if !(1..=31).contains(bits) {
                    return Err(Error::invalid(format!(
                        "text featurizer: hash bits must be in 1..=31, got {bits}"
                    )));
                }
                if self.options.tfidf {
                    return Err(Error::invalid(
                        "text featurizer: tfidf needs a vocabulary, not hashing",
                    ));
                }
            }
            Vocabulary::Terms(terms) => {
                if terms.len() > u32::MAX as usize {
                    return Err(Error::invalid("text featurizer: vocabulary too large"));
                }
                if let Some(w) = terms.windows(2).find(|w| w[0] >= w[1]) {
                    return Err(Error::invalid(format!(
                        "text featurizer: vocabulary not sorted and unique at {:?}, {:?}",
                        w[0], w[1]
                    )));
                }
                if self.options.tfidf {
                    match &self.idf {
                        Some(idf) if idf.len() == terms.len() => {}
                        _ => {
                            return Err(Error::invalid(
                                "text featurizer: tfidf needs one idf weight per term",
                            ))
                        }
                    }
                }
            }
        }
        Ok(())
    }

    pub fn n_features(&self) -> usize {
        match &self.vocabulary {
            Vocabulary::Terms(t) => t.len(),
            Vocabulary::Hashing { bits } => 1usize << bits,
        }
    }

    pub fn add_monotone(&self) -> std::result::Result<(), String> {
        let mut reasons = Vec::new();
        if self.options.tfidf {
            reasons.push("tf-idf weighting: adding words lowers other features");
        }
        if self.options.normalize {
            reasons.push("length normalisation: adding words lowers other features");
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons.join("; "))
        }
    }

    pub fn feature_names(&self) -> Option<Vec<String>> {
        match &self.vocabulary {
            Vocabulary::Terms(t) => Some(t.clone()),
            Vocabulary::Hashing { .. } => None,
        }
    }

    /// Featurizes one raw sample (see the module docs).
    pub fn featurize(&self, raw: &[u8]) -> Featurized {
        self.map(analyze(&self.options, raw))
    }

    /// Decoded tokens in order of appearance, with repeats.
    pub fn tokens(&self, raw: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut problems = Vec::new();
        extract(
            &self.options,
            raw,
            &mut |t: &str| out.push(t.to_owned()),
            &mut problems,
        );
        out
    }

    /// Index of `token`, if it is a feature.
    pub fn index_of(&self, token: &str) -> Option<u32> {
        match &self.vocabulary {
            Vocabulary::Terms(t) => t
                .binary_search_by(|probe| probe.as_str().cmp(token))
                .ok()
                .map(|i| i as u32),
            Vocabulary::Hashing { bits } => Some(hash_index(token.as_bytes(), *bits)),
        }
    }

    /// A hash index of the terms, for mapping many samples faster than
    /// [`TextSpec::index_of`]'s binary search; `None` when hashing.
    pub fn term_index(&self) -> Option<TermIndex<'_>> {
        match &self.vocabulary {
            Vocabulary::Terms(t) => Some(TermIndex(
                t.iter()
                    .enumerate()
                    .map(|(i, s)| (s.as_str(), i as u32))
                    .collect(),
            )),
            Vocabulary::Hashing { .. } => None,
        }
    }

    /// Turns an [`Analysis`] into a feature row.
    pub fn map(&self, analysis: Analysis) -> Featurized {
        self.map_by(analysis, |t| self.index_of(t))
    }

    /// [`TextSpec::map`] with a prebuilt [`TextSpec::term_index`] (same result).
    pub fn map_indexed(&self, analysis: Analysis, index: Option<&TermIndex<'_>>) -> Featurized {
        match index {
            Some(ix) => self.map_by(analysis, |t| ix.0.get(t).copied()),
            None => self.map(analysis),
        }
    }

    fn map_by(&self, analysis: Analysis, index_of: impl Fn(&str) -> Option<u32>) -> Featurized {
        let pairs: Vec<(u32, u32)> = analysis
            .counts()
            .filter_map(|(tok, c)| index_of(tok).map(|i| (i, c)))
            .collect();
        self.row(pairs, analysis.problems)
    }

    /// A row from (index, count) pairs in any order, repeats allowed.
    fn row(&self, mut pairs: Vec<(u32, u32)>, problems: Vec<String>) -> Featurized {
        pairs.sort_unstable();
        // Merge hash collisions (sum of counts).
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(pairs.len());
        for (i, c) in pairs {
            match merged.last_mut() {
                Some(last) if last.0 == i => last.1 = last.1.saturating_add(c),
                _ => merged.push((i, c)),
            }
        }
        let mut indices = Vec::with_capacity(merged.len());
        let mut values = Vec::with_capacity(merged.len());
        for (i, c) in merged {
            let mut v = match self.options.value {
                ValueMode::Binary => 1.0,
                ValueMode::Counts { cap } => c.min(cap) as f32,
            };
            if self.options.tfidf {
                if let Some(idf) = &self.idf {
                    v *= idf[i as usize];
                }
            }
            indices.push(i);
            values.push(v);
        }
        if self.options.normalize {
            let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                values.iter_mut().for_each(|v| *v /= norm);
            }
        }
        Featurized {
            indices,
            values,
            problems,
        }
    }
}

/// Builds a sorted vocabulary from training analyses and maps the same docs to rows in one
/// go (one hash lookup per distinct token of a document). The vocabulary: tokens with
/// document frequency `>= min_df`; with `max_features`, only the most frequent are kept
/// (ties by token string, ascending). Returns the spec and the rows, in `docs` order.
pub fn fit_transform(
    options: TextOptions,
    docs: Vec<Analysis>,
    min_df: usize,
    max_features: Option<usize>,
) -> Result<(TextSpec, Vec<Featurized>)> {
    let mut ids: FastMap<&str, u32> =
        FastMap::with_capacity_and_hasher(1 << 16, Default::default());
    let mut names: Vec<&str> = Vec::new();
    let mut df: Vec<usize> = Vec::new();
    let doc_ids: Vec<Vec<u32>> = docs
        .iter()
        .map(|d| {
            d.counts()
                .map(|(t, _)| {
                    let next = names.len() as u32;
                    let id = *ids.entry(t).or_insert_with(|| {
                        names.push(t);
                        df.push(0);
                        next
                    });
                    df[id as usize] += 1;
                    id
                })
                .collect()
        })
        .collect();
    drop(ids);
    let (spec, remap) = vocabulary_from_df(options, &names, &df, docs.len(), min_df, max_features)?;
    drop(names);
    let rows = docs
        .into_par_iter()
        .zip(doc_ids.into_par_iter())
        .map(|(d, ids)| {
            let pairs = d
                .spans
                .iter()
                .zip(ids)
                .filter_map(|(&(_, _, c), id)| {
                    let j = remap[id as usize];
                    (j != u32::MAX).then_some((j, c))
                })
                .collect();
            spec.row(pairs, d.problems)
        })
        .collect();
    Ok((spec, rows))
}

/// The spec of a vocabulary built from document frequencies (`names[i]` is in `df[i]` of
/// `n_docs` documents), and each name's feature index (`u32::MAX`: not kept). Shared by
/// [`fit_transform`] and the streaming count of [`super::shards`], so both build the same.
pub(crate) fn vocabulary_from_df(
    options: TextOptions,
    names: &[&str],
    df: &[usize],
    n_docs: usize,
    min_df: usize,
    max_features: Option<usize>,
) -> Result<(TextSpec, Vec<u32>)> {
    if min_df == 0 {
        return Err(Error::invalid("min_df must be at least 1"));
    }
    let mut kept = select_terms(names, df, min_df, max_features)?;
    kept.sort_unstable_by(|&a, &b| names[a as usize].cmp(names[b as usize]));
    let mut remap = vec![u32::MAX; names.len()];
    for (new, &old) in kept.iter().enumerate() {
        remap[old as usize] = new as u32;
    }
    let terms: Vec<String> = kept.iter().map(|&i| names[i as usize].to_owned()).collect();
    let kept_df: Vec<usize> = kept.iter().map(|&i| df[i as usize]).collect();
    let idf = options.tfidf.then(|| idf_weights(&kept_df, n_docs));
    let spec = TextSpec {
        options,
        vocabulary: Vocabulary::Terms(terms),
        idf,
    };
    spec.validate()?;
    Ok((spec, remap))
}

/// The ids of the tokens kept: document frequency `>= min_df`, then the `max_features`
/// most frequent (ties by token). An empty vocabulary is an error: a model needs an input.
fn select_terms(
    names: &[&str],
    df: &[usize],
    min_df: usize,
    max_features: Option<usize>,
) -> Result<Vec<u32>> {
    let mut kept: Vec<u32> = (0..names.len() as u32)
        .filter(|&i| df[i as usize] >= min_df)
        .collect();
    if let Some(maxf) = max_features {
        if kept.len() > maxf {
            kept.sort_unstable_by(|&a, &b| {
                df[b as usize]
                    .cmp(&df[a as usize])
                    .then_with(|| names[a as usize].cmp(names[b as usize]))
            });
            kept.truncate(maxf);
        }
    }
    if kept.is_empty() {
        let most = df.iter().max().copied().unwrap_or(0);
        return Err(Error::invalid(format!(
            "the vocabulary is empty: {} distinct tokens, the most common in {most} samples; \
             the `min_df` option is {min_df} and the `max_features` option {}",
            names.len(),
            max_features.map_or("unset".to_string(), |m| m.to_string())
        )));
    }
    Ok(kept)
}

/// Term -> index map of a vocabulary (see [`TextSpec::term_index`]).
#[derive(Debug, Clone)]
pub struct TermIndex<'a>(FastMap<&'a str, u32>);

/// scikit-learn's smooth idf: `ln((1 + n) / (1 + df)) + 1`.
pub fn idf_weights(df: &[usize], n_docs: usize) -> Vec<f32> {
    df.iter()
        .map(|&d| (((1 + n_docs) as f64 / (1 + d) as f64).ln() + 1.0) as f32)
        .collect()
}

/// Decodes one sample and counts its tokens.
pub fn analyze(opts: &TextOptions, raw: &[u8]) -> Analysis {
    let mut col = Collector::default();
    let mut problems = Vec::new();
    extract(opts, raw, &mut |t: &str| col.push(t), &mut problems);
    col.finish(problems)
}

/// Counts the tokens of already decoded text (no email parsing, no header tokens;
/// `host:` tokens when `url_hosts`).
pub fn analyze_plain(opts: &TextOptions, text: &str) -> Analysis {
    let mut col = Collector::default();
    let mut buf = String::with_capacity(64);
    let mut emit = |t: &str| col.push(t);
    tokenize(text, "", &mut buf, &mut emit);
    if opts.url_hosts {
        scan_hosts(text, &mut buf, &mut emit);
    }
    col.finish(Vec::new())
}

/// All tokens of a sample in one buffer, deduplicated at the end.
#[derive(Default)]
struct Collector {
    all: String,
    spans: Vec<(usize, usize)>,
}

impl Collector {
    #[inline]
    fn push(&mut self, t: &str) {
        let s = self.all.len();
        self.all.push_str(t);
        self.spans.push((s, self.all.len()));
    }

    fn finish(self, problems: Vec<String>) -> Analysis {
        use std::collections::hash_map::Entry;
        let mut seen: FastMap<&str, usize> =
            FastMap::with_capacity_and_hasher(self.spans.len() / 2 + 1, Default::default());
        let mut out = Analysis {
            buf: String::with_capacity(self.all.len() / 2 + 1),
            spans: Vec::with_capacity(self.spans.len() / 2 + 1),
            problems,
        };
        for &(s, e) in &self.spans {
            let t = &self.all[s..e];
            match seen.entry(t) {
                Entry::Occupied(o) => {
                    let c = &mut out.spans[*o.get()].2;
                    *c = c.saturating_add(1);
                }
                Entry::Vacant(v) => {
                    v.insert(out.spans.len());
                    let s2 = out.buf.len();
                    out.buf.push_str(t);
                    out.spans.push((s2, out.buf.len(), 1));
                }
            }
        }
        out
    }
}

/// Calls `emit` for every token of `raw`, in order.
pub fn extract(
    opts: &TextOptions,
    raw: &[u8],
    emit: &mut dyn FnMut(&str),
    problems: &mut Vec<String>,
) {
    let mut buf = String::with_capacity(64);
    walk_text(
        opts,
        raw,
        &mut |text, kind| match kind {
            Piece::Body => tokenize(text, "", &mut buf, emit),
            Piece::Header(prefix) => tokenize(text, prefix, &mut buf, emit),
            Piece::Hosts => scan_hosts(text, &mut buf, emit),
        },
        problems,
    );
}

/// Tokenizes `text`, emitting `prefix + token` for each token. ASCII runs are copied and
/// lowercased a run at a time; other characters go through `char` classification.
fn tokenize(text: &str, prefix: &str, buf: &mut String, emit: &mut dyn FnMut(&str)) {
    buf.clear();
    buf.push_str(prefix);
    let base = buf.len();
    let b = text.as_bytes();
    let mut n = 0usize; // characters in the current run
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            if c.is_ascii_alphanumeric() {
                let start = i;
                while i < b.len() && b[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                if n + (i - start) <= MAX_TOKEN_CHARS {
                    let at = buf.len();
                    buf.push_str(&text[start..i]);
                    buf.as_mut_str()[at..].make_ascii_lowercase();
                }
                n += i - start;
            } else {
                if n > 0 {
                    flush_token(buf, base, &mut n, emit);
                }
                i += 1;
            }
        } else {
            let ch = text[i..].chars().next().unwrap_or('\u{FFFD}');
            i += ch.len_utf8();
            if ch.is_alphanumeric() {
                n += 1;
                if n <= MAX_TOKEN_CHARS {
                    buf.extend(ch.to_lowercase());
                }
            } else if n > 0 {
                flush_token(buf, base, &mut n, emit);
            }
        }
    }
    if n > 0 {
        flush_token(buf, base, &mut n, emit);
    }
}

#[inline]
fn flush_token(buf: &mut String, base: usize, n: &mut usize, emit: &mut dyn FnMut(&str)) {
    if (MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(n) {
        emit(buf);
    }
    buf.truncate(base);
    *n = 0;
}

/// Emits `host:<host>` for every `http://` / `https://` URL in `text`.
fn scan_hosts(text: &str, buf: &mut String, emit: &mut dyn FnMut(&str)) {
    let b = text.as_bytes();
    let mut i = 0;
    while i + 7 <= b.len() {
        if b[i] != b'h' && b[i] != b'H' {
            i += 1;
            continue;
        }
        let rest = &b[i..];
        let skip = if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"http://") {
            7
        } else if rest.len() >= 8 && rest[..8].eq_ignore_ascii_case(b"https://") {
            8
        } else {
            i += 1;
            continue;
        };
        let start = i + skip;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'.' || b[end] == b'-')
        {
            end += 1;
        }
        // Skip user info (`user@host`): take what follows the `@`.
        let (mut hs, mut he) = (start, end);
        if end < b.len() && b[end] == b'@' {
            let s2 = end + 1;
            let mut e2 = s2;
            while e2 < b.len() && (b[e2].is_ascii_alphanumeric() || b[e2] == b'.' || b[e2] == b'-')
            {
                e2 += 1;
            }
            hs = s2;
            he = e2;
            end = e2;
        }
        while hs < he && (b[hs] == b'.' || b[hs] == b'-') {
            hs += 1;
        }
        while he > hs && (b[he - 1] == b'.' || b[he - 1] == b'-') {
            he -= 1;
        }
        if he > hs && he - hs <= 253 && b[hs..he].iter().any(|c| c.is_ascii_alphabetic()) {
            buf.clear();
            buf.push_str("host:");
            for &c in &b[hs..he] {
                buf.push(c.to_ascii_lowercase() as char);
            }
            emit(buf);
        }
        i = end.max(i + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        let mut buf = String::new();
        tokenize(s, "", &mut buf, &mut |t| v.push(t.to_owned()));
        v
    }

    #[test]
    fn tokenizer() {
        assert_eq!(
            toks("Hello, WORLD! a 42 Über-straße"),
            ["hello", "world", "42", "über", "straße"]
        );
        let long = "x".repeat(41);
        assert!(toks(&long).is_empty());
    }

    #[test]
    fn hosts() {
        let mut v = Vec::new();
        let mut buf = String::new();
        scan_hosts(
            "see HTTP://WWW.Example.com/x and https://user@evil.org. and http://.",
            &mut buf,
            &mut |t| v.push(t.to_owned()),
        );
        assert_eq!(v, ["host:www.example.com", "host:evil.org"]);
    }

    #[test]
    fn html() {
        let t = html_to_text("<p>Hello&nbsp;<b>wor</b>ld &amp; caf&#233; &#x41;<script>var x</script><!-- hidden -->Unsub</A>");
        assert_eq!(toks(&t), ["hello", "wor", "ld", "café", "unsub"]);
        assert_eq!(
            toks(&html_to_text("a < b and <style>p{}</STYLE>c")),
            ["and"]
        );
    }

    #[test]
    fn html_entities_html5_table() {
        let t = html_to_text(
            "Caf&eacute; cr&egrave;me &#233;t&#xE9; &CounterClockwiseContourIntegral;xx &bogus;yy",
        );
        assert_eq!(toks(&t), ["café", "crème", "été", "xx", "yy"]);
    }

    #[test]
    fn mail_header_block_detection() {
        assert!(has_mail_header_block(b"Subject: hi\n\nbody"));
        assert!(has_mail_header_block(
            b"X-Spam: yes\r\nX-Long: a\r\n  folded\r\nMessage-Id: <1@x>\r\n\r\nhi"
        ));
        assert!(has_mail_header_block(
            b"From someone Mon Jan 1\nReturn-Path: <a@b>\n\nhi"
        ));
        assert!(!has_mail_header_block(
            b"URGENT: You have won a 1000 cash prize call now"
        ));
        assert!(!has_mail_header_block(b"Note: from me\n\nFrom: x"));
        assert!(!has_mail_header_block(b"From the desk of Jo\nhello"));
        assert!(!has_mail_header_block(b""));
    }

    #[test]
    fn email_detection() {
        assert!(looks_like_email(b"From: a@b.c\n\nhi"));
        assert!(looks_like_email(
            b"From someone Mon Jan 1\nSubject: x\n\nhi"
        ));
        assert!(!looks_like_email(b"Hello there, friend.\nhow are you"));
        assert!(!looks_like_email(b""));
    }
}
