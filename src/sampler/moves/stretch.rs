//! Goodman & Weare's stretch move (emcee's `StretchMove`).
//!
//! For walker `X` and a walker `X_j` drawn uniformly from the complement, with
//! `z ~ g(z) ∝ 1/√z` on `[1/a, a]` (drawn as `z = ((a − 1) u + 1)² / a`), the
//! proposal is `Y = X_j + z (X − X_j)` and the log factor `(n − 1) ln z`.
//! Reference: Goodman & Weare (2010), <https://doi.org/10.2140/camcos.2010.5.65>.

use rand::Rng;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use super::{Ctx, Layout, MoveTuning, Proposal};
use crate::error::{Error, Result};
use crate::sampler::rng::pick_below;

/// The stretch move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StretchMove {
    /// Scale `a > 1` (default `2.0`).
    pub a: f64,
    /// Number of sets the ensemble is split into (default `2`).
    pub nsplits: usize,
    /// Shuffle walkers between sets every step (default `false` here, keeping
    /// climcal's first/second-half chain; emcee's default is `true`).
    pub randomize_split: bool,
}

impl Default for StretchMove {
    fn default() -> Self {
        Self { a: 2.0, nsplits: 2, randomize_split: false }
    }
}

/// Check a red–blue move's split against the ensemble.
pub(crate) fn check_splits(name: &str, nsplits: usize, n_walkers: usize, min_per_set: usize) -> Result<()> {
    if nsplits < 2 {
        return Err(Error::InvalidSampler(format!("{name}: nsplits must be >= 2, got {nsplits}")));
    }
    if n_walkers / nsplits < min_per_set {
        return Err(Error::InvalidSampler(format!(
            "{name}: {n_walkers} walkers in {nsplits} sets leaves fewer than {min_per_set} per set; use at least {} walkers",
            nsplits * min_per_set
        )));
    }
    Ok(())
}

impl Proposal for StretchMove {
    fn layout(&self) -> Layout {
        Layout::Splits { nsplits: self.nsplits, randomize: self.randomize_split }
    }

    fn validate(&self, n_walkers: usize, _dim: usize) -> Result<()> {
        if !(self.a > 1.0 && self.a.is_finite()) {
            return Err(Error::InvalidSampler(format!("StretchMove: a must be > 1, got {}", self.a)));
        }
        check_splits("StretchMove", self.nsplits, n_walkers, 1)
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
        let a = self.a;
        let ndim_m1 = dim as f64 - 1.0;
        for (i, &k) in active.iter().enumerate() {
            // The draw order of the fast path in `ensemble.rs`: z, j (then u).
            let rng = &mut rngs[k];
            let w = (a - 1.0) * rng.random::<f64>() + 1.0;
            let z = w * w / a;
            let j = c[pick_below(rng, c.len() as u32) as usize];
            let (xk, xj) = (ctx.x(k), ctx.x(j));
            for d in 0..dim {
                q[i * dim + d] = xj[d] + z * (xk[d] - xj[d]);
            }
            factors[i] = ndim_m1 * z.ln();
        }
        Ok(())
    }
}
