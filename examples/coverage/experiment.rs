//! The coverage experiment of docs/two-layer.md ("Correlated residuals"): synthetic
//! abrupt-4xCO2 runs of the two-layer model at known parameters with AR(1) noise of
//! known ρ, each fitted with the independent-error likelihood and with the AR(1) one;
//! how often the 90 % interval of ECS contains the truth.
//!
//! Shared by `examples/coverage_ar1.rs` (the full experiment) and
//! `tests/coverage_ar1.rs` (the machinery, with few replicates).

use std::sync::Arc;

use climcal::likelihood::ar1::{Ar1Likelihood, Ar1Variable, Setting};
use climcal::models::two_layer::{Feedback, Forcing, TwoLayerModel};
use climcal::prelude::*;

#[path = "four_x_co2.rs"]
mod four_x_co2;
use rand::SeedableRng;
use rand_distr::{Distribution as _, StandardNormal};

pub const T: &str = "Surface Temperature";
pub const N: &str = "Net Energy Imbalance";

/// The synthetic world: parameters, forcing and noise.
#[derive(Debug, Clone)]
pub struct World {
    /// λ, C, C_d, γ, ε.
    pub truth: [f64; 5],
    /// Constant abrupt-4xCO2 forcing (W m⁻²).
    pub f4x: f64,
    pub n_years: usize,
    /// Marginal σ of the noise of T (K) and N (W m⁻²).
    pub sigma: [f64; 2],
    /// Lag-1 autocorrelation (per year) of the noise of T and N.
    pub rho: [f64; 2],
}

impl World {
    /// MRI-ESM2-0's abrupt-4xCO2 set-up: its posterior medians and its F_4x, σ_T, σ_N
    /// (docs/two-layer.md's validation table), AR(1) noise with ρ_T = 0.6, ρ_N = 0.3.
    pub fn mri_like() -> Self {
        Self { truth: [1.13, 7.3, 106.0, 0.83, 1.61], f4x: 8.30, n_years: 150, sigma: [0.087, 0.44], rho: [0.6, 0.3] }
    }

    /// ECS = F_4x / (2 λ).
    pub fn ecs(&self) -> f64 {
        self.f4x / (2.0 * self.truth[0])
    }

    pub fn model(&self) -> Result<TwoLayerModel> {
        TwoLayerModel::builder(Forcing::constant(self.f4x, 0.0, self.n_years)?).feedback(Feedback::Lambda).build()
    }

    /// Model at the truth plus stationary AR(1) noise drawn from `seed`.
    pub fn synthetic(&self, seed: u64) -> Result<Target> {
        let out = self.model()?.run(&self.truth)?;
        let times: Vec<f64> = (0..self.n_years).map(|i| i as f64).collect();
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        let mut target = Target::new();
        for (k, name) in [T, N].into_iter().enumerate() {
            let noise = ar1_noise(&mut rng, self.n_years, self.rho[k], self.sigma[k]);
            let obs: Vec<f64> = out.get(name).expect("two-layer output").iter().zip(&noise).map(|(m, e)| m + e).collect();
            target = target.add_variable(name, times.clone(), obs, vec![self.sigma[k]; self.n_years])?;
        }
        Ok(target)
    }
}

/// Stationary AR(1) noise: `e_1 ~ N(0, σ²)`, `e_i = ρ e_{i−1} + σ √(1−ρ²) ξ_i`.
pub fn ar1_noise(rng: &mut impl rand::Rng, n: usize, rho: f64, sigma: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    let z: f64 = StandardNormal.sample(rng);
    let mut e = sigma * z;
    let innov = sigma * (1.0 - rho * rho).sqrt();
    for i in 0..n {
        if i > 0 {
            let xi: f64 = StandardNormal.sample(rng);
            e = rho * e + innov * xi;
        }
        out.push(e);
    }
    out
}

/// How a replicate is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// `GaussianLikelihood`: independent errors with the (true) marginal σ.
    Independent,
    /// `Ar1Likelihood` with ρ_T and ρ_N sampled (uniform priors on [0, 0.99]).
    Ar1Sampled,
    /// `Ar1Likelihood` with ρ fixed at the truth (what knowing ρ would give).
    Ar1Known,
}

impl Fit {
    pub const ALL: [Fit; 3] = [Fit::Independent, Fit::Ar1Sampled, Fit::Ar1Known];

    pub fn label(self) -> &'static str {
        match self {
            Fit::Independent => "independent errors (gaussian)",
            Fit::Ar1Sampled => "AR(1), rho_T and rho_N sampled",
            Fit::Ar1Known => "AR(1), rho fixed at the truth",
        }
    }
}

/// MCMC settings of every fit.
#[derive(Debug, Clone, Copy)]
pub struct Mcmc {
    pub n_walkers: usize,
    pub n_steps: u64,
    pub discard: usize,
}

/// What one fit gives.
#[derive(Debug, Clone)]
pub struct FitResult {
    /// 5, 50, 95 % of ECS.
    pub ecs: [f64; 3],
    /// Posterior medians of ρ_T, ρ_N (sampled fits only).
    pub rho: Option<[f64; 2]>,
    /// Largest rank-normalised split R-hat over the parameters (walkers as chains).
    pub r_hat_max: f64,
    pub acceptance: f64,
}

