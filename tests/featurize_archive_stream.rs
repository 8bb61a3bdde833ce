//! `featurize` streams archives: a tar gives its folder's rows (one file and shards, text
//! and bytes, every compression) though its members come in another order, a pass holds
//! at most a batch of members, and a corrupt archive (found in any pass) exits 2 naming
//! the file with nothing left behind.

mod common;

use common::{
    concatenated_shards, fails, listing, path_in, run, spamassassin_subset, tar_builder, tempdir,
};
use nonneg::features::corpus::{featurize_corpus, spec_path_for, SpecSource};
use nonneg::features::shards::{featurize_to_shards, BATCH};
use nonneg::features::source::{peak_streamed_members, ArchiveIndex, ArchiveKind};
use nonneg::features::text::TextOptions;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// A tar (compressed as `out`'s extension says) of `members`, in the order given.
fn write_tar(out: &Path, members: &[(String, Vec<u8>)], symlink: Option<&str>) {
    let mut b = tar_builder(out);
    for (name, bytes) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, &bytes[..]).unwrap();
    }
    if let Some(link) = symlink {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, link, "elsewhere").unwrap();
    }
    b.into_inner().unwrap().flush().unwrap();
}

/// The files of `dir` as tar members under `dir`'s name, in reverse name order (so the
/// archive order is not the sorted order).
fn members_reversed(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let base = dir.file_name().unwrap().to_string_lossy().into_owned();
    let mut members: Vec<(String, Vec<u8>)> = listing(dir)
        .into_iter()
        .filter(|n| dir.join(n).is_file())
        .map(|n| (format!("{base}/{n}"), std::fs::read(dir.join(&n)).unwrap()))
        .collect();
    members.reverse();
    members
}

/// Runs `featurize KIND --class ... --out OUT EXTRA...`; returns stderr (the summary).
fn featurize(kind: &[&str], classes: &[(String, PathBuf)], out: &str, extra: &[&str]) -> String {
    let class_args: Vec<String> = classes
        .iter()
        .map(|(c, p)| format!("{c}={}", p.display()))
        .collect();
    let mut args = vec!["featurize"];
    args.extend(kind);
    for c in &class_args {
        args.extend(["--class", c]);
    }
    args.extend(["--out", out]);
    args.extend(extra);
    String::from_utf8(run(&args).stderr).unwrap()
}

