//! Sampler overhead: evaluations per second on a 10-D standard normal with 32
//! walkers, single thread (the log-density costs a few ns, so this measures the
//! sampler itself). Used by `launch/bench.d/10-sampler.sh`; run it with
//!
//! ```text
//! cargo run --release --no-default-features --example bench_sampler -- [steps] [repeats]
//! ```
//!
//! (defaults: 20000 steps, best of 5 repeats). Prints one line
//! `climcal_evals_per_second <value>` plus a human-readable summary.

use std::time::Instant;

use climcal::prelude::*;

fn main() -> climcal::Result<()> {
    let mut args = std::env::args().skip(1);
    let steps: u64 = args.next().map(|s| s.parse().expect("steps must be an integer")).unwrap_or(20_000);
    let repeats: usize = args.next().map(|s| s.parse().expect("repeats must be an integer")).unwrap_or(5);
    let (dim, walkers) = (10, 32);
    let density = FnDensity::new(dim, |x: &[f64]| -0.5 * x.iter().map(|v| v * v).sum::<f64>());
    let sampler = EnsembleSampler::new(density, 42).with_n_walkers(walkers)?.serial();
    let mut best = 0.0f64;
    let mut acc = 0.0;
    for _ in 0..repeats {
        let mut state = sampler.initialize_without_prior(InitMethod::Ball { center: vec![0.0; dim], radius: 1.0 })?;
        let t0 = Instant::now();
        let chain = sampler.run(&mut state, steps, &RunOptions { checkpoint_every: 0, ..RunOptions::default() })?;
        let dt = t0.elapsed().as_secs_f64();
        let rate = (steps as f64 * walkers as f64) / dt;
        best = best.max(rate);
        acc = chain.mean_acceptance_rate();
        std::hint::black_box(chain);
    }
    println!("# climcal: {dim}-D standard normal, {walkers} walkers, {steps} steps, serial, best of {repeats}; acceptance {acc:.3}");
    println!("climcal_evals_per_second {best:.0}");
    Ok(())
}
