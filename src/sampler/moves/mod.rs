//! Proposal moves of the ensemble sampler, with emcee 3.1.6's proposal and
//! acceptance maths: [`StretchMove`], [`WalkMove`], [`DEMove`],
//! [`DESnookerMove`], [`KDEMove`], [`GaussianMove`], [`DimeMove`], and weighted
//! mixtures of them ([`Moves`]).
//!
//! A step picks one move of the mixture (with its weight), then, for a
//! red–blue move (all but the Gaussian one), splits the walkers into
//! `nsplits` sets and moves each set in turn using the others as its
//! complementary ensemble; a Gaussian (Metropolis) move moves all walkers at
//! once. A proposal `Y` for walker `X` comes with a log factor `f` (the
//! Metropolis–Hastings correction, `ln q(X|Y) − ln q(Y|X)` plus any Jacobian),
//! and is accepted when `ln u < f + ln p(Y) − ln p(X)`.
//!
//! Determinism: every draw for walker `k` comes from walker `k`'s own stream,
//! in a fixed order (the move's draws, then `u`). Draws emcee makes once per
//! step for the whole ensemble (which move of a mixture, the shuffle of a
//! randomised split, the scale factor of a Gaussian move) come from walker 0's
//! stream, before walker 0's own draws. Nothing depends on threads or ranks.
//! Moves with state between steps (the Gaussian move's `sequential` index,
//! DIME's proposal mean, covariance and weight) keep it in
//! [`SamplerState::moves`], which every checkpoint stores, with the move
//! configuration, so a resume continues exactly.
//!
//! The default move, `StretchMove { a: 2, nsplits: 2, randomize_split: false }`
//! splits the ensemble into its first and second half, as climcal always has,
//! and runs on the sampler's inlined fast path (bitwise the same chain as the
//! general path here, which a test checks). emcee's own default randomises
//! the split (`randomize_split = true`); a non-randomised split here is
//! contiguous blocks, where emcee's would interleave walkers (`k % nsplits`),
//! which is the same algorithm with the walkers renumbered.

pub mod de;
pub mod de_snooker;
pub mod dime;
pub mod gaussian;
pub mod kde;
pub mod linalg;
pub mod mixture;
pub mod stretch;
pub mod walk;

use rand::Rng;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

pub use de::DEMove;
pub use de_snooker::DESnookerMove;
pub use dime::{DimeMove, DimeTuning};
pub use gaussian::{GaussianCov, GaussianMode, GaussianMove};
pub use kde::{Bandwidth, KDEMove};
pub use mixture::Moves;
pub use stretch::StretchMove;
pub use walk::WalkMove;

use super::rng::pick_below;
use super::SamplerState;
use crate::error::{Error, Result};
use crate::executor::EvalStats;

/// One move's configuration (JSON/TOML: a table with `kind` and the move's
/// parameters, e.g. `{ kind = "de", sigma = 1e-5 }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MoveSpec {
    /// Goodman & Weare's stretch move.
    Stretch(StretchMove),
    /// Goodman & Weare's walk move.
    Walk(WalkMove),
    /// Differential evolution (ter Braak 2006; Nelson et al. 2013).
    De(DEMove),
    /// Differential-evolution snooker update (ter Braak & Vrugt 2008).
    DeSnooker(DESnookerMove),
    /// Independence proposal from a Gaussian KDE of the complement.
    Kde(KDEMove),
    /// Metropolis step with a Gaussian proposal.
    Gaussian(GaussianMove),
    /// Differential-independence mixture ensemble (Boehl 2022).
    Dime(DimeMove),
}

/// How a move walks through the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Red–blue: `nsplits` sets, each moved with the others as complement.
    Splits { nsplits: usize, randomize: bool },
    /// All walkers in one batch, each on its own (Metropolis moves).
    All,
}

/// What a proposal sees: the ensemble as it is before the set moves.
pub struct Ctx<'a> {
    /// Positions, `n_walkers × dim` (sampler space).
    pub positions: &'a [f64],
    /// Log-probabilities of the walkers.
    pub ln_probs: &'a [f64],
    pub n_walkers: usize,
    pub dim: usize,
}

