//! Independence proposal from a Gaussian kernel density estimate of the
//! complementary ensemble (emcee's `KDEMove`, scipy's `gaussian_kde`).
//!
//! The KDE of the complement `{C_j}` (n points) has kernel covariance
//! `K = h² Cov(C)` with Scott's `h = n^(−1/(d+4))`, Silverman's
//! `h = (n (d + 2) / 4)^(−1/(d+4))` or a given `h`. The proposal is
//! `Y = C_j + L ξ` (`j` uniform, `L Lᵀ = K`, `ξ ~ N(0, I)`), independent of `X`,
//! so the log factor is `ln kde(X) − ln kde(Y)`.

use rand_distr::{Distribution as _, StandardNormal};
use rand_pcg::Pcg64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::linalg::{cholesky, cov_of, log_sum_exp, lower_mul, mahalanobis2};
use super::stretch::check_splits;
use super::walk::singular;
use super::{check_positive, Ctx, Layout, MoveTuning, Proposal};
use crate::error::{Error, Result};
use crate::sampler::rng::pick_below;

/// The KDE bandwidth rule (scipy's `bw_method`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Bandwidth {
    /// Scott's rule (scipy's default).
    #[default]
    Scott,
    /// Silverman's rule.
    Silverman,
    /// A fixed factor `h`.
    Factor(f64),
}

impl Bandwidth {
    /// The factor `h` for `n` points in `d` dimensions.
    pub fn factor(self, n: usize, d: usize) -> f64 {
        let (n, d) = (n as f64, d as f64);
        match self {
            Bandwidth::Scott => n.powf(-1.0 / (d + 4.0)),
            Bandwidth::Silverman => (n * (d + 2.0) / 4.0).powf(-1.0 / (d + 4.0)),
            Bandwidth::Factor(h) => h,
        }
    }
}

impl Serialize for Bandwidth {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Bandwidth::Scott => s.serialize_str("scott"),
            Bandwidth::Silverman => s.serialize_str("silverman"),
            Bandwidth::Factor(h) => s.serialize_f64(*h),
        }
    }
}

impl<'de> Deserialize<'de> for Bandwidth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) if s == "scott" => Ok(Bandwidth::Scott),
            serde_json::Value::String(s) if s == "silverman" => Ok(Bandwidth::Silverman),
            serde_json::Value::Null => Ok(Bandwidth::Scott),
            serde_json::Value::Number(n) => Ok(Bandwidth::Factor(n.as_f64().unwrap_or(f64::NAN))),
            v => Err(serde::de::Error::custom(format!("bw_method must be \"scott\", \"silverman\" or a number, got {v}"))),
        }
    }
}

/// The KDE move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KDEMove {
    /// Bandwidth rule (default Scott's).
    pub bw_method: Bandwidth,
    /// Number of sets (default `2`).
    pub nsplits: usize,
    /// Shuffle walkers between sets every step (default `true`, as emcee).
    pub randomize_split: bool,
}

impl Default for KDEMove {
    fn default() -> Self {
        Self { bw_method: Bandwidth::Scott, nsplits: 2, randomize_split: true }
    }
}

/// `ln kde(y)` up to the constant `−ln n − ½ ln det(2π K)`, which cancels in the factor.
fn ln_kde_unnormalised(
    y: &[f64],
    ctx: &Ctx,
    c: &[usize],
    l: &[f64],
    v: &mut [f64],
    work: &mut [f64],
    terms: &mut Vec<f64>,
) -> f64 {
    let d = ctx.dim;
    terms.clear();
    for &j in c {
        let xj = ctx.x(j);
        for t in 0..d {
            v[t] = y[t] - xj[t];
        }
        terms.push(-0.5 * mahalanobis2(l, d, v, work));
    }
    log_sum_exp(terms.iter().copied())
}

impl Proposal for KDEMove {
    fn layout(&self) -> Layout {
        Layout::Splits { nsplits: self.nsplits, randomize: self.randomize_split }
    }

    fn validate(&self, n_walkers: usize, dim: usize) -> Result<()> {
        if let Bandwidth::Factor(h) = self.bw_method {
            check_positive("KDEMove: bw_method", h)?;
        }
        check_splits("KDEMove", self.nsplits, n_walkers, 1)?;
        let nc = n_walkers - n_walkers.div_ceil(self.nsplits);
        if nc <= dim {
            return Err(Error::InvalidSampler(format!(
                "KDEMove: a complement of {nc} walkers cannot span {dim} dimensions; use more walkers (KDEMove wants many)"
            )));
        }
        Ok(())
    }

    fn propose(
        &self,
        _tuning: &mut MoveTuning,
        ctx: &Ctx,
        active: &[usize],
        complement: &[Vec<usize>],
        rngs: &mut [Pcg64],
        q: &mut [f64],
        factors: &mut [f64],
    ) -> Result<()> {
        let dim = ctx.dim;
        let c: Vec<usize> = complement.concat();
        let h = self.bw_method.factor(c.len(), dim);
        let mut k = vec![0.0; dim * dim];
        cov_of(ctx.positions, dim, &c, &mut k);
        k.iter_mut().for_each(|v| *v *= h * h);
        let l = cholesky(&k, dim).ok_or_else(|| singular("KDEMove", "the complementary walkers"))?;
        let (mut g, mut v, mut work) = (vec![0.0; dim], vec![0.0; dim], vec![0.0; dim]);
        let mut terms = Vec::with_capacity(c.len());
        for (i, &w) in active.iter().enumerate() {
            let rng = &mut rngs[w];
            let j = c[pick_below(rng, c.len() as u32) as usize];
            for t in g.iter_mut() {
                *t = StandardNormal.sample(rng);
            }
            let y = &mut q[i * dim..(i + 1) * dim];
            lower_mul(&l, dim, &g, y);
            for (yd, cd) in y.iter_mut().zip(ctx.x(j)) {
                *yd += cd;
            }
            let y = &q[i * dim..(i + 1) * dim];
            factors[i] = ln_kde_unnormalised(ctx.x(w), ctx, &c, &l, &mut v, &mut work, &mut terms)
                - ln_kde_unnormalised(y, ctx, &c, &l, &mut v, &mut work, &mut terms);
        }
        Ok(())
    }
}
