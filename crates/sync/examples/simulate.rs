//! Runs the deterministic sync simulation over many seeds and prints one summary line:
//!
//! ```sh
//! cargo run -p counterbook-sync --release --example simulate -- --seeds 10000
//! cargo run -p counterbook-sync --release --example simulate -- --seed 1234 --verbose
//! ```
//!
//! `--overlap-millis N` sets the tablets' pull overlap window (0: strict pulls),
//! `--lag-millis N` how long before visibility the backend may stamp `updatedAt` (0: at commit
//! time), `--no-listen` turns the listen snapshots off.
//!
//! Failing seeds are printed first, each with the command that replays it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use counterbook_sync::sim::{run, RunReport, SimOptions};

fn main() {
    let mut seeds = 100u64;
    let mut first_seed = 0u64;
    let mut verbose = false;
    let mut options = SimOptions::default();
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        let mut number = |name: &str| -> u64 {
            arguments
                .next()
                .and_then(|value| value.parse().ok())
                .unwrap_or_else(|| usage(&format!("{name} needs a number")))
        };
        match argument.as_str() {
            "--seeds" => seeds = number("--seeds"),
            "--seed" => {
                first_seed = number("--seed");
                seeds = 1;
            }
            "--from" => first_seed = number("--from"),
            "--verbose" => verbose = true,
            "--overlap-millis" => options.pull_overlap_millis = number("--overlap-millis") as i64,
            "--lag-millis" => options.request_time_lag_max_millis = number("--lag-millis"),
            "--no-listen" => options.listen = false,
            other => usage(&format!("unknown argument {other}")),
        }
    }
    options.trace = verbose;
    let next = AtomicU64::new(first_seed);
    let failures: Mutex<Vec<RunReport>> = Mutex::new(Vec::new());
    let totals = Mutex::new((0usize, 0usize, 0usize));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= first_seed + seeds {
                    break;
                }
                let report = run(seed, &options);
                if verbose {
                    for line in &report.trace {
                        println!("{line}");
                    }
                    println!(
                        "seed {seed}: {} units, {} commits applied, {} conflicts, {} rejected, {} restarts",
                        report.units, report.commits, report.conflicts, report.rejected, report.restarts
                    );
                }
                let mut totals = totals.lock().unwrap();
                totals.0 += usize::from(report.diverged);
                totals.1 += report.lost;
                totals.2 += report.duplicated;
                if !report.passed() {
                    failures.lock().unwrap().push(report);
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort_by_key(|report| report.seed);
    for report in &failures {
        println!("seed {} failed:", report.seed);
        for problem in report.problems.iter().take(10) {
            println!("  {problem}");
        }
        println!(
            "  replay: cargo run -p counterbook-sync --release --example simulate -- --seed {} --verbose",
            report.seed
        );
    }
    let (diverged, lost, duplicated) = totals.into_inner().unwrap();
    println!("runs={seeds} diverged={diverged} lost={lost} duplicated={duplicated}");
    if !failures.is_empty() {
        std::process::exit(1);
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "{problem}\nusage: simulate [--seeds N] [--from FIRST] | [--seed N --verbose] \
         [--overlap-millis N] [--lag-millis N] [--no-listen]"
    );
    std::process::exit(2);
}
