//! Output paths checked against the inputs before a command runs: an `--out` that names an
//! input would replace it (after reading it, so nothing warns), and two outputs that are
//! the same file would keep only the last one.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// A file's identity: its canonical path, and (dev, inode) when it exists, so hard links
/// and different spellings of one file compare equal.
#[derive(PartialEq)]
struct Identity {
    canonical: PathBuf,
    inode: Option<(u64, u64)>,
}

fn identity(path: &Path) -> Option<Identity> {
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt;
    let canonical = match std::fs::canonicalize(path) {
        Ok(c) => c,
        // Not there yet: its folder's canonical path plus its name.
        Err(_) => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            std::fs::canonicalize(parent).ok()?.join(path.file_name()?)
        }
    };
    #[cfg(unix)]
    let inode = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    #[cfg(not(unix))]
    let inode = None;
    Some(Identity { canonical, inode })
}

fn same(a: &Identity, b: &Identity) -> bool {
    a.canonical == b.canonical || (a.inode.is_some() && a.inode == b.inode)
}

/// Fails when an input that exists is neither a regular file nor a directory: a FIFO or a
/// device would block or never end, and is refused before anything opens it.
pub fn check_inputs<P: AsRef<Path>>(inputs: &[(&str, P)]) -> Result<()> {
    for (flag, path) in inputs {
        let path = path.as_ref();
        if let Ok(meta) = std::fs::metadata(path) {
            if !meta.is_file() && !meta.is_dir() {
                bail!(
                    "{flag} {}: not a regular file (a FIFO, socket or device)",
                    path.display()
                );
            }
        }
    }
    Ok(())
}

/// Fails when an output (`(flag, path)`) is the same file as an input or another output.
/// `-` (stdout) is never a file.
pub fn check_outputs<I: AsRef<Path>, O: AsRef<Path>>(
    inputs: &[(&str, I)],
    outputs: &[(&str, O)],
) -> Result<()> {
    fn ids<P: AsRef<Path>>(list: &[(&str, P)]) -> Vec<(String, PathBuf, Identity)> {
        list.iter()
            .map(|(f, p)| (f, p.as_ref()))
            .filter(|(_, p)| *p != Path::new("-"))
            .filter_map(|(f, p)| identity(p).map(|id| (f.to_string(), p.to_path_buf(), id)))
            .collect()
    }
    let (ins, outs) = (ids(inputs), ids(outputs));
    for (i, (flag, path, id)) in outs.iter().enumerate() {
        if let Some((in_flag, _, _)) = ins.iter().find(|(_, _, x)| same(x, id)) {
            bail!(
                "{flag} {} is the {in_flag} input: writing it would replace the input",
                path.display()
            );
        }
        if let Some((other, _, _)) = outs[..i].iter().find(|(_, _, x)| same(x, id)) {
            bail!(
                "{flag} {} is the same file as {other}: one output would replace the other",
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_outputs;

    #[test]
    fn an_output_naming_an_input_or_another_output_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d.csv");
        std::fs::write(&data, "a\n").unwrap();
        let other = dir.path().join("sub/../d.csv");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let e = check_outputs(&[("--data", &data)], &[("--out", &other)]).unwrap_err();
        assert!(e.to_string().contains("is the --data input"), "{e}");
        let link = dir.path().join("hard.csv");
        std::fs::hard_link(&data, &link).unwrap();
        assert!(check_outputs(&[("--data", &data)], &[("--out", &link)]).is_err());
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("./a.csv"));
        let none: [(&str, &std::path::Path); 0] = [];
        let e = check_outputs(&none, &[("--train-out", &a), ("--test-out", &b)]).unwrap_err();
        assert!(e.to_string().contains("same file as --train-out"), "{e}");
        let fine = dir.path().join("new.csv");
        check_outputs(&[("--data", &data)], &[("--out", &fine)]).unwrap();
        check_outputs(
            &[("--data", &data)],
            &[("--out", std::path::PathBuf::from("-"))],
        )
        .unwrap();
    }
}
