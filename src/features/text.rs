//! Email / plain-text featurizer.
//!
//! **Decoding.** A sample whose first line looks like a header field (`Name: value`) or an
//! mbox `From ` line is parsed as an email with mail-parser (headers, multipart,
//! base64 / quoted-printable, charsets); the text bodies are used, HTML bodies reduced to
//! text with mail-parser's `html_to_text`, and attached `message/rfc822` parts are read
//! recursively. Anything else is plain text (problem `no headers`), decoded as lossy
//! UTF-8. If mail-parser gives up, the raw bytes are used as lossy UTF-8 (problem
//! `parse failed`). Undecodable bytes never abort: they become U+FFFD and are reported.
//!
//! **Tokens.** Lowercased runs of Unicode alphanumeric characters (`char::is_alphanumeric`)
//! of 2..=40 characters; longer runs are dropped, not truncated. Digits-only tokens are
//! kept (as scikit-learn's default pattern does); `min_df` filters rare numbers.
//! Options: `header_tokens` adds the tokens of Subject, From and To prefixed by the
//! lowercase header name (`subject:free`, `from:example`); `url_hosts` adds the host of
//! every `http(s)://` URL in the text and HTML parts (HTML scanned before reduction to
//! text, so `href`s count) as `host:example.com`.
//!
//! **Values.** Binary presence (default) or counts capped at `cap`. Both only grow when
//! text is appended. `tfidf` and `normalize` exist for completeness and make the spec
//! non-add-monotone ([`TextSpec::add_monotone`] says why), so certify can refuse it.
//!
//! **Vocabulary.** Either explicit terms (sorted, unique; feature `i` is `terms[i]`), built
//! from training data only by [`build_vocabulary`] (`min_df`, `max_features`), or hashing:
//! feature = FNV-1a-64 of the token, folded, mod `2^bits` (see [`super::hash_index`]).

use super::{hash_index, Featurized};
use crate::error::{Error, Result};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Shortest token kept, in characters.
pub const MIN_TOKEN_CHARS: usize = 2;
/// Longest token kept, in characters; longer runs are dropped.
pub const MAX_TOKEN_CHARS: usize = 40;
/// Deepest nesting of attached messages that is read.
const MAX_NESTING: usize = 8;

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

/// Settings of the text featurizer other than the vocabulary.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TextOptions {
    #[serde(default)]
    pub header_tokens: bool,
    #[serde(default)]
    pub url_hosts: bool,
    #[serde(default)]
    pub value: ValueMode,
    /// Multiply values by inverse document frequency. NOT add-monotone.
    #[serde(default)]
    pub tfidf: bool,
    /// Divide each row by its L2 norm. NOT add-monotone.
    #[serde(default)]
    pub normalize: bool,
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

/// What one sample decodes to: token counts (unordered) and problems.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub counts: HashMap<String, u32>,
    pub problems: Vec<String>,
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

    /// Turns an [`Analysis`] into a feature row.
    pub fn map(&self, analysis: Analysis) -> Featurized {
        let mut pairs: Vec<(u32, u32)> = analysis
            .counts
            .iter()
            .filter_map(|(tok, &c)| self.index_of(tok).map(|i| (i, c)))
            .collect();
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
            problems: analysis.problems,
        }
    }
}

/// Builds a sorted vocabulary from training analyses: tokens with document frequency
/// `>= min_df`; with `max_features`, only the most frequent are kept (ties by token
/// string, ascending). Returns the terms (sorted) and their document frequencies.
pub fn build_vocabulary<'a>(
    docs: impl IntoIterator<Item = &'a Analysis>,
    min_df: usize,
    max_features: Option<usize>,
) -> (Vec<String>, Vec<usize>) {
    let mut df: HashMap<&'a str, usize> = HashMap::new();
    for d in docs {
        for tok in d.counts.keys() {
            *df.entry(tok.as_str()).or_insert(0) += 1;
        }
    }
    let mut kept: Vec<(&str, usize)> = df.into_iter().filter(|&(_, n)| n >= min_df).collect();
    if let Some(maxf) = max_features {
        if kept.len() > maxf {
            kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            kept.truncate(maxf);
        }
    }
    kept.sort_unstable_by(|a, b| a.0.cmp(b.0));
    kept.into_iter().map(|(t, n)| (t.to_owned(), n)).unzip()
}

