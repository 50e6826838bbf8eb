//! Metropolis step with a Gaussian proposal (emcee's `GaussianMove`).
//!
//! All walkers move at once, each on its own: `Y = X + f · ε`, `ε ~ N(0, Σ)`
//! with `Σ` isotropic (a number), axis-aligned (a vector of variances) or full
//! (a matrix). Mode `vector` updates every coordinate; `random` one coordinate
//! drawn per walker; `sequential` coordinate `i` at the `i`-th use of the move,
//! cycling (the index is the move's stored state). With `factor` given,
//! `f = exp(U(−ln factor, ln factor))`, drawn once per step for the whole
//! ensemble as emcee does (from walker 0's stream); else `f = 1`. The proposal
//! is symmetric: log factor 0.

use rand::Rng;
use rand_distr::{Distribution as _, StandardNormal};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use super::linalg::{cholesky, lower_mul};
use super::{Ctx, Layout, MoveTuning, Proposal};
use crate::error::{Error, Result};
use crate::sampler::rng::pick_below;

/// The proposal covariance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GaussianCov {
    /// `σ² I`.
    Scalar(f64),
    /// Diagonal variances.
    Diagonal(Vec<f64>),
    /// Full covariance matrix (rows).
    Matrix(Vec<Vec<f64>>),
}

/// Which coordinates a step updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GaussianMode {
    /// All coordinates (default).
    #[default]
    Vector,
    /// One coordinate per walker, drawn uniformly.
    Random,
    /// One coordinate, the same for all walkers, cycling through them.
    Sequential,
}

/// The Gaussian Metropolis move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaussianMove {
    /// Proposal covariance (required).
    pub cov: GaussianCov,
    /// Update mode (default `vector`).
    #[serde(default)]
    pub mode: GaussianMode,
    /// Random scale range `factor ≥ 1` (default none: scale 1).
    #[serde(default)]
    pub factor: Option<f64>,
}

impl GaussianMove {
    /// Standard deviations per coordinate (isotropic/diagonal) or the Cholesky
    /// factor (full matrix) for `dim` dimensions.
    fn scales(&self, dim: usize) -> Result<(Vec<f64>, Option<Vec<f64>>)> {
        let bad = |what: String| Err(Error::InvalidSampler(format!("GaussianMove: {what}")));
        match &self.cov {
            GaussianCov::Scalar(v) => {
                if !(*v > 0.0 && v.is_finite()) {
                    return bad(format!("cov must be > 0, got {v}"));
                }
                Ok((vec![v.sqrt(); dim], None))
            }
            GaussianCov::Diagonal(v) => {
                if v.len() != dim {
                    return bad(format!("cov has {} variances for {dim} parameters", v.len()));
                }
                if let Some(x) = v.iter().find(|x| !(**x > 0.0 && x.is_finite())) {
                    return bad(format!("cov variances must be > 0, got {x}"));
                }
                Ok((v.iter().map(|x| x.sqrt()).collect(), None))
            }
            GaussianCov::Matrix(m) => {
                if m.len() != dim || m.iter().any(|r| r.len() != dim) {
                    return bad(format!("cov must be a {dim} × {dim} matrix for {dim} parameters"));
                }
                let flat: Vec<f64> = m.concat();
                let sym = (0..dim).all(|i| (0..dim).all(|j| flat[i * dim + j] == flat[j * dim + i]));
                let l = cholesky(&flat, dim).filter(|_| sym);
                match l {
                    Some(l) => Ok((Vec::new(), Some(l))),
                    None => bad("cov matrix must be symmetric positive definite".into()),
                }
            }
        }
    }
}

impl Proposal for GaussianMove {
    fn layout(&self) -> Layout {
        Layout::All
    }

    fn validate(&self, _n_walkers: usize, dim: usize) -> Result<()> {
        let (_, full) = self.scales(dim)?;
        if full.is_some() && self.mode != GaussianMode::Vector {
            return Err(Error::InvalidSampler("GaussianMove: a full cov matrix allows only mode = \"vector\" (as emcee)".into()));
        }
        if let Some(f) = self.factor {
            if !(f >= 1.0 && f.is_finite()) {
                return Err(Error::InvalidSampler(format!("GaussianMove: factor must be >= 1, got {f}")));
            }
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
        let dim = ctx.dim;
        let (sd, full) = self.scales(dim)?;
        let f = match self.factor {
            Some(fac) => {
                let lf = fac.ln();
                (rngs[0].random_range(-lf..=lf)).exp()
            }
            None => 1.0,
        };
        let seq = if self.mode == GaussianMode::Sequential {
            let index = match tuning {
                MoveTuning::Sequential { index } => *index,
                _ => 0,
            };
            *tuning = MoveTuning::Sequential { index: (index + 1) % dim };
            Some(index % dim)
        } else {
            None
        };
        let (mut g, mut e) = (vec![0.0; dim], vec![0.0; dim]);
        for (i, &k) in active.iter().enumerate() {
            let rng = &mut rngs[k];
            let y = &mut q[i * dim..(i + 1) * dim];
            y.copy_from_slice(ctx.x(k));
            match (self.mode, &full) {
                (GaussianMode::Vector, Some(l)) => {
                    for v in g.iter_mut() {
                        *v = StandardNormal.sample(rng);
                    }
                    lower_mul(l, dim, &g, &mut e);
                    for d in 0..dim {
                        y[d] += f * e[d];
                    }
                }
                (GaussianMode::Vector, None) => {
                    for d in 0..dim {
                        let n: f64 = StandardNormal.sample(rng);
                        y[d] += f * sd[d] * n;
                    }
                }
                (GaussianMode::Random, _) => {
                    let d = pick_below(rng, dim as u32) as usize;
                    let n: f64 = StandardNormal.sample(rng);
                    y[d] += f * sd[d] * n;
                }
                (GaussianMode::Sequential, _) => {
                    let d = seq.unwrap_or(0);
                    let n: f64 = StandardNormal.sample(rng);
                    y[d] += f * sd[d] * n;
                }
            }
            factors[i] = 0.0;
        }
        Ok(())
    }
}
