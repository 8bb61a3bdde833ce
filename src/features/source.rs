//! Enumerating samples: a directory (recursive), a single file, or a `.tar`, `.tar.gz` /
//! `.tgz`, `.tar.bz2` / `.tbz2` / `.tbz` archive (chosen by extension), read as a stream
//! without unpacking to disk.
//!
//! Order is deterministic: samples are sorted by their name, which is the path relative to
//! the given directory (components joined with `/`), or the member path inside an archive
//! (leading `./` removed). Reading a folder and reading a tar of that folder therefore
//! give the same order (the tar's common folder prefix does not change the sort).
//!
//! Directories are skipped silently; every other non-regular entry (symlinks, hard links,
//! devices, fifos, sockets) is skipped and counted in [`Listing::skipped_non_regular`].
//! Symlinks inside a directory are never followed (the root itself may be a symlink).
//!
//! Memory: directory samples are read lazily, one at a time per worker
//! ([`Sample::bytes`]). An archive given to [`list`] is read into memory whole (its
//! uncompressed size in RAM: for callers that need random access, e.g. `attack`); the
//! featurizing passes use [`ArchiveIndex`] instead: a first pass reads the headers only
//! (member data is decompressed and dropped) for the names and their sorted ranks, and
//! each later pass streams the members in archive order, a batch at a time
//! ([`ArchiveIndex::stream`]), so memory does not grow with the archive's size.

use crate::error::{Error, Result};
use std::borrow::Cow;
use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Where a sample's bytes are.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleData {
    /// A regular file, read on demand.
    File(PathBuf),
    /// An archive member, already in memory.
    Memory(Vec<u8>),
}

/// One sample: its relative name and where its bytes are.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Path relative to the root directory, or the member path in an archive, or the
    /// file name for a single file.
    pub name: String,
    pub data: SampleData,
}

impl Sample {
    /// The sample's bytes (reads the file for directory samples).
    pub fn bytes(&self) -> Result<Cow<'_, [u8]>> {
        match &self.data {
            SampleData::File(p) => Ok(Cow::Owned(std::fs::read(p).map_err(|e| Error::io(p, e))?)),
            SampleData::Memory(v) => Ok(Cow::Borrowed(v)),
        }
    }

    /// The file behind the sample, when it is a regular file on disk.
    pub fn path(&self) -> Option<&Path> {
        match &self.data {
            SampleData::File(p) => Some(p),
            SampleData::Memory(_) => None,
        }
    }
}

/// The samples found under a path, in deterministic order.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub samples: Vec<Sample>,
    /// Non-regular entries skipped (symlinks, hard links, devices, ...).
    pub skipped_non_regular: usize,
    /// Names of the skipped entries, for messages.
    pub skipped_names: Vec<String>,
}

/// What kind of archive a path names, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Tar,
    TarGz,
    TarBz2,
}

/// The archive kind of `path` from its extension (case-insensitive), if any.
pub fn archive_kind(path: &Path) -> Option<ArchiveKind> {
    let name = path.file_name()?.to_string_lossy().to_lowercase();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Some(ArchiveKind::TarGz)
    } else if name.ends_with(".tar.bz2") || name.ends_with(".tbz2") || name.ends_with(".tbz") {
        Some(ArchiveKind::TarBz2)
    } else if name.ends_with(".tar") {
        Some(ArchiveKind::Tar)
    } else {
        None
    }
}

/// Lists the samples under `path` (directory, file or archive).
pub fn list(path: &Path) -> Result<Listing> {
    let mut listing = Listing::default();
    match path_kind(path)? {
        PathKind::Dir => walk(path, "", &mut listing)?,
        PathKind::Archive(kind) => for_each_member(path, kind, |name, entry| {
            match entry {
                Some(entry) => listing.samples.push(Sample {
                    name,
                    data: SampleData::Memory(entry.read_all()?),
                }),
                None => {
                    listing.skipped_non_regular += 1;
                    listing.skipped_names.push(name);
                }
            }
            Ok(ControlFlow::Continue(()))
        })?,
        PathKind::File => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            listing.samples.push(Sample {
                name,
                data: SampleData::File(path.to_path_buf()),
            });
        }
    }
    // Stable sort by name (byte order of the UTF-8 / lossy name).
    listing.samples.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(listing)
}

