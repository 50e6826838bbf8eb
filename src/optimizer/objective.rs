//! What a point estimate maximises for a calibration [`Posterior`]: the posterior
//! density or the likelihood, both of the *physical* parameters.

use crate::density::LogDensity;
use crate::parameter::{ParameterSet, Transform};
use crate::posterior::Posterior;

/// The quantity a point estimate maximises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Maximum a posteriori (default): maximise `ln p(θ) + ln L(θ)`, the log-prior
    /// density of the physical parameters plus the log-likelihood. The optimiser
    /// minimises the negative of it.
    #[default]
    MaxPosterior,
    /// Maximum likelihood: maximise `ln L(θ)` over the prior's support (the prior
    /// only bounds the search).
    MaxLikelihood,
}

/// A [`Posterior`] seen as the function a point estimate maximises.
///
/// The optimiser moves in the sampler's unbounded space `u` (log/logit transforms),
/// but the value is a function of the physical parameters `θ = T⁻¹(u)` and does
/// **not** include the log-Jacobian that [`Posterior::ln_prob`] carries for MCMC.
/// With the Jacobian the mode would depend on the transform (and never sit on a
/// bound); without it the optimum is the physical MAP or MLE whatever the
/// transforms are.
///
/// Public so that MPI worker ranks can build the same density as the coordinator.
#[derive(Clone)]
pub struct PosteriorObjective {
    posterior: Posterior,
    objective: Objective,
}

impl PosteriorObjective {
    /// Wrap `posterior` to maximise `objective`.
    pub fn new(posterior: Posterior, objective: Objective) -> Self {
        Self { posterior, objective }
    }

    /// The wrapped posterior.
    pub fn posterior(&self) -> &Posterior {
        &self.posterior
    }

    /// What is maximised.
    pub fn objective(&self) -> Objective {
        self.objective
    }

    /// `ln p(θ(u))`, the log-prior density of the physical values (no Jacobian).
    pub fn ln_prior_physical(&self, u: &[f64]) -> f64 {
        let mut theta = vec![0.0; u.len()];
        self.posterior.params().to_physical(u, &mut theta);
        self.posterior.params().ln_prior(&theta)
    }
}

impl LogDensity for PosteriorObjective {
    fn dim(&self) -> usize {
        self.posterior.dim()
    }

    fn ln_prob(&self, u: &[f64]) -> f64 {
        let mut theta = vec![0.0; u.len()];
        self.posterior.params().to_physical(u, &mut theta);
        let lp = self.posterior.params().ln_prior(&theta);
        if lp == f64::NEG_INFINITY || lp.is_nan() {
            return f64::NEG_INFINITY;
        }
        let ll = self.posterior.ln_likelihood(&theta);
        match self.objective {
            Objective::MaxPosterior => lp + ll,
            Objective::MaxLikelihood => ll,
        }
    }

    fn to_physical(&self, u: &[f64], out: &mut [f64]) {
        self.posterior.to_physical(u, out)
    }

    fn to_sampler(&self, x: &[f64], out: &mut [f64]) {
        self.posterior.to_sampler(x, out)
    }

    fn param_names(&self) -> Vec<String> {
        self.posterior.param_names()
    }
}

/// The closed box of the prior's support in the optimiser's (sampler) space, per
/// parameter: a finite bound where the prior density is finite is kept (mapped by
/// the transform: `ln b` for log), every other side is ±∞ (open bounds, and logit
/// transforms, which map the support onto the whole line).
pub fn sampler_box(params: &ParameterSet) -> Vec<(f64, f64)> {
    params
        .defs()
        .map(|d| {
            let (lo, hi) = d.prior.bounds();
            let side = |b: f64, inf: f64| {
                if !b.is_finite() || !d.prior.ln_pdf(b).is_finite() || d.transform == Transform::Logit {
                    return inf;
                }
                let u = d.to_sampler(b);
                if u.is_finite() {
                    u
                } else {
                    inf
                }
            };
            (side(lo, f64::NEG_INFINITY), side(hi, f64::INFINITY))
        })
        .collect()
}

/// Names of the parameters whose value in `theta` (physical) sits on a finite
/// bound of its prior's support: within 1e-6 of the support's width (or of
/// `1 + |bound|` for a half-bounded support).
pub fn at_prior_bounds(params: &ParameterSet, theta: &[f64]) -> Vec<String> {
    params
        .defs()
        .zip(theta)
        .filter(|(d, &x)| {
            let (lo, hi) = d.prior.bounds();
            let near = |b: f64| {
                let scale = if lo.is_finite() && hi.is_finite() { hi - lo } else { 1.0 + b.abs() };
                b.is_finite() && (x - b).abs() <= 1e-6 * scale
            };
            near(lo) || near(hi)
        })
        .map(|(d, _)| d.name.clone())
        .collect()
}
