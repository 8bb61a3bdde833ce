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
//! ([`Sample::bytes`]). Archive members are read into memory in archive order and then
//! sorted, so an archive costs its uncompressed size in RAM: fine for corpora up to a few
//! hundred MB; unpack bigger ones and pass the folder.

use crate::error::{Error, Result};
use std::borrow::Cow;
use std::io::Read;
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
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mut listing = Listing::default();
    if meta.is_dir() {
        walk(path, "", &mut listing)?;
    } else if !meta.is_file() {
        // Checked before opening: a FIFO or device would block or never end.
        return Err(Error::format(
            path,
            "not a directory, regular file or tar archive",
        ));
    } else if let Some(kind) = archive_kind(path) {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let reader = std::io::BufReader::with_capacity(1 << 20, file);
        match kind {
            ArchiveKind::Tar => read_tar(path, reader, Some(meta.len()), &mut listing)?,
            ArchiveKind::TarGz => read_tar(
                path,
                flate2::read::MultiGzDecoder::new(reader),
                None,
                &mut listing,
            )?,
            ArchiveKind::TarBz2 => read_tar(
                path,
                bzip2::read::MultiBzDecoder::new(reader),
                None,
                &mut listing,
            )?,
        }
    } else {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        listing.samples.push(Sample {
            name,
            data: SampleData::File(path.to_path_buf()),
        });
    }
    // Stable sort by name (byte order of the UTF-8 / lossy name).
    listing.samples.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(listing)
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

/// Memory reserved up front for an archive member: its header's claimed size is not
/// trusted beyond this (a 1 KiB archive may claim 2^62 bytes); bigger members grow as read.
const MEMBER_RESERVE: u64 = 1 << 20;

/// Reads the members of a tar stream; `file_len` is the archive's size when it is not
/// compressed, so a member that claims more than the whole file is refused at once.
fn read_tar<R: Read>(
    path: &Path,
    reader: R,
    file_len: Option<u64>,
    listing: &mut Listing,
) -> Result<()> {
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
            listing.skipped_non_regular += 1;
            listing.skipped_names.push(name);
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
        let mut buf = Vec::with_capacity(claimed.min(MEMBER_RESERVE) as usize);
        entry
            .read_to_end(&mut buf)
            .map_err(|e| Error::format(path, format!("corrupt tar member {name}: {e}")))?;
        listing.samples.push(Sample {
            name,
            data: SampleData::Memory(buf),
        });
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
