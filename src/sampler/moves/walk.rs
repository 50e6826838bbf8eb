//! Goodman & Weare's walk move (emcee's `WalkMove`).
//!
//! For walker `X`, `s` helpers are drawn without replacement from the
//! complement; the proposal is `Y ~ N(X, C)` with `C` the helpers' sample
//! covariance (denominator `s − 1`). `C` does not depend on `X`, so the
//! proposal is symmetric and the log factor is 0.

use rand_distr::{Distribution as _, StandardNormal};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use super::linalg::{cholesky, cov_of, lower_mul};
use super::stretch::check_splits;
use super::{Ctx, Layout, MoveTuning, Proposal};
use crate::error::{Error, Result};
use crate::sampler::rng::pick_below;

/// The walk move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalkMove {
    /// Helpers per proposal (default: the whole complement).
    pub s: Option<usize>,
    /// Number of sets (default `2`).
    pub nsplits: usize,
    /// Shuffle walkers between sets every step (default `true`, as emcee).
    pub randomize_split: bool,
}

impl Default for WalkMove {
    fn default() -> Self {
        Self { s: None, nsplits: 2, randomize_split: true }
    }
}

pub(crate) fn singular(name: &str, what: &str) -> Error {
    Error::InvalidSampler(format!(
        "{name}: the covariance of {what} is not positive definite (walkers on a lower-dimensional subspace?); use more walkers or start them in a wider ball"
    ))
}

impl Proposal for WalkMove {
    fn layout(&self) -> Layout {
        Layout::Splits { nsplits: self.nsplits, randomize: self.randomize_split }
    }

    fn validate(&self, n_walkers: usize, dim: usize) -> Result<()> {
        check_splits("WalkMove", self.nsplits, n_walkers, 1)?;
        let nc = n_walkers - n_walkers.div_ceil(self.nsplits);
        let s = self.s.unwrap_or(nc);
        if s < 2 || s > nc {
            return Err(Error::InvalidSampler(format!(
                "WalkMove: s = {s} helpers, but it needs 2 <= s <= {nc} (the smallest complementary set)"
            )));
        }
        if s <= dim {
            return Err(Error::InvalidSampler(format!(
                "WalkMove: s = {s} helpers cannot span {dim} dimensions; use s > {dim} (more walkers)"
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
        let mut c: Vec<usize> = complement.concat();
        let nc = c.len();
        let s = self.s.unwrap_or(nc).min(nc);
        let mut cov = vec![0.0; dim * dim];
        // With all helpers, every walker of the set gets the same covariance.
        let shared = if s == nc {
            cov_of(ctx.positions, dim, &c, &mut cov);
            Some(cholesky(&cov, dim).ok_or_else(|| singular("WalkMove", "the complementary walkers"))?)
        } else {
            None
        };
        let mut g = vec![0.0; dim];
        let mut own: Vec<f64>;
        for (i, &k) in active.iter().enumerate() {
            let rng = &mut rngs[k];
            let l: &[f64] = match &shared {
                Some(l) => l,
                None => {
                    // The first s of a partial Fisher–Yates shuffle.
                    for t in 0..s {
                        let r = t + pick_below(rng, (nc - t) as u32) as usize;
                        c.swap(t, r);
                    }
                    cov_of(ctx.positions, dim, &c[..s], &mut cov);
                    own = cholesky(&cov, dim).ok_or_else(|| singular("WalkMove", "the helper walkers"))?;
                    &own
                }
            };
            for v in g.iter_mut() {
                *v = StandardNormal.sample(rng);
            }
            let y = &mut q[i * dim..(i + 1) * dim];
            lower_mul(l, dim, &g, y);
            for (yd, xd) in y.iter_mut().zip(ctx.x(k)) {
                *yd += xd;
            }
            factors[i] = 0.0;
        }
        Ok(())
    }
}
