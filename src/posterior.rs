//! The calibration posterior: prior × model × likelihood, as a [`LogDensity`].

use std::sync::Arc;

use crate::density::LogDensity;
use crate::error::{Error, Result};
use crate::likelihood::{model_at_observations, LikelihoodFn};
use crate::parameter::ParameterSet;
use crate::runner::{run_catching, ModelRunner};
use crate::target::Target;

/// `ln p(θ | data) = ln p(θ) + ln L(model(θ) | target)` in the sampler's space.
///
/// A model that returns `Err`, panics, or produces NaN gives `NaN`, which the
/// executors count as a failure and treat as `-inf`.
#[derive(Clone)]
pub struct Posterior {
    params: ParameterSet,
    target: Arc<Target>,
    runner: Arc<dyn ModelRunner>,
    likelihood: Arc<dyn LikelihoodFn>,
    /// `model_params[i] = theta[perm[i]]`
    perm: Vec<usize>,
    /// `likelihood_params[i] = theta[lik_perm[i]]`
    lik_perm: Vec<usize>,
    blobs: bool,
    n_blobs: usize,
    /// Number of derived quantities stored after the blobs (0 = off).
    n_derived: usize,
}

impl Posterior {
    /// Tie the parts together; every model parameter and every parameter of the
    /// likelihood ([`LikelihoodFn::param_names`], e.g. a sampled AR(1) ρ) must be in
    /// `params`, and every parameter in `params` must be one of them.
    pub fn new(
        params: ParameterSet,
        target: Target,
        runner: Arc<dyn ModelRunner>,
        likelihood: Arc<dyn LikelihoodFn>,
    ) -> Result<Self> {
        let model_names = runner.param_names();
        let mut perm = Vec::with_capacity(model_names.len());
        for m in &model_names {
            let i = params.index_of(m).ok_or_else(|| Error::InvalidParameter {
                name: m.clone(),
                reason: format!("the model needs it but no prior is given; the parameters given are {:?}", params.names()),
            })?;
            perm.push(i);
        }
        let lik_names = likelihood.param_names();
        let mut lik_perm = Vec::with_capacity(lik_names.len());
        for m in &lik_names {
            if model_names.contains(m) {
                return Err(Error::InvalidParameter {
                    name: m.clone(),
                    reason: "is both a model parameter and a likelihood parameter; give the likelihood's another name".into(),
                });
            }
            let i = params.index_of(m).ok_or_else(|| Error::InvalidParameter {
                name: m.clone(),
                reason: format!(
                    "the likelihood samples it but no prior is given; add [parameters.{m}] (the parameters given are {:?})",
                    params.names()
                ),
            })?;
            lik_perm.push(i);
        }
        for p in params.names() {
            if !model_names.contains(&p) && !lik_names.contains(&p) {
                return Err(Error::InvalidParameter {
                    name: p,
                    reason: format!(
                        "not a parameter of the model or the likelihood; the model's are {model_names:?}{}",
                        if lik_names.is_empty() { String::new() } else { format!(", the likelihood's {lik_names:?}") }
                    ),
                });
            }
        }
        if target.is_empty() {
            return Err(Error::Config("the target has no observed variables".into()));
        }
        let outputs = runner.output_names();
        if !outputs.is_empty() {
            for v in target.variables().keys() {
                if !outputs.contains(v) {
                    return Err(Error::InvalidObservation {
                        variable: v.clone(),
                        reason: format!("the model has no output of that name; its outputs are {outputs:?}"),
                    });
                }
            }
        }
        let n_blobs = target.n_points();
        Ok(Self { params, target: Arc::new(target), runner, likelihood, perm, lik_perm, blobs: false, n_blobs, n_derived: 0 })
    }

    /// Store the model's values at the observation times with every sample
    /// (for posterior-predictive checks without re-running the model).
    pub fn with_blobs(mut self, on: bool) -> Self {
        self.blobs = on;
        self
    }

    /// Store the model's derived quantities ([`crate::derived`]) with every sample, as
    /// the last blob columns (after the model values, when those are kept too).
    pub fn with_derived(mut self, on: bool) -> Self {
        self.n_derived = if on { self.runner.derived_quantities().len() } else { 0 };
        self
    }

