//! What one ensemble member's evaluation returns, as a [`LogDensity`] so that the
//! existing executors (serial, rayon, MPI) evaluate batches of members unchanged:
//! the point is the member's physical parameter vector, `ln_prob` the total
//! log-likelihood, and the blob holds, in order, the log-likelihood of each target
//! variable, the RMSE of the model against each target variable, the chosen
//! outputs ([`super::spec::OutputSpec`]), then the model's derived quantities
//! ([`crate::derived`]: ECS, TCR, … for the two-layer model; NaN where `derive`
//! fails).

use std::sync::Arc;

use super::spec::OutputSpec;
use crate::density::LogDensity;
use crate::derived::DerivedQuantity;
use crate::error::{Error, Result};
use crate::likelihood::{model_at_observations, period_mean, time_index, LikelihoodFn};
use crate::runner::{run_catching, ModelOutput, ModelRunner};
use crate::target::{Observation, Target};

/// A chosen output, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputColumn {
    pub name: String,
    pub variable: String,
    pub at: Option<f64>,
    pub mean: Option<(f64, f64)>,
    pub relative_to: Option<(f64, f64)>,
    pub unit: String,
}

impl OutputColumn {
    /// Check a run file's `[ensemble.outputs] NAME = { … }`.
    pub fn new(name: &str, s: &OutputSpec, model_outputs: &[String]) -> Result<Self> {
        let err = |m: String| Error::Config(format!("[ensemble.outputs] {name}: {m}"));
        if !model_outputs.is_empty() && !model_outputs.contains(&s.variable) {
            return Err(err(format!("the model has no output '{}'; its outputs are {model_outputs:?}", s.variable)));
        }
        if s.at.is_some() == s.mean.is_some() {
            return Err(err("give exactly one of `at = YEAR` or `mean = [START, END]`".into()));
        }
        for p in [s.mean, s.relative_to].into_iter().flatten() {
            if !(p[0] <= p[1]) {
                return Err(err(format!("period [{}, {}] must not end before it starts", p[0], p[1])));
            }
        }
        Ok(Self {
            name: name.to_string(),
            variable: s.variable.clone(),
            at: s.at,
            mean: s.mean.map(|p| (p[0], p[1])),
            relative_to: s.relative_to.map(|p| (p[0], p[1])),
            unit: s.unit.clone(),
        })
    }

    /// The value for one model run (NaN when the run does not cover the times asked).
    pub fn value(&self, out: &ModelOutput) -> f64 {
        let Some(series) = out.get(&self.variable) else { return f64::NAN };
        let t = out.times();
        let v = match (self.at, self.mean) {
            (Some(a), _) => time_index(t, a).map(|i| series[i]),
            (None, Some(p)) => period_mean(t, series, p),
            _ => None,
        };
        let base = match self.relative_to {
            Some(p) => period_mean(t, series, p),
            None => Some(0.0),
        };
        match (v, base) {
            (Some(v), Some(b)) => v - b,
            _ => f64::NAN,
        }
    }
}

/// The per-member evaluation of an ensemble.
pub struct EnsembleModel {
    runner: Arc<dyn ModelRunner>,
    /// Model parameter `k` is member parameter `perm[k]`.
    perm: Vec<usize>,
    names: Vec<String>,
    likelihood: Arc<dyn LikelihoodFn>,
    /// One single-variable target per observed variable (for per-variable log-likelihoods).
    variables: Vec<(String, Target)>,
    outputs: Vec<OutputColumn>,
    derived: Vec<DerivedQuantity>,
}

fn single_variable(name: &str, o: &Observation) -> Result<Target> {
    let t = Target::new().add_variable(name, o.times.clone(), o.raw_values().to_vec(), o.sigmas.clone())?;
    match o.reference_period {
        Some((a, b)) => t.with_variable_reference_period(name, a, b),
        None => Ok(t),
    }
}

