//! Atomic file output: every file nonneg writes goes to a temporary file in the target's
//! folder (same file system, so the final rename is atomic), is synced, then renamed over
//! the target. A reader never sees a partial file and a failed write leaves any previous
//! file untouched.
//!
//! - Modes: a new file gets what the umask gives (`0666 & !umask`), an overwritten one
//!   keeps its permission bits.
//! - Targets: only regular files. A device, FIFO, socket or directory (or a symbolic link
//!   to one, or to nothing) is refused before anything is written; a symbolic link to a
//!   regular file is written through: the link stays, the file it names is replaced.
//! - Temporary files are named `.NAME.nonneg-tmp.PID.RAND`; those whose process is gone
//!   (a killed run) are removed by the next write to the same folder.
//! - [`Group`]: several files that belong together (data and its featurizer spec, the
//!   two parts of a split) are all written and synced first, then renamed; when a rename
//!   fails the ones already renamed are rolled back to the previous files.

use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What marks nonneg's temporary files: `.NAME` + this + `PID.RAND`.
const MARK: &str = ".nonneg-tmp.";

/// Writes `bytes` to `path` atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |w| w.write_all(bytes).map_err(|e| Error::io(path, e)))
}

/// Writes `path` atomically from `body`, which streams into a buffered writer.
pub fn write_with(path: &Path, body: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let mut g = Group::new();
    g.write_with(path, body)?;
    g.commit()
}

/// Writes `path` atomically through a writer that wants a file name (an image encoder
/// that picks the format from the extension): `body` gets the temporary file's path,
/// which ends in `suffix` (e.g. `".png"`).
pub fn write_via_path(
    path: &Path,
    suffix: &str,
    body: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let mut g = Group::new();
    g.stage(path, suffix, body)?;
    g.commit()
}

/// The file a write to `path` replaces: `path` itself, or the regular file a symbolic
/// link names. Anything but a regular file (or a missing one) is refused: call it before
/// the work whose result goes to `path`.
pub fn check_output(path: &Path) -> Result<PathBuf> {
    let refuse = |what: &str| {
        Error::invalid(format!(
            "{}: {what}; outputs are written only to regular files",
            path.display()
        ))
    };
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(path.to_path_buf()),
        Err(e) => return Err(Error::io(path, e)),
        Ok(m) => m,
    };
    let (target, meta) = if meta.file_type().is_symlink() {
        let target = fs::canonicalize(path)
            .map_err(|_| refuse("a symbolic link to nothing that can be written"))?;
        let meta = fs::metadata(&target).map_err(|e| Error::io(path, e))?;
        (target, meta)
    } else {
        (path.to_path_buf(), meta)
    };
    let t = meta.file_type();
    let kind = if t.is_file() {
        return Ok(target);
    } else if t.is_dir() {
        "a directory"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(refuse(&if target == path {
        format!("is {kind}")
    } else {
        format!("is a link to {kind} ({})", target.display())
    }))
}