impl FitResult {
    pub fn covers(&self, x: f64) -> bool {
        self.ecs[0] <= x && x <= self.ecs[2]
    }
}

/// Fit `target` (one replicate) as `fit` says, with the ensemble sampler (serial:
/// replicates run in parallel), walkers from a small ball around the CMIP6
/// multi-model mean fit (not the truth).
pub fn fit(world: &World, target: Target, fit: Fit, mcmc: Mcmc, seed: u64) -> Result<FitResult> {
    let mut params = four_x_co2::priors()?;
    let mut center = four_x_co2::CENTER.to_vec();
    let lik: Arc<dyn LikelihoodFn> = match fit {
        Fit::Independent => Arc::new(GaussianLikelihood::default()),
        Fit::Ar1Known => {
            let v = |r: f64| Ar1Variable { rho: Setting::Fixed(r), sigma_extra: None };
            Arc::new(Ar1Likelihood::new(0.0, None, vec![(T.into(), v(world.rho[0])), (N.into(), v(world.rho[1]))])?)
        }
        Fit::Ar1Sampled => {
            for name in ["rho_T", "rho_N"] {
                params = params.add_with(name, Arc::new(Uniform::new(0.0, 0.99)?), Transform::Logit, "1")?;
                center.push(0.3);
            }
            let v = |p: &str| Ar1Variable { rho: Setting::Param(p.into()), sigma_extra: None };
            Arc::new(Ar1Likelihood::new(0.0, None, vec![(T.into(), v("rho_T")), (N.into(), v("rho_N"))])?)
        }
    };
    let post = Posterior::new(params, target, Arc::new(world.model()?), lik)?;
    let sampler = EnsembleSampler::new(post, seed).with_n_walkers(mcmc.n_walkers)?.serial();
    let mut state = sampler.initialize(InitMethod::Ball { center, radius: 0.05 })?;
    let opts = RunOptions { checkpoint_every: 0, ..RunOptions::default() };
    let chain = sampler.run(&mut state, mcmc.n_steps, &opts)?;
    let flat = chain.flat_samples(mcmc.discard);
    let mut ecs: Vec<f64> = flat.column(0).iter().map(|l| world.f4x / (2.0 * l)).collect();
    ecs.sort_by(f64::total_cmp);
    let q = |v: &[f64], p: f64| climcal::diagnostics::quantile(v, p);
    let rho = (fit == Fit::Ar1Sampled).then(|| {
        let med = |i: usize| {
            let mut c = flat.column(i).to_vec();
            c.sort_by(f64::total_cmp);
            q(&c, 0.5)
        };
        [med(5), med(6)]
    });
    let r_hat_max = chain.r_hat(mcmc.discard).into_iter().fold(f64::NEG_INFINITY, f64::max);
    Ok(FitResult { ecs: [q(&ecs, 0.05), q(&ecs, 0.5), q(&ecs, 0.95)], rho, r_hat_max, acceptance: chain.mean_acceptance_rate() })
}

/// One replicate: synthetic data from `seed`, then every fit in `fits` (sampler seed
/// `seed + 1_000_000`, the same for every fit).
pub fn replicate(world: &World, fits: &[Fit], mcmc: Mcmc, seed: u64) -> Result<Vec<FitResult>> {
    let target = world.synthetic(seed)?;
    fits.iter().map(|&f| fit(world, target.clone(), f, mcmc, seed + 1_000_000)).collect()
}

/// Summary of one fit kind over replicates.
#[derive(Debug, Clone)]
pub struct Summary {
    pub fit: Fit,
    pub n: usize,
    pub covered: usize,
    /// Median width of the 90 % interval of ECS (K).
    pub median_width: f64,
    /// Median of the posterior-median ρ_T, ρ_N over replicates.
    pub rho: Option<[f64; 2]>,
    /// Median and largest R-hat max.
    pub r_hat: [f64; 2],
    /// Replicates whose truth lies below the 5 % / above the 95 % quantile.
    pub below_above: [usize; 2],
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    climcal::diagnostics::quantile(&v, 0.5)
}

pub fn summarise(world: &World, fit: Fit, results: &[&FitResult]) -> Summary {
    let truth = world.ecs();
    Summary {
        fit,
        n: results.len(),
        covered: results.iter().filter(|r| r.covers(truth)).count(),
        median_width: median(results.iter().map(|r| r.ecs[2] - r.ecs[0]).collect()),
        rho: results.iter().all(|r| r.rho.is_some()).then(|| {
            [
                median(results.iter().map(|r| r.rho.unwrap()[0]).collect()),
                median(results.iter().map(|r| r.rho.unwrap()[1]).collect()),
            ]
        }),
        r_hat: [
            median(results.iter().map(|r| r.r_hat_max).collect()),
            results.iter().map(|r| r.r_hat_max).fold(f64::NEG_INFINITY, f64::max),
        ],
        below_above: [results.iter().filter(|r| truth < r.ecs[0]).count(), results.iter().filter(|r| truth > r.ecs[2]).count()],
    }
}

impl Summary {
    /// Fraction covered and its binomial standard error.
    pub fn coverage(&self) -> (f64, f64) {
        let p = self.covered as f64 / self.n as f64;
        (p, (p * (1.0 - p) / self.n as f64).sqrt())
    }
}