/// scikit-learn's smooth idf: `ln((1 + n) / (1 + df)) + 1`.
pub fn idf_weights(df: &[usize], n_docs: usize) -> Vec<f32> {
    df.iter()
        .map(|&d| (((1 + n_docs) as f64 / (1 + d) as f64).ln() + 1.0) as f32)
        .collect()
}

/// Decodes one sample and counts its tokens.
pub fn analyze(opts: &TextOptions, raw: &[u8]) -> Analysis {
    let mut counts: HashMap<String, u32> = HashMap::new();
    let mut problems = Vec::new();
    extract(
        opts,
        raw,
        &mut |t: &str| {
            if let Some(c) = counts.get_mut(t) {
                *c = c.saturating_add(1);
            } else {
                counts.insert(t.to_owned(), 1);
            }
        },
        &mut problems,
    );
    Analysis { counts, problems }
}

/// Counts the tokens of already decoded text (no email parsing, no header tokens;
/// `host:` tokens when `url_hosts`).
pub fn analyze_plain(opts: &TextOptions, text: &str) -> Analysis {
    let mut counts: HashMap<String, u32> = HashMap::new();
    let mut buf = String::with_capacity(64);
    let mut emit = |t: &str| {
        if let Some(c) = counts.get_mut(t) {
            *c = c.saturating_add(1);
        } else {
            counts.insert(t.to_owned(), 1);
        }
    };
    tokenize(text, "", &mut buf, &mut emit);
    if opts.url_hosts {
        scan_hosts(text, &mut buf, &mut emit);
    }
    Analysis {
        counts,
        problems: Vec::new(),
    }
}

