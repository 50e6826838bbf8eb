//! Parameters: names, priors and the transforms the sampler moves in.
//!
//! The sampler works in an unbounded *sampler space* `u`; chains store *physical*
//! values `x = T⁻¹(u)`. The log-prior in sampler space carries the log-Jacobian
//! `ln |dx/du|` so that the posterior over `x` is unchanged.

use std::sync::Arc;

use indexmap::IndexMap;
use ndarray::Array2;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::distribution::{Distribution, PriorSpec};
use crate::error::{Error, Result};

/// How a parameter is mapped to the sampler's space.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// `u = x` (default).
    #[default]
    Identity,
    /// `u = ln x`, for strictly positive parameters.
    Log,
    /// `u = logit((x − lower)/(upper − lower))`, for parameters bounded on both sides;
    /// the bounds are the prior's support.
    Logit,
}

/// One parameter: name, prior and transform.
#[derive(Debug, Clone)]
pub struct ParameterDef {
    pub name: String,
    pub prior: Arc<dyn Distribution>,
    pub transform: Transform,
    /// Unit, for tables and chain files (may be empty).
    pub unit: String,
    lower: f64,
    upper: f64,
}

impl ParameterDef {
    /// Physical value from sampler-space value.
    #[inline]
    pub fn to_physical(&self, u: f64) -> f64 {
        match self.transform {
            Transform::Identity => u,
            Transform::Log => u.exp(),
            Transform::Logit => self.lower + (self.upper - self.lower) * sigmoid(u),
        }
    }

    /// Sampler-space value from physical value.
    #[inline]
    pub fn to_sampler(&self, x: f64) -> f64 {
        match self.transform {
            Transform::Identity => x,
            Transform::Log => x.ln(),
            Transform::Logit => {
                let p = (x - self.lower) / (self.upper - self.lower);
                (p / (1.0 - p)).ln()
            }
        }
    }

    /// `ln |dx/du|` at sampler-space value `u`.
    #[inline]
    pub fn ln_jacobian(&self, u: f64) -> f64 {
        match self.transform {
            Transform::Identity => 0.0,
            Transform::Log => u,
            Transform::Logit => {
                // ln σ(u) + ln(1 − σ(u)) = −softplus(−u) − softplus(u)
                (self.upper - self.lower).ln() - softplus(u) - softplus(-u)
            }
        }
    }
}

#[inline]
fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        let e = u.exp();
        e / (1.0 + e)
    }
}

#[inline]
fn softplus(u: f64) -> f64 {
    if u > 30.0 {
        u
    } else {
        u.exp().ln_1p()
    }
}

/// An ordered set of parameters (insertion order is the vector order everywhere).
#[derive(Debug, Clone, Default)]
pub struct ParameterSet {
    params: IndexMap<String, ParameterDef>,
}

