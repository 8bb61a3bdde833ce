//! Decoding a raw sample (email or plain text) to the text the text featurizer
//! tokenizes ([`super::text`]).
//!
//! Which samples are emails is [`InputKind`]'s choice: `auto` (the command line's default)
//! when the sample starts with a mail header block ([`has_mail_header_block`]), `email`
//! (the library default and that of older spec files) when its first line looks like a
//! header field or an mbox `From ` line ([`looks_like_email`]), `text` never. An email is
//! parsed with mail-parser (headers, multipart,
//! base64 / quoted-printable, charsets); the text bodies are used, HTML bodies reduced to
//! text by [`html_to_text`] (tags become spaces; not mail-parser's, which can merge text
//! appended after the last tag into the last word), and attached `message/rfc822` parts
//! are read recursively. A text part declared base64 that mail-parser cannot decode
//! (e.g. words appended after the base64) is decoded leniently: whole valid base64 lines
//! first, the rest as raw text, so appending never hides the decoded part. Anything else
//! is plain text (problem `no headers` when the input was declared email), decoded as lossy
//! UTF-8. If mail-parser gives up, the raw bytes are used as lossy UTF-8 (problem
//! `parse failed`). Undecodable bytes never abort: they become U+FFFD and are reported.

use super::text::{InputKind, TextOptions};
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// Deepest nesting of attached messages that is read.
const MAX_NESTING: usize = 8;
/// Longest HTML5 entity name (`CounterClockwiseContourIntegral`), the `;` look-ahead.
const MAX_ENTITY_NAME: usize = 31;
/// Header names that make a leading `Name: value` block a mail header block (lowercase).
const MAIL_HEADERS: [&str; 13] = [
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "received",
    "message-id",
    "mime-version",
    "content-type",
    "return-path",
    "delivered-to",
    "reply-to",
    "sender",
];

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

