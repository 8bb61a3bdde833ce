//! The class paths of a corpus as the input of streaming passes: folders and files are
//! listed (their samples read lazily), archives are indexed by a pass over their headers
//! and read again, member by member, for each later pass; no pass holds more than a batch
//! of [`BATCH`] raw samples.
//!
//! - The vocabulary pass counts document frequencies only; the order it meets samples in
//!   does not matter (a count per token; the vocabulary is chosen by count, then token).
//! - The writing pass hands rows on in [`super::source`] order (each path's samples sorted
//!   by name) although an archive's members arrive in archive order: each row is placed by
//!   its member's rank, held in memory (the one-file output holds every row anyway) or
//!   spilled to an unnamed temporary file beside the output (shards: memory then stays one
//!   shard plus a batch) and read back in rank order.

use super::corpus::{email_defaults_note, featurize_rows, with_email_defaults, SpecSource};
use super::source::{self, ArchiveIndex, PathKind, Sample};
use super::text::{self, TermIndex, TextOptions};
use super::{FastMap, Featurized, FeaturizerSpec};
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Samples decoded at a time, in parallel (bounds the memory of a pass).
pub const BATCH: usize = 1024;

/// One class path's samples.
enum Input {
    /// A folder or a single file: its samples in order, read when featurized.
    Listed(Vec<Sample>),
    /// An archive, read again for each pass.
    Archive(ArchiveIndex),
}

/// Every class path's samples, tagged with the class index.
#[derive(Default)]
pub(crate) struct Inputs {
    items: Vec<(usize, Input)>,
    /// Non-regular entries skipped (symlinks, devices, ...).
    pub(crate) skipped: usize,
}

impl Input {
    fn len(&self) -> usize {
        match self {
            Input::Listed(samples) => samples.len(),
            Input::Archive(index) => index.names.len(),
        }
    }

