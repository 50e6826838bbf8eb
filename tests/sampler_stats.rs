//! Statistical tests of the ensemble sampler: emcee's integration tests
//! (`tests/integration/test_stretch.py`, `test_proposal.py`) redone with fixed seeds,
//! plus a correlated Gaussian, a known autocorrelation time, negative controls, and
//! the Jacobian of transformed parameters through `Posterior`.
//!
//! Every run is seeded, so each test is deterministic; the tolerances say how far a
//! correct sampler could be from the truth (derivations next to each), and the
//! negative controls show the same checks reject a wrong distribution.

use std::sync::Arc;

use climcal::distribution::{Distribution, LogNormal, TruncatedNormal, Uniform};
use climcal::prelude::*;
use climcal::runner::ModelOutput;
use ndarray::{Array2, Array3, Axis};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_pcg::Pcg64;
use statrs::distribution::{ContinuousCDF, Normal as StatrsNormal};

const SEED: u64 = 1234;
const WALKERS: usize = 32;
const STEPS: u64 = 2000;

fn std_normal_density(dim: usize, mean: f64, sd: f64) -> FnDensity<impl Fn(&[f64]) -> f64 + Send + Sync> {
    FnDensity::new(dim, move |x: &[f64]| -0.5 * x.iter().map(|v| ((v - mean) / sd).powi(2)).sum::<f64>())
}

/// Run `steps` steps from N(0, I) starting points (as emcee's `_test_normal`, which
/// starts from `randn`), serially.
fn run_from_normal<D: LogDensity>(density: D, seed: u64, steps: u64) -> Chain {
    let dim = density.dim();
    let s = EnsembleSampler::new(density, seed).with_n_walkers(WALKERS).unwrap().serial();
    let mut st = s.initialize_without_prior(InitMethod::Ball { center: vec![0.0; dim], radius: 1.0 }).unwrap();
    s.run(&mut st, steps, &RunOptions::default()).unwrap()
}

/// Kolmogorov–Smirnov distance of `x` from the continuous CDF `cdf`.
fn ks_distance(x: &[f64], cdf: impl Fn(f64) -> f64) -> f64 {
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    v.iter()
        .enumerate()
        .map(|(i, &xi)| {
            let f = cdf(xi);
            (f - i as f64 / n).max((i + 1) as f64 / n - f)
        })
        .fold(0.0, f64::max)
}

fn column_mean_sd(s: &Array2<f64>) -> (Vec<f64>, Vec<f64>) {
    let mean = s.mean_axis(Axis(0)).unwrap().to_vec();
    let sd = s.std_axis(Axis(0), 0.0).to_vec();
    (mean, sd)
}

/// emcee's `_test_normal` checks; returns the reasons they fail (empty = pass).
fn normal_checks(chain: &Chain) -> Vec<String> {
    let mut fails = Vec::new();
    for (k, a) in chain.acceptance_fraction().iter().enumerate() {
        if !(0.1 < *a && *a < 0.9) {
            fails.push(format!("walker {k} acceptance {a:.3} outside (0.1, 0.9)"));
        }
    }
    let s = chain.flat_samples(0);
    let (mean, sd) = column_mean_sd(&s);
    let phi = StatrsNormal::new(0.0, 1.0).unwrap();
    for d in 0..chain.dim() {
        if mean[d].abs() >= 0.08 {
            fails.push(format!("dim {d}: |mean| = {:.4} >= 0.08", mean[d].abs()));
        }
        if (sd[d] - 1.0).abs() >= 0.05 {
            fails.push(format!("dim {d}: |sd − 1| = {:.4} >= 0.05", (sd[d] - 1.0).abs()));
        }
        let ks = ks_distance(&s.column(d).to_vec(), |x| phi.cdf(x));
        if ks >= 0.05 {
            fails.push(format!("dim {d}: KS distance {ks:.4} >= 0.05"));
        }
    }
    fails
}

// Tolerances (emcee's): 32 walkers × 2000 steps = 64 000 draws; the stretch move's
// τ here is 26 steps (1-D) and 33–37 (3-D) (printed with --nocapture), so
// N_eff = 64 000/τ ≳ 1700 and the Monte Carlo standard error of a mean is
// 1/√N_eff ≲ 0.024 (0.08 ≈ 3.3σ), of the sd 1/√(2 N_eff) ≲ 0.017 (0.05 ≈ 2.9σ), and
// the KS distance of N_eff effective draws has its 95 % point at 1.36/√N_eff ≈ 0.033
// (< 0.05). The seeds are fixed, so the tests are deterministic; the negative
// controls below show the same checks reject targets off by 0.15σ or 10 % in scale.

