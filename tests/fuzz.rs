//! The mutation fuzzer (tests/fuzz_targets) for a few seconds per reader: no input may
//! make a reader panic. `examples/fuzz.rs` runs the same targets for 10^6 executions each.

mod fuzz_targets;

#[test]
fn mutated_inputs_never_crash_a_reader() {
    let mut failures = Vec::new();
    for t in fuzz_targets::targets() {
        let r = fuzz_targets::fuzz(&t, 3_000, 1);
        assert_eq!(r.executions, 3_000);
        // Some mutants must still be accepted, or the target tests only its first check.
        assert!(r.accepted > 0, "{}: every mutant rejected", r.name);
        if let Some(c) = r.crashes.first() {
            failures.push(format!(
                "{}: {} crashes, first input: {:?}",
                r.name,
                r.crashes.len(),
                String::from_utf8_lossy(c)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
