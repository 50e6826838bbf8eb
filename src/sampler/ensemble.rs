//! Stretch-move ensemble sampler.
//!
//! Walkers are split into two halves (first and second half of the ensemble); each
//! half moves using the other as its complementary ensemble. For walker `k` with a
//! partner `j` drawn from the complement and `z ~ g(z) ∝ 1/√z` on `[1/a, a]`
//! (default `a = 2.0`), the proposal is `Y = X_j + z (X_k − X_j)`, accepted when
//! `ln u < (n − 1) ln z + ln p(Y) − ln p(X_k)`.
//!
//! Reference: Goodman, J. & Weare, J. (2010), *Ensemble samplers with affine
//! invariance*, CAMCoS 5(1), 65–80, <https://doi.org/10.2140/camcos.2010.5.65>.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, RngCore};
use rand_distr::{Distribution as _, StandardNormal};
use rand_pcg::Pcg64;

use super::accept::{accept_exact, ln_approx, settle};
use super::chain::Chain;
use super::moves::{MoveState, Moves, StepBuffers};
use super::rng::{pick_below, walker_rngs};
use crate::density::LogDensity;
use crate::error::{Error, Result};
use crate::executor::{eval_one, EvalStats, Executor, ExecutorInfo, RayonExecutor, SerialExecutor};

/// How to place the walkers at the start.
#[derive(Debug, Clone, PartialEq)]
pub enum InitMethod {
    /// Independent draws from the prior (each walker from its own stream).
    Prior,
    /// A Gaussian ball of `radius` (in sampler space) around `center` (physical values).
    Ball { center: Vec<f64>, radius: f64 },
    /// Explicit physical positions, `n_walkers × dim` row-major.
    Explicit(Vec<f64>),
}

/// A density that can also draw starting points from its prior.
pub trait PriorSampler {
    /// Draw one point (sampler space) into `out`.
    fn sample_prior(&self, rng: &mut dyn RngCore, out: &mut [f64]);
}

/// Everything needed to continue a run exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerState {
    /// Walker positions in sampler space, `n_walkers × dim` row-major.
    pub positions: Vec<f64>,
    /// Log-probability of each walker.
    pub ln_probs: Vec<f64>,
    /// Blobs of each walker, `n_walkers × n_blobs`.
    pub blobs: Vec<f64>,
    /// Per-walker random streams.
    pub rngs: Vec<Pcg64>,
    /// Steps taken so far (over all runs and resumes).
    pub iteration: u64,
    /// Accepted proposals per walker so far.
    pub accepted: Vec<u64>,
    /// Failed evaluations so far (model error, NaN, panic).
    pub failures: u64,
    pub n_walkers: usize,
    pub dim: usize,
    /// The moves' configuration and tuning state (see [`super::moves`]).
    pub moves: MoveState,
}

impl SamplerState {
    /// Position of walker `k` (sampler space).
    #[inline]
    pub fn walker(&self, k: usize) -> &[f64] {
        &self.positions[k * self.dim..(k + 1) * self.dim]
    }
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Store every `thin`-th step (default `1`).
    pub thin: usize,
    /// Checkpoint every this many steps (default `100`; `0` = only at the end).
    pub checkpoint_every: usize,
    /// Where to write the chain file (needs feature `hdf5`); `None` keeps the chain in memory only.
    pub checkpoint_path: Option<PathBuf>,
    /// Set to `true` from another thread (e.g. a signal handler) to stop after the
    /// current step; the run then checkpoints and returns [`RunOutcome::Interrupted`].
    pub stop: Option<Arc<AtomicBool>>,
    /// Store blobs (when the density has them; default `true`).
    pub store_blobs: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { thin: 1, checkpoint_every: 100, checkpoint_path: None, stop: None, store_blobs: true }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// All requested steps were taken.
    Completed,
    /// The progress callback asked to stop (e.g. converged).
    Stopped,
    /// The stop flag was raised (Ctrl-C / SIGTERM).
    Interrupted,
}

