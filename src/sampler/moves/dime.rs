//! Differential-independence mixture ensemble move (DIME; Boehl 2022, as in
//! the emcwrap package and emcee's `DIMEMove`).
//!
//! All walkers move at once. Each walker makes a differential-evolution
//! proposal `Y = X + γ (X_a − X_b) + σ ξ` (`a ≠ b`, both other walkers, drawn
//! uniformly; `ξ ~ N(0, 1)` added to every coordinate; log factor 0), except
//! that with probability `aimh_prob` it instead draws an independence proposal
//! from a multivariate t with `df` degrees of freedom, location `μ` and scale
//! `Σ (df − 2)/df` (so covariance `Σ`), with log factor `ln t(X) − ln t(Y)`.
//!
//! `μ, Σ` adapt: before each use of the move, with the ensemble's weight
//! `ln w = logsumexp(ln p) + ln(accepted last use) − ln n` and the running
//! total `W`, `Σ ← (W Σ + w Cov(X)) / (W + w)` and likewise `μ` with the
//! ensemble mean (starting from `Σ = I`, `μ = 0`, all accepted, `W = 0`).
//! This state is stored in chain files, so a resume continues exactly.
//! Reference: Boehl (2022), *Ensemble MCMC sampling for robust Bayesian
//! inference*, <https://gregorboehl.com/live/dime_mcmc_boehl.pdf>.

use rand::Rng;
use rand_distr::{ChiSquared, Distribution as _, StandardNormal};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use super::linalg::{cholesky, cov_of, log_add_exp, log_sum_exp, lower_mul, mean_of, student_t_ln_pdf};
use super::walk::singular;
use super::{check_positive, default_gamma, Ctx, Layout, MoveTuning, Proposal};
use crate::error::{Error, Result};
use crate::sampler::rng::pick_below;

/// The DIME move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DimeMove {
    /// Spread of the additive noise of the DE proposal (default `1e-5`).
    pub sigma: f64,
    /// DE scale γ (default `2.38 / √(2·ndim)`).
    pub gamma: Option<f64>,
    /// Probability of an independence (AIMH) proposal (default `0.1`).
    pub aimh_prob: f64,
    /// Degrees of freedom of the t proposal (default `10`; must be > 2).
    pub df_proposal_dist: f64,
}

impl Default for DimeMove {
    fn default() -> Self {
        Self { sigma: 1e-5, gamma: None, aimh_prob: 0.1, df_proposal_dist: 10.0 }
    }
}

/// DIME's adaptive state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DimeTuning {
    /// Proposal mean `μ`.
    pub mean: Vec<f64>,
    /// Proposal covariance `Σ` (row-major).
    pub cov: Vec<f64>,
    /// Walkers accepted at the move's last use.
    pub n_accepted: usize,
    /// `ln W` of the weights so far (`None` for `W = 0`).
    pub cum_log_weight: Option<f64>,
}

impl DimeTuning {
    fn initial(n_walkers: usize, dim: usize) -> Self {
        let mut cov = vec![0.0; dim * dim];
        (0..dim).for_each(|i| cov[i * dim + i] = 1.0);
        Self { mean: vec![0.0; dim], cov, n_accepted: n_walkers, cum_log_weight: None }
    }
}

impl Proposal for DimeMove {
    fn layout(&self) -> Layout {
        Layout::All
    }

    fn validate(&self, n_walkers: usize, dim: usize) -> Result<()> {
        if !(self.sigma >= 0.0 && self.sigma.is_finite()) {
            return Err(Error::InvalidSampler(format!("DIMEMove: sigma must be finite and >= 0, got {}", self.sigma)));
        }
        if let Some(g) = self.gamma {
            check_positive("DIMEMove: gamma", g)?;
        }
        if !(0.0..=1.0).contains(&self.aimh_prob) {
            return Err(Error::InvalidSampler(format!("DIMEMove: aimh_prob must be in [0, 1], got {}", self.aimh_prob)));
        }
        if !(self.df_proposal_dist > 2.0 && self.df_proposal_dist.is_finite()) {
            return Err(Error::InvalidSampler(format!(
                "DIMEMove: df_proposal_dist must be > 2 (the t proposal needs a covariance), got {}",
                self.df_proposal_dist
            )));
        }
        if n_walkers <= dim + 1 {
            return Err(Error::InvalidSampler(format!(
                "DIMEMove: {n_walkers} walkers cannot give a covariance in {dim} dimensions; use more than {} walkers",
                dim + 1
            )));
        }
        Ok(())
    }