    /// Hands `f` the samples in batches of at most [`BATCH`], each with its rank (its row
    /// among this input's); `f` breaking stops the pass. Whether `f` stopped it.
    fn for_each_batch(
        &self,
        mut f: impl FnMut(&[(usize, Sample)]) -> Result<ControlFlow<()>>,
    ) -> Result<bool> {
        match self {
            Input::Listed(samples) => {
                for (k, chunk) in samples.chunks(BATCH).enumerate() {
                    let batch: Vec<(usize, Sample)> = (k * BATCH..).zip(chunk.to_vec()).collect();
                    if f(&batch)?.is_break() {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Input::Archive(index) => {
                let mut flow = ControlFlow::Continue(());
                index.stream(BATCH, |batch| {
                    flow = f(batch)?;
                    Ok(flow)
                })?;
                Ok(flow.is_break())
            }
        }
    }
}

impl Inputs {
    /// Lists the folders and files and indexes the archives of `classes`.
    pub(crate) fn new(classes: &[(String, PathBuf)]) -> Result<Self> {
        let mut inputs = Inputs::default();
        for (ci, (_, path)) in classes.iter().enumerate() {
            inputs.push_path(ci, path)?;
        }
        Ok(inputs)
    }

    /// Adds the samples of `path` (a folder, a file or an archive) for class `ci`.
    pub(crate) fn push_path(&mut self, ci: usize, path: &Path) -> Result<()> {
        let input = match source::path_kind(path)? {
            PathKind::Archive(kind) => {
                let index = ArchiveIndex::new(path, kind)?;
                self.skipped += index.skipped_non_regular;
                Input::Archive(index)
            }
            PathKind::Dir | PathKind::File => {
                let listing = source::list(path)?;
                self.skipped += listing.skipped_non_regular;
                Input::Listed(listing.samples)
            }
        };
        self.items.push((ci, input));
        Ok(())
    }

    /// Adds one sample (in memory) for class `ci`, after the samples added before.
    pub(crate) fn push_sample(&mut self, ci: usize, sample: Sample) {
        match self.items.last_mut() {
            Some((c, Input::Listed(samples))) if *c == ci => samples.push(sample),
            _ => self.items.push((ci, Input::Listed(vec![sample]))),
        }
    }

    /// The number of samples.
    pub(crate) fn len(&self) -> usize {
        self.items.iter().map(|(_, input)| input.len()).sum()
    }

    /// Every sample, in row order, when no input is an archive (else `self` back).
    pub(crate) fn into_listed(self) -> std::result::Result<Vec<(usize, Sample)>, Self> {
        if self
            .items
            .iter()
            .any(|(_, input)| matches!(input, Input::Archive(_)))
        {
            return Err(self);
        }
        let mut samples = Vec::with_capacity(self.len());
        for (ci, input) in self.items {
            if let Input::Listed(listed) = input {
                samples.extend(listed.into_iter().map(|s| (ci, s)));
            }
        }
        Ok(samples)
    }

    /// Hands `f` every sample in batches (in archive order within an archive) with its
    /// class index; `f` breaking stops the pass.
    fn for_each_batch(
        &self,
        mut f: impl FnMut(usize, &[(usize, Sample)]) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        for (ci, input) in &self.items {
            if input.for_each_batch(|batch| f(*ci, batch))? {
                break;
            }
        }
        Ok(())
    }

    /// The writing pass: featurizes every sample with `spec` (`index`: its term index)
    /// and hands `sink` each row in row order, with its class index and sample name. An
    /// archive's rows are held until it has been read: in memory, or in a temporary file
    /// in the folder `spill` when given.
    pub(crate) fn featurize_in_order(
        &self,
        spec: &FeaturizerSpec,
        index: Option<&TermIndex<'_>>,
        spill: Option<&Path>,
        mut sink: impl FnMut(usize, &str, Featurized) -> Result<()>,
    ) -> Result<()> {
        for (ci, input) in &self.items {
            match input {
                Input::Listed(_) => {
                    input.for_each_batch(|batch| {
                        for ((_, s), row) in batch.iter().zip(featurize_rows(spec, index, batch)?) {
                            sink(*ci, &s.name, row)?;
                        }
                        Ok(ControlFlow::Continue(()))
                    })?;
                }
                Input::Archive(archive) => {
                    let mut held = Held::new(archive.names.len(), spill)?;
                    input.for_each_batch(|batch| {
                        for ((rank, _), row) in
                            batch.iter().zip(featurize_rows(spec, index, batch)?)
                        {
                            held.put(*rank, row)?;
                        }
                        Ok(ControlFlow::Continue(()))
                    })?;
                    for (rank, name) in archive.names.iter().enumerate() {
                        sink(*ci, name, held.take(rank)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// An archive's featurized rows, put in archive order and taken in rank order, encoded
/// one after another (8 bytes a non-zero, no allocation a row).
struct Held {
    store: Store,
    /// Per rank: the row's offset and length.
    at: Vec<(u64, u32)>,
    end: u64,
    buf: Vec<u8>,
}

enum Store {
    Memory(Vec<u8>),
    /// An unnamed file in `dir` (gone when dropped, or when the process dies).
    Spill {
        dir: PathBuf,
        file: BufWriter<File>,
    },
}

impl Held {
    fn new(n: usize, spill: Option<&Path>) -> Result<Self> {
        let store = match spill {
            None => Store::Memory(Vec::new()),
            Some(dir) => {
                let file = tempfile::tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
                Store::Spill {
                    dir: dir.to_path_buf(),
                    file: BufWriter::with_capacity(1 << 20, file),
                }
            }
        };
        Ok(Held {
            store,
            at: vec![(0, 0); n],
            end: 0,
            buf: Vec::new(),
        })
    }

    fn put(&mut self, rank: usize, row: Featurized) -> Result<()> {
        self.buf.clear();
        encode(&row, &mut self.buf);
        let len = u32::try_from(self.buf.len())
            .map_err(|_| Error::invalid(format!("a featurized row of {} bytes", self.buf.len())))?;
        match &mut self.store {
            Store::Memory(bytes) => bytes.extend_from_slice(&self.buf),
            Store::Spill { dir, file } => {
                file.write_all(&self.buf).map_err(|e| Error::io(dir, e))?
            }
        }
        self.at[rank] = (self.end, len);
        self.end += len as u64;
        Ok(())
    }

    fn take(&mut self, rank: usize) -> Result<Featurized> {
        let (offset, len) = self.at[rank];
        let row = match &mut self.store {
            Store::Memory(bytes) => decode(&bytes[offset as usize..offset as usize + len as usize]),
            Store::Spill { dir, file } => {
                let dir: &Path = dir;
                file.flush().map_err(|e| Error::io(dir, e))?;
                let f = file.get_mut();
                self.buf.resize(len as usize, 0);
                f.seek(SeekFrom::Start(offset))
                    .and_then(|_| f.read_exact(&mut self.buf))
                    .map_err(|e| Error::io(dir, e))?;
                decode(&self.buf)
            }
        };
        row.ok_or_else(|| Error::invalid("a temporary store of featurized rows is corrupt"))
    }
}

/// A row as bytes: index and problem counts, indices, values, then each problem's length
/// and text (little-endian u32s and f32s).
fn encode(row: &Featurized, out: &mut Vec<u8>) {
    out.extend((row.indices.len() as u32).to_le_bytes());
    out.extend((row.problems.len() as u32).to_le_bytes());
    out.extend(row.indices.iter().flat_map(|i| i.to_le_bytes()));
    out.extend(row.values.iter().flat_map(|v| v.to_le_bytes()));
    for p in &row.problems {
        out.extend((p.len() as u32).to_le_bytes());
        out.extend(p.as_bytes());
    }
}

/// The row [`encode`] wrote; `None` when `bytes` is not one.
fn decode(mut bytes: &[u8]) -> Option<Featurized> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = bytes.split_at_checked(n)?;
        *bytes = rest;
        Some(head)
    }
    fn u32s<'a>(bytes: &mut &'a [u8], n: usize) -> Option<impl Iterator<Item = [u8; 4]> + 'a> {
        let raw = take(bytes, n.checked_mul(4)?)?;
        Some(raw.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]))
    }
    let mut counts = u32s(&mut bytes, 2)?.map(u32::from_le_bytes);
    let (n, n_problems) = (counts.next()? as usize, counts.next()? as usize);
    let indices = u32s(&mut bytes, n)?.map(u32::from_le_bytes).collect();
    let values = u32s(&mut bytes, n)?.map(f32::from_le_bytes).collect();
    let mut problems = Vec::with_capacity(n_problems.min(bytes.len()));
    for _ in 0..n_problems {
        let len = u32::from_le_bytes(u32s(&mut bytes, 1)?.next()?) as usize;
        problems.push(String::from_utf8(take(&mut bytes, len)?.to_vec()).ok()?);
    }
    bytes.is_empty().then_some(Featurized {
        indices,
        values,
        problems,
    })
}

/// The complete spec: as given, or a vocabulary counted in one pass (two when the email
/// defaults were asked for and a plain-text sample turns up); and the email-defaults line.
pub(crate) fn resolve_spec(
    spec: SpecSource,
    inputs: &Inputs,
) -> Result<(FeaturizerSpec, Option<String>)> {
    let (options, min_df, max_features, email_defaults) = match spec {
        SpecSource::Fixed(spec) => {
            spec.validate()?;
            return Ok((spec, None));
        }
        SpecSource::BuildVocabulary {
            options,
            min_df,
            max_features,
            email_defaults,
        } => (options, min_df, max_features, email_defaults),
    };
    if min_df == 0 {
        return Err(Error::invalid("min_df must be at least 1"));
    }
    let mut counts = None;
    if email_defaults {
        let with = with_email_defaults(options.clone());
        let c = count_terms(&with, inputs, true)?;
        if c.plain == 0 {
            counts = Some((with, c));
        }
    }
    let (options, counts) = match counts {
        Some(found) => found,
        None => {
            let c = count_terms(&options, inputs, false)?;
            (options, c)
        }
    };
    let n = inputs.len();
    let note = email_defaults.then(|| email_defaults_note(counts.plain, n));
    let (names, df): (Vec<&str>, Vec<usize>) = counts.df.iter().map(|(t, &d)| (&**t, d)).unzip();
    let (tspec, _) = text::vocabulary_from_df(options, &names, &df, n, min_df, max_features)?;
    Ok((FeaturizerSpec::text(tspec), note))
}

/// Document frequencies of a pass, and how many samples were plain text.
struct TermCounts {
    df: FastMap<Box<str>, usize>,
    plain: usize,
}

/// Counts the document frequency of every token of `inputs` decoded with `options`; when
/// `stop_at_plain`, stops (incomplete) at the first plain-text sample.
fn count_terms(options: &TextOptions, inputs: &Inputs, stop_at_plain: bool) -> Result<TermCounts> {
    let mut counts = TermCounts {
        df: FastMap::default(),
        plain: 0,
    };
    inputs.for_each_batch(|_, batch| {
        let analyses = batch
            .par_iter()
            .map(|(_, s)| {
                let bytes = s.bytes()?;
                let email = super::email::is_email(options.input_kind, &bytes);
                Ok((email, text::analyze(options, &bytes)))
            })
            .collect::<Result<Vec<_>>>()?;
        for (email, analysis) in analyses {
            counts.plain += !email as usize;
            if !email && stop_at_plain {
                return Ok(ControlFlow::Break(()));
            }
            for (token, _) in analysis.counts() {
                match counts.df.get_mut(token) {
                    Some(d) => *d += 1,
                    None => {
                        counts.df.insert(token.into(), 1);
                    }
                }
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(counts)
}