/// What a progress callback sees after every step.
#[derive(Debug, Clone)]
pub struct ProgressInfo {
    /// Global step number (counts earlier runs of a resumed chain).
    pub iteration: u64,
    /// Steps done in this run.
    pub step: u64,
    /// Steps requested in this run.
    pub n_steps: u64,
    /// Mean acceptance fraction over all walkers and steps so far.
    pub acceptance: f64,
    /// Mean log-probability of the walkers now.
    pub mean_ln_prob: f64,
    /// Log-density evaluations per second in this run.
    pub evals_per_second: f64,
    /// Seconds since this run started.
    pub elapsed: f64,
    /// Failed evaluations so far.
    pub failures: u64,
    /// Accumulated evaluation/communication times.
    pub stats: EvalStats,
}

/// `if c { a } else { b }` as bit operations, so that the compiler neither
/// branches nor skips the store (a plain `if` becomes a conditional copy, that
/// is a branch as hard to predict as the acceptance itself).
#[inline(always)]
fn select(c: bool, a: f64, b: f64) -> f64 {
    let mask = (c as u64).wrapping_neg();
    f64::from_bits((a.to_bits() & mask) | (b.to_bits() & !mask))
}

/// `y = x_j + z (x_k − x_j)`, element by element (rows of equal length).
#[inline(always)]
fn stretch(y: &mut [f64], xk: &[f64], xj: &[f64], z: f64) {
    let n = y.len();
    let (xk, xj) = (&xk[..n], &xj[..n]);
    for i in 0..n {
        y[i] = xj[i] + z * (xk[i] - xj[i]);
    }
}

/// `x = if c { y } else { x }` for a row, with [`select`].
#[inline(always)]
fn select_row(c: bool, x: &mut [f64], y: &[f64]) {
    let n = x.len();
    let y = &y[..n];
    for i in 0..n {
        x[i] = select(c, y[i], x[i]);
    }
}

/// Sampling of evaluation times for inline serial evaluation.
#[derive(Default)]
struct BatchTimer {
    count: u64,
    last_seconds: f64,
}

/// The run's elapsed time for progress reports. Reading the clock costs tens of
/// nanoseconds, a few percent of a step of a cheap density: while steps take
/// under 20 µs the clock is read on one step in 16 (and on the last), and the
/// value in between is the last one read (at most 16 steps, < 0.4 ms, old).
#[derive(Default)]
struct StepClock {
    calls: u64,
    last_read_call: u64,
    last_elapsed: f64,
}

impl StepClock {
    #[inline]
    fn elapsed(&mut self, t0: Instant, force: bool) -> f64 {
        self.calls += 1;
        let steps = self.calls - self.last_read_call;
        let slow = self.last_read_call > 0 && self.last_elapsed >= 20e-6 * self.last_read_call as f64;
        if force || slow || steps >= 16 || self.last_read_call == 0 {
            self.last_elapsed = t0.elapsed().as_secs_f64();
            self.last_read_call = self.calls;
        }
        self.last_elapsed
    }
}

/// Receives chain rows and the sampler state at each checkpoint (memory, HDF5…).
pub trait CheckpointSink {
    /// `chain` holds this run's rows; rows `new_rows` have not been given before.
    /// `state` is the state after the last of them.
    fn checkpoint(&mut self, chain: &Chain, new_rows: std::ops::Range<usize>, state: &SamplerState) -> Result<()>;
}

/// The ensemble sampler, generic over any [`LogDensity`].
pub struct EnsembleSampler<D> {
    density: D,
    n_walkers: usize,
    seed: u64,
    a: f64,
    /// Proposal moves (`None`: the stretch move with scale `a`).
    moves: Option<Moves>,
    executor: Arc<dyn Executor>,
    /// Evaluate on the calling thread without going through the executor (set by
    /// [`EnsembleSampler::serial`]): same results, no dynamic dispatch per evaluation.
    inline_serial: bool,
}

/// Prior draws per walker before [`EnsembleSampler::initialize`] with
/// [`InitMethod::Prior`] gives up on a walker whose draws all fail.
pub const MAX_PRIOR_DRAWS: usize = 100;

/// Default number of walkers for `dim` parameters: `max(2·dim, 32)`, rounded up to even.
pub fn default_n_walkers(dim: usize) -> usize {
    let n = (2 * dim).max(32);
    n + n % 2
}

impl<D: LogDensity> EnsembleSampler<D> {
    /// A sampler with the default number of walkers, seeded, evaluating on rayon's
    /// global pool (with a serial fast path for cheap densities).
    pub fn new(density: D, seed: u64) -> Self {
        let n_walkers = default_n_walkers(density.dim());
        Self { density, n_walkers, seed, a: 2.0, moves: None, executor: Arc::new(RayonExecutor::global()), inline_serial: false }
    }