/// What a sample path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Dir,
    Archive(ArchiveKind),
    /// Any other regular file: one sample.
    File,
}

/// The kind of the sample path `path`; anything but a directory or a regular file is an
/// error.
pub fn path_kind(path: &Path) -> Result<PathKind> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        Ok(PathKind::Dir)
    } else if !meta.is_file() {
        // Checked before opening: a FIFO or device would block or never end.
        Err(Error::format(
            path,
            "not a directory, regular file or tar archive",
        ))
    } else {
        Ok(archive_kind(path).map_or(PathKind::File, PathKind::Archive))
    }
}

fn walk(dir: &Path, prefix: &str, listing: &mut Listing) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(|e| Error::io(&path, e))?;
        let name = if prefix.is_empty() {
            entry.file_name().to_string_lossy().into_owned()
        } else {
            format!("{prefix}/{}", entry.file_name().to_string_lossy())
        };
        if ft.is_dir() {
            walk(&path, &name, listing)?;
        } else if ft.is_file() {
            listing.samples.push(Sample {
                name,
                data: SampleData::File(path),
            });
        } else {
            listing.skipped_non_regular += 1;
            listing.skipped_names.push(name);
        }
    }
    Ok(())
}

/// An archive's regular members, found by a pass that reads the headers only (the data
/// is decompressed and dropped): their names in sorted order and each member's place in
/// that order, so later passes can stream the members in archive order.
#[derive(Debug, Clone)]
pub struct ArchiveIndex {
    pub path: PathBuf,
    kind: ArchiveKind,
    /// The regular members' names, sorted as [`list`] sorts them.
    pub names: Vec<String>,
    /// For the `i`-th regular member in archive order: its rank in `names`.
    pub ranks: Vec<usize>,
    /// Non-regular entries skipped (directories excepted).
    pub skipped_non_regular: usize,
}

impl ArchiveIndex {
    /// Indexes the archive `path` of `kind`.
    pub fn new(path: &Path, kind: ArchiveKind) -> Result<Self> {
        let mut names = Vec::new();
        let mut skipped_non_regular = 0;
        for_each_member(path, kind, |name, entry| {
            match entry {
                Some(_) => names.push(name),
                None => skipped_non_regular += 1,
            }
            Ok(ControlFlow::Continue(()))
        })?;
        // Stable, as `list`'s sort: members of the same name keep their archive order.
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_by(|&a, &b| names[a].cmp(&names[b]));
        let mut ranks = vec![0; names.len()];
        for (rank, &i) in order.iter().enumerate() {
            ranks[i] = rank;
        }
        let mut slots: Vec<Option<String>> = names.into_iter().map(Some).collect();
        let names = order
            .iter()
            .map(|&i| slots[i].take().unwrap_or_default())
            .collect();
        Ok(ArchiveIndex {
            path: path.to_path_buf(),
            kind,
            names,
            ranks,
            skipped_non_regular,
        })
    }

