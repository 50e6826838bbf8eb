//! The historical two-layer calibration (HadCRUT5 + OHC, AR6/IGCC forcing) and its
//! analysis: ECS, TCR, aerosol ERF, convergence and a posterior-predictive check.
//!
//! ```text
//! # analyse the chain the CLI wrote (launch/demo, cluster-examples/two-layer-hadcrut5.toml):
//! cargo run --release --example calibrate_hadcrut5 -- runs/hadcrut5.h5
//! # or run the same calibration in memory with the library, then analyse it:
//! cargo run --release --no-default-features --example calibrate_hadcrut5
//! ```
//!
//! The set-up (forcing, priors, target) is `examples/two_layer_setup/setup.rs`, the
//! same choices as the run file. Results are in docs/two-layer.md.

use climcal::density::LogDensity;
use climcal::models::two_layer::{TwoLayerParams, F2X_AR6};
use climcal::prelude::*;
use rand::SeedableRng;
use rand_distr::{Distribution as _, StandardNormal};

#[path = "two_layer_setup/setup.rs"]
mod setup;

const N_WALKERS: usize = 64;
const N_STEPS: u64 = 24000;
const THIN: usize = 48;

/// Quantiles `qs` of `v` (sorted in place).
fn quantiles(v: &mut [f64], qs: &[f64]) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    qs.iter().map(|&q| climcal::diagnostics::quantile(v, q)).collect()
}

fn summary(v: &mut [f64]) -> String {
    let q = quantiles(v, &[0.05, 0.17, 0.5, 0.83, 0.95]);
    format!("{:.2} [{:.2}–{:.2}] (likely 17–83 %: {:.2}–{:.2})", q[2], q[0], q[4], q[1], q[3])
}

fn load_or_run(post: &Posterior) -> Result<Chain> {
    if let Some(path) = std::env::args().nth(1) {
        #[cfg(feature = "hdf5")]
        {
            println!("chain file: {path}");
            return Chain::load(&path);
        }
        #[cfg(not(feature = "hdf5"))]
        return Err(Error::Unsupported(format!("reading {path} needs the hdf5 feature (drop --no-default-features)")));
    }
    println!("running {N_WALKERS} walkers × {N_STEPS} steps (thin {THIN}) in memory");
    let t0 = std::time::Instant::now();
    let sampler = EnsembleSampler::new(post.clone(), 2024).with_n_walkers(N_WALKERS)?;
    let mut state = sampler.initialize(InitMethod::Prior)?;
    let chain = sampler.run(&mut state, N_STEPS, &RunOptions { thin: THIN, ..Default::default() })?;
    println!("sampling took {:.1} s", t0.elapsed().as_secs_f64());
    Ok(chain)
}

/// `--timing`: cost of one model run, one model construction and one posterior
/// log-probability, as plain loops (for launch/bench.d/70-two-layer.sh).
fn timing(post: &Posterior) -> Result<()> {
    use std::hint::black_box;
    use std::time::Instant;
    let data = setup::data_dir();
    let forcing = std::sync::Arc::new(setup::historical_forcing(&data)?);
    let model = setup::historical_model(forcing.clone())?;
    let theta = [1.2, 8.0, 100.0, 0.6, 1.3, 1.0];
    let mut u = vec![0.0; 6];
    post.to_sampler(&theta, &mut u);
    let time = |n: usize, f: &mut dyn FnMut()| {
        for _ in 0..n / 10 {
            f();
        }
        let t0 = Instant::now();
        for _ in 0..n {
            f();
        }
        t0.elapsed().as_secs_f64() / n as f64 * 1e6
    };
    let run = time(100_000, &mut || {
        black_box(model.run(black_box(&theta)).unwrap());
    });
    let build = time(100_000, &mut || {
        black_box(setup::historical_model(black_box(forcing.clone())).unwrap());
    });
    let lp = time(100_000, &mut || {
        black_box(post.ln_prob(black_box(&u)));
    });
    println!("rust_run_us {run:.3}\nrust_build_us {build:.3}\nrust_lnprob_us {lp:.3}\nyears {}", forcing.len());
    Ok(())
}

