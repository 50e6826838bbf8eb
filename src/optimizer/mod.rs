//! Point estimation on [argmin](https://argmin-rs.org): L-BFGS, Nelder–Mead,
//! particle swarm and random search, with restarts from prior draws.
//!
//! The optimiser **minimises the negative log-objective** in the sampler's
//! unbounded space (log/logit transforms of [`ParameterSet`](crate::parameter::ParameterSet)),
//! so bounds are never violated, and reports physical values. For a calibration
//! [`Posterior`] the objective is, by [`Objective`]:
//!
//! - `MaxPosterior` (default): `ln p(θ) + ln L(θ)`, the prior density of the
//!   physical parameters plus the log-likelihood (the MAP estimate; no log-Jacobian,
//!   so the mode does not depend on the transforms and may sit on a bound);
//! - `MaxLikelihood`: `ln L(θ)` over the prior's support (the MLE).
//!
//! Any other [`LogDensity`] is maximised as it is ([`PointEstimator::new`]).
//!
//! Every batch of points goes through an [`Executor`] (serial, rayon, MPI):
//! the `2·dim` points of a central finite-difference gradient, a Nelder–Mead
//! initial simplex, a particle-swarm population, a random-search sample, and the
//! starting points of all restarts. A point whose log-objective is −∞ or NaN (outside
//! the support, or a failed model run) gets the finite cost [`FAILED_COST`], so
//! solvers back away from it instead of aborting.
//!
//! Determinism: restart `r` draws from the stream `walker_rng(seed, r)` and its
//! trajectory depends on nothing else, so the result is the same for any number
//! of threads or ranks, whether restarts run concurrently or not.
//!
//! ```
//! use std::sync::Arc;
//! use climcal::prelude::*;
//! use climcal::optimizer::{OptimizeMethod, OptimizeOptions, PointEstimator};
//!
//! // Maximise -(x - 1)² - (y + 2)²: the minimum of the cost is at (1, -2).
//! let d = FnDensity::new(2, |x: &[f64]| -((x[0] - 1.0).powi(2) + (x[1] + 2.0).powi(2)));
//! let est = PointEstimator::new(d).with_start_box(vec![-5.0; 2], vec![5.0; 2])?;
//! let opts = OptimizeOptions { n_restarts: 2, seed: 7, ..Default::default() };
//! let res = est.optimize(OptimizeMethod::LBFGS, &opts)?;
//! assert!((res.best_params["p0"] - 1.0).abs() < 1e-5 && (res.best_params["p1"] + 2.0).abs() < 1e-5);
//! # Ok::<(), climcal::Error>(())
//! ```

mod linesearch;
mod objective;
mod problem;
mod swarm;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use argmin::core::{Executor as ArgminExecutor, State, TerminationReason};
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::LBFGS;
use indexmap::IndexMap;
use ndarray::Array2;
use rand::{Rng, RngCore};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use objective::{at_prior_bounds, sampler_box, Objective, PosteriorObjective};
pub use problem::{cost_of, FAILED_COST};

use crate::density::LogDensity;
use crate::error::{Error, Result};
use crate::executor::{Executor, RayonExecutor};
use crate::parameter::ParameterSet;
use crate::posterior::Posterior;
use crate::sampler::ensemble::PriorSampler;
use crate::sampler::rng::walker_rng;
use problem::{BatchProblem, Record};
use swarm::PatientSwarm;

/// Stream used to estimate the prior's scale (simplex size, swarm box); restart
/// streams are `0..n_restarts`.
const SCALE_STREAM: usize = 1 << 40;
/// Prior draws used to estimate the per-dimension scale.
const SCALE_DRAWS: usize = 256;
/// Draws per restart before giving up on finding a finite starting point.
const MAX_START_TRIES: usize = 100;
/// Random-search points per executor batch.
const RANDOM_BATCH: usize = 4096;

/// The optimisation algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizeMethod {
    /// Limited-memory BFGS (argmin `LBFGS`, Moré–Thuente line search whose first
    /// trial step has length 1, as L-BFGS-B) with central finite-difference
    /// gradients. Default `max_iters`: 1000.
    #[serde(rename = "lbfgs")]
    LBFGS,
    /// Nelder–Mead simplex (argmin `NelderMead`), initial simplex of size
    /// `simplex_scale` × prior sd per dimension. Default `max_iters`: 200·dim.
    NelderMead,
    /// Particle swarm (argmin `ParticleSwarm`, SPSO-2011 weights) in a box of
    /// prior mean ± `swarm_box_sds` sd. Default `max_iters`: 2000.
    ParticleSwarm,
    /// `n_samples` prior draws per restart, evaluated in batches.
    RandomSearch { n_samples: usize },
}