    /// The derived quantities stored with every sample (empty when off or when the
    /// model declares none).
    pub fn derived_quantities(&self) -> Vec<crate::derived::DerivedQuantity> {
        if self.n_derived > 0 {
            self.runner.derived_quantities()
        } else {
            Vec::new()
        }
    }

    /// Model parameters (in [`ModelRunner::param_names`] order) from physical values
    /// in parameter-set order.
    pub fn model_params(&self, theta: &[f64]) -> Vec<f64> {
        self.perm.iter().map(|&i| theta[i]).collect()
    }

    /// Blob layout: for each target variable, `(name, observation times)` in order.
    pub fn blob_layout(&self) -> Vec<(String, Vec<f64>)> {
        self.target.variables().iter().map(|(n, o)| (n.clone(), o.times.clone())).collect()
    }

    /// The parameters.
    pub fn params(&self) -> &ParameterSet {
        &self.params
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The model.
    pub fn runner(&self) -> &Arc<dyn ModelRunner> {
        &self.runner
    }

    /// Log-prior (with Jacobian) in sampler space.
    pub fn ln_prior(&self, u: &[f64]) -> f64 {
        self.params.ln_prior_sampler(u)
    }

    /// Log-likelihood at physical values `theta` (in parameter-set order).
    pub fn ln_likelihood(&self, theta: &[f64]) -> f64 {
        self.eval_physical(theta, None)
    }

    fn eval_physical(&self, theta: &[f64], blob: Option<&mut [f64]>) -> f64 {
        let mp = self.model_params(theta);
        let out = match run_catching(&*self.runner, &mp) {
            Ok(o) => o,
            Err(_) => return f64::NAN,
        };
        let ll = if self.lik_perm.is_empty() {
            self.likelihood.ln_likelihood(&out, &self.target)
        } else {
            let lp: Vec<f64> = self.lik_perm.iter().map(|&i| theta[i]).collect();
            self.likelihood.ln_likelihood_with(&out, &self.target, &lp)
        };
        if let Some(b) = blob {
            let (b, d) = b.split_at_mut(b.len() - self.n_derived);
            if !d.is_empty() {
                // A failed derivation is NaN in the blob, not a failed evaluation.
                let ok = ll.is_finite()
                    && std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.runner.derive(&mp, &out, d)))
                        .is_ok_and(|r| r.is_ok());
                if !ok {
                    d.fill(f64::NAN);
                }
            }
            if !self.blobs {
                return ll;
            }
            let mut off = 0;
            for (name, obs) in self.target.variables() {
                let n = obs.times.len();
                let dst = &mut b[off..off + n];
                match out.get(name) {
                    Some(series) => {
                        if model_at_observations(out.times(), series, obs, |k, v| dst[k] = v).is_none() {
                            dst.fill(f64::NAN);
                        }
                    }
                    None => dst.fill(f64::NAN),
                }
                off += n;
            }
        }
        ll
    }

    fn eval(&self, u: &[f64], blob: Option<&mut [f64]>) -> f64 {
        let lp = self.params.ln_prior_sampler(u);
        if lp == f64::NEG_INFINITY {
            if let Some(b) = blob {
                b.fill(f64::NAN);
            }
            return lp;
        }
        let mut theta = vec![0.0; u.len()];
        self.params.to_physical(u, &mut theta);
        let ll = self.eval_physical(&theta, blob);
        if ll.is_nan() {
            return f64::NAN;
        }
        lp + ll
    }
}

impl LogDensity for Posterior {
    fn dim(&self) -> usize {
        self.params.len()
    }
    fn ln_prob(&self, u: &[f64]) -> f64 {
        self.eval(u, None)
    }
    fn n_blobs(&self) -> usize {
        (if self.blobs { self.n_blobs } else { 0 }) + self.n_derived
    }
    fn ln_prob_with_blob(&self, u: &[f64], blob: &mut [f64]) -> f64 {
        if self.n_blobs() > 0 {
            self.eval(u, Some(blob))
        } else {
            self.eval(u, None)
        }
    }
    fn to_physical(&self, u: &[f64], out: &mut [f64]) {
        self.params.to_physical(u, out)
    }
    fn to_sampler(&self, x: &[f64], out: &mut [f64]) {
        self.params.to_sampler(x, out)
    }
    fn param_names(&self) -> Vec<String> {
        self.params.names()
    }
}