#[test]
fn one_d_standard_normal() {
    let chain = run_from_normal(std_normal_density(1, 0.0, 1.0), SEED, STEPS);
    let fails = normal_checks(&chain);
    println!("1-D: tau = {:?}", chain.autocorr_time_quiet(0));
    assert!(fails.is_empty(), "{fails:#?}");
}

#[test]
fn three_d_standard_normal() {
    let chain = run_from_normal(std_normal_density(3, 0.0, 1.0), SEED, STEPS);
    println!("3-D: tau = {:?}", chain.autocorr_time_quiet(0));
    let fails = normal_checks(&chain);
    assert!(fails.is_empty(), "{fails:#?}");
    // The chain is long enough for emcee's τ rule and R-hat says converged.
    let report = chain.is_converged(0, 1.1, true);
    assert!(report.converged, "{:?}", report.reasons);
}

#[test]
fn negative_control_wrong_target_fails_the_same_checks() {
    // Shifted by 0.15σ: the mean check (0.08) and the KS distance (≈ φ(0)·0.15 ≈ 0.06)
    // must both reject it.
    let chain = run_from_normal(std_normal_density(1, 0.15, 1.0), SEED, STEPS);
    let fails = normal_checks(&chain);
    assert!(fails.iter().any(|f| f.contains("mean")), "{fails:?}");
    assert!(fails.iter().any(|f| f.contains("KS")), "{fails:?}");
    // 10 % too wide: the sd check rejects it.
    let chain = run_from_normal(std_normal_density(1, 0.0, 1.1), SEED, STEPS);
    let fails = normal_checks(&chain);
    assert!(fails.iter().any(|f| f.contains("sd")), "{fails:?}");
    // A sampler that never moves fails the acceptance check: the density is finite
    // only at the starting points, so every proposal is rejected.
    let start: Vec<f64> = (0..WALKERS).map(|k| k as f64 / WALKERS as f64 - 0.5).collect();
    let allowed = start.clone();
    let d = FnDensity::new(1, move |x: &[f64]| if allowed.contains(&x[0]) { 0.0 } else { f64::NEG_INFINITY });
    let s = EnsembleSampler::new(d, SEED).with_n_walkers(WALKERS).unwrap().serial();
    let mut st = s.initialize_without_prior(InitMethod::Explicit(start)).unwrap();
    let stuck = s.run(&mut st, 50, &RunOptions::default()).unwrap();
    assert!(normal_checks(&stuck).iter().any(|f| f.contains("acceptance")));
}

/// emcee's `_test_uniform`: start uniformly in (lo, hi), sample the uniform density
/// on (lo, hi), return the KS distance from U(0, 1) (emcee's bound for the right
/// target: < 0.1; √(τ/N) ≈ 0.015 here).
fn uniform_run(lo: f64, hi: f64) -> (Chain, f64) {
    let density = FnDensity::new(1, move |x: &[f64]| if x[0] > lo && x[0] < hi { 0.0 } else { f64::NEG_INFINITY });
    let s = EnsembleSampler::new(density, SEED).with_n_walkers(WALKERS).unwrap().serial();
    let mut rng = Pcg64::seed_from_u64(SEED);
    let start: Vec<f64> = (0..WALKERS).map(|_| lo + (hi - lo) * rng.random::<f64>()).collect();
    let mut st = s.initialize_without_prior(InitMethod::Explicit(start)).unwrap();
    let chain = s.run(&mut st, STEPS, &RunOptions::default()).unwrap();
    let s = chain.flat_samples(0);
    let ks = ks_distance(&s.column(0).to_vec(), |x| x.clamp(0.0, 1.0));
    (chain, ks)
}

#[test]
fn uniform_start_samples_the_uniform_density() {
    let (chain, ks) = uniform_run(0.0, 1.0);
    for a in chain.acceptance_fraction() {
        assert!(0.1 < a && a < 0.9, "acceptance {a}");
    }
    assert!(ks < 0.1, "KS distance {ks}");
    let s = chain.flat_samples(0);
    assert!(s.iter().all(|&x| x > 0.0 && x < 1.0), "a sample left the support");
    // Negative control: sampling U(0, 0.8) is ≥ 0.2 away from U(0, 1) in KS distance.
    let (_, ks_wrong) = uniform_run(0.0, 0.8);
    assert!(ks_wrong > 0.1, "KS distance {ks_wrong} of the wrong target");
}

/// Lower-triangular Cholesky factor of a small SPD matrix.
fn cholesky(a: &Array2<f64>) -> Array2<f64> {
    let n = a.nrows();
    let mut l = Array2::zeros((n, n));
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum();
            if i == j {
                l[[i, i]] = (a[[i, i]] - s).sqrt();
            } else {
                l[[i, j]] = (a[[i, j]] - s) / l[[j, j]];
            }
        }
    }
    l
}

