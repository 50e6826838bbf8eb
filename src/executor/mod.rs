//! How a batch of parameter vectors gets evaluated: serially, on a rayon pool, or
//! (feature `mpi`) across MPI ranks. Executors evaluate log-densities and never touch
//! the sampler's state or the chain file.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::density::LogDensity;

pub mod dynamic;
#[cfg(feature = "mpi")]
pub mod mpi;

/// What one batch evaluation cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EvalStats {
    /// Evaluations that returned NaN/+inf or panicked (stored as −∞).
    pub failures: u64,
    /// Wall time spent evaluating (seconds, on the coordinator's clock).
    pub eval_seconds: f64,
    /// Wall time spent moving data between processes (seconds).
    pub comm_seconds: f64,
    /// Wall time the coordinator waited for slower ranks to finish their blocks
    /// (seconds; MPI only, 0 otherwise).
    pub wait_seconds: f64,
}

impl std::ops::AddAssign for EvalStats {
    fn add_assign(&mut self, o: Self) {
        self.failures += o.failures;
        self.eval_seconds += o.eval_seconds;
        self.comm_seconds += o.comm_seconds;
        self.wait_seconds += o.wait_seconds;
    }
}

/// Cumulative figures of one rank, kept on the coordinator. Per batch, a rank's
/// share of the batch's wall time (on rank 0's clock) is split into evaluating,
/// communicating (in MPI calls) and waiting (idle: nothing left to claim while
/// others finish, or a message on its way); the three add up to the batches' time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RankStats {
    /// Points this rank evaluated.
    pub evaluations: u64,
    /// Of which failed (error, NaN, panic → −∞).
    pub failures: u64,
    /// Seconds this rank spent evaluating (for rank 0: its threads' busy time
    /// divided by its thread count).
    pub eval_seconds: f64,
    /// Seconds in MPI calls (receiving points, sending results; rank 0: probing,
    /// receiving and sending).
    pub comm_seconds: f64,
    /// The rest of the batches' time: idle.
    pub wait_seconds: f64,
}

/// Layout of an executor, for logs and chain files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutorInfo {
    pub ranks: usize,
    pub threads_per_rank: usize,
}

/// Evaluates a batch of points, in order.
///
/// `points` holds `n = ln_probs.len()` row-major vectors of length `density.dim()`;
/// `blobs` holds `n × density.n_blobs()` values (empty when there are none).
/// The result must not depend on how the work was split: evaluation is a pure
/// function of each point.
pub trait Executor: Send + Sync {
    fn evaluate(&self, density: &dyn LogDensity, points: &[f64], ln_probs: &mut [f64], blobs: &mut [f64]) -> EvalStats;

    /// Ranks and threads, for reports.
    fn info(&self) -> ExecutorInfo;
}

/// Evaluate one point, turning NaN, +inf and panics into a counted −∞.
/// Generic so that a concrete density is inlined (a `&dyn LogDensity` works too).
#[inline]
pub fn eval_one<D: LogDensity + ?Sized>(density: &D, x: &[f64], blob: &mut [f64]) -> (f64, bool) {
    let r = if blob.is_empty() {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| density.ln_prob(x)))
    } else {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| density.ln_prob_with_blob(x, blob)))
    };
    match r {
        Ok(v) if v.is_nan() || v == f64::INFINITY => (f64::NEG_INFINITY, true),
        Ok(v) => (v, false),
        Err(_) => (f64::NEG_INFINITY, true),
    }
}

/// Evaluate a contiguous block serially; returns the failure count.
pub fn eval_block(density: &dyn LogDensity, points: &[f64], ln_probs: &mut [f64], blobs: &mut [f64]) -> u64 {
    let n = ln_probs.len();
    if n == 0 {
        return 0;
    }
    let dim = points.len() / n;
    let nb = blobs.len() / n;
    let mut failures = 0;
    for i in 0..n {
        let x = &points[i * dim..(i + 1) * dim];
        let b = &mut blobs[i * nb..(i + 1) * nb];
        let (v, failed) = eval_one(density, x, b);
        ln_probs[i] = v;
        failures += failed as u64;
    }
    failures
}

/// One thread, in order.
#[derive(Debug, Clone, Copy, Default)]
pub struct SerialExecutor;

impl Executor for SerialExecutor {
    fn evaluate(&self, density: &dyn LogDensity, points: &[f64], ln_probs: &mut [f64], blobs: &mut [f64]) -> EvalStats {
        let t0 = Instant::now();
        let failures = eval_block(density, points, ln_probs, blobs);
        EvalStats { failures, eval_seconds: t0.elapsed().as_secs_f64(), comm_seconds: 0.0, wait_seconds: 0.0 }
    }
    fn info(&self) -> ExecutorInfo {
        ExecutorInfo { ranks: 1, threads_per_rank: 1 }
    }
}

/// Batches below this estimated cost are evaluated serially: waking a rayon pool
/// costs 10–40 µs, more than a cheap model's whole half-step.
pub const SERIAL_FAST_PATH_NS: u64 = 50_000;

/// A rayon pool (its own, or the global one), with a serial fast path for cheap
/// models decided from the measured cost per evaluation.
pub struct RayonExecutor {
    pool: Option<rayon::ThreadPool>,
    /// Exponentially weighted cost of one evaluation, ns (0 = not measured yet).
    ns_per_eval: AtomicU64,
}