impl Ctx<'_> {
    /// Position of walker `k`.
    #[inline]
    pub fn x(&self, k: usize) -> &[f64] {
        &self.positions[k * self.dim..(k + 1) * self.dim]
    }
}

/// State a move carries from step to step (stored in chain files).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MoveTuning {
    /// No state.
    #[default]
    None,
    /// Gaussian move in `sequential` mode: the next dimension to update.
    Sequential { index: usize },
    /// DIME's adaptive independence proposal.
    Dime(DimeTuning),
}

/// The moves' configuration and tuning state, part of [`SamplerState`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MoveState {
    /// The moves this state belongs to (`None` before the first step).
    pub moves: Option<Moves>,
    /// One entry per move of `moves`.
    pub tuning: Vec<MoveTuning>,
}

impl MoveState {
    /// As JSON (the form stored in chain files).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("move state serialises")
    }

    /// From [`MoveState::to_json`].
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::InvalidSampler(format!("unreadable move state in chain file: {e}")))
    }
}

/// A move's proposal: the part that differs between moves.
pub trait Proposal {
    /// How the move walks through the ensemble.
    fn layout(&self) -> Layout;

    /// Check the move against the ensemble size (errors name the fix).
    fn validate(&self, n_walkers: usize, dim: usize) -> Result<()>;

    /// Fill `q` (`active.len() × dim`) with proposals for the walkers `active`
    /// and `factors` with their log Metropolis–Hastings factors, drawing for
    /// walker `k` from `rngs[k]` only (and, for draws once per step, from
    /// `rngs[0]` before any other). `complement` holds the other sets of the
    /// split (empty for [`Layout::All`]).
    #[allow(clippy::too_many_arguments)]
    fn propose(
        &self,
        tuning: &mut MoveTuning,
        ctx: &Ctx,
        active: &[usize],
        complement: &[Vec<usize>],
        rngs: &mut [Pcg64],
        q: &mut [f64],
        factors: &mut [f64],
    ) -> Result<()>;

    /// Called after the whole step with each walker's acceptance (DIME).
    fn after_step(&self, _tuning: &mut MoveTuning, _accepted: &[bool]) {}
}

impl MoveSpec {
    /// The proposal behind this configuration.
    pub fn proposal(&self) -> &dyn Proposal {
        match self {
            MoveSpec::Stretch(m) => m,
            MoveSpec::Walk(m) => m,
            MoveSpec::De(m) => m,
            MoveSpec::DeSnooker(m) => m,
            MoveSpec::Kde(m) => m,
            MoveSpec::Gaussian(m) => m,
            MoveSpec::Dime(m) => m,
        }
    }

    /// The move's name as emcee spells its class.
    pub fn name(&self) -> &'static str {
        match self {
            MoveSpec::Stretch(_) => "StretchMove",
            MoveSpec::Walk(_) => "WalkMove",
            MoveSpec::De(_) => "DEMove",
            MoveSpec::DeSnooker(_) => "DESnookerMove",
            MoveSpec::Kde(_) => "KDEMove",
            MoveSpec::Gaussian(_) => "GaussianMove",
            MoveSpec::Dime(_) => "DIMEMove",
        }
    }
}

/// The split of a red–blue step: the set label of each walker.
/// Not randomised: contiguous blocks (`k · nsplits / n`; for two sets the first
/// and second half). Randomised: emcee's labels `k % nsplits`, shuffled
/// (Fisher–Yates) with draws from `rng0`.
pub fn split_labels(n: usize, nsplits: usize, randomize: bool, rng0: &mut Pcg64, out: &mut Vec<usize>) {
    out.clear();
    if randomize {
        out.extend((0..n).map(|k| k % nsplits));
        for i in (1..n).rev() {
            let j = pick_below(rng0, (i + 1) as u32) as usize;
            out.swap(i, j);
        }
    } else {
        out.extend((0..n).map(|k| k * nsplits / n));
    }
}

/// Buffers of the general step, reused between steps.
#[derive(Default)]
pub struct StepBuffers {
    labels: Vec<usize>,
    q: Vec<f64>,
    factors: Vec<f64>,
    new_lp: Vec<f64>,
    new_blobs: Vec<f64>,
    accepted: Vec<bool>,
}

