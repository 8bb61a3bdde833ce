//! Byte featurizer: hashed byte n-gram presence, plus optional executable imports.
//!
//! Feature of an n-gram = FNV-1a-64 of its `n` bytes, folded, mod `2^hash_bits` (see
//! [`super::hash_index`]); value 1.0. Every n-gram of a sample is still present after
//! bytes are appended, so appending only switches features on.
//!
//! Files are streamed in 64 KiB chunks ([`BytesSpec::featurize_reader`]); memory is the
//! chunk plus the set of active hashes (a vector compacted by sort + dedup, so at most
//! about `2 * min(2^hash_bits, distinct n-grams)` entries), never the file.
//!
//! With `imports`, the import names of PE files (`MZ`) and ELF files (`\x7fELF`) are
//! parsed with goblin and hashed **into the same space** as the n-grams (collisions with
//! n-grams are possible and accepted, as with any hashing):
//! - PE: `import:<dll>!<function>` and `import:<dll>` (lowercase; ordinal-only imports
//!   appear as goblin names them, `ORDINAL n`);
//! - ELF: `import:<needed library>` per `DT_NEEDED`, and `import:!<symbol>` per undefined
//!   dynamic symbol (ELF does not bind symbols to a library).
//!
//! Parsing needs the whole file in memory, so with `imports` a file is read whole. A
//! truncated or corrupt executable is still featurized by its bytes; the parse failure
//! is reported as a problem (`executable parse failed: ...`), never a crash (goblin panics
//! are caught too).

use super::{hash_index, Featurized};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

const CHUNK: usize = 64 * 1024;

/// Settings of the byte featurizer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BytesSpec {
    /// n-gram length in bytes (1..=64).
    pub ngram: usize,
    /// log2 of the number of features (1..=31).
    pub hash_bits: u32,
    /// Also hash PE/ELF import names into the space.
    #[serde(default)]
    pub imports: bool,
}

impl Default for BytesSpec {
    fn default() -> Self {
        BytesSpec {
            ngram: 4,
            hash_bits: 20,
            imports: false,
        }
    }
}

/// A set of active feature indices with bounded memory.
struct ActiveSet {
    v: Vec<u32>,
    compact_at: usize,
}

impl ActiveSet {
    fn new() -> Self {
        ActiveSet {
            v: Vec::new(),
            compact_at: 1 << 16,
        }
    }
    #[inline]
    fn insert(&mut self, i: u32) {
        self.v.push(i);
        if self.v.len() >= self.compact_at {
            self.compact();
            self.compact_at = (2 * self.v.len()).max(1 << 16);
        }
    }
    fn compact(&mut self) {
        self.v.sort_unstable();
        self.v.dedup();
    }
    fn into_sorted(mut self) -> Vec<u32> {
        self.compact();
        self.v
    }
}

/// Streams n-grams over chunks, carrying the last `n - 1` bytes across chunk borders.
struct NgramHasher {
    n: usize,
    bits: u32,
    carry: Vec<u8>,
    window: Vec<u8>,
}

impl NgramHasher {
    fn new(n: usize, bits: u32) -> Self {
        NgramHasher {
            n,
            bits,
            carry: Vec::with_capacity(n),
            window: Vec::with_capacity(CHUNK + n),
        }
    }
    fn feed(&mut self, chunk: &[u8], set: &mut ActiveSet) {
        let n = self.n;
        // Windows that straddle the previous chunk.
        self.window.clear();
        self.window.extend_from_slice(&self.carry);
        let head = chunk.len().min(n.saturating_sub(1));
        self.window.extend_from_slice(&chunk[..head]);
        if self.window.len() >= n {
            for w in self.window.windows(n) {
                set.insert(hash_index(w, self.bits));
            }
        }
        for w in chunk.windows(n) {
            set.insert(hash_index(w, self.bits));
        }
        // New carry: the last n-1 bytes of (carry + chunk).
        let keep = n - 1;
        if chunk.len() >= keep {
            self.carry.clear();
            self.carry.extend_from_slice(&chunk[chunk.len() - keep..]);
        } else {
            self.carry.extend_from_slice(chunk);
            let excess = self.carry.len().saturating_sub(keep);
            self.carry.drain(..excess);
        }
    }
}

impl BytesSpec {
    pub fn validate(&self) -> Result<()> {
        if !(1..=64).contains(&self.ngram) {
            return Err(Error::invalid(format!(
                "bytes featurizer: ngram must be in 1..=64, got {}",
                self.ngram
            )));
        }
        if !(1..=31).contains(&self.hash_bits) {
            return Err(Error::invalid(format!(
                "bytes featurizer: hash bits must be in 1..=31, got {}",
                self.hash_bits
            )));
        }
        Ok(())
    }