    /// Set the number of walkers: even and at least `2·dim`.
    pub fn with_n_walkers(mut self, n: usize) -> Result<Self> {
        let dim = self.density.dim();
        if n % 2 == 1 {
            return Err(Error::InvalidSampler(format!(
                "n_walkers must be even (the ensemble is split in two halves), got {n}; use {}",
                n + 1
            )));
        }
        if n < 2 * dim {
            return Err(Error::InvalidSampler(format!(
                "n_walkers = {n} is fewer than 2 × {dim} parameters; use at least {} (default max(2·n_params, 32) = {})",
                2 * dim,
                default_n_walkers(dim)
            )));
        }
        if n < 4 {
            return Err(Error::InvalidSampler(format!("n_walkers must be at least 4, got {n}")));
        }
        if n / 2 > u32::MAX as usize {
            return Err(Error::InvalidSampler(format!("n_walkers = {n} is too large (at most 2 × {})", u32::MAX)));
        }
        // Walker state (positions, ln p, blobs, 4 RNG words, accepted) plus the
        // half-ensemble buffers of a step (proposal, ln p, blobs, z, u and their logs, decision).
        let (d, nb) = (dim as u128, self.density.n_blobs() as u128);
        let per_walker = 8 * (d + nb + 6) + 4 * (d + nb + 7);
        crate::limits::check_memory(
            crate::limits::product(&[n as u128, per_walker]),
            || format!("the state of {n} walkers × {dim} parameters"),
            "use fewer walkers",
        )?;
        self.n_walkers = n;
        Ok(self)
    }

    /// Check that a run of `n_steps` with `opts` can keep its chain in memory
    /// ([`crate::limits::check_memory`]): `n_steps / thin + 1` rows × walkers ×
    /// (parameters + ln p + stored blobs) doubles. [`EnsembleSampler::run_with_sink`]
    /// checks this before it allocates; callers that create files first can check earlier.
    pub fn check_run_memory(&self, n_steps: u64, opts: &RunOptions) -> Result<()> {
        let (nw, dim) = (self.n_walkers, self.density.dim());
        let nb = if opts.store_blobs { self.density.n_blobs() } else { 0 };
        let rows = (n_steps / opts.thin.max(1) as u64) as u128 + 1;
        crate::limits::check_memory(
            crate::limits::product(&[rows, nw as u128, (dim + 1 + nb) as u128, 8]),
            || {
                format!(
                    "keeping {n_steps} steps (thin {}) × {nw} walkers × ({dim} parameters + ln p + {nb} blobs) in memory",
                    opts.thin
                )
            },
            "run fewer steps at a time (continue with `climcal resume --steps N`), store fewer rows with a larger [sampler] thin, or set [output] blobs = false",
        )
    }

    /// Stretch scale `a > 1` (default `2.0`).
    pub fn with_stretch_scale(mut self, a: f64) -> Result<Self> {
        if !(a > 1.0 && a.is_finite()) {
            return Err(Error::InvalidSampler(format!("stretch scale a must be > 1, got {a}")));
        }
        self.a = a;
        Ok(self)
    }

    /// Propose with `moves` (a single move or a weighted mixture; see
    /// [`super::moves`]) instead of the stretch move. Checked against the
    /// walkers and dimension now and again when a run starts.
    pub fn with_moves(mut self, moves: Moves) -> Result<Self> {
        moves.validate(self.n_walkers, self.density.dim())?;
        self.moves = Some(moves);
        Ok(self)
    }

    /// As [`EnsembleSampler::with_moves`], in place.
    pub fn set_moves(&mut self, moves: Moves) -> Result<()> {
        moves.validate(self.n_walkers, self.density.dim())?;
        self.moves = Some(moves);
        Ok(())
    }

    /// The moves a run uses: those of [`EnsembleSampler::with_moves`], else the
    /// stretch move with the scale of [`EnsembleSampler::with_stretch_scale`].
    pub fn moves(&self) -> Moves {
        match &self.moves {
            Some(m) => m.clone(),
            None => Moves::single(super::moves::MoveSpec::Stretch(super::moves::StretchMove { a: self.a, ..Default::default() })),
        }
    }

