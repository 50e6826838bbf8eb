//! Differential evolution (emcee's `DEMove`, as in emcee 3.1.6).
//!
//! For walker `X`, an ordered pair `(a, b)` of distinct walkers is drawn
//! uniformly from the complement and `γ = γ₀ (1 + σ ξ)`, `ξ ~ N(0, 1)`; the
//! proposal is `Y = X + γ (X_b − X_a)`, symmetric (log factor 0).
//! References: ter Braak (2006), <https://doi.org/10.1007/s11222-006-8769-1>;
//! Nelson et al. (2014), <https://doi.org/10.1088/0067-0049/210/1/11>.

use rand_distr::{Distribution as _, StandardNormal};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use super::stretch::check_splits;
use super::{check_positive, default_gamma, Ctx, Layout, MoveTuning, Proposal};
use crate::error::{Error, Result};
use crate::sampler::rng::pick_below;

/// The differential-evolution move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DEMove {
    /// Relative spread of γ (default `1e-5`).
    pub sigma: f64,
    /// Mean γ (default `2.38 / √(2·ndim)`).
    pub gamma0: Option<f64>,
    /// Number of sets (default `2`).
    pub nsplits: usize,
    /// Shuffle walkers between sets every step (default `true`, as emcee).
    pub randomize_split: bool,
}

impl Default for DEMove {
    fn default() -> Self {
        Self { sigma: 1e-5, gamma0: None, nsplits: 2, randomize_split: true }
    }
}

/// An ordered pair of distinct indices below `n ≥ 2`, uniformly.
#[inline]
pub(crate) fn distinct_pair(rng: &mut Pcg64, n: usize) -> (usize, usize) {
    let a = pick_below(rng, n as u32) as usize;
    let mut b = pick_below(rng, (n - 1) as u32) as usize;
    if b >= a {
        b += 1;
    }
    (a, b)
}

impl Proposal for DEMove {
    fn layout(&self) -> Layout {
        Layout::Splits { nsplits: self.nsplits, randomize: self.randomize_split }
    }

    fn validate(&self, n_walkers: usize, _dim: usize) -> Result<()> {
        if !(self.sigma >= 0.0 && self.sigma.is_finite()) {
            return Err(Error::InvalidSampler(format!("DEMove: sigma must be finite and >= 0, got {}", self.sigma)));
        }
        if let Some(g) = self.gamma0 {
            check_positive("DEMove: gamma0", g)?;
        }
        check_splits("DEMove", self.nsplits, n_walkers, 1)?;
        if n_walkers - n_walkers.div_ceil(self.nsplits) < 2 {
            return Err(Error::InvalidSampler("DEMove: needs at least 2 walkers in each complement".into()));
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
        let g0 = self.gamma0.unwrap_or_else(|| default_gamma(dim));
        for (i, &k) in active.iter().enumerate() {
            let rng = &mut rngs[k];
            let (a, b) = distinct_pair(rng, c.len());
            let xi: f64 = StandardNormal.sample(rng);
            let gamma = g0 * (1.0 + self.sigma * xi);
            let (xa, xb, xk) = (ctx.x(c[a]), ctx.x(c[b]), ctx.x(k));
            for d in 0..dim {
                q[i * dim + d] = xk[d] + gamma * (xb[d] - xa[d]);
            }
            factors[i] = 0.0;
        }
        Ok(())
    }
}