/// What a piece of decoded text is.
#[derive(Clone, Copy)]
pub(super) enum Piece {
    Body,
    /// Header text, tokens prefixed with e.g. `subject:`.
    Header(&'static str),
    /// Text to scan for URL hosts only.
    Hosts,
}

/// Whether `raw` is read as an email under `kind`.
pub fn is_email(kind: InputKind, raw: &[u8]) -> bool {
    match kind {
        InputKind::Email => looks_like_email(raw),
        InputKind::Auto => has_mail_header_block(raw),
        InputKind::Text => false,
    }
}

/// Calls `f` with every piece of text of `raw` the options ask for, in order.
pub(super) fn walk_text(
    opts: &TextOptions,
    raw: &[u8],
    f: &mut dyn FnMut(&str, Piece),
    problems: &mut Vec<String>,
) {
    if !is_email(opts.input_kind, raw) {
        // Only an input declared email is missing something when it has no headers.
        if opts.input_kind == InputKind::Email {
            problems.push("no headers: read as plain text".into());
        }
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
            if opts.raw_headers {
                f(
                    &String::from_utf8_lossy(header_block(raw)),
                    Piece::Header("hdr:"),
                );
            }
            if opts.subject_words {
                if let Some(s) = msg.subject() {
                    f(s, Piece::Body);
                }
            }
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

/// The raw header block: everything before the first empty line.
fn header_block(raw: &[u8]) -> &[u8] {
    let mut start = 0;
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' {
            let line = &raw[start..i];
            if line.is_empty() || line == b"\r" {
                return &raw[..start];
            }
            start = i + 1;
        }
    }
    raw
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
    let broken_b64 = |id: usize| msg.parts.get(id).is_some_and(is_broken_base64_text);
    for &id in &msg.text_body {
        if broken_b64(id as usize) {
            continue; // read leniently below
        }
        match msg.parts.get(id as usize).map(|p| &p.body) {
            Some(PartType::Text(t)) => {
                bodies += 1;
                f(t, Piece::Body);
            }
            Some(PartType::Html(h)) => {
                bodies += 1;
                f(&html_to_text(h), Piece::Body);
            }
            _ => {}
        }
    }
    for part in msg.parts.iter().filter(|p| is_broken_base64_text(p)) {
        bodies += 1;
        lenient_base64_text(opts, part, f);
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

/// A text/* part declared base64 whose body mail-parser could not decode (e.g. text was
/// appended after the base64). Such parts are decoded leniently, so that appending to a
/// base64 body never hides what was there before.
fn is_broken_base64_text(part: &mail_parser::MessagePart<'_>) -> bool {
    part.is_encoding_problem
        && part
            .content_transfer_encoding()
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("base64"))
        && part
            .content_type()
            .is_none_or(|ct| ct.ctype().eq_ignore_ascii_case("text"))
}

/// Decodes the longest prefix of whole base64 lines, then reads the rest as raw text.
fn lenient_base64_text(
    opts: &TextOptions,
    part: &mail_parser::MessagePart<'_>,
    f: &mut dyn FnMut(&str, Piece),
) {
    let raw = part.contents();
    let mut decoded = Vec::with_capacity(raw.len() / 4 * 3);
    let (mut acc, mut nbits) = (0u32, 0u32);
    let mut pos = 0;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let body = line.trim_ascii();
        // The characters mail-parser's MIME base64 decoder accepts (it skips blanks and
        // single dashes), so a valid body decodes exactly as mail-parser decodes it.
        let ok = |b: u8| b.is_ascii_alphanumeric() || b"+/= \t\r-".contains(&b);
        if !body.iter().all(|&b| ok(b)) || body.windows(2).any(|w| w == b"--") {
            break;
        }
        for &b in body {
            let v = match b {
                b'A'..=b'Z' => b - b'A',
                b'a'..=b'z' => b - b'a' + 26,
                b'0'..=b'9' => b - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b' ' | b'\t' | b'\r' | b'-' => continue,
                _ => {
                    // '=' padding: drop the partial byte.
                    nbits = 0;
                    acc = 0;
                    continue;
                }
            };
            acc = (acc << 6) | v as u32;
            nbits += 6;
            if nbits >= 8 {
                nbits -= 8;
                decoded.push((acc >> nbits) as u8);
                acc &= (1 << nbits) - 1;
            }
        }
        pos += line.len();
    }
    let charset = part.content_type().and_then(|ct| ct.attribute("charset"));
    let text = match charset.and_then(|c| charset_decoder(c.as_bytes())) {
        Some(dec) => dec(&decoded),
        None => String::from_utf8_lossy(&decoded).into_owned(),
    };
    let is_html = part
        .content_type()
        .and_then(|ct| ct.subtype())
        .is_some_and(|s| s.eq_ignore_ascii_case("html"));
    if opts.url_hosts {
        f(&text, Piece::Hosts);
    }
    if is_html {
        f(&html_to_text(&text), Piece::Body);
    } else {
        f(&text, Piece::Body);
    }
    let rest = String::from_utf8_lossy(&raw[pos..]);
    f(&rest, Piece::Body);
    if opts.url_hosts {
        f(&rest, Piece::Hosts);
    }
}

/// HTML to text for tokenizing: tags and comments become a space (so words on either
/// side of a tag never merge), `<script>` / `<style>` contents are dropped, common
/// entities (the whole HTML5 table and numeric ones, by html-escape) are decoded. A left-to-right state machine: the text of a prefix is
/// unchanged when more HTML is appended (up to one entity / tag look-ahead at the end),
/// which keeps the featurizer add-monotone. (mail-parser's `html_to_text` joins words
/// across tags, so appended text could merge with, and hide, the last word.)
pub fn html_to_text(html: &str) -> String {
    let b = html.as_bytes();
    let mut out = String::with_capacity(html.len());
    let mut i = 0;
    let mut text_start = 0; // start of the pending run of plain text
    while i < b.len() {
        match b[i] {
            b'<' if b.get(i + 1).is_some_and(|&c| {
                c.is_ascii_alphabetic() || c == b'/' || c == b'!' || c == b'?'
            }) =>
            {
                out.push_str(&html[text_start..i]);
                out.push(' ');
                if b[i..].starts_with(b"<!--") {
                    i = find(b, i + 4, b"-->").map_or(b.len(), |e| e + 3);
                } else {
                    let name_start = i + 1;
                    let mut name_end = name_start;
                    while name_end < b.len() && b[name_end].is_ascii_alphanumeric() {
                        name_end += 1;
                    }
                    let name = &b[name_start..name_end];
                    i = b[i..]
                        .iter()
                        .position(|&c| c == b'>')
                        .map_or(b.len(), |e| i + e + 1);
                    for raw_tag in [&b"script"[..], b"style"] {
                        if name.eq_ignore_ascii_case(raw_tag) {
                            let close = [b"</", raw_tag].concat();
                            i = find_ci(b, i, &close).map_or(b.len(), |e| {
                                b[e..]
                                    .iter()
                                    .position(|&c| c == b'>')
                                    .map_or(b.len(), |k| e + k + 1)
                            });
                        }
                    }
                }
                text_start = i;
            }
            b'&' => {
                let end = b[i + 1..b.len().min(i + 2 + MAX_ENTITY_NAME)]
                    .iter()
                    .position(|&c| c == b';');
                let Some(len) = end else {
                    i += 1;
                    continue;
                };
                let name = &html[i + 1..i + 1 + len];
                if !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'#') || name.is_empty()
                {
                    i += 1;
                    continue;
                }
                out.push_str(&html[text_start..i]);
                let entity = &html[i..i + len + 2];
                match html_escape::decode_html_entities(entity) {
                    // Unchanged: not an entity html-escape knows; a space, as for a tag.
                    std::borrow::Cow::Borrowed(_) => out.push(' '),
                    decoded => out.push_str(&decoded),
                }
                i += len + 2;
                text_start = i;
            }
            _ => i += 1,
        }
    }
    if text_start < b.len() {
        out.push_str(&html[text_start..]);
    }
    out
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

fn find_ci(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
        .map(|p| from + p)
}

fn charset_known(cs: &str) -> bool {
    let norm: String = cs
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    norm.contains("utf8") || norm == "unicode11utf8" || charset_decoder(cs.as_bytes()).is_some()
}

/// True when the first line is a header field (`Name: value`) or an mbox `From ` line.
pub fn looks_like_email(raw: &[u8]) -> bool {
    let line_end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let line = &raw[..line_end];
    if line.starts_with(b"From ") {
        return true;
    }
    field_name(line).is_some()
}

/// True when `raw` starts with an RFC 5322 header block that names a common mail header:
/// an optional mbox `From ` line, then header fields (`Name: value`, folded lines
/// allowed) of which at least one is in [`MAIL_HEADERS`]. So `URGENT: call now` is text.
pub fn has_mail_header_block(raw: &[u8]) -> bool {
    let mut lines = raw.split(|&b| b == b'\n').peekable();
    if lines.peek().is_some_and(|l| l.starts_with(b"From ")) {
        lines.next(); // mbox separator; the fields that follow decide
    }
    let mut in_header = false;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if in_header && line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            continue; // folded continuation of the previous field
        }
        let Some(name) = field_name(line) else {
            return false;
        };
        if MAIL_HEADERS
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
        {
            return true;
        }
        in_header = true;
    }
    false
}

/// The name of a header field line (`Name: value`; blanks before the colon allowed, as
/// RFC 5322's obsolete syntax does), or `None` when the line is not one.
fn field_name(line: &[u8]) -> Option<&[u8]> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    let end = name.iter().rposition(|&b| b != b' ' && b != b'\t')?;
    let name = &name[..=end];
    name.iter()
        .all(|&b| (0x21..=0x7e).contains(&b))
        .then_some(name)
}