    fn propose(
        &self,
        tuning: &mut MoveTuning,
        ctx: &Ctx,
        active: &[usize],
        _complement: &[Vec<usize>],
        rngs: &mut [Pcg64],
        q: &mut [f64],
        factors: &mut [f64],
    ) -> Result<()> {
        let (n, dim) = (ctx.n_walkers, ctx.dim);
        if !matches!(tuning, MoveTuning::Dime(_)) {
            *tuning = MoveTuning::Dime(DimeTuning::initial(n, dim));
        }
        let MoveTuning::Dime(t) = tuning else { unreachable!() };
        // Update the independence proposal with this ensemble (before any draw).
        let lweight = log_sum_exp(ctx.ln_probs.iter().copied()) + (t.n_accepted as f64).ln() - (n as f64).ln();
        let all: Vec<usize> = (0..n).collect();
        let (mut ncov, mut nmean) = (vec![0.0; dim * dim], vec![0.0; dim]);
        cov_of(ctx.positions, dim, &all, &mut ncov);
        mean_of(ctx.positions, dim, &all, &mut nmean);
        let cum = t.cum_log_weight.unwrap_or(f64::NEG_INFINITY);
        let new_cum = log_add_exp(cum, lweight);
        if new_cum > f64::NEG_INFINITY {
            let (w_old, w_new) = ((cum - new_cum).exp(), (lweight - new_cum).exp());
            for (c, nc) in t.cov.iter_mut().zip(&ncov) {
                *c = w_old * *c + w_new * nc;
            }
            for (m, nm) in t.mean.iter_mut().zip(&nmean) {
                *m = w_old * *m + w_new * nm;
            }
            t.cum_log_weight = Some(new_cum);
        }
        let df = self.df_proposal_dist;
        let scale: Vec<f64> = t.cov.iter().map(|c| c * (df - 2.0) / df).collect();
        let l = cholesky(&scale, dim).ok_or_else(|| singular("DIMEMove", "its proposal distribution"))?;
        let chi2 = ChiSquared::new(df).map_err(|e| Error::InvalidSampler(format!("DIMEMove: {e}")))?;
        let g0 = self.gamma.unwrap_or_else(|| default_gamma(dim));
        let (mut g, mut e, mut work) = (vec![0.0; dim], vec![0.0; dim], vec![0.0; dim]);
        for (i, &k) in active.iter().enumerate() {
            let rng = &mut rngs[k];
            // Two other walkers a ≠ b, as emcwrap: offsets 1..n−1 and 1..n−2.
            let r0 = 1 + pick_below(rng, (n - 1) as u32) as usize;
            let mut r1 = 1 + pick_below(rng, (n - 2) as u32) as usize;
            if r1 >= r0 {
                r1 += 1;
            }
            let (a, b) = ((k + r0) % n, (k + r1) % n);
            let xi: f64 = StandardNormal.sample(rng);
            let noise = self.sigma * xi;
            let aimh = rng.random::<f64>() <= self.aimh_prob;
            let y = &mut q[i * dim..(i + 1) * dim];
            let (x, xa, xb) = (ctx.x(k), ctx.x(a), ctx.x(b));
            if aimh {
                for v in g.iter_mut() {
                    *v = StandardNormal.sample(rng);
                }
                let s = (chi2.sample(rng) / df).sqrt();
                lower_mul(&l, dim, &g, &mut e);
                for d in 0..dim {
                    y[d] = t.mean[d] + e[d] / s;
                }
                factors[i] =
                    student_t_ln_pdf(x, &t.mean, &l, dim, df, &mut work) - student_t_ln_pdf(y, &t.mean, &l, dim, df, &mut work);
            } else {
                for d in 0..dim {
                    y[d] = x[d] + g0 * (xa[d] - xb[d]) + noise;
                }
                factors[i] = 0.0;
            }
        }
        Ok(())
    }

    fn after_step(&self, tuning: &mut MoveTuning, accepted: &[bool]) {
        if let MoveTuning::Dime(t) = tuning {
            t.n_accepted = accepted.iter().filter(|&&a| a).count();
        }
    }
}