impl OptimizeMethod {
    /// Short name: `lbfgs`, `nelder-mead`, `particle-swarm`, `random-search`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::LBFGS => "lbfgs",
            Self::NelderMead => "nelder-mead",
            Self::ParticleSwarm => "particle-swarm",
            Self::RandomSearch { .. } => "random-search",
        }
    }

    /// Iteration cap when [`OptimizeOptions::max_iters`] is `None`.
    pub fn default_max_iters(&self, dim: usize) -> u64 {
        match self {
            Self::LBFGS => 1000,
            Self::NelderMead => 200 * dim.max(1) as u64,
            Self::ParticleSwarm => 2000,
            Self::RandomSearch { .. } => u64::MAX,
        }
    }
}

impl FromStr for OptimizeMethod {
    type Err = Error;

    /// `lbfgs`, `nelder-mead`, `particle-swarm`, `random-search` (1000 samples) or
    /// `random-search:N`; case-insensitive, `_` and `-` interchangeable.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase().replace('_', "-");
        let (head, arg) = match t.split_once(':') {
            Some((h, a)) => (h.to_string(), Some(a.to_string())),
            None => (t.clone(), None),
        };
        let m = match head.as_str() {
            "lbfgs" | "l-bfgs" | "l-bfgs-b" => Self::LBFGS,
            "nelder-mead" | "neldermead" | "nm" => Self::NelderMead,
            "particle-swarm" | "particleswarm" | "pso" => Self::ParticleSwarm,
            "random-search" | "random" => {
                let n = match arg {
                    Some(a) => a.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                        Error::Config(format!("random-search sample count must be a positive integer, got '{a}'"))
                    })?,
                    None => 1000,
                };
                return Ok(Self::RandomSearch { n_samples: n });
            }
            _ => {
                return Err(Error::Config(format!(
                    "unknown optimisation method '{s}'; use one of lbfgs, nelder-mead, particle-swarm, random-search[:N]"
                )))
            }
        };
        if arg.is_some() {
            return Err(Error::Config(format!("method '{head}' takes no ':' argument, got '{s}'")));
        }
        Ok(m)
    }
}

/// Options of [`PointEstimator::optimize`].
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizeOptions {
    /// Independent restarts from prior draws (default `4`).
    pub n_restarts: usize,
    /// Iteration cap per restart; `None` (default) uses
    /// [`OptimizeMethod::default_max_iters`].
    pub max_iters: Option<u64>,
    /// Convergence tolerance (default `1e-6`): L-BFGS stops when the gradient norm
    /// of the cost is below it (or the cost changes by less than `1e-3 ×` it);
    /// Nelder–Mead when the standard deviation of the simplex costs is below it;
    /// particle swarm when the best cost has improved by less than it for
    /// `swarm_patience` iterations. Random search ignores it.
    pub tolerance: f64,
    /// Seed of all random draws (default `0`).
    pub seed: u64,
    /// Particles per swarm (default `40`).
    pub n_particles: usize,
    /// Iterations without improvement before a swarm stops (default `50`).
    pub swarm_patience: u64,
    /// Half-width of the swarm's box in prior standard deviations (default `5.0`).
    pub swarm_box_sds: f64,
    /// L-BFGS history length (default `10`, as scipy).
    pub lbfgs_memory: usize,
    /// Nelder–Mead initial simplex edge as a fraction of the prior sd (default `0.1`).
    pub simplex_scale: f64,
    /// Run restarts concurrently on rayon's pool (default `true`). Ignored (run one
    /// after another) when the executor spans several MPI ranks, whose collective
    /// calls must not interleave.
    pub parallel_restarts: bool,
    /// Keep every evaluated point in the result (default `true`).
    pub keep_samples: bool,
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        Self {
            n_restarts: 4,
            max_iters: None,
            tolerance: 1e-6,
            seed: 0,
            n_particles: 40,
            swarm_patience: 50,
            swarm_box_sds: 5.0,
            lbfgs_memory: 10,
            simplex_scale: 0.1,
            parallel_restarts: true,
            keep_samples: true,
        }
    }
}

/// One restart's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartResult {
    /// Restart index (its random stream).
    pub index: usize,
    /// Starting point (physical; empty for particle swarm and random search).
    pub start: Vec<f64>,
    /// Best point found (sampler space); empty when every evaluation failed.
    pub best_point: Vec<f64>,
    /// Best point found (physical).
    pub best_params: Vec<f64>,
    /// Log-objective at the best point (−∞ when every evaluation failed).
    pub best_ln_objective: f64,
    /// Evaluations of this restart (including its starting draws).
    pub n_evals: u64,
    /// Solver iterations.
    pub n_iters: u64,
    /// Failed evaluations (NaN, panics, model errors).
    pub failures: u64,
    /// Why the solver stopped.
    pub termination: String,
}