impl ParameterSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a parameter with the identity transform (fluent).
    ///
    /// ```
    /// # use climcal::prelude::*;
    /// let p = ParameterSet::new()
    ///     .add("ecs", Normal::new(3.0, 0.5)?)?
    ///     .add("kappa", Uniform::new(0.1, 2.0)?)?;
    /// assert_eq!(p.names(), vec!["ecs", "kappa"]);
    /// # Ok::<(), climcal::Error>(())
    /// ```
    pub fn add<D: Distribution + 'static>(self, name: &str, prior: D) -> Result<Self> {
        self.add_with(name, Arc::new(prior), Transform::Identity, "")
    }

    /// Add a parameter with a transform and unit (fluent).
    pub fn add_with(mut self, name: &str, prior: Arc<dyn Distribution>, transform: Transform, unit: &str) -> Result<Self> {
        self.push(name, prior, transform, unit)?;
        Ok(self)
    }

    /// Add a parameter in place.
    pub fn push(&mut self, name: &str, prior: Arc<dyn Distribution>, transform: Transform, unit: &str) -> Result<()> {
        if name.trim().is_empty() {
            return Err(Error::InvalidParameter { name: name.into(), reason: "parameter names must not be empty".into() });
        }
        if self.params.contains_key(name) {
            return Err(Error::InvalidParameter {
                name: name.into(),
                reason: "defined twice; parameter names must be unique".into(),
            });
        }
        let (lower, upper) = prior.bounds();
        match transform {
            Transform::Log if lower < 0.0 => {
                return Err(Error::InvalidParameter {
                    name: name.into(),
                    reason: format!("transform 'log' needs a prior on x > 0, but the prior's support starts at {lower}"),
                })
            }
            Transform::Logit if !(lower.is_finite() && upper.is_finite()) => {
                return Err(Error::InvalidParameter {
                    name: name.into(),
                    reason: format!(
                        "transform 'logit' needs a prior bounded on both sides, but its support is [{lower}, {upper}]"
                    ),
                })
            }
            _ => {}
        }
        self.params
            .insert(name.to_string(), ParameterDef { name: name.into(), prior, transform, unit: unit.into(), lower, upper });
        Ok(())
    }

    /// Build from `(name, spec, transform, unit)` entries.
    pub fn from_specs<'a>(entries: impl IntoIterator<Item = (&'a str, &'a PriorSpec, Transform, &'a str)>) -> Result<Self> {
        let mut s = Self::new();
        for (name, spec, tr, unit) in entries {
            let prior = spec.build().map_err(|e| Error::InvalidParameter { name: name.into(), reason: e.to_string() })?;
            s.push(name, prior, tr, unit)?;
        }
        Ok(s)
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Parameter names in order.
    pub fn names(&self) -> Vec<String> {
        self.params.keys().cloned().collect()
    }

    /// Definitions in order.
    pub fn defs(&self) -> impl Iterator<Item = &ParameterDef> {
        self.params.values()
    }

    /// Definition by name.
    pub fn get(&self, name: &str) -> Option<&ParameterDef> {
        self.params.get(name)
    }

    /// Position of a name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.params.get_index_of(name)
    }

    /// Support of each prior, in order.
    pub fn bounds(&self) -> Vec<(f64, f64)> {
        self.params.values().map(|p| p.prior.bounds()).collect()
    }

    /// `n` draws from the priors (physical values), shape `(n, n_params)`.
    pub fn sample(&self, n: usize, rng: &mut dyn RngCore) -> Array2<f64> {
        let mut out = Array2::zeros((n, self.len()));
        for (j, p) in self.params.values().enumerate() {
            let col = p.prior.sample(n, rng);
            for (i, v) in col.into_iter().enumerate() {
                out[[i, j]] = v;
            }
        }
        out
    }

    /// Log-prior of physical values (sum of the marginal log-densities).
    pub fn ln_prior(&self, theta: &[f64]) -> f64 {
        debug_assert_eq!(theta.len(), self.len());
        let mut s = 0.0;
        for (p, &x) in self.params.values().zip(theta) {
            s += p.prior.ln_pdf(x);
            if s == f64::NEG_INFINITY {
                return s;
            }
        }
        s
    }

    /// Log-prior density in sampler space: `ln p(x(u)) + Σ ln |dx/du|`.
    pub fn ln_prior_sampler(&self, u: &[f64]) -> f64 {
        let mut s = 0.0;
        for (p, &ui) in self.params.values().zip(u) {
            let x = p.to_physical(ui);
            s += p.prior.ln_pdf(x) + p.ln_jacobian(ui);
            if s == f64::NEG_INFINITY || s.is_nan() {
                return f64::NEG_INFINITY;
            }
        }
        s
    }

    /// Map a sampler-space vector to physical values.
    pub fn to_physical(&self, u: &[f64], out: &mut [f64]) {
        for ((p, &ui), o) in self.params.values().zip(u).zip(out.iter_mut()) {
            *o = p.to_physical(ui);
        }
    }

    /// Map physical values to sampler space.
    pub fn to_sampler(&self, x: &[f64], out: &mut [f64]) {
        for ((p, &xi), o) in self.params.values().zip(x).zip(out.iter_mut()) {
            *o = p.to_sampler(xi);
        }
    }

    /// True when any parameter has a non-identity transform.
    pub fn has_transforms(&self) -> bool {
        self.params.values().any(|p| p.transform != Transform::Identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribution::{LogNormal, Uniform};

    #[test]
    fn transforms_round_trip_and_jacobian() {
        let p = ParameterSet::new()
            .add_with("a", Arc::new(LogNormal::new(0.0, 1.0).unwrap()), Transform::Log, "")
            .unwrap()
            .add_with("b", Arc::new(Uniform::new(-1.0, 3.0).unwrap()), Transform::Logit, "")
            .unwrap();
        let x = [2.5, 0.7];
        let mut u = [0.0; 2];
        let mut back = [0.0; 2];
        p.to_sampler(&x, &mut u);
        p.to_physical(&u, &mut back);
        assert!((back[0] - x[0]).abs() < 1e-12 && (back[1] - x[1]).abs() < 1e-12);
        // Jacobian against finite differences of to_physical.
        for (i, d) in p.defs().enumerate() {
            let h = 1e-6;
            let num = (d.to_physical(u[i] + h) - d.to_physical(u[i] - h)) / (2.0 * h);
            assert!((num.abs().ln() - d.ln_jacobian(u[i])).abs() < 1e-6);
        }
    }

    #[test]
    fn log_transform_needs_positive_support() {
        let e = ParameterSet::new()
            .add_with("x", Arc::new(Uniform::new(-1.0, 1.0).unwrap()), Transform::Log, "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'x'") && e.contains("log"), "{e}");
    }
}