/// The text a sample decodes to (bodies only, no header or host tokens), for tools such
/// as the benchmark that compare with other tokenizers on the same text.
pub fn decoded_text(raw: &[u8]) -> String {
    let mut out = String::new();
    let mut problems = Vec::new();
    let opts = TextOptions::default();
    walk_text(
        &opts,
        raw,
        &mut |t, _| {
            out.push_str(t);
            out.push('\n');
        },
        &mut problems,
    );
    out
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

/// What a piece of decoded text is.
#[derive(Clone, Copy)]
enum Piece {
    Body,
    /// Header text, tokens prefixed with e.g. `subject:`.
    Header(&'static str),
    /// Text to scan for URL hosts only.
    Hosts,
}

fn walk_text(
    opts: &TextOptions,
    raw: &[u8],
    f: &mut dyn FnMut(&str, Piece),
    problems: &mut Vec<String>,
) {
    if !looks_like_email(raw) {
        problems.push("no headers: read as plain text".into());
        plain(opts, raw, f, problems);
        return;
    }
    let parser = MessageParser::new();
    match parser.parse(raw) {
        None => {
            problems.push("parse failed: raw text used".into());
            plain(opts, raw, f, problems);
        }
        Some(msg) => {
            if opts.header_tokens {
                if let Some(s) = msg.subject() {
                    f(s, Piece::Header("subject:"));
                }
                for (addr, prefix) in [(msg.from(), "from:"), (msg.to(), "to:")] {
                    if let Some(a) = addr {
                        for a in a.iter() {
                            if let Some(n) = a.name() {
                                f(n, Piece::Header(prefix));
                            }
                            if let Some(x) = a.address() {
                                f(x, Piece::Header(prefix));
                            }
                        }
                    }
                }
            }
            message_text(opts, &msg, 0, f, problems);
        }
    }
}

fn plain(
    opts: &TextOptions,
    raw: &[u8],
    f: &mut dyn FnMut(&str, Piece),
    problems: &mut Vec<String>,
) {
    let text = String::from_utf8_lossy(raw);
    if matches!(text, std::borrow::Cow::Owned(_)) {
        problems.push("invalid utf-8: bytes replaced".into());
    }
    f(&text, Piece::Body);
    if opts.url_hosts {
        f(&text, Piece::Hosts);
    }
}

fn message_text(
    opts: &TextOptions,
    msg: &Message<'_>,
    depth: usize,
    f: &mut dyn FnMut(&str, Piece),
    problems: &mut Vec<String>,
) {
    let mut bodies = 0;
    for i in 0..msg.text_body_count() {
        if let Some(t) = msg.body_text(i) {
            bodies += 1;
            f(&t, Piece::Body);
        }
    }
    for part in &msg.parts {
        if part.is_encoding_problem {
            problems.push("mime encoding problem: part decoded as far as possible".into());
        }
        if let Some(cs) = part.content_type().and_then(|ct| ct.attribute("charset")) {
            if !charset_known(cs) {
                problems.push(format!(
                    "unknown charset: {} (read as utf-8)",
                    cs.chars().take(40).collect::<String>()
                ));
            }
        }
        match &part.body {
            PartType::Text(t) | PartType::Html(t) => {
                if t.contains('\u{FFFD}') {
                    problems.push("undecodable bytes: replaced".into());
                }
                if opts.url_hosts {
                    f(t, Piece::Hosts);
                }
            }
            PartType::Message(nested) if depth < MAX_NESTING => {
                bodies += 1;
                message_text(opts, nested, depth + 1, f, problems);
            }
            _ => {}
        }
    }
    if depth == 0 && bodies == 0 {
        problems.push("no text body".into());
    }
}

fn charset_known(cs: &str) -> bool {
    let norm: String = cs
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    norm.contains("utf8")
        || norm == "unicode11utf8"
        || mail_parser::decoders::charsets::map::charset_decoder(cs.as_bytes()).is_some()
}

/// True when the first line is a header field (`Name: value`) or an mbox `From ` line.
pub fn looks_like_email(raw: &[u8]) -> bool {
    let line_end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let line = &raw[..line_end];
    if line.starts_with(b"From ") {
        return true;
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = &line[..colon];
    let name = match name.iter().rposition(|&b| b != b' ' && b != b'\t') {
        Some(end) => &name[..=end],
        None => return false,
    };
    name.iter().all(|&b| (0x21..=0x7e).contains(&b))
}

/// Tokenizes `text`, emitting `prefix + token` for each token.
fn tokenize(text: &str, prefix: &str, buf: &mut String, emit: &mut dyn FnMut(&str)) {
    buf.clear();
    buf.push_str(prefix);
    let base = buf.len();
    let mut n = 0usize;
    let mut flush = |buf: &mut String, n: &mut usize| {
        if (MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(n) {
            emit(buf);
        }
        buf.truncate(base);
        *n = 0;
    };
    for c in text.chars() {
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                n += 1;
                if n <= MAX_TOKEN_CHARS {
                    buf.push(c.to_ascii_lowercase());
                }
            } else if n > 0 {
                flush(buf, &mut n);
            }
        } else if c.is_alphanumeric() {
            n += 1;
            if n <= MAX_TOKEN_CHARS {
                buf.extend(c.to_lowercase());
            }
        } else if n > 0 {
            flush(buf, &mut n);
        }
    }
    if n > 0 {
        flush(buf, &mut n);
    }
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
    fn email_detection() {
        assert!(looks_like_email(b"From: a@b.c\n\nhi"));
        assert!(looks_like_email(
            b"From someone Mon Jan 1\nSubject: x\n\nhi"
        ));
        assert!(!looks_like_email(b"Hello there, friend.\nhow are you"));
        assert!(!looks_like_email(b""));
    }
}