/// The result of [`PointEstimator::optimize`].
#[derive(Debug, Clone)]
pub struct PointEstimateResult {
    /// Method used.
    pub method: OptimizeMethod,
    /// What was maximised (`None` for a plain log-density).
    pub objective: Option<Objective>,
    /// Parameter names, in order.
    pub param_names: Vec<String>,
    /// Best parameters by name (physical values).
    pub best_params: IndexMap<String, f64>,
    /// Best point in sampler space.
    pub best_point: Vec<f64>,
    /// Log-objective at the best point (the maximised quantity).
    pub best_ln_objective: f64,
    /// `ln p(θ) + ln L(θ)` at the best point (physical prior, no Jacobian). For a
    /// plain log-density, its value.
    pub best_ln_posterior: f64,
    /// `ln L(θ)` at the best point. For a plain log-density, its value.
    pub best_likelihood: f64,
    /// `ln p(θ)` at the best point (0 for a plain log-density).
    pub best_ln_prior: f64,
    /// Every point evaluated (physical), `(n_evals, dim)`, restart by restart in
    /// evaluation order; empty when `keep_samples` is false.
    pub samples: Array2<f64>,
    /// Log-objective of each sample (−∞ for failures).
    pub ln_objective: Vec<f64>,
    /// Log-likelihood of each sample (for a plain log-density, its value).
    pub likelihoods: Vec<f64>,
    /// Evaluations in total.
    pub n_evals: u64,
    /// Failed evaluations in total.
    pub failures: u64,
    /// Per-restart results, by restart index.
    pub restarts: Vec<RestartResult>,
    /// Index of the restart that found the best point.
    pub best_restart: usize,
    /// Wall time (seconds).
    pub wall_seconds: f64,
    /// Seed used.
    pub seed: u64,
    /// Parameters whose best value sits on a bound of its prior's support
    /// ([`at_prior_bounds`]; calibration posteriors only): the optimum may lie
    /// outside the prior, and the estimate is then a bound, not an interior mode.
    pub at_bounds: Vec<String>,
}

impl PointEstimateResult {
    /// Best physical values in parameter order.
    pub fn best_physical(&self) -> Vec<f64> {
        self.best_params.values().copied().collect()
    }

    /// Evaluations until the first sample whose log-objective is at least
    /// `ln_target` (counting samples in stored order), or `None`.
    pub fn evals_to_reach(&self, ln_target: f64) -> Option<u64> {
        self.ln_objective.iter().position(|&v| v >= ln_target).map(|i| i as u64 + 1)
    }

    /// The best fit as a small serialisable record.
    pub fn best_fit(&self) -> BestFit {
        BestFit {
            method: self.method.name().to_string(),
            objective: self.objective,
            ln_posterior: self.best_ln_posterior,
            ln_likelihood: self.best_likelihood,
            ln_prior: self.best_ln_prior,
            n_evals: self.n_evals,
            failures: self.failures,
            seed: self.seed,
            params: self.best_params.clone(),
        }
    }

    /// A human-readable table of the best fit and the restarts.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let obj = match self.objective {
            Some(Objective::MaxPosterior) => "maximum a posteriori",
            Some(Objective::MaxLikelihood) => "maximum likelihood",
            None => "maximum of the log-density",
        };
        let _ = writeln!(
            s,
            "{} ({obj}), {} evaluations, {} failed, {:.3} s",
            self.method.name(),
            self.n_evals,
            self.failures,
            self.wall_seconds
        );
        let w = self.param_names.iter().map(|n| n.len()).max().unwrap_or(4).max(9);
        for (n, v) in &self.best_params {
            let _ = writeln!(s, "  {n:<w$} = {v:.8e}");
        }
        let _ = writeln!(s, "  {:<w$} = {:.6}", "ln_posterior", self.best_ln_posterior);
        let _ = writeln!(s, "  {:<w$} = {:.6}", "ln_likelihood", self.best_likelihood);
        if !self.at_bounds.is_empty() {
            let _ = writeln!(
                s,
                "  on a bound of the prior: {} (the optimum may lie outside the prior: widen it, or read the value as a bound)",
                self.at_bounds.join(", ")
            );
        }
        let _ = writeln!(s, "restart  ln_objective        evals  iters  stopped");
        for r in &self.restarts {
            let mark = if r.index == self.best_restart { "*" } else { " " };
            let _ = writeln!(
                s,
                "{:>6}{mark} {:<18.8} {:>6} {:>6}  {}",
                r.index, r.best_ln_objective, r.n_evals, r.n_iters, r.termination
            );
        }
        s
    }
}