impl EnsembleModel {
    /// `names`: the member parameters (prior order); every model parameter must be
    /// among them and vice versa.
    pub fn new(
        names: Vec<String>,
        runner: Arc<dyn ModelRunner>,
        likelihood: Arc<dyn LikelihoodFn>,
        target: &Target,
        outputs: Vec<OutputColumn>,
    ) -> Result<Self> {
        let model_names = runner.param_names();
        let mut perm = Vec::with_capacity(model_names.len());
        for m in &model_names {
            perm.push(names.iter().position(|n| n == m).ok_or_else(|| Error::InvalidParameter {
                name: m.clone(),
                reason: format!("the model needs it but no prior is given; the parameters given are {names:?}"),
            })?);
        }
        for n in &names {
            if !model_names.contains(n) {
                return Err(Error::InvalidParameter {
                    name: n.clone(),
                    reason: format!("not a parameter of the model; its parameters are {model_names:?}"),
                });
            }
        }
        let variables =
            target.variables().iter().map(|(n, o)| Ok((n.clone(), single_variable(n, o)?))).collect::<Result<Vec<_>>>()?;
        let derived = runner.derived_quantities();
        Ok(Self { runner, perm, names, likelihood, variables, outputs, derived })
    }

    /// Target variable names, in order.
    pub fn variable_names(&self) -> Vec<String> {
        self.variables.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The chosen outputs.
    pub fn outputs(&self) -> &[OutputColumn] {
        &self.outputs
    }

    /// The model's derived quantities (stored after the outputs).
    pub fn derived(&self) -> &[DerivedQuantity] {
        &self.derived
    }

    /// Names of the blob values, in order: `loglike:VAR…`, `rmse:VAR…`, outputs, derived quantities.
    pub fn column_names(&self) -> Vec<String> {
        let v = self.variable_names();
        v.iter()
            .map(|n| format!("loglike:{n}"))
            .chain(v.iter().map(|n| format!("rmse:{n}")))
            .chain(self.outputs.iter().map(|o| o.name.clone()))
            .chain(self.derived.iter().map(|d| d.name.clone()))
            .collect()
    }

    fn eval(&self, x: &[f64], blob: &mut [f64]) -> f64 {
        let mp: Vec<f64> = self.perm.iter().map(|&i| x[i]).collect();
        let out = match run_catching(&*self.runner, &mp) {
            Ok(o) => o,
            Err(_) => {
                blob.fill(f64::NAN);
                return f64::NAN;
            }
        };
        let nv = self.variables.len();
        let mut total = 0.0;
        for (k, (name, t)) in self.variables.iter().enumerate() {
            let ll = self.likelihood.ln_likelihood(&out, t);
            total += ll;
            if let Some(b) = blob.get_mut(k) {
                *b = ll;
            }
            if blob.len() > nv + k {
                blob[nv + k] = rmse(&out, name, t);
            }
        }
        let no = self.outputs.len();
        if blob.len() >= 2 * nv + no + self.derived.len() {
            for (o, b) in self.outputs.iter().zip(&mut blob[2 * nv..]) {
                *b = o.value(&out);
            }
            if !self.derived.is_empty() {
                let d = &mut blob[2 * nv + no..2 * nv + no + self.derived.len()];
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.runner.derive(&mp, &out, d)));
                if !matches!(r, Ok(Ok(()))) {
                    d.fill(f64::NAN);
                }
            }
        }
        total
    }
}

/// Root-mean-square difference between the model (re-baselined as the target asks)
/// and the observations of variable `name`; NaN when the model does not cover them.
fn rmse(out: &ModelOutput, name: &str, t: &Target) -> f64 {
    let (Some(series), Some(obs)) = (out.get(name), t.get(name)) else { return f64::NAN };
    let mut s = 0.0;
    let ok = model_at_observations(out.times(), series, obs, |k, m| {
        let r = m - obs.values[k];
        s += r * r;
    });
    match ok {
        Some(()) => (s / obs.times.len() as f64).sqrt(),
        None => f64::NAN,
    }
}

impl LogDensity for EnsembleModel {
    fn dim(&self) -> usize {
        self.names.len()
    }
    fn ln_prob(&self, x: &[f64]) -> f64 {
        self.eval(x, &mut [])
    }
    fn n_blobs(&self) -> usize {
        2 * self.variables.len() + self.outputs.len() + self.derived.len()
    }
    fn ln_prob_with_blob(&self, x: &[f64], blob: &mut [f64]) -> f64 {
        self.eval(x, blob)
    }
    fn param_names(&self) -> Vec<String> {
        self.names.clone()
    }
}