    /// Evaluate batches on `executor` instead of the default rayon pool.
    pub fn with_executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = executor;
        self.inline_serial = false;
        self
    }

    /// Evaluate serially on the calling thread (the evaluation is inlined into the
    /// sampler loop; results are those of [`SerialExecutor`]).
    pub fn serial(self) -> Self {
        let mut s = self.with_executor(Arc::new(SerialExecutor));
        s.inline_serial = true;
        s
    }

    /// Evaluate a half-ensemble batch: inline on this thread for [`EnsembleSampler::serial`],
    /// otherwise through the executor. Same values and failure rules either way.
    ///
    /// Inline, the evaluation time of cheap batches (< 20 µs) is sampled on one batch
    /// in 16 and scaled, so that reading the clock does not cost more than the model.
    #[inline]
    fn evaluate_batch(&self, points: &[f64], ln_probs: &mut [f64], blobs: &mut [f64], timer: &mut BatchTimer) -> EvalStats {
        if !self.inline_serial {
            return self.executor.evaluate(&self.density, points, ln_probs, blobs);
        }
        timer.count += 1;
        let weight = if timer.last_seconds >= 20e-6 {
            1.0
        } else if timer.count % 16 == 1 {
            16.0
        } else {
            0.0
        };
        let t0 = (weight > 0.0).then(Instant::now);
        let n = ln_probs.len();
        let dim = self.density.dim();
        let nb = blobs.len().checked_div(n).unwrap_or(0);
        let mut failures = 0;
        for i in 0..n {
            let (v, failed) = eval_one(&self.density, &points[i * dim..(i + 1) * dim], &mut blobs[i * nb..(i + 1) * nb]);
            ln_probs[i] = v;
            failures += failed as u64;
        }
        let eval_seconds = match t0 {
            Some(t0) => {
                timer.last_seconds = t0.elapsed().as_secs_f64();
                weight * timer.last_seconds
            }
            None => 0.0,
        };
        EvalStats { failures, eval_seconds, ..EvalStats::default() }
    }

    /// Number of walkers.
    pub fn n_walkers(&self) -> usize {
        self.n_walkers
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The density.
    pub fn density(&self) -> &D {
        &self.density
    }

    /// Executor layout.
    pub fn executor_info(&self) -> ExecutorInfo {
        self.executor.info()
    }

    /// Place walkers and evaluate them. Errors naming the walkers whose
    /// log-probability is −∞ or NaN. With [`InitMethod::Prior`] a walker whose
    /// draw fails (the model errs or gives NaN there) is drawn again from its own
    /// stream, up to [`MAX_PRIOR_DRAWS`] draws ([`EnsembleSampler::initialize_counted`]
    /// says how many walkers were redrawn).
    pub fn initialize(&self, method: InitMethod) -> Result<SamplerState>
    where
        D: PriorSampler,
    {
        self.initialize_counted(method).map(|(s, _)| s)
    }

    /// As [`EnsembleSampler::initialize`], also returning how many walkers were
    /// redrawn from the prior because their first draw failed (0 for other methods).
    /// Deterministic: redraws continue each walker's own stream.
    pub fn initialize_counted(&self, method: InitMethod) -> Result<(SamplerState, usize)>
    where
        D: PriorSampler,
    {
        let redraw = matches!(method, InitMethod::Prior);
        let (pos, rngs) = self.place(method, Some(&self.density as &dyn PriorSampler))?;
        if !redraw {
            return self.state_from_positions(pos, rngs).map(|s| (s, 0));
        }
        self.state_redrawing(pos, rngs, &self.density)
    }

    /// As [`EnsembleSampler::initialize`] for densities without a prior to draw from
    /// (`InitMethod::Prior` is then an error).
    pub fn initialize_without_prior(&self, method: InitMethod) -> Result<SamplerState> {
        let (pos, rngs) = self.place(method, None)?;
        self.state_from_positions(pos, rngs)
    }

    /// Evaluate prior draws; redraw the walkers whose value is −∞ or NaN (each from
    /// its own stream, all of a round in one batch) up to [`MAX_PRIOR_DRAWS`] draws.
    fn state_redrawing(
        &self,
        mut positions: Vec<f64>,
        mut rngs: Vec<Pcg64>,
        prior: &dyn PriorSampler,
    ) -> Result<(SamplerState, usize)> {
        let (nw, dim, nb) = (self.n_walkers, self.density.dim(), self.density.n_blobs());
        let mut lp = vec![0.0; nw];
        let mut blobs = vec![0.0; nw * nb];
        let mut failures = self.executor.evaluate(&self.density, &positions, &mut lp, &mut blobs).failures;
        let mut redrawn = vec![false; nw];
        for _ in 1..MAX_PRIOR_DRAWS {
            let bad: Vec<usize> = (0..nw).filter(|&k| !lp[k].is_finite()).collect();
            if bad.is_empty() {
                break;
            }
            let mut pts = vec![0.0; bad.len() * dim];
            for (j, &k) in bad.iter().enumerate() {
                prior.sample_prior(&mut rngs[k], &mut pts[j * dim..(j + 1) * dim]);
                redrawn[k] = true;
            }
            let mut l = vec![0.0; bad.len()];
            let mut b = vec![0.0; bad.len() * nb];
            failures += self.executor.evaluate(&self.density, &pts, &mut l, &mut b).failures;
            for (j, &k) in bad.iter().enumerate() {
                positions[k * dim..(k + 1) * dim].copy_from_slice(&pts[j * dim..(j + 1) * dim]);
                lp[k] = l[j];
                blobs[k * nb..(k + 1) * nb].copy_from_slice(&b[j * nb..(j + 1) * nb]);
            }
        }
        let bad: Vec<usize> = (0..nw).filter(|&k| !lp[k].is_finite()).collect();
        if !bad.is_empty() {
            return Err(Error::InvalidSampler(format!(
                "initialising from the prior: after {MAX_PRIOR_DRAWS} prior draws each, {} walker(s) {bad:?} still have \
                 log-probability -inf or NaN (the model fails, gives NaN or does not cover the observation times \
                 for every draw); check that the model runs over the prior's range",
                bad.len()
            )));
        }
        let state = SamplerState {
            positions,
            ln_probs: lp,
            blobs,
            rngs,
            iteration: 0,
            accepted: vec![0; nw],
            failures,
            n_walkers: nw,
            dim,
            moves: MoveState::default(),
        };
        Ok((state, redrawn.iter().filter(|r| **r).count()))
    }

    /// Initial sampler-space positions and the walkers' streams (after the draws).
    fn place(&self, method: InitMethod, prior: Option<&dyn PriorSampler>) -> Result<(Vec<f64>, Vec<Pcg64>)> {
        let (nw, dim) = (self.n_walkers, self.density.dim());
        let mut rngs = walker_rngs(self.seed, nw);
        let mut pos = vec![0.0; nw * dim];
        match method {
            InitMethod::Prior => {
                let prior = prior.ok_or_else(|| {
                    Error::InvalidSampler("this density has no prior to draw from; use InitMethod::Ball or Explicit".into())
                })?;
                for (k, rng) in rngs.iter_mut().enumerate() {
                    prior.sample_prior(rng, &mut pos[k * dim..(k + 1) * dim]);
                }
            }
            InitMethod::Ball { center, radius } => {
                if center.len() != dim {
                    return Err(Error::LengthMismatch {
                        what: "ball centre vs parameters".into(),
                        expected: dim,
                        found: center.len(),
                    });
                }
                if !(radius > 0.0 && radius.is_finite()) {
                    return Err(Error::InvalidSampler(format!("ball radius must be > 0, got {radius}")));
                }
                let mut c = vec![0.0; dim];
                self.density.to_sampler(&center, &mut c);
                for (k, rng) in rngs.iter_mut().enumerate() {
                    for i in 0..dim {
                        let g: f64 = StandardNormal.sample(rng);
                        pos[k * dim + i] = c[i] + radius * g;
                    }
                }
            }
            InitMethod::Explicit(p) => {
                if p.len() != nw * dim {
                    return Err(Error::LengthMismatch {
                        what: format!("initial positions ({nw} walkers × {dim} parameters)"),
                        expected: nw * dim,
                        found: p.len(),
                    });
                }
                for k in 0..nw {
                    self.density.to_sampler(&p[k * dim..(k + 1) * dim], &mut pos[k * dim..(k + 1) * dim]);
                }
            }
        }
        Ok((pos, rngs))
    }

    /// Evaluate given sampler-space positions with given streams.
    pub fn state_from_positions(&self, positions: Vec<f64>, rngs: Vec<Pcg64>) -> Result<SamplerState> {
        let (nw, dim, nb) = (self.n_walkers, self.density.dim(), self.density.n_blobs());
        let mut lp = vec![0.0; nw];
        let mut blobs = vec![0.0; nw * nb];
        let stats = self.executor.evaluate(&self.density, &positions, &mut lp, &mut blobs);
        let bad: Vec<usize> = (0..nw).filter(|&k| !lp[k].is_finite()).collect();
        if !bad.is_empty() {
            return Err(Error::BadInitialPositions { n: bad.len(), walkers: bad });
        }
        Ok(SamplerState {
            positions,
            ln_probs: lp,
            blobs,
            rngs,
            iteration: 0,
            accepted: vec![0; nw],
            failures: stats.failures,
            n_walkers: nw,
            dim,
            moves: MoveState::default(),
        })
    }

    /// Run `n_steps` steps, keeping the chain in memory (and writing it to
    /// `opts.checkpoint_path` when set).
    pub fn run(&self, state: &mut SamplerState, n_steps: u64, opts: &RunOptions) -> Result<Chain> {
        self.run_with_progress(state, n_steps, opts, |_| ControlFlow::Continue(()))
    }

    /// As [`EnsembleSampler::run`], calling `progress` after every step; returning
    /// `ControlFlow::Break(())` stops the run (after a checkpoint).
    pub fn run_with_progress(
        &self,
        state: &mut SamplerState,
        n_steps: u64,
        opts: &RunOptions,
        progress: impl FnMut(&ProgressInfo) -> ControlFlow<()>,
    ) -> Result<Chain> {
        match &opts.checkpoint_path {
            None => self.run_with_sink(state, n_steps, opts, None, progress).map(|(c, _)| c),
            Some(path) => {
                let mut sink = crate::storage::create_sink(path, &self.density, self.seed, state, opts)?;
                self.run_with_sink(state, n_steps, opts, Some(&mut *sink), progress).map(|(c, _)| c)
            }
        }
    }

    /// The general driver: rows go to `sink` at every checkpoint.
    pub fn run_with_sink(
        &self,
        state: &mut SamplerState,
        n_steps: u64,
        opts: &RunOptions,
        mut sink: Option<&mut dyn CheckpointSink>,
        mut progress: impl FnMut(&ProgressInfo) -> ControlFlow<()>,
    ) -> Result<(Chain, RunOutcome)> {
        let (nw, dim) = (self.n_walkers, self.density.dim());
        if state.n_walkers != nw || state.dim != dim {
            return Err(Error::InvalidSampler(format!(
                "state has {} walkers × {} parameters, sampler expects {nw} × {dim}",
                state.n_walkers, state.dim
            )));
        }
        if opts.thin == 0 {
            return Err(Error::InvalidSampler("thin must be >= 1".into()));
        }
        self.check_run_memory(n_steps, opts)?;
        let nb = if opts.store_blobs { self.density.n_blobs() } else { 0 };
        let eval_nb = self.density.n_blobs();
        let half = nw / 2;
        let mut chain = Chain::new(self.density.param_names(), nw, dim, nb, opts.thin);
        chain.set_totals(state.iteration, state.accepted.clone(), state.failures);
        let expected_rows = (n_steps / opts.thin as u64) as usize + 1;
        chain.reserve(expected_rows);

        // Buffers reused for every half-step: the loop allocates nothing.
        let mut proposals = vec![0.0; half * dim];
        let mut new_lp = vec![0.0; half];
        let mut new_blobs = vec![0.0; half * eval_nb];
        let mut zs = vec![0.0; half];
        let mut us = vec![0.0; half];
        let mut ln_zs = vec![0.0; half];
        let mut ln_us = vec![0.0; half];
        let mut decisions: Vec<Option<bool>> = vec![None; half];

        let moves = self.moves();
        moves.validate(nw, dim)?;
        state.moves.adopt(&moves);
        // The plain stretch move runs on the inlined loop below; any other move
        // or mixture on the general step of `sampler::moves`.
        let fast_a = moves.plain_stretch();
        let mut move_buffers = StepBuffers::default();
        let a = fast_a.unwrap_or(self.a);
        let ndim_m1 = (dim as f64) - 1.0;
        // For a power of two (the default a = 2), 1/a is exact and w²·(1/a) rounds the
        // same real number as w²/a: the same z, without a division.
        let inv_a = 1.0 / a;
        let inv_a_exact = a.to_bits() & ((1u64 << 52) - 1) == 0;
        let t0 = Instant::now();
        let mut stats = EvalStats::default();
        let mut n_evals: u64 = 0;
        let mut last_ckpt_row = 0usize;
        let mut outcome = RunOutcome::Completed;
        let mut prev_failures = 0u64;
        let mut timer = BatchTimer::default();
        let mut clock = StepClock::default();
        let mut acc_total: u64 = state.accepted.iter().sum();

        for step in 0..n_steps {
            if fast_a.is_none() {
                let (acc, evals) = super::moves::step(
                    &moves,
                    state,
                    &mut move_buffers,
                    |pts, lp, blobs| self.evaluate_batch(pts, lp, blobs, &mut timer),
                    eval_nb,
                    &mut stats,
                )?;
                acc_total += acc;
                n_evals += evals;
            }
            for h in 0..2 {
                if fast_a.is_none() {
                    break;
                }
                let (active, other) = if h == 0 { (0..half, half..nw) } else { (half..nw, 0..half) };
                let n_other = other.len() as u32;
                // Draws, each from the walker's own stream, in a fixed order: z, j, u.
                for (i, k) in active.clone().enumerate() {
                    let rng = &mut state.rngs[k];
                    let u1: f64 = rng.random();
                    let w = (a - 1.0) * u1 + 1.0;
                    let z = if inv_a_exact { w * w * inv_a } else { w * w / a };
                    let j = other.start + pick_below(rng, n_other) as usize;
                    let u2: f64 = rng.random();
                    zs[i] = z;
                    us[i] = u2;
                    let (xk, xj) = (&state.positions[k * dim..(k + 1) * dim], &state.positions[j * dim..(j + 1) * dim]);
                    let y = &mut proposals[i * dim..(i + 1) * dim];
                    stretch(y, xk, xj, z);
                }
                // The logarithms of the test: inline, within 1e-12 (see `sampler::accept`).
                for i in 0..half {
                    (ln_zs[i], ln_us[i]) = (ln_approx(zs[i]), ln_approx(us[i]));
                }
                stats += self.evaluate_batch(&proposals, &mut new_lp, &mut new_blobs, &mut timer);
                n_evals += half as u64;
                // Accept when ln u < (n − 1) ln z + ln p(Y) − ln p(X_k), decided and
                // applied without branches: whether a proposal is accepted is a coin
                // toss the CPU cannot predict, and on a cheap density a mispredicted
                // branch costs more than the arithmetic it would have skipped. The
                // rare test the inline logs cannot settle is taken with libm's ln.
                let mut all_settled = true;
                for (i, k) in active.clone().enumerate() {
                    decisions[i] = settle(ndim_m1, zs[i], us[i], ln_zs[i], ln_us[i], new_lp[i], state.ln_probs[k]);
                    all_settled &= decisions[i].is_some();
                }
                if !all_settled {
                    for (i, k) in active.clone().enumerate() {
                        if decisions[i].is_none() {
                            decisions[i] = Some(accept_exact(ndim_m1, zs[i], us[i], new_lp[i], state.ln_probs[k]));
                        }
                    }
                }
                for (i, k) in active.enumerate() {
                    let accepted = decisions[i] == Some(true);
                    let y = &proposals[i * dim..(i + 1) * dim];
                    select_row(accepted, &mut state.positions[k * dim..(k + 1) * dim], y);
                    let lp = &mut state.ln_probs[k];
                    *lp = select(accepted, new_lp[i], *lp);
                    if accepted && eval_nb > 0 {
                        state.blobs[k * eval_nb..(k + 1) * eval_nb].copy_from_slice(&new_blobs[i * eval_nb..(i + 1) * eval_nb]);
                    }
                    state.accepted[k] += accepted as u64;
                    acc_total += accepted as u64;
                }
            }
            state.iteration += 1;
            state.failures += stats.failures - prev_failures;
            prev_failures = stats.failures;

            if state.iteration % opts.thin as u64 == 0 {
                let blobs = if nb > 0 { &state.blobs[..] } else { &[][..] };
                chain.push_row_with(|samples| self.density.extend_physical(&state.positions, samples), &state.ln_probs, blobs);
            }

            let stop_flag = opts.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
            let elapsed = clock.elapsed(t0, step + 1 == n_steps);
            let info = ProgressInfo {
                iteration: state.iteration,
                step: step + 1,
                n_steps,
                acceptance: acc_total as f64 / (nw as f64 * state.iteration.max(1) as f64),
                mean_ln_prob: state.ln_probs.iter().sum::<f64>() / nw as f64,
                evals_per_second: n_evals as f64 / elapsed.max(1e-12),
                elapsed,
                failures: state.failures,
                stats,
            };
            let cf = progress(&info);
            let last = step + 1 == n_steps || stop_flag || cf.is_break();
            let due = opts.checkpoint_every > 0 && state.iteration % opts.checkpoint_every as u64 == 0;
            if let Some(s) = sink.as_deref_mut() {
                if due || last {
                    chain.set_totals_from(state.iteration, &state.accepted, state.failures);
                    s.checkpoint(&chain, last_ckpt_row..chain.n_rows(), state)?;
                    last_ckpt_row = chain.n_rows();
                }
            }
            if stop_flag {
                outcome = RunOutcome::Interrupted;
                break;
            }
            if cf.is_break() {
                outcome = RunOutcome::Stopped;
                break;
            }
        }
        if n_steps == 0 {
            if let Some(s) = sink {
                s.checkpoint(&chain, 0..0, state)?;
            }
        }
        chain.set_totals_from(state.iteration, &state.accepted, state.failures);
        chain.set_timing(stats, t0.elapsed().as_secs_f64(), n_evals);
        Ok((chain, outcome))
    }
}