/// The best fit as written by `climcal optimize -o best.toml|best.json` and read
/// back by `climcal run --init best`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestFit {
    pub method: String,
    pub objective: Option<Objective>,
    pub ln_posterior: f64,
    pub ln_likelihood: f64,
    pub ln_prior: f64,
    pub n_evals: u64,
    pub failures: u64,
    pub seed: u64,
    /// Physical values by name.
    pub params: IndexMap<String, f64>,
}

impl BestFit {
    /// Write as JSON when `path` ends in `.json`, TOML otherwise.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = if is_json(path) {
            serde_json::to_string_pretty(self).map_err(|e| Error::Config(format!("cannot encode best fit as JSON: {e}")))?
        } else {
            toml::to_string(self).map_err(|e| Error::Config(format!("cannot encode best fit as TOML: {e}")))?
        };
        std::fs::write(path, text)?;
        Ok(())
    }

    /// Read a file written by [`BestFit::write`] (JSON when it ends in `.json`).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Data { path: path.into(), reason: format!("cannot read best-fit file: {e}") })?;
        let r = if is_json(path) {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        } else {
            toml::from_str(&text).map_err(|e| e.to_string())
        };
        r.map_err(|e| Error::Data {
            path: path.into(),
            reason: format!("not a best-fit file written by `climcal optimize -o`: {e}"),
        })
    }

    /// Physical values in the order of `names`; errors name a missing parameter.
    pub fn values_for(&self, names: &[String]) -> Result<Vec<f64>> {
        names
            .iter()
            .map(|n| {
                self.params.get(n).copied().ok_or_else(|| Error::InvalidParameter {
                    name: n.clone(),
                    reason: format!(
                        "missing from the best-fit file, which has {:?}; re-run `climcal optimize`",
                        self.params.keys().collect::<Vec<_>>()
                    ),
                })
            })
            .collect()
    }
}