    pub fn n_features(&self) -> usize {
        1usize << self.hash_bits
    }

    /// Featurizes bytes in memory.
    pub fn featurize(&self, raw: &[u8]) -> Featurized {
        let mut set = ActiveSet::new();
        let mut h = NgramHasher::new(self.ngram, self.hash_bits);
        for chunk in raw.chunks(CHUNK) {
            h.feed(chunk, &mut set);
        }
        let mut problems = Vec::new();
        if self.imports {
            for tok in import_tokens(raw, &mut problems) {
                set.insert(hash_index(tok.as_bytes(), self.hash_bits));
            }
        }
        finish(set, problems)
    }

    /// Featurizes a stream in 64 KiB chunks with bounded memory (n-grams only: imports
    /// need the whole file, see [`BytesSpec::featurize_path`]).
    pub fn featurize_reader<R: Read>(&self, mut r: R) -> std::io::Result<Featurized> {
        let mut set = ActiveSet::new();
        let mut h = NgramHasher::new(self.ngram, self.hash_bits);
        let mut buf = vec![0u8; CHUNK];
        loop {
            let got = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.feed(&buf[..got], &mut set);
        }
        Ok(finish(set, Vec::new()))
    }

    /// Featurizes a file: streamed without `imports`, read whole with `imports`.
    pub fn featurize_path(&self, path: &Path) -> Result<Featurized> {
        if self.imports {
            let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            Ok(self.featurize(&raw))
        } else {
            let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            self.featurize_reader(f).map_err(|e| Error::io(path, e))
        }
    }

    /// The import tokens of an executable (empty for other files).
    pub fn import_tokens(&self, raw: &[u8]) -> (Vec<String>, Vec<String>) {
        let mut problems = Vec::new();
        let toks = import_tokens(raw, &mut problems);
        (toks, problems)
    }
}

fn finish(set: ActiveSet, problems: Vec<String>) -> Featurized {
    let indices = set.into_sorted();
    let values = vec![1.0; indices.len()];
    Featurized {
        indices,
        values,
        problems,
    }
}

fn import_tokens(raw: &[u8], problems: &mut Vec<String>) -> Vec<String> {
    let is_pe = raw.starts_with(b"MZ");
    let is_elf = raw.starts_with(b"\x7fELF");
    if !is_pe && !is_elf {
        return Vec::new();
    }
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if is_pe {
            pe_imports(raw)
        } else {
            elf_imports(raw)
        }
    }));
    match parsed {
        Ok(Ok(toks)) => toks,
        Ok(Err(e)) => {
            let kind = if is_pe { "PE" } else { "ELF" };
            problems.push(format!("executable parse failed: {kind}: {e}"));
            Vec::new()
        }
        Err(_) => {
            problems.push("executable parse failed: parser panicked".into());
            Vec::new()
        }
    }
}

fn pe_imports(raw: &[u8]) -> std::result::Result<Vec<String>, goblin::error::Error> {
    let pe = goblin::pe::PE::parse(raw)?;
    let mut out = Vec::new();
    for lib in &pe.libraries {
        out.push(format!("import:{}", lib.to_lowercase()));
    }
    for imp in &pe.imports {
        out.push(format!(
            "import:{}!{}",
            imp.dll.to_lowercase(),
            imp.name.to_lowercase()
        ));
    }
    Ok(out)
}

fn elf_imports(raw: &[u8]) -> std::result::Result<Vec<String>, goblin::error::Error> {
    let elf = goblin::elf::Elf::parse(raw)?;
    let mut out = Vec::new();
    for lib in &elf.libraries {
        out.push(format!("import:{}", lib.to_lowercase()));
    }
    for sym in elf.dynsyms.iter() {
        if sym.is_import() {
            if let Some(name) = elf.dynstrtab.get_at(sym.st_name) {
                if !name.is_empty() {
                    out.push(format!("import:!{}", name.to_lowercase()));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_equals_whole() {
        let spec = BytesSpec {
            ngram: 5,
            hash_bits: 16,
            imports: false,
        };
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let whole = spec.featurize(&data);
        // A reader that returns odd-sized pieces.
        struct Odd<'a>(&'a [u8], usize);
        impl Read for Odd<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.1 = self.1 % 7 + 1;
                let k = self.1.min(buf.len()).min(self.0.len());
                buf[..k].copy_from_slice(&self.0[..k]);
                self.0 = &self.0[k..];
                Ok(k)
            }
        }
        let streamed = spec.featurize_reader(Odd(&data, 0)).unwrap();
        assert_eq!(whole, streamed);
        // Reference: direct windows.
        let mut reference: Vec<u32> = data.windows(5).map(|w| hash_index(w, 16)).collect();
        reference.sort_unstable();
        reference.dedup();
        assert_eq!(whole.indices, reference);
    }
}