    /// Reads the members again, in archive order, and hands them to `f` in batches of at
    /// most `batch`, each member with its rank; `f` breaking stops the reading. Only one
    /// batch of members is in memory at a time. An archive that no longer has the indexed
    /// members (changed in between) is an error.
    pub fn stream(
        &self,
        batch: usize,
        mut f: impl FnMut(&[(usize, Sample)]) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let mut members: Vec<(usize, Sample)> = Vec::with_capacity(batch.min(self.ranks.len()));
        let mut flush = |members: &mut Vec<(usize, Sample)>| {
            let flow = f(members);
            live_members(-(members.len() as isize));
            members.clear();
            flow
        };
        let changed = || Error::format(&self.path, "the archive changed while it was being read");
        let mut next = 0;
        let mut flow = ControlFlow::Continue(());
        for_each_member(&self.path, self.kind, |name, entry| {
            let Some(entry) = entry else {
                return Ok(ControlFlow::Continue(()));
            };
            let rank = *self.ranks.get(next).ok_or_else(changed)?;
            if self.names[rank] != name {
                return Err(changed());
            }
            next += 1;
            let data = SampleData::Memory(entry.read_all()?);
            live_members(1);
            members.push((rank, Sample { name, data }));
            if members.len() == batch {
                flow = flush(&mut members)?;
            }
            Ok(flow)
        })?;
        if flow.is_continue() && !members.is_empty() {
            flow = flush(&mut members)?;
        }
        if flow.is_continue() && next != self.ranks.len() {
            return Err(changed());
        }
        Ok(())
    }
}

thread_local! {
    /// Streamed archive members alive on this thread, and the most at once.
    static LIVE_MEMBERS: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

fn live_members(change: isize) {
    LIVE_MEMBERS.with(|c| {
        let (live, peak) = c.get();
        let live = live.saturating_add_signed(change);
        c.set((live, peak.max(live)));
    });
}

/// The most archive members [`ArchiveIndex::stream`] has held at once on this thread
/// (what bounds a pass's memory; for tests).
pub fn peak_streamed_members() -> usize {
    LIVE_MEMBERS.with(|c| c.get().1)
}

/// Memory reserved up front for an archive member: its header's claimed size is not
/// trusted beyond this (a 1 KiB archive may claim 2^62 bytes); bigger members grow as read.
const MEMBER_RESERVE: u64 = 1 << 20;

/// A regular archive member being visited: its data can be read once.
struct Member<'a> {
    path: &'a Path,
    name: &'a str,
    claimed: u64,
    data: &'a mut dyn Read,
}

impl Member<'_> {
    /// The member's bytes; a read error is a corrupt archive.
    fn read_all(self) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(self.claimed.min(MEMBER_RESERVE) as usize);
        self.data.read_to_end(&mut buf).map_err(|e| {
            Error::format(self.path, format!("corrupt tar member {}: {e}", self.name))
        })?;
        Ok(buf)
    }
}

/// Visits the entries of the archive `path` in archive order, directories excepted, until
/// `f` breaks: `f` gets each entry's normalized name and, for a regular member, its data
/// (what is not read is skipped). When the archive is not compressed, a member that claims more bytes
/// than the whole file is refused at once.
fn for_each_member(
    path: &Path,
    kind: ArchiveKind,
    mut f: impl FnMut(String, Option<Member<'_>>) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = match kind {
        ArchiveKind::Tar => Some(file.metadata().map_err(|e| Error::io(path, e))?.len()),
        _ => None,
    };
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let reader: Box<dyn Read> = match kind {
        ArchiveKind::Tar => Box::new(reader),
        ArchiveKind::TarGz => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        ArchiveKind::TarBz2 => Box::new(bzip2::read::MultiBzDecoder::new(reader)),
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| Error::format(path, format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| Error::format(path, format!("corrupt tar archive: {e}")))?;
        let raw_name = entry
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| String::from_utf8_lossy(&entry.path_bytes()).into_owned());
        let name = normalize_member(&raw_name);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            if f(name, None)?.is_break() {
                break;
            }
            continue;
        }
        let claimed = entry.size();
        if let Some(len) = file_len.filter(|&len| claimed > len) {
            return Err(Error::format(
                path,
                format!(
                    "corrupt tar member {name}: it claims {claimed} bytes, the archive has {len}"
                ),
            ));
        }
        let member_name = name.clone();
        let member = Member {
            path,
            name: &member_name,
            claimed,
            data: &mut entry,
        };
        if f(name, Some(member))?.is_break() {
            break;
        }
    }
    Ok(())
}

/// Strips `./` and leading `/`, collapses repeated separators.
fn normalize_member(name: &str) -> String {
    name.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}
