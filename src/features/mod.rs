//! Featurizers: raw samples (emails, text files, executables) to sparse feature rows.
//!
//! Every featurizer here is built for monotone (addition-robust) models: a feature may only
//! switch on, or grow, when content is *added* to a sample. Values are binary presence or
//! counts capped at `cap`; there is no length normalisation and no TF-IDF in robust mode.
//! The [`text::TextSpec`] fields `tfidf` / `normalize` exist only so that a spec can declare
//! itself non-add-monotone ([`FeaturizerSpec::add_monotone`]), letting `certify` refuse it.
//!
//! Modules, in pipeline order:
//! - [`source`]: enumerate samples from a directory, a file or a tar archive, in a
//!   deterministic order;
//! - [`email`]: decoding emails (mail-parser) and plain text to text;
//! - [`text`]: tokenization and the text spec;
//! - [`bytes`]: hashed byte n-grams and PE/ELF imports (goblin);
//! - [`inputs`]: class paths as streaming passes (archives read member by member);
//! - [`corpus`]: featurize labelled class folders into a CSR matrix and write svmlight;
//! - [`shards`]: the same into svmlight shards, for a corpus bigger than memory.
//!
//! The `nonneg featurize` command line lives in the binary (`src/cli/featurize.rs`).
//!
//! Hashing uses 64-bit FNV-1a ([`fnv1a64`]) folded to 32 bits, `index = (h ^ (h >> 32))
//! mod 2^B`: fixed and documented, so a spec gives the same indices on every machine.

pub mod bytes;
pub mod corpus;
pub mod docs;
pub mod email;
pub mod inputs;
pub mod shards;
pub mod source;
pub mod text;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub use bytes::BytesSpec;
pub use corpus::{featurize_corpus, write_corpus, Corpus, CorpusSummary, SpecSource};
pub use text::{InputKind, TextOptions, TextSpec, ValueMode, Vocabulary};

/// Version of the spec format written by this code.
pub const SPEC_VERSION: u32 = 1;

/// One featurized sample: a sparse row plus what went wrong while reading it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Featurized {
    /// Feature indices, 0-based, sorted ascending, unique.
    pub indices: Vec<u32>,
    /// One value per index (1.0 for presence, a capped count, ...).
    pub values: Vec<f32>,
    /// Problems met while decoding the sample ("kind: detail"); never fatal.
    pub problems: Vec<String>,
}

/// Which featurizer, with all its settings (and the vocabulary when not hashing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeaturizerKind {
    Text(TextSpec),
    Bytes(BytesSpec),
}

/// A complete, serialisable featurizer. Its JSON form also records `n_features` and
/// `"index_base": 1` (the svmlight files we write are 1-based); both are checked on load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "SpecFile", try_from = "SpecFile")]
pub struct FeaturizerSpec {
    pub version: u32,
    pub kind: FeaturizerKind,
}

/// On-disk form of [`FeaturizerSpec`].
#[derive(Serialize, Deserialize)]
struct SpecFile {
    version: u32,
    index_base: u32,
    n_features: usize,
    #[serde(flatten)]
    kind: FeaturizerKind,
}

impl From<FeaturizerSpec> for SpecFile {
    fn from(s: FeaturizerSpec) -> Self {
        SpecFile {
            version: s.version,
            index_base: 1,
            n_features: s.n_features(),
            kind: s.kind,
        }
    }
}

impl TryFrom<SpecFile> for FeaturizerSpec {
    type Error = String;
    fn try_from(f: SpecFile) -> std::result::Result<Self, String> {
        if f.version == 0 || f.version > SPEC_VERSION {
            return Err(format!(
                "featurizer spec version {} is not supported (this build reads up to {SPEC_VERSION})",
                f.version
            ));
        }
        if f.index_base != 1 {
            return Err(format!(
                "index_base {} is not supported (must be 1)",
                f.index_base
            ));
        }
        let spec = FeaturizerSpec {
            version: f.version,
            kind: f.kind,
        };
        spec.validate().map_err(|e| e.to_string())?;
        if spec.n_features() != f.n_features {
            return Err(format!(
                "n_features {} does not match the featurizer settings ({})",
                f.n_features,
                spec.n_features()
            ));
        }
        Ok(spec)
    }
}