/// One step of `moves` on `state` (the general path: any move or mixture).
/// `evaluate(points, ln_probs, blobs)` evaluates a batch. Returns the number of
/// accepted proposals and the evaluations made.
pub fn step(
    moves: &Moves,
    state: &mut SamplerState,
    buf: &mut StepBuffers,
    mut evaluate: impl FnMut(&[f64], &mut [f64], &mut [f64]) -> EvalStats,
    n_blobs: usize,
    stats: &mut EvalStats,
) -> Result<(u64, u64)> {
    let (nw, dim) = (state.n_walkers, state.dim);
    state.moves.adopt(moves);
    let which = moves.choose(&mut state.rngs[0]);
    let spec = &moves.entries()[which].0;
    let proposal = spec.proposal();
    buf.accepted.clear();
    buf.accepted.resize(nw, false);
    let mut n_acc = 0u64;
    let mut n_evals = 0u64;
    let sets: Vec<Vec<usize>> = match proposal.layout() {
        Layout::All => vec![(0..nw).collect()],
        Layout::Splits { nsplits, randomize } => {
            split_labels(nw, nsplits, randomize, &mut state.rngs[0], &mut buf.labels);
            (0..nsplits).map(|s| (0..nw).filter(|&k| buf.labels[k] == s).collect()).collect()
        }
    };
    for s in 0..sets.len() {
        let active = &sets[s];
        let complement: Vec<Vec<usize>> = (0..sets.len()).filter(|&j| j != s).map(|j| sets[j].clone()).collect();
        let n = active.len();
        buf.q.resize(n * dim, 0.0);
        buf.factors.resize(n, 0.0);
        buf.new_lp.resize(n, 0.0);
        buf.new_blobs.resize(n * n_blobs, 0.0);
        {
            let ctx = Ctx { positions: &state.positions, ln_probs: &state.ln_probs, n_walkers: nw, dim };
            let tuning = &mut state.moves.tuning[which];
            proposal.propose(tuning, &ctx, active, &complement, &mut state.rngs, &mut buf.q, &mut buf.factors)?;
        }
        *stats += evaluate(&buf.q, &mut buf.new_lp, &mut buf.new_blobs);
        n_evals += n as u64;
        for (i, &k) in active.iter().enumerate() {
            let u: f64 = state.rngs[k].random();
            let lnpdiff = buf.factors[i] + buf.new_lp[i] - state.ln_probs[k];
            // ln u < 0 on [0, 1): a difference ≥ 0 accepts whatever u is.
            let acc = lnpdiff >= 0.0 || u.ln() < lnpdiff;
            if acc {
                state.positions[k * dim..(k + 1) * dim].copy_from_slice(&buf.q[i * dim..(i + 1) * dim]);
                state.ln_probs[k] = buf.new_lp[i];
                if n_blobs > 0 {
                    state.blobs[k * n_blobs..(k + 1) * n_blobs].copy_from_slice(&buf.new_blobs[i * n_blobs..(i + 1) * n_blobs]);
                }
                state.accepted[k] += 1;
                n_acc += 1;
            }
            buf.accepted[k] = acc;
        }
    }
    proposal.after_step(&mut state.moves.tuning[which], &buf.accepted);
    Ok((n_acc, n_evals))
}

impl MoveState {
    /// Make this the state of `moves`: kept when it already is, otherwise fresh
    /// tuning (a new run, or a resume with other moves).
    pub fn adopt(&mut self, moves: &Moves) {
        if self.moves.as_ref() != Some(moves) || self.tuning.len() != moves.entries().len() {
            self.moves = Some(moves.clone());
            self.tuning = vec![MoveTuning::None; moves.entries().len()];
        }
    }
}

/// `ln` of the default DE scale: emcee's `2.38 / √(2·ndim)`.
pub(crate) fn default_gamma(dim: usize) -> f64 {
    2.38 / (2.0 * dim as f64).sqrt()
}

