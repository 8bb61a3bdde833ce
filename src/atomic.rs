//! Atomic file output: every file nonneg writes goes to a temporary file in the target's
//! folder (same file system, so the final rename is atomic), is synced, then renamed over
//! the target. A reader never sees a partial file and a failed write leaves any previous
//! file untouched.

use crate::error::{Error, Result};
use std::io::{BufWriter, Write};
use std::path::Path;
use tempfile::NamedTempFile;

/// Writes `bytes` to `path` atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |w| w.write_all(bytes).map_err(|e| Error::io(path, e)))
}

/// Writes `path` atomically from `body`, which streams into a buffered writer.
pub fn write_with(path: &Path, body: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let mut tmp = temp_beside(path, "")?;
    {
        let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        body(&mut w)?;
        w.flush().map_err(|e| Error::io(path, e))?;
    }
    commit(tmp, path)
}

/// Writes `path` atomically through a writer that wants a file name (an image encoder
/// that picks the format from the extension): `body` gets the temporary file's path,
/// which ends in `suffix` (e.g. `".png"`).
pub fn write_via_path(
    path: &Path,
    suffix: &str,
    body: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let tmp = temp_beside(path, suffix)?;
    body(tmp.path())?;
    commit(tmp, path)
}

/// An empty temporary file in `path`'s folder ("." for a bare file name); deleted on drop.
/// A failure names `path`, the file the caller asked for (its folder is part of it).
fn temp_beside(path: &Path, suffix: &str) -> Result<NamedTempFile> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .suffix(suffix)
        .tempfile_in(dir)
        .map_err(|e| Error::io(path, e))
}

/// Syncs the temporary file to disk and renames it over `path`.
fn commit(tmp: NamedTempFile, path: &Path) -> Result<()> {
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_and_leave_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write_bytes(&p, b"one").unwrap();
        write_with(&p, |w| w.write_all(b"two").map_err(|e| Error::io(&p, e))).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        write_via_path(&p, ".txt", |t| {
            assert!(t.to_string_lossy().ends_with(".txt"));
            std::fs::write(t, b"three").map_err(|e| Error::io(t, e))
        })
        .unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"three");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_body_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write_bytes(&p, b"old").unwrap();
        let e = write_with(&p, |_| Err(Error::invalid("no"))).unwrap_err();
        assert_eq!(e.to_string(), "no");
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_folder_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing").join("out.txt");
        let e = write_bytes(&p, b"x").unwrap_err().to_string();
        assert!(e.contains("out.txt"), "{e}");
    }
}
