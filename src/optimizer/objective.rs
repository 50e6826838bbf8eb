//! What a point estimate maximises for a calibration [`Posterior`]: the posterior
//! density or the likelihood, both of the *physical* parameters.

use crate::density::LogDensity;
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