/// Check that a parameter is finite and positive.
pub(crate) fn check_positive(what: &str, v: f64) -> Result<()> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidSampler(format!("{what} must be a finite number > 0, got {v}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::rng::walker_rng;

    #[test]
    fn contiguous_split_is_first_and_second_half() {
        let mut r = walker_rng(1, 0);
        let mut l = Vec::new();
        split_labels(8, 2, false, &mut r, &mut l);
        assert_eq!(l, [0, 0, 0, 0, 1, 1, 1, 1]);
        split_labels(10, 4, false, &mut r, &mut l);
        assert_eq!(l, [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]);
    }

    #[test]
    fn randomised_split_keeps_set_sizes() {
        let mut r = walker_rng(1, 0);
        let mut l = Vec::new();
        split_labels(12, 4, true, &mut r, &mut l);
        let mut counts = [0; 4];
        l.iter().for_each(|&s| counts[s] += 1);
        assert_eq!(counts, [3; 4]);
        let first = l.clone();
        split_labels(12, 4, true, &mut r, &mut l);
        assert_ne!(first, l, "the shuffle draws again each step");
    }

    /// The general step with the default stretch move gives the inlined fast
    /// path's chain bit for bit (its draw order and acceptance arithmetic are
    /// the same), also on a density with a hard edge.
    #[test]
    fn general_stretch_step_is_the_fast_path() {
        use crate::density::{FnDensity, LogDensity};
        use crate::sampler::{EnsembleSampler, InitMethod, RunOptions};
        for bounded in [false, true] {
            let d = FnDensity::new(3, move |x: &[f64]| {
                if bounded && x[0] > 0.5 {
                    f64::NEG_INFINITY
                } else {
                    -0.5 * x.iter().map(|v| v * v).sum::<f64>()
                }
            });
            let s = EnsembleSampler::new(&d, 7).with_n_walkers(8).unwrap().serial();
            let init = InitMethod::Ball { center: vec![-1.0, 0.0, 0.0], radius: 0.2 };
            let mut fast = s.initialize_without_prior(init.clone()).unwrap();
            s.run(&mut fast, 200, &RunOptions::default()).unwrap();
            let mut slow = s.initialize_without_prior(init).unwrap();
            let moves = Moves::default();
            let mut buf = StepBuffers::default();
            let mut stats = EvalStats::default();
            for _ in 0..200 {
                let eval = |p: &[f64], lp: &mut [f64], _b: &mut [f64]| {
                    for (i, v) in lp.iter_mut().enumerate() {
                        *v = d.ln_prob(&p[i * 3..(i + 1) * 3]);
                    }
                    EvalStats::default()
                };
                step(&moves, &mut slow, &mut buf, eval, 0, &mut stats).unwrap();
                slow.iteration += 1;
            }
            assert!(fast.positions.iter().zip(&slow.positions).all(|(a, b)| a.to_bits() == b.to_bits()), "bounded {bounded}");
            assert_eq!(fast.ln_probs, slow.ln_probs);
            assert_eq!(fast.accepted, slow.accepted);
            assert_eq!(fast.rngs, slow.rngs);
        }
    }

    #[test]
    fn move_state_round_trips_through_json() {
        let moves = Moves::new(vec![(MoveSpec::Dime(DimeMove::default()), 1.0)]).unwrap();
        let mut st = MoveState::default();
        st.adopt(&moves);
        st.tuning[0] = MoveTuning::Dime(DimeTuning {
            mean: vec![0.5, -1.0],
            cov: vec![1.0, 0.1, 0.1, 2.0],
            n_accepted: 7,
            cum_log_weight: None,
        });
        assert_eq!(MoveState::from_json(&st.to_json()).unwrap(), st);
        // Bit for bit for arbitrary floats (needs serde_json's float_roundtrip:
        // without it a resumed DIME chain drifted after a few steps).
        let mut r = walker_rng(3, 0);
        let cov: Vec<f64> = (0..10_000).map(|_| r.random::<f64>() * 10f64.powi(r.random_range(-300..300))).collect();
        st.tuning[0] =
            MoveTuning::Dime(DimeTuning { mean: vec![], cov, n_accepted: 0, cum_log_weight: Some(-1234.5678901234567) });
        assert_eq!(MoveState::from_json(&st.to_json()).unwrap(), st);
    }
}
