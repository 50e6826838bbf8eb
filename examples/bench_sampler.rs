//! Sampler overhead: evaluations per second on a 10-D standard normal with 32
//! walkers, single thread (the log-density costs a few ns, so this measures the
//! sampler itself). Used by `launch/bench.d/10-sampler.sh`; run it with
//!
//! ```text
//! cargo run --release --no-default-features --example bench_sampler -- [steps] [repeats]
//! ```
//!
//! (defaults: 1000 steps, best of 50 repeats). Each repeat is a fresh
//! `initialize` + `run` (chain kept in memory). Prints
//! `climcal_evals_per_second <wall>` (best repeat) and, on Linux,
//! `climcal_evals_per_cpu_second <cpu>`: all repeats' evaluations over the thread's
//! CPU time, which stays meaningful on a machine shared with other work (wall time
//! then includes time the thread was not running).

use std::time::Instant;

use climcal::prelude::*;

/// CPU time of the calling thread in seconds (Linux: /proc/thread-self/schedstat).
fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns * 1e-9)
}

fn main() -> climcal::Result<()> {
    let mut args = std::env::args().skip(1);
    let steps: u64 = args.next().map(|s| s.parse().expect("steps must be an integer")).unwrap_or(1000);
    let repeats: usize = args.next().map(|s| s.parse().expect("repeats must be an integer")).unwrap_or(50);
    let (dim, walkers) = (10, 32);
    let density = FnDensity::new(dim, |x: &[f64]| -0.5 * x.iter().map(|v| v * v).sum::<f64>());
    let sampler = EnsembleSampler::new(density, 42).with_n_walkers(walkers)?.serial();
    let evals = steps as f64 * walkers as f64;
    let mut best_wall = 0.0f64;
    let mut acc = 0.0;
    let c0 = thread_cpu_seconds();
    for _ in 0..repeats {
        let mut state = sampler.initialize_without_prior(InitMethod::Ball { center: vec![0.0; dim], radius: 1.0 })?;
        let t0 = Instant::now();
        let chain = sampler.run(&mut state, steps, &RunOptions { checkpoint_every: 0, ..RunOptions::default() })?;
        let dt = t0.elapsed().as_secs_f64();
        best_wall = best_wall.max(evals / dt);
        acc = chain.mean_acceptance_rate();
        std::hint::black_box(chain);
    }
    let best_cpu = match (c0, thread_cpu_seconds()) {
        (Some(c0), Some(c1)) if c1 > c0 => evals * repeats as f64 / (c1 - c0),
        _ => 0.0,
    };
    println!(
        "# climcal: {dim}-D standard normal, {walkers} walkers, {steps} steps, serial, best of {repeats}; acceptance {acc:.3}"
    );
    println!("climcal_evals_per_second {best_wall:.0}");
    if best_cpu > 0.0 {
        println!("climcal_evals_per_cpu_second {best_cpu:.0}");
    }
    Ok(())
}
