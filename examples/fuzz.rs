//! The long fuzz run: `cargo run --release --example fuzz [EXECUTIONS] [SEED]` (default
//! 10^6 per target). Prints executions, accepted inputs, crashes and seconds per target,
//! and writes each crashing input to `fuzz-crashes/<target>-<n>` for a regression case.

#[path = "../tests/fuzz_targets/mod.rs"]
mod fuzz_targets;

fn main() {
    let mut args = std::env::args().skip(1);
    let executions: u64 = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("EXECUTIONS"));
    let seed: u64 = args.next().map_or(0, |a| a.parse().expect("SEED"));
    let only = std::env::var("FUZZ_ONLY").ok();
    println!("target      executions   accepted  crashes  seconds");
    let mut total_crashes = 0;
    for t in fuzz_targets::targets() {
        if only.as_deref().is_some_and(|o| o != t.name) {
            continue;
        }
        let r = fuzz_targets::fuzz(&t, executions, seed);
        println!(
            "{:<10} {:>11} {:>10} {:>8} {:>8.1}",
            r.name,
            r.executions,
            r.accepted,
            r.crashes.len(),
            r.seconds
        );
        for (i, c) in r.crashes.iter().enumerate().take(20) {
            std::fs::create_dir_all("fuzz-crashes").unwrap();
            std::fs::write(format!("fuzz-crashes/{}-{i}", r.name), c).unwrap();
        }
        total_crashes += r.crashes.len();
    }
    std::process::exit(i32::from(total_crashes > 0));
}