/// A temporary file beside its target; removed on drop unless renamed.
struct Temp {
    path: PathBuf,
    file: File,
    renamed: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A fresh name `.NAME.nonneg-tmp.PID.RAND{suffix}` beside `target`.
fn temp_name(target: &Path, suffix: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seed = nanos ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(32);
    let rand = crate::rng::Rng::new(seed).next_u64() as u32;
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let pid = std::process::id();
    folder(target).join(format!(".{name}{MARK}{pid}.{rand:08x}{suffix}"))
}

/// `path`'s folder ("." for a bare file name).
fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// An empty temporary file beside `target` (mode `0666` less the umask), after removing
/// the stale ones of dead processes there. A failure names `shown`, the file asked for.
fn create_temp(target: &Path, suffix: &str, shown: &Path) -> Result<Temp> {
    remove_stale(folder(target));
    loop {
        let path = temp_name(target, suffix);
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&path);
        match opened {
            Ok(file) => {
                return Ok(Temp {
                    path,
                    file,
                    renamed: false,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(shown, e)),
        }
    }
}

/// Removes the temporary files in `dir` whose writing process no longer runs.
fn remove_stale(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| n.starts_with('.')) else {
            continue;
        };
        let pid = name
            .rsplit_once(MARK)
            .and_then(|(_, tail)| tail.split('.').next())
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| p > 0 && !alive(p)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` exists (signal 0 checks without sending).
fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for the process.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// One file of a group: its synced temporary file (`None`: remove the target), the file
/// it replaces and the path the caller named.
struct Staged {
    temp: Option<Temp>,
    target: PathBuf,
    shown: PathBuf,
}

/// Files that are committed together: each is written to its temporary file first, and
/// [`Group::commit`] renames them all or, on a failure, none (the renamed ones are rolled
/// back). Dropped uncommitted, it removes its temporary files.
#[derive(Default)]
pub struct Group {
    staged: Vec<Staged>,
}

impl Group {
    pub fn new() -> Self {
        Self::default()
    }

    /// The checked target of `path`, which the group must not name already.
    fn target(&self, path: &Path) -> Result<PathBuf> {
        let target = check_output(path)?;
        if self.staged.iter().any(|s| s.target == target) {
            return Err(Error::invalid(format!(
                "{} is named for two outputs",
                path.display()
            )));
        }
        Ok(target)
    }

    /// Writes `path`'s new content from `body` into a synced temporary file.
    pub fn write_with(
        &mut self,
        path: &Path,
        body: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        let target = self.target(path)?;
        let mut temp = create_temp(&target, "", path)?;
        {
            let mut w = BufWriter::with_capacity(1 << 20, &mut temp.file);
            body(&mut w)?;
            w.flush().map_err(|e| Error::io(path, e))?;
        }
        temp.file.sync_all().map_err(|e| Error::io(path, e))?;
        self.push(Some(temp), target, path);
        Ok(())
    }

    /// Writes `bytes` as `path`'s new content.
    pub fn write_bytes(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        self.write_with(path, |w| w.write_all(bytes).map_err(|e| Error::io(path, e)))
    }

    /// Has `write` produce `path`'s new content at the temporary path it is given (which
    /// ends in `suffix`), e.g. with one of the atomic writers.
    pub fn stage(
        &mut self,
        path: &Path,
        suffix: &str,
        write: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let target = self.target(path)?;
        let temp = create_temp(&target, suffix, path)?;
        write(&temp.path)?;
        File::open(&temp.path)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(path, e))?;
        self.push(Some(temp), target, path);
        Ok(())
    }

    /// Where `path`'s staged new content is until the commit (to read it back, e.g. to
    /// fingerprint it); `None` when the group does not write `path`.
    pub fn staged_path(&self, path: &Path) -> Option<&Path> {
        let target = check_output(path).ok()?;
        self.staged
            .iter()
            .find(|s| s.target == target)
            .and_then(|s| s.temp.as_ref())
            .map(|t| t.path.as_path())
    }

    /// Removes `path` (when it exists) at the commit: a stale companion file.
    pub fn remove(&mut self, path: &Path) -> Result<()> {
        let target = self.target(path)?;
        self.push(None, target, path);
        Ok(())
    }

    fn push(&mut self, temp: Option<Temp>, target: PathBuf, shown: &Path) {
        self.staged.push(Staged {
            temp,
            target,
            shown: shown.to_path_buf(),
        });
    }

    /// Renames every temporary file over its target (keeping an existing target's mode)
    /// and removes the files to remove; on a failure restores the ones done.
    pub fn commit(mut self) -> Result<()> {
        commit_all(&mut self.staged, &|from, to| fs::rename(from, to))
    }
}

/// [`Group::commit`] with `rename` for the renames (a test makes one fail).
fn commit_all(
    staged: &mut [Staged],
    rename: &dyn Fn(&Path, &Path) -> io::Result<()>,
) -> Result<()> {
    if let [one] = staged {
        // One file: the rename alone is atomic, no backup needed.
        return replace(one, rename);
    }
    let mut backups: Vec<Option<PathBuf>> = Vec::new();
    for i in 0..staged.len() {
        let s = &mut staged[i];
        let result = backup(&s.target, &s.shown).and_then(|b| match replace(s, rename) {
            Ok(()) => Ok(b),
            Err(e) => {
                if let Some(b) = b {
                    let _ = fs::remove_file(b);
                }
                Err(e)
            }
        });
        match result {
            Ok(b) => backups.push(b),
            Err(e) => {
                // Undo in reverse: the previous file back, or the new one away.
                for (s, b) in staged[..i].iter().zip(&backups).rev() {
                    let _ = match b {
                        Some(b) => fs::rename(b, &s.target),
                        None => fs::remove_file(&s.target),
                    };
                }
                return Err(e);
            }
        }
    }
    for b in backups.into_iter().flatten() {
        let _ = fs::remove_file(b);
    }
    Ok(())
}

/// A copy of `target`'s current file under a temporary name (a hard link when the file
/// system allows), or `None` when there is none.
fn backup(target: &Path, shown: &Path) -> Result<Option<PathBuf>> {
    if fs::symlink_metadata(target).is_err() {
        return Ok(None);
    }
    let b = temp_name(target, ".old");
    fs::hard_link(target, &b)
        .or_else(|_| fs::copy(target, &b).map(|_| ()))
        .map_err(|e| Error::io(shown, e))?;
    Ok(Some(b))
}

/// Puts `s`'s new file in place of its target (or removes the target), keeping the
/// target's permission bits.
fn replace(s: &mut Staged, rename: &dyn Fn(&Path, &Path) -> io::Result<()>) -> Result<()> {
    let shown = &s.shown;
    let Some(temp) = &mut s.temp else {
        return match fs::remove_file(&s.target) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(shown, e)),
            _ => Ok(()),
        };
    };
    if let Some(m) = fs::metadata(&s.target).ok().filter(|m| m.is_file()) {
        let mode = fs::Permissions::from_mode(m.permissions().mode() & 0o777);
        fs::set_permissions(&temp.path, mode).map_err(|e| Error::io(shown, e))?;
    }
    rename(&temp.path, &s.target).map_err(|e| Error::io(shown, e))?;
    temp.renamed = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn writes_replace_and_leave_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write_bytes(&p, b"one").unwrap();
        write_with(&p, |w| w.write_all(b"two").map_err(|e| Error::io(&p, e))).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        write_via_path(&p, ".txt", |t| {
            assert!(t.to_string_lossy().ends_with(".txt"));
            fs::write(t, b"three").map_err(|e| Error::io(t, e))
        })
        .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"three");
        assert_eq!(names(dir.path()), ["out.txt"]);
    }

    #[test]
    fn a_failed_body_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write_bytes(&p, b"old").unwrap();
        let e = write_with(&p, |_| Err(Error::invalid("no"))).unwrap_err();
        assert_eq!(e.to_string(), "no");
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["out.txt"]);
    }

    #[test]
    fn a_missing_folder_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing").join("out.txt");
        let e = write_bytes(&p, b"x").unwrap_err().to_string();
        assert!(e.contains("out.txt"), "{e}");
    }

    #[test]
    fn a_failed_rename_in_a_group_rolls_the_others_back() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        fs::write(&a, b"old a").unwrap();
        fs::write(&c, b"old c").unwrap();
        for fail_at in 1..=3 {
            let mut g = Group::new();
            g.write_bytes(&a, b"new a").unwrap();
            g.write_bytes(&b, b"new b").unwrap();
            g.remove(&c).unwrap();
            let calls = std::cell::Cell::new(0);
            let rename = |from: &Path, to: &Path| {
                calls.set(calls.get() + 1);
                match calls.get() == fail_at {
                    true => Err(io::Error::other("injected")),
                    false => fs::rename(from, to),
                }
            };
            // The third file is a removal: no rename to fail, so it commits.
            let result = commit_all(&mut g.staged, &rename);
            drop(g);
            if fail_at == 3 {
                result.unwrap();
                assert_eq!(fs::read(&a).unwrap(), b"new a");
                assert_eq!(fs::read(&b).unwrap(), b"new b");
                assert!(!c.exists());
            } else {
                assert!(result.is_err());
                assert_eq!(fs::read(&a).unwrap(), b"old a", "fail at {fail_at}");
                assert!(!b.exists());
                assert_eq!(fs::read(&c).unwrap(), b"old c");
                assert_eq!(names(dir.path()), ["a", "c"]);
            }
        }
    }

    #[test]
    fn stale_temp_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!(".out.txt{MARK}{dead}.0000abcd"));
        let live = dir
            .path()
            .join(format!(".out.txt{MARK}{}.0000abcd", std::process::id()));
        fs::write(&stale, b"partial").unwrap();
        fs::write(&live, b"being written").unwrap();
        write_bytes(&dir.path().join("out.txt"), b"x").unwrap();
        assert!(!stale.exists());
        assert!(live.exists());
    }
}