fn main() -> Result<()> {
    let data = setup::data_dir();
    let post = setup::historical_posterior(&data)?.with_blobs(true);
    if std::env::args().nth(1).as_deref() == Some("--timing") {
        return timing(&post.with_blobs(false));
    }
    let chain = load_or_run(&post)?;
    let names = chain.names().to_vec();
    assert_eq!(names, post.param_names(), "the chain's parameters must be the set-up's");

    // Convergence by the chain's own diagnostics; τ is in stored rows.
    let tau = chain.autocorr_time_quiet(0);
    let tau_max = tau.iter().cloned().fold(0.0, f64::max);
    let discard = ((3.0 * tau_max).ceil() as usize).min(chain.n_rows() / 2);
    let rhat = chain.r_hat(discard);
    let ess = chain.ess(discard);
    let kept = chain.n_rows() - discard;
    println!(
        "\nrows {} (thin {}), discard {discard}; acceptance {:.3}; rows/τ_max = {:.0} (emcee's rule: > 50)",
        chain.n_rows(),
        chain.thin(),
        chain.mean_acceptance_rate(),
        chain.n_rows() as f64 / tau_max
    );
    println!("| parameter | median [5–95 %] | τ (steps) | R-hat | bulk ESS |\n|---|---|---|---|---|");
    let flat = chain.flat_samples(discard);
    for (i, n) in names.iter().enumerate() {
        let mut v = flat.column(i).to_vec();
        let q = quantiles(&mut v, &[0.05, 0.5, 0.95]);
        println!(
            "| {n} | {:.3} [{:.3}–{:.3}] | {:.0} | {:.3} | {:.0} |",
            q[1],
            q[0],
            q[2],
            tau[i] * chain.thin() as f64,
            rhat[i],
            ess[i]
        );
    }

    // Derived quantities.
    let col = |n: &str| names.iter().position(|x| x == n).expect("parameter");
    let forcing = setup::historical_forcing(&data)?;
    let yi = |y: f64| forcing.years().iter().position(|&x| x == y).unwrap();
    let aer_2005_14: f64 = (yi(2005.0)..=yi(2014.0)).map(|i| forcing.aerosol()[i]).sum::<f64>() / 10.0;
    let aer_2019 = forcing.aerosol()[yi(2019.0)];
    let (mut ecs, mut tcr, mut aer, mut aer19) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for row in flat.rows() {
        let lambda = match names.iter().position(|x| x == "lambda") {
            Some(i) => row[i],
            None => F2X_AR6 / row[col("ecs")],
        };
        let p = TwoLayerParams {
            lambda,
            c: row[col("C")],
            c_d: row[col("C_d")],
            gamma: row[col("gamma")],
            epsilon: row[col("epsilon")],
        };
        ecs.push(F2X_AR6 / lambda);
        tcr.push(p.tcr(F2X_AR6));
        aer.push(row[col("aerosol_scale")] * aer_2005_14);
        aer19.push(row[col("aerosol_scale")] * aer_2019);
    }
    println!("\nposterior (median [5–95 %]), {} samples:", flat.nrows());
    println!("- ECS  {} K   (AR6: likely 2.5–4, very likely 2–5, best 3)", summary(&mut ecs));
    println!("- TCR  {} K   (AR6: likely 1.4–2.2, very likely 1.2–2.4, best 1.8)", summary(&mut tcr));
    println!(
        "- aerosol ERF 2005–2014 {} W m-2 (AR6: −1.3 [−2.0 to −0.6]; this forcing file: {aer_2005_14:.2})",
        summary(&mut aer)
    );
    println!("- aerosol ERF 2019 {} W m-2 (this forcing file: {aer_2019:.2})", summary(&mut aer19));

    // Posterior-predictive check from the blobs (model at the observation times,
    // re-baselined as the observations are).
    if chain.n_blobs() == 0 {
        println!("\n(no blobs stored: no posterior-predictive check)");
        return Ok(());
    }
    let blobs = chain.blobs();
    let layout = post.blob_layout();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
    let mut off = 0;
    println!("\nposterior-predictive check (fraction of observed points inside the modelled 5–95 % band):");
    for (name, times) in &layout {
        let obs = post.target().get(name).unwrap();
        let (mut in_model, mut in_pred) = (0usize, 0usize);
        let mut worst = Vec::new();
        for k in 0..times.len() {
            let mut m: Vec<f64> = Vec::with_capacity(kept * chain.n_walkers());
            for r in discard..chain.n_rows() {
                for w in 0..chain.n_walkers() {
                    m.push(blobs[[r, w, off + k]]);
                }
            }
            let mut pred: Vec<f64> = m
                .iter()
                .map(|v| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    v + obs.sigmas[k] * z
                })
                .collect();
            let q = quantiles(&mut m, &[0.05, 0.95]);
            let qp = quantiles(&mut pred, &[0.05, 0.95]);
            let o = obs.values[k];
            if o >= q[0] && o <= q[1] {
                in_model += 1;
            }
            if o >= qp[0] && o <= qp[1] {
                in_pred += 1;
            } else {
                worst.push(times[k]);
            }
        }
        let n = times.len() as f64;
        println!(
            "- {name}: model band {:.0} % of {} points; predictive band (model + observation σ) {:.0} % (expected 90 %); outside the predictive band: {:?}",
            100.0 * in_model as f64 / n,
            times.len(),
            100.0 * in_pred as f64 / n,
            worst
        );
        off += times.len();
    }
    Ok(())
}
