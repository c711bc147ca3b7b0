//! Measurement helpers shared by pmsm's benchmark binaries.
//!
//! Rates are best-of-`rounds`: each round runs the closure until at least `min_secs`
//! have passed and counts the units it processed. Taking the best round discards the
//! interference of a shared, noisy machine; ratios between figures measured in the same
//! run are what the reports state.

#![deny(missing_docs)]

use std::time::{Duration, Instant};

/// Units per second of `f`, which processes `units` units per call; best of `rounds`.
pub fn rate(units: f64, rounds: usize, min_secs: f64, mut f: impl FnMut()) -> f64 {
    f(); // warm caches and lazily initialised state
    let mut best: f64 = 0.0;
    for _ in 0..rounds.max(1) {
        let start = Instant::now();
        let mut calls = 0u64;
        while start.elapsed() < Duration::from_secs_f64(min_secs) {
            f();
            calls += 1;
        }
        best = best.max(calls as f64 * units / start.elapsed().as_secs_f64());
    }
    best
}

/// Formats a rate with an SI suffix (`1.23 G`).
pub fn si(x: f64) -> String {
    let (v, s) = if x >= 1e9 {
        (x / 1e9, " G")
    } else if x >= 1e6 {
        (x / 1e6, " M")
    } else if x >= 1e3 {
        (x / 1e3, " k")
    } else {
        (x, " ")
    };
    format!("{v:.2}{s}")
}
