//! Output paths checked against the inputs before a command runs: an `--out` that names an
//! input would replace it (after reading it, so nothing warns), and two outputs that are
//! the same file would keep only the last one.

use super::command::Command;
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

type Flagged = Vec<(&'static str, PathBuf)>;

/// Each command's input and output files, by flag, for [`check_outputs`].
pub fn io_paths(command: &Command) -> (Flagged, Flagged) {
    let one = |flag: &'static str, p: &Option<PathBuf>| -> Flagged {
        p.iter().map(|p| (flag, p.clone())).collect()
    };
    let data_args = |a: &super::DataArgs| one("--labels", &a.labels);
    match command {
        Command::Train(a) => train_paths(a, "--out"),
        Command::Cv(a) => train_paths(&a.train, "--out"),
        Command::Eval(a) => (
            [
                vec![("--model", a.model.clone())],
                a.data.iter().map(|p| ("--data", p.clone())).collect(),
                data_args(&a.data_args),
            ]
            .concat(),
            [
                one("--roc", &a.roc),
                one("--plot", &a.plot),
                one("--out", &a.out),
            ]
            .concat(),
        ),
        Command::Predict(a) => (
            [
                vec![("--model", a.model.clone())],
                a.data.iter().map(|p| ("--data", p.clone())).collect(),
                one("--calibration", &a.calibration),
                data_args(&a.data_args),
            ]
            .concat(),
            one("--out", &a.out),
        ),
        Command::Certify(a) => (
            [
                vec![("--model", a.model.clone())],
                one("--data", &a.data),
                one("--features", &a.features),
                one("--directions", &a.directions),
            ]
            .concat(),
            one("--out", &a.out),
        ),
        Command::Attack(a) => (
            [
                a.model.iter().map(|m| ("--model", m.clone())).collect(),
                one("--data", &a.data),
                one("--features", &a.features),
                data_args(&a.data_args),
            ]
            .concat(),
            [
                one("--out", &a.out),
                one("--csv", &a.csv),
                one("--plot", &a.plot),
            ]
            .concat(),
        ),
        Command::Split(a) => (
            [vec![("--data", a.data.clone())], data_args(&a.data_args)].concat(),
            vec![
                ("--train-out", a.train_out.clone()),
                ("--test-out", a.test_out.clone()),
            ],
        ),
        Command::Featurize(a) => featurize_paths(a),
        Command::Export(a) => (
            vec![("--model", a.model.clone())],
            vec![("--onnx", a.onnx.clone())],
        ),
        Command::Inspect(_) | Command::Demo(_) => (vec![], vec![]),
        // Reads its models (and re-reads them on reload); writes nothing.
        #[cfg(feature = "serve")]
        Command::Serve(_) => (vec![], vec![]),
    }
}

fn train_paths(a: &super::train::TrainArgs, out_flag: &'static str) -> (Flagged, Flagged) {
    let one = |flag: &'static str, p: &Option<PathBuf>| -> Flagged {
        p.iter().map(|p| (flag, p.clone())).collect()
    };
    let inputs = [
        a.data.iter().map(|p| ("--data", p.clone())).collect(),
        a.valid.iter().map(|p| ("--valid", p.clone())).collect(),
        one("--featurizer", &a.featurizer),
        one("--labels", &a.data_args.labels),
        one("--constraint-config", &a.constraint_config),
        one("--monotone-features", &a.monotone_features),
        one("--feature-directions", &a.feature_directions),
    ]
    .concat();
    let outputs = [vec![(out_flag, a.out.clone())], one("--log", &a.log)].concat();
    (inputs, outputs)
}

fn featurize_paths(a: &super::featurize::FeaturizeArgs) -> (Flagged, Flagged) {
    use super::featurize::FeaturizeKind;
    let (corpus, vocab, build) = match &a.kind {
        FeaturizeKind::Text(t) => (&t.corpus, t.vocab.clone(), t.build_vocab.clone()),
        FeaturizeKind::Bytes(b) => (&b.corpus, None, None),
    };
    let mut inputs: Flagged = corpus
        .classes
        .iter()
        .map(|(_, p)| ("--class", p.clone()))
        .collect();
    inputs.extend(vocab.map(|v| ("--vocab", v)));
    let spec = nonneg::features::corpus::spec_path_for(&corpus.out);
    let mut outputs = vec![("--out", corpus.out.clone()), ("--out's featurizer", spec)];
    outputs.extend(build.map(|b| ("--build-vocab", b)));
    (inputs, outputs)
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
