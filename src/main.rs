//! The `nonneg` command-line tool.

mod cli;

use clap::{CommandFactory, FromArgMatches};
use cli::command::Cli;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`nonneg inspect ... | head`), like other Unix tools.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // `cv` takes every train option; its --out is the report's file, stdout by default.
    let command = Cli::command().mut_subcommand("cv", |c| {
        c.mut_arg("out", |a| {
            a.required(false)
                .default_value("-")
                .help("Where to write the report (default: stdout)")
        })
    });
    let cli = Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if !(1..=MAX_THREADS).contains(&threads) {
        return fail(&format!(
            "--threads must be between 1 and {MAX_THREADS}, got {threads}"
        ));
    }
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
    {
        return fail(&format!("cannot start {threads} threads: {e}"));
    }
    let (inputs, outputs) = cli::guard::io_paths(&cli.command);
    let checked = cli::guard::check_inputs(&inputs)
        .and_then(|()| cli::guard::check_outputs(&inputs, &outputs));
    if let Err(e) = checked {
        return fail(&format!("{e:#}"));
    }
    let ctx = cli::Context { quiet: cli.quiet };
    let result = cli.command.run(&ctx);
    match result {
        Ok(code) => code,
        Err(e) => fail(&cli::with_flag_names(&format!("{e:#}"))),
    }
}

/// More threads than any machine this runs on has cores: a typo, or a way to exhaust memory.
const MAX_THREADS: usize = 1024;

/// Reports an error on stderr (if it can be written at all) and exits with code 2.
fn fail(message: &str) -> ExitCode {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "error: {message}");
    ExitCode::from(2)
}
