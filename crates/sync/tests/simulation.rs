//! The deterministic simulation (see `counterbook_sync::sim`) over 200 seeds: tablets with
//! random users, lost, late, duplicated and reordered requests and replies, server errors,
//! restarts and partitions must end with identical books, exact counters and every unit applied
//! exactly once. `examples/simulate.rs` runs the same over thousands of seeds.

use counterbook_sync::sim::{run, SimOptions};

#[test]
fn two_hundred_seeded_runs_converge_with_exact_counters_and_exactly_once_units() {
    let options = SimOptions::default();
    let mut failures = Vec::new();
    let mut units = 0;
    let mut conflicts = 0;
    for seed in 0..200 {
        let report = run(seed, &options);
        units += report.units;
        conflicts += report.conflicts;
        if !report.passed() {
            failures.push(format!(
                "seed {seed}: {:?}\n  replay: cargo run -p counterbook-sync --release --example simulate -- --seed {seed} --verbose",
                report.problems.iter().take(5).collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The runs must exercise what they claim to: many units, and real conflicts among them.
    assert!(units > 200 * 50, "only {units} units");
    assert!(conflicts > 0, "no conflict was ever merged");
}