fn is_json(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Starting points drawn from a [`ParameterSet`]'s priors (physical draws mapped to
/// sampler space), for densities that carry priors but are not a [`Posterior`].
#[derive(Clone)]
pub struct ParameterPrior(pub ParameterSet);

impl PriorSampler for ParameterPrior {
    fn sample_prior(&self, rng: &mut dyn RngCore, out: &mut [f64]) {
        let mut x = vec![0.0; out.len()];
        for (i, d) in self.0.defs().enumerate() {
            x[i] = d.prior.sample(1, rng)[0];
        }
        self.0.to_sampler(&x, out);
    }
}

/// Where starting points (and the scale of the problem) come from.
#[derive(Clone)]
enum Start {
    None,
    Sampler(Arc<dyn PriorSampler + Send + Sync>),
    /// Uniform in a sampler-space box.
    Box(Vec<f64>, Vec<f64>),
    /// One given sampler-space point.
    Point(Vec<f64>),
}

/// Point estimates of a [`LogDensity`], by default on rayon's global pool.
///
/// Build with [`PointEstimator::from_posterior`] (calibration: MAP or MLE of the
/// physical parameters, restarts drawn from the prior) or [`PointEstimator::new`]
/// (any log-density, maximised as it is; give the starting distribution with
/// [`PointEstimator::with_start_box`] or [`PointEstimator::with_start_sampler`]).
#[derive(Clone)]
pub struct PointEstimator {
    density: Arc<dyn LogDensity>,
    split: Option<Arc<PosteriorObjective>>,
    start: Start,
    search_box: Option<(Vec<f64>, Vec<f64>)>,
    executor: Arc<dyn Executor>,
}

impl PointEstimator {
    /// Maximise `density` as it is, in its own space.
    pub fn new(density: impl LogDensity + 'static) -> Self {
        Self {
            density: Arc::new(density),
            split: None,
            start: Start::None,
            search_box: None,
            executor: Arc::new(RayonExecutor::global()),
        }
    }

    /// Maximise the posterior (or likelihood) of the physical parameters of a
    /// calibration; restarts start from prior draws.
    pub fn from_posterior(posterior: Posterior, objective: Objective) -> Self {
        let obj = Arc::new(PosteriorObjective::new(posterior.clone(), objective));
        Self {
            density: obj.clone(),
            split: Some(obj),
            start: Start::Sampler(Arc::new(posterior)),
            search_box: None,
            executor: Arc::new(RayonExecutor::global()),
        }
    }

    /// Evaluate on `executor` (default: rayon's global pool).
    #[must_use]
    pub fn with_executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = executor;
        self
    }

    /// Draw starting points with `sampler` (sampler space).
    #[must_use]
    pub fn with_start_sampler(mut self, sampler: Arc<dyn PriorSampler + Send + Sync>) -> Self {
        self.start = Start::Sampler(sampler);
        self
    }

    /// Draw starting points uniformly in the sampler-space box `[lower, upper]`
    /// (also the particle swarm's box unless [`PointEstimator::with_search_box`] is given).
    pub fn with_start_box(mut self, lower: Vec<f64>, upper: Vec<f64>) -> Result<Self> {
        check_box(&lower, &upper, self.density.dim(), "start box")?;
        self.start = Start::Box(lower, upper);
        Ok(self)
    }

    /// Start every restart from the physical point `x` (for comparisons with other
    /// optimisers; use `n_restarts = 1`). The scale of the problem is then taken as
    /// `0.5·max(|u_i|, 1)` per dimension, so the Nelder–Mead simplex edge is
    /// `simplex_scale · 0.5 · max(|u_i|, 1)` (5 % of `u_i` by default, as scipy).
    pub fn with_start_point(mut self, x: &[f64]) -> Result<Self> {
        let d = self.density.dim();
        if x.len() != d {
            return Err(Error::LengthMismatch { what: "start point vs parameters".into(), expected: d, found: x.len() });
        }
        let mut u = vec![0.0; d];
        self.density.to_sampler(x, &mut u);
        if let Some(i) = u.iter().position(|v| !v.is_finite()) {
            return Err(Error::Config(format!("start point: parameter {i} = {} maps outside the parameter's support", x[i])));
        }
        self.start = Start::Point(u);
        Ok(self)
    }

    /// The particle swarm's box in sampler space (default: prior mean ±
    /// `swarm_box_sds` prior sd, or the start box).
    pub fn with_search_box(mut self, lower: Vec<f64>, upper: Vec<f64>) -> Result<Self> {
        check_box(&lower, &upper, self.density.dim(), "search box")?;
        self.search_box = Some((lower, upper));
        Ok(self)
    }

    /// The density being maximised (for MPI workers, which must evaluate the same).
    pub fn density(&self) -> &Arc<dyn LogDensity> {
        &self.density
    }

    fn draw(&self, rng: &mut dyn RngCore, out: &mut [f64]) {
        match &self.start {
            Start::Sampler(s) => s.sample_prior(rng, out),
            Start::Box(lo, hi) => {
                let r = rng;
                for i in 0..out.len() {
                    out[i] = lo[i] + (hi[i] - lo[i]) * r.random::<f64>();
                }
            }
            Start::Point(u) => out.copy_from_slice(u),
            Start::None => unreachable!("checked in optimize"),
        }
    }

    /// Per-dimension mean and sd of the start distribution (sampler space).
    fn scales(&self, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let d = self.density.dim();
        if let Start::Box(lo, hi) = &self.start {
            let mean = lo.iter().zip(hi).map(|(a, b)| 0.5 * (a + b)).collect();
            let sd = lo.iter().zip(hi).map(|(a, b)| (b - a) / 12f64.sqrt()).collect();
            return (mean, sd);
        }
        if let Start::Point(u) = &self.start {
            return (u.clone(), u.iter().map(|v| 0.5 * v.abs().max(1.0)).collect());
        }
        let mut rng = walker_rng(seed, SCALE_STREAM);
        let mut x = vec![0.0; d];
        let (mut s1, mut s2) = (vec![0.0; d], vec![0.0; d]);
        for _ in 0..SCALE_DRAWS {
            self.draw(&mut rng, &mut x);
            for i in 0..d {
                s1[i] += x[i];
                s2[i] += x[i] * x[i];
            }
        }
        let n = SCALE_DRAWS as f64;
        let mean: Vec<f64> = s1.iter().map(|s| s / n).collect();
        let sd = (0..d)
            .map(|i| {
                let v = (s2[i] / n - mean[i] * mean[i]).max(0.0) * n / (n - 1.0);
                // A degenerate prior still needs a non-zero simplex.
                if v.sqrt().is_finite() && v.sqrt() > 1e-12 {
                    v.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        (mean, sd)
    }

    /// Values for reporting: `(ln_posterior, ln_likelihood, ln_prior)` at `u`
    /// given the log-objective `v` there (cheap: only the prior is evaluated).
    fn split_value(&self, u: &[f64], v: f64) -> (f64, f64, f64) {
        match &self.split {
            None => (v, v, 0.0),
            Some(o) => {
                let lp = o.ln_prior_physical(u);
                match o.objective() {
                    Objective::MaxPosterior => (v, if v.is_finite() { v - lp } else { v }, lp),
                    Objective::MaxLikelihood => (v + lp, v, lp),
                }
            }
        }
    }

    /// Find the maximum of the objective with `method`.
    ///
    /// Errors when the options are invalid, no start distribution was given for a
    /// plain density, or no restart found a point with a finite objective.
    pub fn optimize(&self, method: OptimizeMethod, opts: &OptimizeOptions) -> Result<PointEstimateResult> {
        let t0 = Instant::now();
        let dim = self.density.dim();
        check_options(method, opts, dim)?;
        if matches!(self.start, Start::None) {
            return Err(Error::Config(
                "no start distribution for this log-density: use PointEstimator::from_posterior, with_start_box or with_start_sampler"
                    .into(),
            ));
        }
        let (mean, sd) = self.scales(opts.seed);
        let search_box = match (&self.search_box, &self.start) {
            (Some(b), _) => b.clone(),
            (None, Start::Box(lo, hi)) => (lo.clone(), hi.clone()),
            _ => (
                mean.iter().zip(&sd).map(|(m, s)| m - opts.swarm_box_sds * s).collect(),
                mean.iter().zip(&sd).map(|(m, s)| m + opts.swarm_box_sds * s).collect(),
            ),
        };
        let max_iters = opts.max_iters.unwrap_or_else(|| method.default_max_iters(dim));
        let n = opts.n_restarts;
        let mut rngs: Vec<_> = (0..n).map(|r| walker_rng(opts.seed, r)).collect();
        let density: &dyn LogDensity = &*self.density;
        let executor: &dyn Executor = &*self.executor;

        // Starting points of gradient and simplex restarts: all restarts' draws in
        // one batch per round; a restart whose draw fails draws again.
        let mut starts: Vec<Option<(Vec<f64>, f64)>> = vec![None; n];
        let mut start_records: Vec<Record> = vec![Record::default(); n];
        if matches!(method, OptimizeMethod::LBFGS | OptimizeMethod::NelderMead) {
            for _ in 0..MAX_START_TRIES {
                let pending: Vec<usize> = (0..n).filter(|&r| starts[r].is_none()).collect();
                if pending.is_empty() {
                    break;
                }
                let mut pts = vec![0.0; pending.len() * dim];
                for (k, &r) in pending.iter().enumerate() {
                    self.draw(&mut rngs[r], &mut pts[k * dim..(k + 1) * dim]);
                }
                let mut ln = vec![0.0; pending.len()];
                executor.evaluate(density, &pts, &mut ln, &mut []);
                for (k, &r) in pending.iter().enumerate() {
                    let p = &pts[k * dim..(k + 1) * dim];
                    // Per-point failures: NaN/panic become −∞ in the executor; count
                    // every non-finite start as a failed draw of this restart.
                    start_records[r].add(p, ln[k], dim, opts.keep_samples, !ln[k].is_finite());
                    if ln[k].is_finite() {
                        starts[r] = Some((p.to_vec(), ln[k]));
                    }
                }
            }
            if let Some(r) = starts.iter().position(|s| s.is_none()) {
                return Err(Error::Model(format!(
                    "the objective is -inf or NaN at all {MAX_START_TRIES} starting points drawn for restart {r}; \
                     check that the model runs for parameters drawn from the prior"
                )));
            }
        }

        // L-BFGS moves on the box of the prior's support (projected; see
        // BatchProblem::with_bounds): a bounded identity/log parameter whose optimum
        // lies on its bound is found there instead of against a wall of failed costs.
        let lbfgs_box = match (&self.split, method) {
            (Some(o), OptimizeMethod::LBFGS) => Some(sampler_box(o.posterior().params())),
            _ => None,
        };
        let run_one = |r: usize, mut rng: rand_pcg::Pcg64, start: Option<(Vec<f64>, f64)>, pre: Record| {
            let problem = BatchProblem::new(density, executor, opts.keep_samples).with_record(pre).with_bounds(lbfgs_box.clone());
            let (n_iters, termination) = match method {
                OptimizeMethod::LBFGS => {
                    let (x0, v0) = start.clone().expect("drawn above");
                    run_lbfgs(&problem, x0, v0, max_iters, opts)
                }
                OptimizeMethod::NelderMead => {
                    let (x0, v0) = start.clone().expect("drawn above");
                    run_nelder_mead(&problem, x0, v0, &sd, max_iters, opts)
                }
                OptimizeMethod::ParticleSwarm => {
                    let solver =
                        PatientSwarm::new(search_box.clone(), opts.n_particles, rng, opts.tolerance, opts.swarm_patience);
                    let res = ArgminExecutor::new(&problem, solver).configure(|s| s.max_iters(max_iters)).run();
                    outcome(res.map(|r| (r.state.get_iter(), r.state.get_termination_reason().cloned())))
                }
                OptimizeMethod::RandomSearch { n_samples } => {
                    let mut left = n_samples;
                    let mut batches = 0;
                    while left > 0 {
                        let m = left.min(RANDOM_BATCH);
                        let mut pts = vec![0.0; m * dim];
                        for k in 0..m {
                            self.draw(&mut rng, &mut pts[k * dim..(k + 1) * dim]);
                        }
                        problem.eval_batch(&pts);
                        left -= m;
                        batches += 1;
                    }
                    (batches, format!("drew {n_samples} samples"))
                }
            };
            (r, start.map(|s| s.0), n_iters, termination, problem.take_record())
        };

        let jobs: Vec<_> = rngs.into_iter().zip(starts).zip(start_records).enumerate().collect();
        let parallel = opts.parallel_restarts && executor.info().ranks <= 1 && n > 1;
        let runs: Vec<_> = if parallel {
            jobs.into_par_iter().map(|(r, ((rng, s), pre))| run_one(r, rng, s, pre)).collect()
        } else {
            jobs.into_iter().map(|(r, ((rng, s), pre))| run_one(r, rng, s, pre)).collect()
        };

        // Assemble in restart order.
        let total: usize = runs.iter().map(|r| r.4.ln_values.len()).sum();
        let mut samples = Vec::with_capacity(total * dim);
        let mut ln_objective = Vec::with_capacity(total);
        let mut likelihoods = Vec::with_capacity(total);
        let mut restarts = Vec::with_capacity(n);
        let mut phys = vec![0.0; dim];
        let (mut n_evals, mut failures) = (0u64, 0u64);
        let mut best: Option<(usize, Vec<f64>, f64)> = None;
        for (r, start, n_iters, termination, rec) in runs {
            for (k, &v) in rec.ln_values.iter().enumerate() {
                let u = &rec.points[k * dim..(k + 1) * dim];
                density.to_physical(u, &mut phys);
                samples.extend_from_slice(&phys);
                ln_objective.push(v);
                likelihoods.push(self.split_value(u, v).1);
            }
            n_evals += rec.n_evals;
            failures += rec.failures;
            let (best_point, best_v) = rec.best.clone().unwrap_or((Vec::new(), f64::NEG_INFINITY));
            let mut best_params = vec![0.0; if best_point.is_empty() { 0 } else { dim }];
            if !best_point.is_empty() {
                density.to_physical(&best_point, &mut best_params);
            }
            let start_phys = start.map(|s| {
                let mut p = vec![0.0; dim];
                density.to_physical(&s, &mut p);
                p
            });
            if best_v.is_finite() && best.as_ref().is_none_or(|b| best_v > b.2) {
                best = Some((r, best_point.clone(), best_v));
            }
            restarts.push(RestartResult {
                index: r,
                start: start_phys.unwrap_or_default(),
                best_point,
                best_params,
                best_ln_objective: best_v,
                n_evals: rec.n_evals,
                n_iters,
                failures: rec.failures,
                termination,
            });
        }
        let (best_restart, best_point, best_v) = best.ok_or_else(|| {
            Error::Model(format!(
                "every one of the {n_evals} evaluations failed or was outside the support ({failures} model failures); \
                 check the model and the priors"
            ))
        })?;
        let mut best_phys = vec![0.0; dim];
        density.to_physical(&best_point, &mut best_phys);
        let names = density.param_names();
        let best_params = names.iter().cloned().zip(best_phys.iter().copied()).collect();
        let (lpost, llik, lprior) = self.split_value(&best_point, best_v);
        let n_rows = ln_objective.len();
        Ok(PointEstimateResult {
            method,
            objective: self.split.as_ref().map(|o| o.objective()),
            param_names: names,
            best_params,
            best_point,
            best_ln_objective: best_v,
            best_ln_posterior: lpost,
            best_likelihood: llik,
            best_ln_prior: lprior,
            samples: Array2::from_shape_vec((n_rows, dim), samples).expect("rows × dim"),
            ln_objective,
            likelihoods,
            n_evals,
            failures,
            restarts,
            best_restart,
            wall_seconds: t0.elapsed().as_secs_f64(),
            seed: opts.seed,
            at_bounds: match &self.split {
                Some(o) => at_prior_bounds(o.posterior().params(), &best_phys),
                None => Vec::new(),
            },
        })
    }
}

fn check_box(lower: &[f64], upper: &[f64], dim: usize, what: &str) -> Result<()> {
    for (name, v) in [("lower", lower), ("upper", upper)] {
        if v.len() != dim {
            return Err(Error::LengthMismatch {
                what: format!("{what} {name} bounds vs parameters"),
                expected: dim,
                found: v.len(),
            });
        }
    }
    for i in 0..dim {
        if !(lower[i].is_finite() && upper[i].is_finite() && lower[i] < upper[i]) {
            return Err(Error::Config(format!(
                "{what}: dimension {i} has bounds [{}, {}]; they must be finite with lower < upper",
                lower[i], upper[i]
            )));
        }
    }
    Ok(())
}

fn check_options(method: OptimizeMethod, o: &OptimizeOptions, dim: usize) -> Result<()> {
    let bad = |m: String| Err(Error::Config(m));
    if dim == 0 {
        return bad("the log-density has no parameters to optimise".into());
    }
    if o.n_restarts == 0 {
        return bad("n_restarts must be >= 1 (default 4)".into());
    }
    if !(o.tolerance > 0.0 && o.tolerance.is_finite()) {
        return bad(format!("tolerance must be finite and > 0 (default 1e-6), got {}", o.tolerance));
    }
    if o.max_iters == Some(0) {
        return bad("max_iters must be >= 1; leave it unset for the method's default".into());
    }
    match method {
        OptimizeMethod::ParticleSwarm if o.n_particles < 2 => {
            bad(format!("n_particles must be >= 2 (default 40), got {}", o.n_particles))
        }
        OptimizeMethod::ParticleSwarm if !(o.swarm_box_sds > 0.0 && o.swarm_box_sds.is_finite()) => {
            bad(format!("swarm_box_sds must be finite and > 0 (default 5), got {}", o.swarm_box_sds))
        }
        OptimizeMethod::LBFGS if o.lbfgs_memory == 0 => bad("lbfgs_memory must be >= 1 (default 10)".into()),
        OptimizeMethod::NelderMead if !(o.simplex_scale > 0.0 && o.simplex_scale.is_finite()) => {
            bad(format!("simplex_scale must be finite and > 0 (default 0.1), got {}", o.simplex_scale))
        }
        OptimizeMethod::RandomSearch { n_samples: 0 } => bad("random search needs n_samples >= 1".into()),
        _ => Ok(()),
    }
}

fn describe(reason: Option<TerminationReason>) -> String {
    match reason {
        Some(r) => r.text().to_string(),
        None => "not terminated".into(),
    }
}

fn outcome(r: std::result::Result<(u64, Option<TerminationReason>), argmin::core::Error>) -> (u64, String) {
    match r {
        Ok((iters, reason)) => (iters, describe(reason)),
        // An argmin error ends this restart only; its best point so far counts.
        Err(e) => (0, format!("error: {e}")),
    }
}

fn run_lbfgs(problem: &BatchProblem<'_>, x0: Vec<f64>, v0: f64, max_iters: u64, o: &OptimizeOptions) -> (u64, String) {
    let solver = LBFGS::new(linesearch::ScaledFirstStep::new(), o.lbfgs_memory)
        .with_tolerance_grad(o.tolerance)
        .and_then(|s| s.with_tolerance_cost(o.tolerance * 1e-3));
    let solver = match solver {
        Ok(s) => s,
        Err(e) => return (0, format!("error: {e}")),
    };
    // The start's value is known; handing it to argmin as a state cost would make
    // L-BFGS see "no change in cost" and stop at once, so prefetch it instead.
    problem.insert_known(&x0, v0);
    let res = ArgminExecutor::new(problem, solver).configure(|s| s.param(x0).max_iters(max_iters)).run();
    outcome(res.map(|r| (r.state.get_iter(), r.state.get_termination_reason().cloned())))
}

fn run_nelder_mead(
    problem: &BatchProblem<'_>,
    x0: Vec<f64>,
    v0: f64,
    sd: &[f64],
    max_iters: u64,
    o: &OptimizeOptions,
) -> (u64, String) {
    let mut simplex = vec![x0.clone()];
    for i in 0..x0.len() {
        let mut v = x0.clone();
        v[i] += o.simplex_scale * sd[i];
        simplex.push(v);
    }
    problem.insert_known(&x0, v0);
    problem.prefetch(&simplex[1..]);
    let solver = match NelderMead::new(simplex).with_sd_tolerance(o.tolerance) {
        Ok(s) => s,
        Err(e) => return (0, format!("error: {e}")),
    };
    let res = ArgminExecutor::new(problem, solver).configure(|s| s.max_iters(max_iters)).run();
    outcome(res.map(|r| (r.state.get_iter(), r.state.get_termination_reason().cloned())))
}