impl RayonExecutor {
    /// Use rayon's global pool (`RAYON_NUM_THREADS` or all cores).
    pub fn global() -> Self {
        Self { pool: None, ns_per_eval: AtomicU64::new(0) }
    }

    /// Own pool with `threads` threads.
    pub fn with_threads(threads: usize) -> crate::Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()
            .map_err(|e| crate::Error::InvalidSampler(format!("cannot start {threads} threads: {e}")))?;
        Ok(Self { pool: Some(pool), ns_per_eval: AtomicU64::new(0) })
    }

    /// Threads this executor uses.
    pub fn threads(&self) -> usize {
        match &self.pool {
            Some(p) => p.current_num_threads(),
            None => rayon::current_num_threads(),
        }
    }

    /// Evaluate on the pool (or serially when cheap). Public so that the MPI
    /// executor can run each rank's block through the same path.
    pub fn evaluate_local(&self, density: &dyn LogDensity, points: &[f64], ln_probs: &mut [f64], blobs: &mut [f64]) -> u64 {
        let n = ln_probs.len();
        if n == 0 {
            return 0;
        }
        let est = self.ns_per_eval.load(Ordering::Relaxed);
        let threads = self.threads();
        let serial = threads <= 1 || n == 1 || (est > 0 && est.saturating_mul(n as u64) < SERIAL_FAST_PATH_NS);
        let t0 = Instant::now();
        let failures = if serial || est == 0 {
            eval_block(density, points, ln_probs, blobs)
        } else {
            let dim = points.len() / n;
            let nb = blobs.len() / n;
            // Small chunks, each its own task: idle threads steal whatever is
            // left, so uneven costs or a thread that lost its core do not leave
            // the others waiting (about 8 chunks per thread).
            let chunk = (n / (8 * threads)).max(1);
            let mut run = || {
                if nb == 0 {
                    ln_probs
                        .par_chunks_mut(chunk)
                        .zip(points.par_chunks(chunk * dim))
                        .with_max_len(1)
                        .map(|(lp, pts)| eval_block(density, pts, lp, &mut []))
                        .sum::<u64>()
                } else {
                    ln_probs
                        .par_chunks_mut(chunk)
                        .zip(points.par_chunks(chunk * dim))
                        .zip(blobs.par_chunks_mut(chunk * nb))
                        .with_max_len(1)
                        .map(|((lp, pts), b)| eval_block(density, pts, lp, b))
                        .sum::<u64>()
                }
            };
            match &self.pool {
                Some(p) => p.install(run),
                None => run(),
            }
        };
        let dt = t0.elapsed().as_nanos() as u64;
        // Cost per evaluation in thread-ns (parallel time × threads).
        let per = if serial || est == 0 { dt / n as u64 } else { dt * threads.min(n) as u64 / n as u64 };
        let new = if est == 0 { per.max(1) } else { (est * 7 + per) / 8 };
        self.ns_per_eval.store(new.max(1), Ordering::Relaxed);
        failures
    }
}

impl RayonExecutor {
    /// Run `body` on the calling thread while tasks it spawns run on this
    /// executor's pool (rayon's `in_place_scope`); returns when all have finished.
    pub fn in_place_scope<'scope, R>(&self, body: impl FnOnce(&rayon::Scope<'scope>) -> R) -> R {
        match &self.pool {
            Some(p) => p.in_place_scope(body),
            None => rayon::in_place_scope(body),
        }
    }

    /// Fold a measured cost (thread-ns per evaluation) into the estimate that
    /// decides the serial fast path.
    pub fn record_cost(&self, ns_per_eval: f64) {
        let per = ns_per_eval.clamp(1.0, 1e15) as u64;
        let est = self.ns_per_eval.load(Ordering::Relaxed);
        let new = if est == 0 { per } else { (est * 7 + per) / 8 };
        self.ns_per_eval.store(new.max(1), Ordering::Relaxed);
    }

    /// Estimated cost of one evaluation, thread-ns (0 = not measured yet).
    pub fn ns_per_eval(&self) -> f64 {
        self.ns_per_eval.load(Ordering::Relaxed) as f64
    }
}

impl Executor for RayonExecutor {
    fn evaluate(&self, density: &dyn LogDensity, points: &[f64], ln_probs: &mut [f64], blobs: &mut [f64]) -> EvalStats {
        let t0 = Instant::now();
        let failures = self.evaluate_local(density, points, ln_probs, blobs);
        EvalStats { failures, eval_seconds: t0.elapsed().as_secs_f64(), comm_seconds: 0.0, wait_seconds: 0.0 }
    }
    fn info(&self) -> ExecutorInfo {
        ExecutorInfo { ranks: 1, threads_per_rank: self.threads() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::FnDensity;

    #[test]
    fn failures_become_neg_inf_and_are_counted() {
        let d = FnDensity::new(1, |x: &[f64]| {
            if x[0] < 0.0 {
                f64::NAN
            } else if x[0] > 10.0 {
                panic!("boom")
            } else {
                -x[0]
            }
        });
        let pts = [1.0, -1.0, 11.0, 2.0];
        let mut lp = [0.0; 4];
        for ex in [&SerialExecutor as &dyn Executor, &RayonExecutor::with_threads(2).unwrap()] {
            let s = ex.evaluate(&d, &pts, &mut lp, &mut []);
            assert_eq!(s.failures, 2);
            assert_eq!(lp, [-1.0, f64::NEG_INFINITY, f64::NEG_INFINITY, -2.0]);
        }
    }
}