/// The summary without the timing line.
fn summary(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.starts_with("wrote "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn archives_give_their_folders_rows_in_one_file_and_in_shards() {
    let tmp = tempdir();
    let classes = spamassassin_subset(&tmp.path().join("corpus"));
    // A symlink is skipped and counted alike in a folder and in a tar.
    std::os::unix::fs::symlink("elsewhere", classes[0].1.join("zz-link")).unwrap();
    for kind in [
        &["text"][..],
        &["bytes", "--ngram", "3", "--hash-bits", "12"],
    ] {
        let want_path = path_in(tmp.path(), "folder.svm");
        let want_summary = summary(&featurize(kind, &classes, &want_path, &[]));
        assert!(want_summary.contains("skipped non-regular entries (symlinks etc.): 1"));
        let want = std::fs::read(&want_path).unwrap();
        let want_spec = std::fs::read(spec_path_for(Path::new(&want_path))).unwrap();
        for ext in ["tar", "tar.gz", "tar.bz2"] {
            let archives: Vec<(String, PathBuf)> = classes
                .iter()
                .enumerate()
                .map(|(i, (c, dir))| {
                    let t = tmp.path().join(format!("{i}.{ext}"));
                    write_tar(&t, &members_reversed(dir), (i == 0).then_some("z/zz-link"));
                    (c.clone(), t)
                })
                .collect();
            let one = path_in(tmp.path(), &format!("{ext}.svm"));
            let got_summary = summary(&featurize(kind, &archives, &one, &[]));
            assert_eq!(got_summary, want_summary, "{kind:?} {ext}");
            assert!(
                std::fs::read(&one).unwrap() == want,
                "{kind:?} {ext}: rows differ"
            );
            let spec = std::fs::read(spec_path_for(Path::new(&one))).unwrap();
            assert!(spec == want_spec, "{kind:?} {ext}: spec differs");

            // Shards of 7 rows: an archive's rows go through the temporary file.
            let dir = tmp.path().join(format!("shards-{ext}"));
            std::fs::create_dir_all(&dir).unwrap();
            let prefix = path_in(&dir, "part");
            featurize(kind, &archives, &prefix, &["--shard-rows", "7"]);
            assert!(
                concatenated_shards(&dir) == want,
                "{kind:?} {ext}: shards differ"
            );
            // Nothing but the shards and the sidecar: no temporary file is left.
            let names = listing(&dir);
            let rows = want.iter().filter(|&&b| b == b'\n').count();
            assert_eq!(names.len(), rows.div_ceil(7) + 1);
            assert!(names.iter().all(|n| n.starts_with("part-")), "{names:?}");
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}

/// `n` small text members named in reverse order.
fn small_members(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .rev()
        .map(|k| {
            (
                format!("m{k:05}.txt"),
                format!("w{} common", k % 97).into_bytes(),
            )
        })
        .collect()
}

fn build_vocabulary() -> SpecSource {
    SpecSource::BuildVocabulary {
        options: TextOptions::default(),
        min_df: 1,
        max_features: None,
        email_defaults: true,
    }
}

#[test]
fn a_pass_holds_at_most_a_batch_of_members() {
    let tmp = tempdir();
    let n = 3 * BATCH + 5;
    let tar = tmp.path().join("many.tar.gz");
    write_tar(&tar, &small_members(n), None);
    let classes = vec![("spam".to_string(), tar)];
    // Streaming runs on this thread; the counter is this thread's.
    let corpus = featurize_corpus(&classes, "spam", build_vocabulary()).unwrap();
    assert_eq!(corpus.x.rows, n);
    assert!(corpus.names.windows(2).all(|w| w[0] < w[1]));
    let shards = featurize_to_shards(
        &classes,
        "spam",
        build_vocabulary(),
        &tmp.path().join("part"),
        1000,
    )
    .unwrap();
    assert_eq!(shards.paths.len(), 4);
    assert_eq!(shards.summary.n_samples, n);
    let peak = peak_streamed_members();
    assert!((1..=BATCH).contains(&peak), "{peak} members held at once");
}

#[test]
fn corrupt_archives_exit_2_naming_the_file_and_leave_nothing() {
    let tmp = tempdir();
    let members = small_members(300);
    let good = tmp.path().join("good.tar.gz");
    write_tar(&good, &members, None);
    let bytes = std::fs::read(&good).unwrap();
    let truncated = tmp.path().join("truncated.tar.gz");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    // A header in the middle of an uncompressed tar overwritten: a checksum mismatch.
    let plain = tmp.path().join("header.tar");
    write_tar(&plain, &members, None);
    let mut raw = std::fs::read(&plain).unwrap();
    raw[150 * 1024..150 * 1024 + 100].fill(b'x');
    std::fs::write(&plain, raw).unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = path_in(&out_dir, "part");
    for bad in [&truncated, &plain] {
        let class = format!("spam={}", bad.display());
        let args = ["featurize", "text", "--class", &class, "--out", &out];
        for extra in [&[][..], &["--shard-rows", "50"], &["--hash-bits", "10"]] {
            let err = fails(&[&args[..], extra].concat());
            assert!(err.contains(&*bad.to_string_lossy()), "{err}");
            assert!(err.contains("corrupt tar"), "{err}");
            assert!(listing(&out_dir).is_empty(), "{:?}", listing(&out_dir));
        }
    }
    // A run that fails while writing (shard 2 cannot be written) leaves only that folder.
    std::fs::create_dir(out_dir.join("part-00002.svm")).unwrap();
    let class = format!("spam={}", good.display());
    let args = ["featurize", "text", "--class", &class, "--out", &out];
    let err = fails(&[&args[..], &["--shard-rows", "100", "--hash-bits", "10"]].concat());
    assert!(err.contains("part-00002.svm"), "{err}");
    assert_eq!(listing(&out_dir), ["part-00002.svm"]);
}

#[test]
fn an_archive_corrupted_or_changed_after_indexing_fails_in_the_next_pass() {
    let tmp = tempdir();
    let members = small_members(2 * BATCH);
    let tar = tmp.path().join("a.tar.gz");
    write_tar(&tar, &members, None);
    let index = ArchiveIndex::new(&tar, ArchiveKind::TarGz).unwrap();
    assert_eq!(index.names.len(), members.len());
    let read_all = |index: &ArchiveIndex| {
        let mut seen = 0;
        index
            .stream(BATCH, |batch| {
                seen += batch.len();
                Ok(ControlFlow::Continue(()))
            })
            .map(|()| seen)
    };
    assert_eq!(read_all(&index).unwrap(), members.len());

    let bytes = std::fs::read(&tar).unwrap();
    std::fs::write(&tar, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let err = read_all(&index).unwrap_err().to_string();
    assert!(err.contains(&*tar.to_string_lossy()), "{err}");
    assert!(err.contains("corrupt tar"), "{err}");

    let mut renamed = members.clone();
    renamed[BATCH + 3].0 = "other.txt".into();
    write_tar(&tar, &renamed, None);
    let err = read_all(&index).unwrap_err().to_string();
    assert!(err.contains("changed while it was being read"), "{err}");
    write_tar(&tar, &members[1..], None);
    let err = read_all(&index).unwrap_err().to_string();
    assert!(err.contains("changed while it was being read"), "{err}");
}