#[test]
fn correlated_five_d_gaussian_covariance_is_recovered() {
    // Scales over two decades and correlations up to 0.9: the stretch move is affine
    // invariant, so it must do as well here as on N(0, I).
    let sd = [1.0, 10.0, 0.1, 3.0, 0.5];
    let corr = [
        [1.0, 0.9, 0.5, 0.0, -0.3],
        [0.9, 1.0, 0.4, 0.1, -0.2],
        [0.5, 0.4, 1.0, 0.0, 0.0],
        [0.0, 0.1, 0.0, 1.0, 0.6],
        [-0.3, -0.2, 0.0, 0.6, 1.0],
    ];
    let cov = Array2::from_shape_fn((5, 5), |(i, j)| corr[i][j] * sd[i] * sd[j]);
    let l = cholesky(&cov);
    let density = FnDensity::new(5, move |x: &[f64]| {
        // solve L y = x; ln p = −|y|²/2
        let mut y = [0.0; 5];
        let mut q = 0.0;
        for i in 0..5 {
            let s: f64 = (0..i).map(|k| l[[i, k]] * y[k]).sum();
            y[i] = (x[i] - s) / l[[i, i]];
            q += y[i] * y[i];
        }
        -0.5 * q
    });
    let (steps, burn) = (6000u64, 500usize);
    let chain = run_from_normal(density, SEED, steps);
    let tau = chain.autocorr_time(burn).expect("chain longer than 50 τ");
    let tau_max = tau.iter().cloned().fold(0.0, f64::max);
    let s = chain.flat_samples(burn);
    let n = s.nrows() as f64;
    let m = s.mean_axis(Axis(0)).unwrap();
    let c = s.t().dot(&s) / n - m.view().insert_axis(Axis(1)).dot(&m.view().insert_axis(Axis(0)));
    // Standard error of a sample covariance from N_eff = N/τ effective draws:
    // var(S_ij) ≈ (Σ_ii Σ_jj + Σ_ij²)/N_eff. With τ ≲ 60 steps (printed) and
    // N = 32 × 5500, N_eff ≳ 2900, so S_ij/(σ_i σ_j) has sd ≲ 0.026; 5 standard errors.
    // τ itself is bounded, so a poorly mixing sampler cannot loosen the tolerance.
    println!("5-D correlated: tau = {tau:?}, N = {n}");
    assert!(tau_max < 80.0, "τ = {tau:?} is far above the stretch move's usual ~30–60 for 5-D");
    let n_eff = n / tau_max;
    for i in 0..5 {
        for j in 0..5 {
            let se = ((cov[[i, i]] * cov[[j, j]] + cov[[i, j]].powi(2)) / n_eff).sqrt();
            let err = (c[[i, j]] - cov[[i, j]]).abs();
            assert!(err < 5.0 * se, "cov[{i},{j}] = {:.4} vs {:.4} (5 se = {:.4})", c[[i, j]], cov[[i, j]], 5.0 * se);
        }
    }
    // Means: se = σ_i/√N_eff.
    for i in 0..5 {
        assert!(m[i].abs() < 5.0 * sd[i] / n_eff.sqrt(), "mean[{i}] = {}", m[i]);
    }
}

#[test]
fn ar1_series_through_chain_has_tau_19() {
    // emcee's test_autocorr: AR(1) with a = 0.9 has τ = (1 + a)/(1 − a) = 19, checked
    // to 20 %. 32 walkers × 20 000 steps: the estimator's relative error is
    // ≈ √(2(2M+1)/N) per walker with window M ≈ 5τ, i.e. ≈ 14 % per walker and
    // ≈ 2.5 % averaged over 32 walkers, so 20 % is > 5σ.
    let (steps, walkers, a) = (20_000usize, 32usize, 0.9);
    let mut rng = Pcg64::seed_from_u64(SEED);
    let mut x = Array3::<f64>::zeros((steps, walkers, 1));
    for k in 0..walkers {
        let mut v: f64 = rng.sample::<f64, _>(StandardNormal) / (1.0f64 - a * a).sqrt();
        for t in 0..steps {
            v = a * v + rng.sample::<f64, _>(StandardNormal);
            x[[t, k, 0]] = v;
        }
    }
    let chain = Chain::from_parts(
        vec!["x".into()],
        walkers,
        1,
        x.iter().copied().collect(),
        vec![0.0; steps * walkers],
        Vec::new(),
        0,
        steps as u64,
        vec![0; walkers],
        1,
        0,
    )
    .unwrap();
    let tau = chain.autocorr_time(0).unwrap();
    assert!((tau[0] - 19.0).abs() < 0.2 * 19.0, "τ = {}", tau[0]);
    // Too short a chain (< 50 τ) is an error that carries the estimate.
    let err = chain.autocorr_time(steps - 300).unwrap_err();
    assert!(err.tau[0] > 5.0, "{err}");
}

