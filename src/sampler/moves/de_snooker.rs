//! Differential-evolution snooker update (emcee's `DESnookerMove`), ter Braak
//! & Vrugt (2008), <https://doi.org/10.1007/s11222-008-9104-9>.
//!
//! The ensemble is split into four sets. For walker `X`, one walker is drawn
//! from each of the other three sets and their roles shuffled into `Z, Z₁, Z₂`;
//! with `e = (X − Z)/|X − Z|`, the proposal is `Y = X + γ_s e (e·Z₁ − e·Z₂)` and
//! the log factor `(n − 1) (ln |Y − Z| − ln |X − Z|)`.
//!
//! emcee 3.1.6 divides by `√|X − Z|` instead of `|X − Z|` and halves the log
//! factor; that chain does not sample the target (on a 5-D standard normal its
//! marginal standard deviations come out ≈ 0.83, measured with emcee 3.1.6
//! itself). emcee fixed it after 3.1.6 (dfm/emcee pull request 531); this is
//! the fixed update, which is ter Braak & Vrugt's.

use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use super::stretch::check_splits;
use super::{check_positive, Ctx, Layout, MoveTuning, Proposal};
use crate::error::Result;
use crate::sampler::rng::pick_below;

/// The snooker move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DESnookerMove {
    /// Stretch factor γ_s (default `1.7`).
    pub gammas: f64,
    /// Shuffle walkers between the four sets every step (default `true`, as emcee).
    pub randomize_split: bool,
}

impl Default for DESnookerMove {
    fn default() -> Self {
        Self { gammas: 1.7, randomize_split: true }
    }
}

impl Proposal for DESnookerMove {
    fn layout(&self) -> Layout {
        Layout::Splits { nsplits: 4, randomize: self.randomize_split }
    }

    fn validate(&self, n_walkers: usize, _dim: usize) -> Result<()> {
        check_positive("DESnookerMove: gammas", self.gammas)?;
        check_splits("DESnookerMove", 4, n_walkers, 1)
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
        let ndim_m1 = dim as f64 - 1.0;
        let mut e = vec![0.0; dim];
        for (i, &k) in active.iter().enumerate() {
            let rng = &mut rngs[k];
            let mut w = [0usize; 3];
            for (j, set) in complement.iter().take(3).enumerate() {
                w[j] = set[pick_below(rng, set.len() as u32) as usize];
            }
            // numpy's shuffle of three: Fisher–Yates from the end.
            for t in (1..3).rev() {
                let r = pick_below(rng, (t + 1) as u32) as usize;
                w.swap(t, r);
            }
            let (x, z, z1, z2) = (ctx.x(k), ctx.x(w[0]), ctx.x(w[1]), ctx.x(w[2]));
            let norm = (0..dim).map(|d| (x[d] - z[d]).powi(2)).sum::<f64>().sqrt();
            for d in 0..dim {
                e[d] = (x[d] - z[d]) / norm;
            }
            let proj: f64 = (0..dim).map(|d| e[d] * (z1[d] - z2[d])).sum();
            let y = &mut q[i * dim..(i + 1) * dim];
            for d in 0..dim {
                y[d] = x[d] + e[d] * self.gammas * proj;
            }
            let new_norm = (0..dim).map(|d| (y[d] - z[d]).powi(2)).sum::<f64>().sqrt();
            // X = Z (norm 0) gives NaN, which the acceptance test rejects.
            factors[i] = ndim_m1 * (new_norm.ln() - norm.ln());
        }
        Ok(())
    }
}
