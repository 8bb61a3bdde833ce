//! The README's Quick start, run as written: its ```sh block is extracted from README.md and
//! run with `bash -euo pipefail` in a temporary folder where `data/` and `tests/` link to the
//! checkout's and `target/release/nonneg` to the binary under test, so the commands see a
//! fresh checkout and write nothing into it. `cargo build --release` is a no-op there (cargo
//! has already built the binary). The README's other blocks are not run: the first sh block
//! is `cargo run -- demo` and `cargo test` (the demo has its own test, `cli_demo.rs`, and
//! cargo cannot run itself here; `readme_first_block_names_real_subcommands` checks what it
//! names), and the Python block needs PyTorch (`scripts/check_torch_load.py` covers it).
#![cfg(unix)]

mod common;

use common::{exec, root, tempdir};
use std::path::Path;
use std::process::Command;

/// The fenced block of `lang` that follows the heading `heading` in the README.
fn block_after(readme: &str, heading: &str, lang: &str) -> String {
    let at = readme.find(heading).expect("the README has the heading");
    let open = format!("```{lang}\n");
    let start = at + readme[at..].find(&open).expect("a fenced block follows") + open.len();
    let len = readme[start..].find("```").expect("the block is closed");
    readme[start..start + len].to_string()
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("README.md")
}

/// A folder that looks like a fresh checkout with a built binary.
fn checkout_like(dir: &Path) {
    use std::os::unix::fs::symlink;
    for name in ["data", "tests"] {
        symlink(root().join(name), dir.join(name)).expect("a link");
    }
    std::fs::create_dir_all(dir.join("target/release")).expect("target/release");
    symlink(
        env!("CARGO_BIN_EXE_nonneg"),
        dir.join("target/release/nonneg"),
    )
    .expect("a link to the binary");
}

#[test]
fn readme_quick_start_runs_as_written() {
    let block = block_after(&readme(), "## Quick start", "sh");
    assert!(
        block.contains("$B certify"),
        "the Quick start block:\n{block}"
    );
    let dir = tempdir();
    checkout_like(dir.path());
    // The ERR trap names the command that failed; `||` lists (expected failures) skip it.
    let script = format!(
        "cargo() {{ :; }}\ntrap 'echo \"README command failed: $BASH_COMMAND\" >&2' ERR\n{block}"
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail = &stderr[stderr.len().saturating_sub(6000)..];
    assert!(
        out.status.success(),
        "Quick start failed ({}):\n{tail}",
        out.status
    );
    for made in [
        "mono.safetensors",
        "sa-mono.safetensors",
        "bounds.csv",
        "attack.json",
        "bin.svm",
    ] {
        assert!(
            dir.path().join(made).is_file(),
            "the Quick start writes {made}"
        );
    }
    // The raw-email model that is certified is, and the unconstrained one is reported as not.
    assert!(String::from_utf8_lossy(&out.stdout).contains("sa.safetensors is not certified"));
}

#[test]
fn readme_first_block_names_real_subcommands() {
    let block = block_after(&readme(), "# nonneg", "sh");
    let mut named = 0;
    for line in block.lines() {
        if let Some(rest) = line.split("cargo run --release -- ").nth(1) {
            let sub = rest.split_whitespace().next().expect("a subcommand");
            let out = exec(&[sub, "--help"]);
            assert!(
                out.status.success(),
                "`nonneg {sub}` in the README is not a subcommand"
            );
            named += 1;
        }
    }
    assert!(named > 0, "the first block runs nonneg:\n{block}");
}
