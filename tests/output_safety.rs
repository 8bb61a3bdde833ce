//! Output files: the umask's mode for new files and the old mode for replaced ones;
//! non-regular targets refused before any work, links to regular files written through;
//! multi-file outputs replaced as a group; temporary files of a killed writer removed by
//! the next write to their folder.

mod common;

use common::{exec, path_in, run, spambase, tempdir, SPAMBASE_LABEL};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// `nonneg args` under `umask`, which must succeed.
fn run_with_umask(umask: &str, args: &[&str]) {
    let bin = env!("CARGO_BIN_EXE_nonneg");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(bin)
        .args(args)
        .current_dir(common::root())
        .status()
        .unwrap();
    assert!(st.success(), "{args:?}");
}

fn split_args<'a>(train: &'a str, test: &'a str, data: &'a str) -> Vec<&'a str> {
    let mut a = vec!["split", "--data", data, "-q", "--train-out", train];
    a.extend(["--test-out", test]);
    a.extend(SPAMBASE_LABEL);
    a
}

/// A training command writing `out`, of `epochs` epochs.
fn train_args<'a>(out: &'a str, data: &'a str, epochs: &'a str) -> Vec<&'a str> {
    let mut a = vec![
        "train", "--data", data, "--out", out, "-q", "--epochs", epochs,
    ];
    a.extend(SPAMBASE_LABEL);
    a
}

#[test]
fn new_outputs_follow_the_umask_and_replaced_ones_keep_their_mode() {
    let dir = tempdir();
    let (train, test) = (path_in(dir.path(), "a.csv"), path_in(dir.path(), "b.csv"));
    let data = spambase();
    run_with_umask("027", &split_args(&train, &test, &data));
    assert_eq!(mode(Path::new(&train)), 0o640);
    assert_eq!(mode(Path::new(&test)), 0o640);
    std::fs::set_permissions(&train, std::fs::Permissions::from_mode(0o604)).unwrap();
    std::fs::remove_file(&test).unwrap();
    run_with_umask("077", &split_args(&train, &test, &data));
    assert_eq!(mode(Path::new(&train)), 0o604);
    assert_eq!(mode(Path::new(&test)), 0o600);
    let model = path_in(dir.path(), "m.safetensors");
    run_with_umask("022", &train_args(&model, &data, "1"));
    assert_eq!(mode(Path::new(&model)), 0o644);
}

/// `train --out target` fails with exit 2 and a message containing `what`, without
/// training (it would take minutes).
fn refused(target: &str, what: &str) {
    let data = spambase();
    let args = train_args(target, &data, "100000");
    let t0 = std::time::Instant::now();
    let out = exec(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{target}: {err}");
    assert!(err.contains(what) && err.contains("regular files"), "{err}");
    assert!(
        t0.elapsed().as_secs() < 20,
        "{target}: refused only after training"
    );
}

#[test]
fn non_regular_outputs_are_refused_before_any_work() {
    let dir = tempdir();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let link = |name: &str, to: &Path| {
        let l = dir.path().join(name);
        std::os::unix::fs::symlink(to, &l).unwrap();
        l.display().to_string()
    };
    let to_null = link("null-link", Path::new("/dev/null"));
    let to_fifo = link("fifo-link", &fifo);
    let dangling = link("dangling", &dir.path().join("missing/x"));
    refused("/dev/null", "is a device");
    refused(&to_null, "is a link to a device (/dev/null)");
    refused(fifo.to_str().unwrap(), "is a FIFO");
    refused(&to_fifo, "is a link to a FIFO");
    refused(dir.path().to_str().unwrap(), "is a directory");
    refused(&dangling, "a symbolic link to nothing");
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn a_link_to_a_regular_file_is_written_through() {
    let dir = tempdir();
    let real = dir.path().join("real.safetensors");
    std::fs::write(&real, b"old").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("link.safetensors");
    std::os::unix::fs::symlink("real.safetensors", &link).unwrap();
    let data = spambase();
    run(&train_args(link.to_str().unwrap(), &data, "1"));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read(&real).unwrap().len() > 1000);
    assert_eq!(mode(&real), 0o640);
    run(&["inspect", "--model", link.to_str().unwrap()]);
}

#[test]
fn featurize_refuses_before_work_when_its_spec_path_is_not_a_file_and_keeps_the_old_output() {
    let dir = tempdir();
    for class in ["a", "b"] {
        let d = dir.path().join(class);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..5 {
            let text = format!("Subject: {class} {i}\n\nword{i} {class} text\n");
            std::fs::write(d.join(format!("{i}.txt")), text).unwrap();
        }
    }
    let out = dir.path().join("out.svm");
    let cls = |c: &str| format!("{c}={}", dir.path().join(c).display());
    let args = |out: &Path| {
        let (a, b) = (cls("a"), cls("b"));
        let o = out.display().to_string();
        [
            "featurize",
            "text",
            "--class",
            &a,
            "--class",
            &b,
            "--out",
            &o,
            "-q",
        ]
        .map(String::from)
        .to_vec()
    };
    let strs = |v: &[String]| {
        v.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\u{0}")
    };
    let call = |v: Vec<String>| exec(&strs(&v).split('\u{0}').collect::<Vec<_>>());
    assert!(call(args(&out)).status.success());
    let before = std::fs::read(&out).unwrap();
    std::fs::remove_file(dir.path().join("out.svm.featurizer.json")).unwrap();
    std::fs::create_dir(dir.path().join("out.svm.featurizer.json")).unwrap();
    let o = call(args(&out));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is a directory"));
    assert_eq!(std::fs::read(&out).unwrap(), before);
}

#[test]
fn split_refuses_one_path_for_both_parts_and_keeps_the_old_files() {
    let dir = tempdir();
    let (train, test) = (path_in(dir.path(), "a.csv"), path_in(dir.path(), "b.csv"));
    let data = spambase();
    run(&split_args(&train, &test, &data));
    let before = std::fs::read(&train).unwrap();
    let out = exec(&split_args(&train, &train, &data));
    assert_eq!(out.status.code(), Some(2));
    // Refused before any work, by the command line's output check.
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the same file as --train-out"));
    assert_eq!(std::fs::read(&train).unwrap(), before);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 2, "temporary files left");
}

/// nonneg's temporary files in `dir`.
fn temps(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".nonneg-tmp."))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_writer_killed_mid_save_leaves_a_temp_file_that_the_next_write_removes() {
    let dir = tempdir();
    let ckpt = dir.path().join("ckpt");
    let model = path_in(dir.path(), "m.safetensors");
    let data = spambase();
    let mut args = train_args(&model, &data, "5");
    let ck = ckpt.display().to_string();
    args.extend(["--checkpoint-every", "1", "--checkpoint", &ck]);
    // Kill as soon as a checkpoint's temporary file is seen; it may be renamed before the
    // kill lands, so try until one is left behind.
    let mut left = Vec::new();
    for _ in 0..50 {
        let _ = std::fs::remove_dir_all(&ckpt);
        let mut child = common::command().args(&args).spawn().unwrap();
        while temps(&ckpt).is_empty() && child.try_wait().unwrap().is_none() {}
        child.kill().unwrap();
        child.wait().unwrap();
        left = temps(&ckpt);
        if !left.is_empty() {
            break;
        }
    }
    assert!(!left.is_empty(), "no kill landed during a save");
    args.extend(["--resume", &ck]);
    run(&args);
    assert_eq!(temps(&ckpt), Vec::<String>::new());
}