impl PriorSampler for crate::posterior::Posterior {
    fn sample_prior(&self, rng: &mut dyn RngCore, out: &mut [f64]) {
        let mut x = vec![0.0; out.len()];
        for (i, d) in self.params().defs().enumerate() {
            x[i] = d.prior.sample(1, rng)[0];
        }
        self.params().to_sampler(&x, out);
    }
}

impl<T: PriorSampler + ?Sized> PriorSampler for Arc<T> {
    fn sample_prior(&self, rng: &mut dyn RngCore, out: &mut [f64]) {
        (**self).sample_prior(rng, out)
    }
}

impl<T: PriorSampler + ?Sized> PriorSampler for &T {
    fn sample_prior(&self, rng: &mut dyn RngCore, out: &mut [f64]) {
        (**self).sample_prior(rng, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::FnDensity;

    fn gauss(dim: usize) -> FnDensity<impl Fn(&[f64]) -> f64 + Send + Sync> {
        FnDensity::new(dim, |x: &[f64]| -0.5 * x.iter().map(|v| v * v).sum::<f64>())
    }

    #[test]
    fn walker_count_errors_name_the_fix() {
        let e = EnsembleSampler::new(gauss(10), 1).with_n_walkers(15).err().unwrap().to_string();
        assert!(e.contains("even") && e.contains("16"), "{e}");
        let e = EnsembleSampler::new(gauss(10), 1).with_n_walkers(10).err().unwrap().to_string();
        assert!(e.contains("fewer than 2 × 10"), "{e}");
        assert_eq!(EnsembleSampler::new(gauss(10), 1).n_walkers(), 32);
        assert_eq!(EnsembleSampler::new(gauss(20), 1).n_walkers(), 40);
    }

    #[test]
    fn bad_initial_walkers_are_named() {
        let s = EnsembleSampler::new(FnDensity::new(1, |x: &[f64]| if x[0] > 0.0 { 0.0 } else { f64::NEG_INFINITY }), 1)
            .with_n_walkers(4)
            .unwrap();
        let e = s.initialize_without_prior(InitMethod::Explicit(vec![1.0, -1.0, 2.0, -3.0])).unwrap_err();
        match e {
            Error::BadInitialPositions { walkers, .. } => assert_eq!(walkers, vec![1, 3]),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn run_is_reproducible_and_seed_dependent() {
        let run = |seed| {
            let s = EnsembleSampler::new(gauss(3), seed).serial();
            let mut st = s.initialize_without_prior(InitMethod::Ball { center: vec![0.0; 3], radius: 1.0 }).unwrap();
            s.run(&mut st, 50, &RunOptions::default()).unwrap()
        };
        let (a, b, c) = (run(7), run(7), run(8));
        assert_eq!(a.samples_raw(), b.samples_raw());
        assert_ne!(a.samples_raw(), c.samples_raw());
    }
}