impl FeaturizerSpec {
    pub fn text(spec: TextSpec) -> Self {
        FeaturizerSpec {
            version: SPEC_VERSION,
            kind: FeaturizerKind::Text(spec),
        }
    }

    pub fn bytes(spec: BytesSpec) -> Self {
        FeaturizerSpec {
            version: SPEC_VERSION,
            kind: FeaturizerKind::Bytes(spec),
        }
    }

    /// Checks the settings (hash bits in range, vocabulary sorted and unique, ...).
    pub fn validate(&self) -> Result<()> {
        match &self.kind {
            FeaturizerKind::Text(t) => t.validate(),
            FeaturizerKind::Bytes(b) => b.validate(),
        }
    }

    /// Width of the feature rows.
    pub fn n_features(&self) -> usize {
        match &self.kind {
            FeaturizerKind::Text(t) => t.n_features(),
            FeaturizerKind::Bytes(b) => b.n_features(),
        }
    }

    /// `Ok(())` when adding content to a sample can never lower a feature value;
    /// otherwise the human reason.
    pub fn add_monotone(&self) -> std::result::Result<(), String> {
        match &self.kind {
            FeaturizerKind::Text(t) => t.add_monotone(),
            FeaturizerKind::Bytes(_) => Ok(()),
        }
    }

    /// Names of the features (vocabulary tokens, in index order); `None` when hashing.
    pub fn feature_names(&self) -> Option<Vec<String>> {
        match &self.kind {
            FeaturizerKind::Text(t) => t.feature_names(),
            FeaturizerKind::Bytes(_) => None,
        }
    }

    /// Featurizes one raw sample. Never fails: decoding trouble lands in `problems`.
    /// Deterministic; safe to call from many threads at once.
    pub fn featurize(&self, raw: &[u8]) -> Featurized {
        match &self.kind {
            FeaturizerKind::Text(t) => t.featurize(raw),
            FeaturizerKind::Bytes(b) => b.featurize(raw),
        }
    }

    /// Text featurizers: the decoded tokens of `raw` in order of appearance (with
    /// repeats), including `subject:`/`from:`/`to:` and `host:` tokens when enabled; these
    /// are the strings the vocabulary / hash maps to features. Empty for bytes featurizers.
    pub fn tokens(&self, raw: &[u8]) -> Vec<String> {
        match &self.kind {
            FeaturizerKind::Text(t) => t.tokens(raw),
            FeaturizerKind::Bytes(_) => Vec::new(),
        }
    }

    /// Reads a spec written by [`FeaturizerSpec::save`] (or a `<out>.featurizer.json`).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::format(path, format!("not a featurizer spec: {e}")))
    }

    /// Writes the spec as pretty JSON, atomically (temp file in the same folder + rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| Error::invalid(format!("cannot serialise featurizer spec: {e}")))?;
        crate::atomic::write_bytes(path, format!("{json}\n").as_bytes())
    }
}

/// 64-bit FNV-1a of `bytes` (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
#[inline]
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Feature index of `bytes` in a hashed space of `2^bits` features.
#[inline]
pub fn hash_index(bytes: &[u8], bits: u32) -> u32 {
    let h = fnv1a64(bytes);
    let folded = (h ^ (h >> 32)) as u32;
    if bits >= 32 {
        folded
    } else {
        folded & ((1u32 << bits) - 1)
    }
}

/// FxHash-style hasher for in-memory maps of tokens (fast, not DoS-resistant, and NOT the
/// feature hash: feature indices use [`hash_index`]). Map iteration order never reaches
/// the output.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const FX_K: u64 = 0x517c_c1b7_2722_0a95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(FX_K);
    }
}

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

/// The kind of a problem string: the part before the first `": "`.
pub fn problem_kind(problem: &str) -> &str {
    problem.split(": ").next().unwrap_or(problem)
}
