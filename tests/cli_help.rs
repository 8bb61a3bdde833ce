//! Every option of every subcommand has a description in `--help`, and options that take
//! one of a set of values list them.

mod common;

use common::run_stdout;

/// The subcommands listed under "Commands:" in a help text (`help` excluded).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Options of a help text without a description: an option line with nothing after its
/// value name, not followed by a more indented description line.
fn undocumented(help: &str) -> Vec<String> {
    let lines: Vec<&str> = help.lines().collect();
    let mut out = Vec::new();
    let indent = |s: &str| s.len() - s.trim_start().len();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        // Option lines sit at indent 2 (`-q, --quiet`) or 6; descriptions deeper.
        if indent(l) > 6 {
            continue;
        }
        if !(t.starts_with("--") || (t.starts_with('-') && t.get(2..4) == Some(", "))) {
            continue;
        }
        let flag = t
            .split_whitespace()
            .find(|w| w.starts_with("--"))
            .unwrap_or(t)
            .trim_end_matches(',')
            .to_string();
        // Inline description: two spaces after the option syntax.
        let syntax_end = t.find("  ");
        if syntax_end.is_some_and(|e| !t[e..].trim().is_empty()) {
            continue;
        }
        let next = lines.get(i + 1).copied().unwrap_or("");
        if next.trim().is_empty() || indent(next) <= indent(l) {
            out.push(flag);
        }
    }
    out
}

#[test]
fn every_option_is_described_and_lists_its_values() {
    let mut missing = Vec::new();
    let mut stack: Vec<Vec<String>> = subcommands(&run_stdout(&["--help"]))
        .into_iter()
        .map(|c| vec![c])
        .collect();
    let mut seen = 0;
    while let Some(cmd) = stack.pop() {
        let mut args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        args.push("--help");
        let help = run_stdout(&args);
        seen += 1;
        for sub in subcommands(&help) {
            let mut c = cmd.clone();
            c.push(sub);
            stack.push(c);
        }
        for flag in undocumented(&help) {
            missing.push(format!("{} {flag}", cmd.join(" ")));
        }
    }
    assert!(seen >= 12, "only {seen} subcommands found");
    assert!(
        missing.is_empty(),
        "options without a description: {missing:?}"
    );
    // Value enums list their values.
    let train = run_stdout(&["train", "--help"]);
    for v in ["log1p-standard", "last-nonneg", "softplus", "adamw"] {
        assert!(train.contains(v), "train --help lacks {v}");
    }
}

#[test]
fn the_check_finds_an_undocumented_option() {
    let help = "Options:\n      --model <MODEL>\n\n      --json\n          Print JSON\n  -q, --quiet  No output\n";
    assert_eq!(undocumented(help), vec!["--model".to_string()]);
}