/// Flat likelihood: the posterior is the prior, so the chain's marginals must be
/// the priors' (in physical space) whatever the transform.
struct Flat;
impl LikelihoodFn for Flat {
    fn ln_likelihood(&self, _output: &ModelOutput, _target: &Target) -> f64 {
        0.0
    }
}

fn prior_only_posterior(params: ParameterSet) -> Posterior {
    let names: Vec<String> = params.names();
    let name_refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let runner = ClosureRunner::positional(&name_refs, &["y"], |_p: &[f64]| {
        ModelOutput::new(vec![0.0, 1.0], vec![("y".into(), vec![0.0, 0.0])])
    });
    let target = Target::new().add_variable("y", vec![0.0, 1.0], vec![0.0, 0.0], vec![1.0, 1.0]).unwrap();
    Posterior::new(params, target, Arc::new(runner), Arc::new(Flat)).unwrap()
}

#[test]
fn transformed_parameters_store_physical_values_and_sample_the_prior() {
    let ln = LogNormal::new(0.5, 0.4).unwrap();
    let tn = TruncatedNormal::new(0.3, 0.4, 0.0, 1.0).unwrap();
    let un = Uniform::new(-2.0, 5.0).unwrap();
    let params = ParameterSet::new()
        .add_with("k", Arc::new(ln.clone()), Transform::Log, "")
        .unwrap()
        .add_with("f", Arc::new(tn.clone()), Transform::Logit, "")
        .unwrap()
        .add_with("u", Arc::new(un.clone()), Transform::Logit, "")
        .unwrap();
    let post = prior_only_posterior(params);
    let s = EnsembleSampler::new(post, SEED).with_n_walkers(WALKERS).unwrap().serial();
    let mut st = s.initialize(InitMethod::Prior).unwrap();
    let chain = s.run(&mut st, STEPS, &RunOptions::default()).unwrap();
    let x = chain.flat_samples(0);
    // Physical values: inside the supports (sampler-space values would be negative
    // for k and outside [0, 1] for f).
    assert!(x.column(0).iter().all(|&v| v > 0.0));
    assert!(x.column(1).iter().all(|&v| v > 0.0 && v < 1.0));
    assert!(x.column(2).iter().all(|&v| v > -2.0 && v < 5.0));
    // Marginals equal the priors. The sampler-space target is smooth and unimodal with
    // τ of the same order as above, so KS < 0.05 has the same margin. Without the Jacobian the
    // marginals are visibly wrong (next test).
    let dists: [&dyn Distribution; 3] = [&ln, &tn, &un];
    for (d, dist) in dists.iter().enumerate() {
        let ks = ks_distance(&x.column(d).to_vec(), |v| dist.cdf(v));
        assert!(ks < 0.05, "parameter {d}: KS distance {ks:.4} from its prior");
    }
    // The stored log-probability is the sampler-space one (prior + Jacobian).
    let lp = chain.ln_probs();
    let row = chain.samples();
    let (k, f, u) = (row[[10, 3, 0]], row[[10, 3, 1]], row[[10, 3, 2]]);
    let want = ln.ln_pdf(k) + k.ln() + tn.ln_pdf(f) + (f * (1.0 - f)).ln() + un.ln_pdf(u) + ((u + 2.0) * (5.0 - u) / 7.0).ln();
    assert!((lp[[10, 3]] - want).abs() < 1e-9, "{} vs {want}", lp[[10, 3]]);
}

#[test]
fn negative_control_without_jacobian_the_marginal_is_wrong() {
    // The same log-transformed LogNormal sampled without the log-Jacobian: the
    // sampler-space density is p(e^u) instead of p(e^u)·e^u, which is a different
    // distribution (ln k ~ N(μ − σ², σ)), and the KS check must reject it.
    let ln = LogNormal::new(0.5, 0.4).unwrap();
    let ln2 = ln.clone();
    let density = FnDensity::new(1, move |u: &[f64]| ln2.ln_pdf(u[0].exp()));
    let s = EnsembleSampler::new(density, SEED).with_n_walkers(WALKERS).unwrap().serial();
    let mut st = s.initialize_without_prior(InitMethod::Ball { center: vec![0.5], radius: 0.4 }).unwrap();
    let chain = s.run(&mut st, STEPS, &RunOptions::default()).unwrap();
    let k: Vec<f64> = chain.flat_samples(0).column(0).iter().map(|u| u.exp()).collect();
    let ks = ks_distance(&k, |v| ln.cdf(v));
    assert!(ks > 0.1, "KS distance {ks:.4}: the check cannot tell a missing Jacobian");
}
