//! Coverage of ECS intervals with independent and AR(1) residuals (docs/two-layer.md,
//! "Correlated residuals"): 200 synthetic MRI-ESM2-0-like abrupt-4xCO2 runs of the
//! two-layer model with AR(1) noise (ρ_T = 0.6, ρ_N = 0.3, marginal σ_T = 0.087 K,
//! σ_N = 0.44 W m⁻²; data seed = replicate number), each fitted three ways (independent
//! errors; AR(1) with ρ sampled; AR(1) with ρ known), 32 walkers × 3000 steps, first
//! 1000 discarded. Prints how often the 5–95 % interval of ECS contains the truth.
//!
//! Run: `cargo run --release --no-default-features --example coverage_ar1`
//! (options: `--replicates N`, `--steps N`, `--discard N`, `--walkers N`).
//! Replicates run in parallel on rayon's threads; each fit is serial, so the table
//! is the same whatever the number of threads.

use std::time::Instant;

use climcal::prelude::*;
use rayon::prelude::*;

#[path = "coverage/experiment.rs"]
mod experiment;

use experiment::{replicate, summarise, Fit, Mcmc, World};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .map(|i| args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} needs a number")))
        .unwrap_or(default)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n_rep = arg(&args, "--replicates", 200);
    let mcmc = Mcmc {
        n_walkers: arg(&args, "--walkers", 32) as usize,
        n_steps: arg(&args, "--steps", 3000),
        discard: arg(&args, "--discard", 1000) as usize,
    };
    let world = World::mri_like();
    let t0 = Instant::now();
    let results: Vec<Vec<_>> =
        (1..=n_rep).into_par_iter().map(|seed| replicate(&world, &Fit::ALL, mcmc, seed)).collect::<Result<_>>()?;
    let secs = t0.elapsed().as_secs_f64();

    println!(
        "coverage of the 5-95 % ECS interval: {n_rep} synthetic abrupt-4xCO2 runs (seeds 1-{n_rep}), truth lambda, C, C_d, gamma, epsilon = {:?}, \
         ECS = {:.3} K, AR(1) noise rho_T = {}, rho_N = {}, sigma_T = {} K, sigma_N = {} W m-2; {} walkers x {} steps, {} discarded per fit",
        world.truth, world.ecs(), world.rho[0], world.rho[1], world.sigma[0], world.sigma[1], mcmc.n_walkers, mcmc.n_steps, mcmc.discard
    );
    println!();
    println!("| likelihood | ECS intervals containing the truth | truth below / above | median 90 % width (K) | median posterior rho_T, rho_N | R-hat max: median, largest |");
    println!("|---|---|---|---|---|---|");
    for (k, &f) in Fit::ALL.iter().enumerate() {
        let rs: Vec<_> = results.iter().map(|r| &r[k]).collect();
        let s = summarise(&world, f, &rs);
        let (p, se) = s.coverage();
        let rho = s.rho.map_or("-".to_string(), |r| format!("{:.2}, {:.2}", r[0], r[1]));
        println!(
            "| {} | {}/{} = {:.1} % ± {:.1} | {} / {} | {:.3} | {rho} | {:.3}, {:.3} |",
            s.fit.label(),
            s.covered,
            s.n,
            100.0 * p,
            100.0 * se,
            s.below_above[0],
            s.below_above[1],
            s.median_width,
            s.r_hat[0],
            s.r_hat[1]
        );
    }
    let acc: Vec<f64> = results.iter().flatten().map(|r| r.acceptance).collect();
    println!(
        "acceptance per fit {:.2}-{:.2}",
        acc.iter().cloned().fold(f64::INFINITY, f64::min),
        acc.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
    );
    println!(
        "{} fits in {secs:.0} s on {} thread(s) ({:.1} M posterior evaluations)",
        3 * n_rep,
        rayon::current_num_threads(),
        (3 * n_rep) as f64 * (mcmc.n_walkers as u64 * mcmc.n_steps) as f64 / 1e6
    );
    Ok(())
}
