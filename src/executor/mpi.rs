//! MPI execution (feature `mpi`): rank 0 coordinates, every rank evaluates.
//!
//! Rank 0 owns the sampler, the random streams and the chain file, and evaluates
//! batches through an [`MpiExecutor`]. Every other rank runs [`run_worker`], which
//! holds no sampler state. Work is handed out dynamically ([`super::dynamic`]):
//!
//! 1. rank 0 splits each batch into chunks as they are claimed (guided
//!    self-scheduling: large first, small at the end) and sends each worker a chunk
//!    of points (point-to-point, non-blocking), keeping two in flight per worker
//!    while plenty is left so that no worker waits for rank 0's reply;
//! 2. rank 0's own threads claim chunks from the same counter meanwhile;
//! 3. a worker evaluates each chunk on its local [`RayonExecutor`] and sends back
//!    `ln_prob`s, blobs, its failure count and its evaluating/communicating time;
//!    rank 0 writes them by index and sends that worker its next chunk;
//! 4. when nothing is left to claim, rank 0 takes back the chunk waiting behind
//!    the one a worker is evaluating (if it would finish it sooner), tells the
//!    worker to skip it and evaluates it itself: the second chunk in flight never
//!    leaves rank 0 idle at the end of a batch. (A worker that had already
//!    started it finishes it; that copy is dropped.)
//!
//! A faster rank (or one whose points are cheaper) simply claims more. Results
//! land by index and evaluation is a pure function of each point, so the chain is
//! bitwise identical for any number of ranks and threads. A model that errors,
//! returns NaN or panics gives −∞ for that walker on whatever rank it ran
//! (counted), never a hang. A batch too small to be worth a message (below
//! [`dynamic::MIN_CHUNK_NS`] of estimated work) is evaluated by rank 0 alone.
//!
//! Waiting: no rank blocks in an MPI call that busy-polls. Idle workers poll with
//! `MPI_Iprobe`, spinning for 50 µs and then sleeping (10 µs doubling to 250 µs);
//! rank 0 polls for results with short sleeps while its threads evaluate. On a
//! loaded node an idle rank therefore leaves its core to the ranks (or the
//! neighbour's job) that need it, as idle rayon threads do.
//!
//! Timing: every batch's wall time (rank 0's clock) is split, per rank, into
//! evaluating, communicating and waiting ([`RankStats`]); rank 0's split is also
//! reported through [`EvalStats`]. At start-up rank 0 times round trips of an
//! empty chunk to every worker (the coordination cost of a half-step); once the
//! first batches are measured, a run whose half-steps are too short for its
//! layout gets one warning with the measured efficiency and the walker count
//! that would use the machine ([`MpiExecutor::advice`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use climcal::executor::{mpi, RayonExecutor};
//! use climcal::models::toy::Gaussian;
//! use climcal::prelude::*;
//!
//! let world = mpi::init()?; // fails on a launcher from another MPI
//! let density = Gaussian::standard(4);
//! if world.is_coordinator() {
//!     let exec = Arc::new(mpi::MpiExecutor::new(RayonExecutor::with_threads(1)?)?);
//!     let sampler = EnsembleSampler::new(density, 42).with_executor(exec.clone());
//!     let mut state = sampler.initialize_without_prior(InitMethod::Ball { center: vec![0.0; 4], radius: 0.1 })?;
//!     let chain = sampler.run(&mut state, 100, &RunOptions::default())?;
//!     exec.shutdown(); // release the workers (also done on drop)
//!     println!("{}", chain.mean_acceptance_rate());
//! } else {
//!     mpi::run_worker(&density, &RayonExecutor::with_threads(1)?)?;
//! }
//! # Ok::<(), climcal::Error>(())
//! ```

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mpi::environment::Universe;
use mpi::topology::{Rank, SimpleCommunicator};
use mpi::traits::*;
use mpi::Tag;

use super::dynamic::{self, Backoff, Claims, Disjoint};
pub use super::RankStats;
use super::{EvalStats, Executor, ExecutorInfo, RayonExecutor};
use crate::density::LogDensity;
use crate::error::{Error, Result};

/// An initialised MPI environment. Dropping it finalises MPI: keep it alive until
/// the end of `main` (after every [`MpiExecutor`] has been dropped).
pub struct MpiWorld {
    _universe: Universe,
    rank: usize,
    size: usize,
}

impl MpiWorld {
    /// This process's rank in `MPI_COMM_WORLD`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of ranks in `MPI_COMM_WORLD`.
    pub fn size(&self) -> usize {
        self.size
    }

    /// True on rank 0, the coordinator (owns the sampler and the chain file).
    pub fn is_coordinator(&self) -> bool {
        self.rank == 0
    }

    /// Abort the whole job (all ranks) with `code`: for errors after which the
    /// other ranks cannot be released cleanly.
    pub fn abort(&self, code: i32) -> ! {
        SimpleCommunicator::world().abort(code)
    }
}

/// Initialise MPI once per process (call it at the start of `main`), requesting
/// `MPI_THREAD_SERIALIZED`: MPI is called by one thread at a time (the executor
/// holds a lock), not necessarily the main one; rayon threads only evaluate
/// models. A binary started without `mpirun` runs as a singleton (1 rank).
///
/// Errors with [`Error::Mpi`] when MPI was already initialised, or when the
/// process was started by a launcher from another MPI implementation (every
/// process then believes it is rank 0 of 1: see [`check_launcher`]).
pub fn init() -> Result<MpiWorld> {
    let (universe, _level) = mpi::initialize_with_threading(mpi::Threading::Serialized).ok_or_else(|| {
        Error::Mpi("MPI is already initialised in this process; call climcal::executor::mpi::init() once, in main".into())
    })?;
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    check_launcher(rank, size, |k| std::env::var(k).ok())?;
    Ok(MpiWorld { _universe: universe, rank, size })
}

/// Environment variables in which launchers announce the job's size.
const SIZE_VARS: &[&str] = &["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS"];
/// Environment variables in which launchers announce this process's rank.
const RANK_VARS: &[&str] = &["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK"];

/// Compare the rank and size MPI reports with what the launcher announced in the
/// environment (`env` looks a variable up). A binary built against one MPI and
/// started by another MPI's `mpirun` (or by `srun` without an MPI plugin) runs
/// every process as a singleton: world size 1 while the launcher started many.
/// That would run N independent copies of the job writing the same file, so it is
/// an error ([`Error::Mpi`], CLI exit code 2) naming the variable and the fix.
pub fn check_launcher(rank: usize, size: usize, env: impl Fn(&str) -> Option<String>) -> Result<()> {
    let num = |k: &str| env(k).and_then(|v| v.trim().parse::<usize>().ok());
    for k in SIZE_VARS {
        if let Some(n) = num(k) {
            if n != size {
                return Err(Error::Mpi(format!(
                    "the launcher started {n} processes ({k}={n}) but this MPI library sees {size}: this binary was \
                     started by the launcher of a different MPI implementation (or srun without --mpi=pmix/pmi2). \
                     Start it with the mpirun of the MPI it was built against (`mpirun --version`; climcal is built \
                     with rsmpi against the MPI found by pkg-config), or rebuild climcal against your cluster's MPI"
                )));
            }
        }
    }
    for k in RANK_VARS {
        if let Some(r) = num(k) {
            if r != rank {
                return Err(Error::Mpi(format!(
                    "the launcher says this is rank {r} ({k}={r}) but this MPI library says rank {rank} of {size}: \
                     this binary was started by the launcher of a different MPI implementation. Start it with the \
                     mpirun of the MPI it was built against, or rebuild climcal against your cluster's MPI"
                )));
            }
        }
    }
    Ok(())
}

/// True when a launcher (OpenMPI's or another MPI's `mpirun`, `srun`) started this
/// process, i.e. one of the variables [`check_launcher`] compares is set. Without
/// a launcher the CLI runs without MPI at all.
pub fn launched_by_mpi() -> bool {
    SIZE_VARS.iter().chain(RANK_VARS).any(|k| std::env::var_os(k).is_some())
}

/// Rayon threads per rank when none were asked for: `RAYON_NUM_THREADS`, else
/// `SLURM_CPUS_PER_TASK`, else this node's cores shared evenly among the ranks on
/// it (`OMPI_COMM_WORLD_LOCAL_SIZE`, `MPI_LOCALNRANKS` or `SLURM_NTASKS_PER_NODE`),
/// at least 1. `env` looks a variable up; `cores` is the node's core count.
pub fn default_threads_per_rank(env: impl Fn(&str) -> Option<String>, cores: usize) -> usize {
    let num = |k: &str| env(k).and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n > 0);
    if let Some(n) = num("RAYON_NUM_THREADS").or_else(|| num("SLURM_CPUS_PER_TASK")) {
        return n;
    }
    let local =
        ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"].iter().find_map(|k| num(k)).unwrap_or(1);
    (cores / local).max(1)
}

/// Rank 0 sends `text` to every rank (`None`: "nothing to do", e.g. after a bad
/// config); every rank returns what rank 0 sent. Collective: all ranks must call
/// it; `text` is ignored on other ranks. Used by the CLI to hand the workers the
/// run file, so that they never read the chain file.
pub fn broadcast_text(text: Option<&str>) -> Option<String> {
    let world = SimpleCommunicator::world();
    let root = world.process_at_rank(0);
    let is_root = world.rank() == 0;
    let mut header = [0u64; 2];
    if is_root {
        header = [u64::from(text.is_some()), text.map_or(0, |t| t.len() as u64)];
    }
    root.broadcast_into(&mut header[..]);
    if header[0] == 0 {
        return None;
    }
    let mut buf = vec![0u8; header[1] as usize];
    if is_root {
        buf.copy_from_slice(text.unwrap_or_default().as_bytes());
    }
    root.broadcast_into(&mut buf[..]);
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// Rank 0 → worker: a chunk of points (row-major, `dim` values each). Both sides
/// number the chunks of each worker 0, 1, 2, … in the order they are sent (MPI
/// keeps that order between two ranks), without sending the number.
const TAG_WORK: Tag = 101;
/// Worker → rank 0: `[chunk number, failures, eval seconds, comm seconds,
/// ln_probs…, blobs…]` of the oldest chunk it was sent; only the first four for a
/// chunk it skipped (taken back by rank 0, [`TAG_CANCEL`]) and for an empty one.
const TAG_RESULT: Tag = 102;
/// Rank 0 → worker: leave [`run_worker`] (empty message).
const TAG_STOP: Tag = 103;
/// Rank 0 → worker: `[chunk number]`: rank 0 evaluates that chunk itself (it ran
/// out of points while the chunk waited in the worker's queue); skip it if it
/// has not been started.
const TAG_CANCEL: Tag = 104;
/// Values a worker puts before its results.
const HEAD: usize = 4;

/// What rank 0 learns of one remote rank during a batch.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    evaluations: u64,
    failures: u64,
    eval_seconds: f64,
    comm_seconds: f64,
    thread_seconds: f64,
}

/// Buffers and figures kept between batches.
#[derive(Default)]
struct Scratch {
    recv: Vec<f64>,
    ranks: Vec<RankStats>,
    totals: EvalStats,
    /// Batches evaluated so far.
    batches: u64,
    /// Batches 2..=1+ADVICE_BATCHES, for the half-step advice.
    samples: Vec<dynamic::BatchSample>,
    /// The advice, once decided (empty string: none needed).
    advice: Option<String>,
    /// Per rank: chunks sent and not yet answered, oldest first (between batches
    /// only chunks rank 0 took back, whose late replies are dropped on arrival).
    queues: Vec<VecDeque<Sent>>,
    /// Per rank: the number of the next chunk sent to it.
    next_seq: Vec<u64>,
    /// Chunks rank 0 took back from a worker's queue so far.
    taken_back: u64,
}

/// A chunk sent to a worker, as rank 0 tracks it.
#[derive(Debug, Clone)]
struct Sent {
    seq: u64,
    range: Range<usize>,
    /// Rank 0 took it back and evaluates it itself: the worker's reply is dropped.
    taken: bool,
}

/// The executor of rank 0: hands out each batch in chunks to whichever rank (or
/// rank 0's own threads) is free, and writes the results by index, so the chain
/// does not depend on the layout. Create it on rank 0 only, after [`init`], while
/// every other rank calls [`run_worker`]; release the workers with
/// [`MpiExecutor::shutdown`] (also done on drop).
///
/// MPI calls are made from the thread that calls [`Executor::evaluate`], one
/// batch at a time (a lock serialises concurrent callers); rank 0's evaluations
/// run on its local rayon pool meanwhile.
pub struct MpiExecutor {
    local: RayonExecutor,
    size: usize,
    /// Threads, dimension and blob count announced by each rank at the handshake.
    announced: Vec<[u64; 3]>,
    scratch: Mutex<Scratch>,
    stopped: AtomicBool,
    /// Median time of one round trip to every worker with an empty chunk
    /// (seconds; 0 on one rank): the coordination cost of a half-step.
    round_trip: f64,
    /// Equal static blocks instead of dynamic chunks ([`Self::with_static_blocks`]).
    static_blocks: bool,
}

impl MpiExecutor {
    /// Coordinator side of the handshake (collective with [`run_worker`] on the
    /// other ranks): learns each rank's thread count and problem size.
    /// `local` evaluates rank 0's own share. Errors unless called on rank 0 of an
    /// initialised MPI.
    pub fn new(local: RayonExecutor) -> Result<Self> {
        if !mpi::is_initialized() || mpi::is_finalized() {
            return Err(Error::Mpi("MPI is not initialised: call climcal::executor::mpi::init() first".into()));
        }
        let world = SimpleCommunicator::world();
        if world.rank() != 0 {
            return Err(Error::Mpi(format!(
                "MpiExecutor is the coordinator's executor and must be created on rank 0 (this is rank {}); \
                 other ranks call run_worker",
                world.rank()
            )));
        }
        let size = world.size() as usize;
        let mine = [local.threads() as u64, 0, 0];
        let mut all = vec![0u64; 3 * size];
        world.process_at_rank(0).gather_into_root(&mine[..], &mut all[..]);
        let announced = all.chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
        let round_trip = measure_round_trip(&world, size);
        let scratch = Scratch {
            ranks: vec![RankStats::default(); size],
            queues: vec![VecDeque::new(); size],
            next_seq: vec![ROUND_TRIPS as u64; size], // the timing chunks came first
            ..Default::default()
        };
        dynamic::fine_timer_slack(); // this thread polls for results with short sleeps
        Ok(Self {
            local,
            size,
            announced,
            scratch: Mutex::new(scratch),
            stopped: AtomicBool::new(false),
            round_trip,
            static_blocks: false,
        })
    }

    /// Hand out every batch as equal static blocks instead (one contiguous block
    /// per rank in proportion to its threads, whatever its speed or the points'
    /// cost; rank 0 evaluates the rest): the scheme before dynamic distribution,
    /// kept to measure against it (`mpi_toy --static`). Same chain.
    #[must_use]
    pub fn with_static_blocks(mut self) -> Self {
        self.static_blocks = true;
        self
    }

    /// Measured coordination cost of one half-step: a round trip of an empty
    /// chunk to every worker (seconds; 0 on one rank).
    pub fn round_trip_seconds(&self) -> f64 {
        self.round_trip
    }

    /// Advice on the walker count when the first batches showed half-steps too
    /// short for this layout ([`dynamic::half_step_advice`]); `None` before they
    /// are measured or when the layout is fine. Also logged once (a warning)
    /// when it is decided.
    pub fn advice(&self) -> Option<String> {
        let s = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        s.advice.clone().filter(|a| !a.is_empty())
    }

    /// Count a batch, keep the measurements of the first ones and decide the
    /// advice once they are in.
    fn observe(&self, s: &mut Scratch, sample: dynamic::BatchSample) {
        s.batches += 1;
        if s.batches == 1 || s.advice.is_some() {
            return; // the first batch has no cost estimate to split by
        }
        s.samples.push(sample);
        if s.samples.len() >= dynamic::ADVICE_BATCHES {
            let workers = self.threads_by_rank().iter().sum();
            let advice = dynamic::half_step_advice(&s.samples, self.size, workers, self.round_trip);
            if let Some(a) = &advice {
                tracing::warn!("{a}");
            }
            s.advice = Some(advice.unwrap_or_default());
        }
    }

    /// Number of ranks (including rank 0).
    pub fn ranks(&self) -> usize {
        self.size
    }

    /// Rayon threads of each rank.
    pub fn threads_by_rank(&self) -> Vec<usize> {
        let mut t: Vec<usize> = self.announced.iter().map(|a| (a[0] as usize).max(1)).collect();
        t[0] = self.local.threads();
        t
    }

    /// Evaluations, failures and the evaluating / communicating / waiting split
    /// of each rank so far.
    pub fn rank_stats(&self) -> Vec<RankStats> {
        self.scratch.lock().unwrap_or_else(|e| e.into_inner()).ranks.clone()
    }

    /// Evaluating / communicating / waiting time (rank 0's) and failures of every
    /// batch so far.
    pub fn totals(&self) -> EvalStats {
        self.scratch.lock().unwrap_or_else(|e| e.into_inner()).totals
    }

    /// Chunks rank 0 took back from a worker's queue (and evaluated itself) so far.
    pub fn taken_back(&self) -> u64 {
        self.scratch.lock().unwrap_or_else(|e| e.into_inner()).taken_back
    }

    /// Estimated cost of one evaluation (thread-seconds), 0 before the first batch.
    pub fn seconds_per_eval(&self) -> f64 {
        self.local.ns_per_eval() * 1e-9
    }

    /// Tell the workers to leave [`run_worker`]. Idempotent; called on drop. After
    /// it, [`Executor::evaluate`] panics.
    pub fn shutdown(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) || mpi::is_finalized() {
            return;
        }
        let mut guard = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let world = SimpleCommunicator::world();
        let none: [f64; 0] = [];
        // Late replies to chunks rank 0 took back: receive them before the stop.
        for (r, q) in guard.queues.iter_mut().enumerate().skip(1) {
            while q.pop_front().is_some() {
                let (msg, status) = world.process_at_rank(r as Rank).matched_probe_with_tag(TAG_RESULT);
                let mut buf = vec![0.0f64; status.count(f64::equivalent_datatype()) as usize];
                msg.matched_receive_into(&mut buf[..]);
            }
        }
        for r in 1..self.size {
            world.process_at_rank(r as Rank).send_with_tag(&none[..], TAG_STOP);
        }
    }

    fn check_problem(&self, dim: usize, nb: usize) {
        for (r, a) in self.announced.iter().enumerate().skip(1) {
            if a[1] as usize != dim || a[2] as usize != nb {
                eprintln!(
                    "climcal: MPI rank {r} evaluates a problem with {} parameters and {} blobs, rank 0 one with {dim} \
                     and {nb}: every rank must build the same problem (same config and data files); aborting the job",
                    a[1], a[2]
                );
                SimpleCommunicator::world().abort(2);
            }
        }
    }

    /// A batch too small to split (or no other ranks): rank 0 alone, no messages.
    fn evaluate_alone(
        &self,
        s: &mut Scratch,
        density: &dyn LogDensity,
        points: &[f64],
        lp: &mut [f64],
        bl: &mut [f64],
    ) -> EvalStats {
        let t0 = Instant::now();
        let failures = self.local.evaluate_local(density, points, lp, bl);
        let secs = t0.elapsed().as_secs_f64();
        let st = &mut s.ranks[0];
        st.evaluations += lp.len() as u64;
        st.failures += failures;
        st.eval_seconds += secs;
        for r in s.ranks.iter_mut().skip(1) {
            r.wait_seconds += secs;
        }
        EvalStats { failures, eval_seconds: secs, comm_seconds: 0.0, wait_seconds: 0.0 }
    }
}

impl Drop for MpiExecutor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Chunks in flight per worker: two hide rank 0's reply time (it answers between
/// its own evaluations). Measured on 2 cores, fixed work 200 µs, 2 × 1, 5 runs
/// interleaved: 135–142 steps/s with 2, 125–130 with 3, 122–133 with 4 (deeper
/// queues mean more chunks taken back at the end and more messages).
const QUEUE_DEPTH: usize = 2;

/// Round trips timed at start-up; the median is kept.
const ROUND_TRIPS: usize = 15;

/// Rank 0, at start-up (every worker has just entered [`run_worker`] and polls):
/// send every worker an empty chunk and wait for all the (empty) results, as a
/// half-step of a free model would; the median of [`ROUND_TRIPS`] rounds.
fn measure_round_trip(world: &SimpleCommunicator, size: usize) -> f64 {
    if size <= 1 {
        return 0.0;
    }
    let none: [f64; 0] = [];
    let mut head = [0.0f64; HEAD];
    let mut times: Vec<f64> = (0..ROUND_TRIPS)
        .map(|_| {
            let t = Instant::now();
            for r in 1..size {
                world.process_at_rank(r as Rank).send_with_tag(&none[..], TAG_WORK);
            }
            for r in 1..size {
                world.process_at_rank(r as Rank).receive_into_with_tag(&mut head[..], TAG_RESULT);
            }
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Below this much estimated work per worker (ns) a batch goes out as one chunk
/// per worker: dynamic chunks would cost more in messages than they save.
const COARSE_NS: f64 = 4.0 * dynamic::MIN_CHUNK_NS;

/// Each rank's weight for sharing a batch: its threads × its measured speed per
/// thread relative to the mean (1 until a rank has evaluated something).
fn speed_weights(ranks: &[RankStats], threads: &[usize]) -> Vec<f64> {
    let rate = |r: &RankStats, t: usize| {
        (r.evaluations > 0 && r.eval_seconds > 0.0).then(|| r.evaluations as f64 / (r.eval_seconds * t as f64))
    };
    let rates: Vec<Option<f64>> = ranks.iter().zip(threads).map(|(r, &t)| rate(r, t)).collect();
    let known: Vec<f64> = rates.iter().flatten().copied().collect();
    if known.len() < ranks.len() {
        return threads.iter().map(|&t| t as f64).collect();
    }
    let mean = known.iter().sum::<f64>() / known.len() as f64;
    rates.iter().zip(threads).map(|(r, &t)| t as f64 * (r.unwrap_or(mean) / mean).clamp(0.05, 20.0)).collect()
}

/// One batch as rank 0 sees it: the points, the shared counter and the output.
struct Batch<'a, 'b> {
    density: &'a dyn LogDensity,
    points: &'a [f64],
    dim: usize,
    nb: usize,
    claims: &'a Claims,
    out: &'a Disjoint<'b>,
}

impl Batch<'_, '_> {
    /// Evaluate the points of `c` here; returns failures.
    fn eval(&self, c: Range<usize>) -> u64 {
        let pts = &self.points[c.start * self.dim..c.end * self.dim];
        // SAFETY: every range passed here is a claim from `claims` (or a piece of
        // one), each handed out once.
        let (lp, bl) = unsafe { self.out.chunk(c) };
        super::eval_block(self.density, pts, lp, bl)
    }
}

/// What rank 0's calling thread did in a batch.
#[derive(Default)]
struct Coordinator {
    evaluations: u64,
    failures: u64,
    eval_seconds: f64,
    comm_seconds: f64,
    /// Chunks taken back from workers' queues.
    taken_back: u64,
}

/// Rank 0's side of one batch, on the calling thread: keep every worker supplied
/// with chunks (two in flight, so that it never waits for rank 0's reply; guided
/// chunk sizes keep the last ones short), receive results and write them by
/// index, and between those messages evaluate rank 0's own claims one point at a
/// time (so a worker's result never waits longer than one evaluation). Rank 0's
/// other threads (if any) claim and evaluate meanwhile. When nothing is left to
/// claim, rank 0 takes back the last chunk waiting in a worker's queue (the one
/// behind the chunk it is working on) if it would finish it sooner than that
/// worker, tells the worker to skip it ([`TAG_CANCEL`]) and evaluates it itself:
/// so the second chunk in flight, which hides rank 0's reply time, never makes
/// rank 0 wait at the end of a batch. Then it waits for the last results as an
/// idle worker does. No thread of rank 0 sleeps on a timer while it has work,
/// and none spins while it has none.
///
/// `weights[r]` is rank r's threads × its measured speed per thread (relative),
/// so a slower rank gets smaller chunks. With `coarse` (a batch too cheap for
/// more than one message per rank) each worker gets one chunk of its share and
/// rank 0 evaluates the rest. `queues` and `next_seq` persist between batches
/// (late replies to chunks taken back arrive in the next batch and are dropped).
#[allow(clippy::too_many_arguments)]
fn coordinate(
    b: &Batch<'_, '_>,
    threads: &[usize],
    weights: &[f64],
    coarse: bool,
    recv: &mut Vec<f64>,
    tally: &mut [Tally],
    queues: &mut [VecDeque<Sent>],
    next_seq: &mut [u64],
) -> Coordinator {
    let total_weight: f64 = weights.iter().sum();
    let world = SimpleCommunicator::world();
    let size = threads.len();
    // Chunks whose results rank 0 still needs (sent, not taken back, not answered).
    let mut waiting = 0usize;
    let mut me = Coordinator::default();
    // Rank 0's coordinating thread, one thread of rank 0: its relative speed.
    let speed0 = weights[0] / threads[0].max(1) as f64;
    mpi::request::scope(|scope| {
        let mut sent = Vec::new();
        // Top up rank r's queue to `depth` open chunks: guided ones, or (`exact`)
        // one chunk of that size.
        let mut refill =
            |r: usize, q: &mut VecDeque<Sent>, seq: &mut u64, waiting: &mut usize, depth: usize, exact: Option<usize>| {
                while q.iter().filter(|c| !c.taken).count() < depth {
                    let claim = match exact {
                        Some(len) => b.claims.claim_exact(len),
                        None => b.claims.claim_weighted(weights[r], threads[r]),
                    };
                    let Some(c) = claim else { break };
                    let buf = &b.points[c.start * b.dim..c.end * b.dim];
                    sent.push(world.process_at_rank(r as Rank).immediate_send_with_tag(scope, buf, TAG_WORK));
                    q.push_back(Sent { seq: *seq, range: c, taken: false });
                    *seq += 1;
                    *waiting += 1;
                }
            };
        let t = Instant::now();
        // First one chunk for every worker, then the second (with few points per
        // worker, the first workers must not take them all).
        for depth in 1..=QUEUE_DEPTH {
            for r in 1..size {
                let exact = coarse.then(|| ((b.claims.len() as f64 * weights[r] / total_weight).round() as usize).max(1));
                if exact.is_none() || depth == 1 {
                    refill(r, &mut queues[r], &mut next_seq[r], &mut waiting, depth, exact);
                }
            }
        }
        me.comm_seconds += t.elapsed().as_secs_f64();
        let any = world.any_process();
        let mut idle = worker_pauses();
        let mut mine: Range<usize> = 0..0;
        loop {
            // Every result that has arrived.
            let t = Instant::now();
            let mut got = false;
            while queues.iter().any(|q| !q.is_empty()) {
                let Some((msg, status)) = any.immediate_matched_probe_with_tag(TAG_RESULT) else { break };
                got = true;
                let r = status.source_rank() as usize;
                let c = queues[r].pop_front().expect("MPI: a result from a rank that was sent no chunk");
                let len = status.count(f64::equivalent_datatype()) as usize;
                recv.resize(len.max(HEAD), 0.0);
                msg.matched_receive_into(&mut recv[..len]);
                assert_eq!(recv[0] as u64, c.seq, "MPI: rank {r} answered chunk {} where {} was expected", recv[0], c.seq);
                let tl = &mut tally[r];
                tl.eval_seconds += recv[2];
                tl.comm_seconds += recv[3];
                if c.taken {
                    continue; // rank 0 evaluated it: the worker skipped it, or its copy is dropped
                }
                let k = c.range.len();
                assert_eq!(len, HEAD + k * (1 + b.nb), "MPI: rank {r} sent a result of the wrong size");
                // SAFETY: `c` came from `claims`, which hands out each range once,
                // and rank 0 never took it back.
                let (lp, bl) = unsafe { b.out.chunk(c.range) };
                lp.copy_from_slice(&recv[HEAD..HEAD + k]);
                bl.copy_from_slice(&recv[HEAD + k..len]);
                waiting -= 1;
                tl.evaluations += k as u64;
                tl.failures += recv[1] as u64;
                tl.thread_seconds += recv[2] * threads[r].min(k) as f64;
                if !coarse {
                    refill(r, &mut queues[r], &mut next_seq[r], &mut waiting, QUEUE_DEPTH, None);
                }
            }
            me.comm_seconds += t.elapsed().as_secs_f64();
            // One point of rank 0's own share, or of a chunk it took back.
            if mine.is_empty() {
                mine = b.claims.claim_one().unwrap_or(0..0);
            }
            if mine.is_empty() && waiting > 0 {
                if let Some((r, i)) = take_back(queues, weights, speed0) {
                    let c = &mut queues[r][i];
                    c.taken = true;
                    waiting -= 1;
                    let t = Instant::now();
                    world.process_at_rank(r as Rank).send_with_tag(&[c.seq as f64][..], TAG_CANCEL);
                    me.comm_seconds += t.elapsed().as_secs_f64();
                    mine = c.range.clone();
                    me.taken_back += 1;
                }
            }
            if !mine.is_empty() {
                let t = Instant::now();
                me.failures += b.eval(mine.start..mine.start + 1);
                me.eval_seconds += t.elapsed().as_secs_f64();
                me.evaluations += 1;
                mine.start += 1;
                continue;
            }
            if waiting == 0 {
                break;
            }
            if got {
                idle.reset();
            }
            idle.pause();
        }
        for q in sent {
            // Delivered, or about to be: every worker has answered the chunks ahead
            // of any that is still unreceived (taken back), and receives it next.
            q.wait();
        }
    });
    me
}

/// The chunk rank 0 should take back, as (rank, index in its queue): of the
/// workers with a chunk waiting behind the one they work on, the one that would
/// finish its queue last, provided rank 0 (one thread, relative speed `speed0`)
/// finishes that chunk before the worker would finish its queue.
fn take_back(queues: &[VecDeque<Sent>], weights: &[f64], speed0: f64) -> Option<(usize, usize)> {
    let mut best: Option<(f64, usize, usize)> = None;
    for (r, q) in queues.iter().enumerate().skip(1) {
        let open: Vec<usize> = (0..q.len()).filter(|&i| !q[i].taken).collect();
        if open.len() < 2 {
            continue; // the only open chunk is (probably) being evaluated
        }
        let last = open[open.len() - 1];
        let queued: usize = open.iter().map(|&i| q[i].range.len()).sum();
        let finish_r = queued as f64 / weights[r].max(1e-12);
        let finish_0 = q[last].range.len() as f64 / speed0.max(1e-12);
        if finish_0 < finish_r && best.is_none_or(|(f, _, _)| finish_r > f) {
            best = Some((finish_r, r, last));
        }
    }
    best.map(|(_, r, i)| (r, i))
}

impl Executor for MpiExecutor {
    fn evaluate(&self, density: &dyn LogDensity, points: &[f64], ln_probs: &mut [f64], blobs: &mut [f64]) -> EvalStats {
        assert!(!self.stopped.load(Ordering::SeqCst), "MpiExecutor::evaluate called after shutdown");
        let n = ln_probs.len();
        if n == 0 {
            return EvalStats::default();
        }
        let (dim, nb) = (points.len() / n, blobs.len() / n);
        self.check_problem(density.dim(), density.n_blobs());
        let mut guard = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut *guard;
        let est = self.local.ns_per_eval();
        let min = dynamic::min_chunk(est);
        if self.size == 1 || (n <= min && !self.static_blocks) {
            let stats = self.evaluate_alone(s, density, points, ln_probs, blobs);
            s.totals += stats;
            let work = n as f64 * self.local.ns_per_eval() * 1e-9;
            self.observe(s, dynamic::BatchSample { points: n, wall: stats.eval_seconds, work, shared: false });
            return stats;
        }

        let t0 = Instant::now();
        let threads = self.threads_by_rank();
        let weights =
            if self.static_blocks { threads.iter().map(|&t| t as f64).collect() } else { speed_weights(&s.ranks, &threads) };
        let total_weight: f64 = weights.iter().sum();
        let claims = Claims::weighted(n, total_weight, min);
        // Cheap batches: one message per worker (as a scatter would), no more.
        let coarse = self.static_blocks || (est > 0.0 && n as f64 * est / total_weight < COARSE_NS);
        let out = Disjoint::new(ln_probs, blobs);
        let batch = Batch { density, points, dim, nb, claims: &claims, out: &out };
        let (helper_ns, helper_fail, helper_evals) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        let mut tally = vec![Tally::default(); self.size];
        // The calling thread coordinates and evaluates; rank 0's other threads
        // only evaluate.
        let me = self.local.in_place_scope(|sc| {
            for _ in 1..threads[0] {
                sc.spawn(|_| {
                    let (mut ns, mut fails, mut evals) = (0u64, 0u64, 0u64);
                    while let Some(c) = batch.claims.claim_one() {
                        let t = Instant::now();
                        evals += c.len() as u64;
                        fails += batch.eval(c);
                        ns += t.elapsed().as_nanos() as u64;
                    }
                    helper_ns.fetch_add(ns, Ordering::Relaxed);
                    helper_fail.fetch_add(fails, Ordering::Relaxed);
                    helper_evals.fetch_add(evals, Ordering::Relaxed);
                });
            }
            coordinate(&batch, &threads, &weights, coarse, &mut s.recv, &mut tally, &mut s.queues, &mut s.next_seq)
        });
        let wall = t0.elapsed().as_secs_f64();

        s.taken_back += me.taken_back;
        let busy0 = helper_ns.into_inner() as f64 * 1e-9 + me.eval_seconds;
        let eval0 = busy0 / threads[0] as f64;
        let comm0 = me.comm_seconds.min(wall - eval0).max(0.0);
        let mut failures = helper_fail.into_inner() + me.failures;
        let mut thread_seconds = busy0;
        let st = &mut s.ranks[0];
        st.evaluations += helper_evals.into_inner() + me.evaluations;
        st.failures += failures;
        st.eval_seconds += eval0;
        st.comm_seconds += comm0;
        st.wait_seconds += (wall - eval0 - comm0).max(0.0);
        for (st, t) in s.ranks.iter_mut().zip(&tally).skip(1) {
            st.evaluations += t.evaluations;
            st.failures += t.failures;
            st.eval_seconds += t.eval_seconds;
            st.comm_seconds += t.comm_seconds;
            st.wait_seconds += (wall - t.eval_seconds - t.comm_seconds).max(0.0);
            failures += t.failures;
            thread_seconds += t.thread_seconds;
        }
        self.local.record_cost(thread_seconds * 1e9 / n as f64);
        let stats =
            EvalStats { failures, eval_seconds: eval0, comm_seconds: comm0, wait_seconds: (wall - eval0 - comm0).max(0.0) };
        s.totals += stats;
        self.observe(s, dynamic::BatchSample { points: n, wall, work: thread_seconds, shared: true });
        stats
    }

    fn info(&self) -> ExecutorInfo {
        ExecutorInfo { ranks: self.size, threads_per_rank: self.threads_by_rank().into_iter().max().unwrap_or(1) }
    }
}

/// What a worker did, returned when rank 0 released it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WorkerReport {
    /// Chunks (pieces of batches) served.
    pub chunks: u64,
    /// Of which skipped: rank 0 took them back before this rank started them.
    pub skipped: u64,
    /// Points evaluated.
    pub evaluations: u64,
    /// Of which failed (−∞).
    pub failures: u64,
    /// Seconds spent evaluating.
    pub eval_seconds: f64,
    /// Seconds spent in MPI calls (receiving points, sending results).
    pub mpi_seconds: f64,
    /// Seconds spent waiting for work (between batches, or with nothing left to claim).
    pub wait_seconds: f64,
}

/// How a worker waits for its next chunk: spin for 300 µs (the next chunk or
/// half-step usually follows within that: sleeping costs ~20 µs of CPU per wake-up
/// on a virtual machine and wakes late), then sleep 20 µs, doubling to 200 µs, so
/// that a rank idle for longer gives its core to whoever needs it.
fn worker_pauses() -> Backoff {
    Backoff::new(Duration::from_micros(300), Duration::from_micros(20), Duration::from_micros(200))
}

/// The loop of every rank but 0: evaluate the chunks rank 0 sends, with `density`
/// (which must be the same problem rank 0 samples) on `local`, until rank 0 calls
/// [`MpiExecutor::shutdown`] (or drops its executor). Holds no sampler state and
/// never touches the chain file. Errors when called on rank 0 or before [`init`].
pub fn run_worker(density: &dyn LogDensity, local: &RayonExecutor) -> Result<WorkerReport> {
    if !mpi::is_initialized() || mpi::is_finalized() {
        return Err(Error::Mpi("MPI is not initialised: call climcal::executor::mpi::init() first".into()));
    }
    let world = SimpleCommunicator::world();
    if world.rank() == 0 {
        return Err(Error::Mpi("run_worker is for ranks other than 0; rank 0 coordinates with an MpiExecutor".into()));
    }
    let root = world.process_at_rank(0);
    let (dim, nb) = (density.dim(), density.n_blobs());
    let mine = [local.threads() as u64, dim as u64, nb as u64];
    root.gather_into(&mine[..]);
    dynamic::fine_timer_slack();

    let mut report = WorkerReport::default();
    let mut pauses = worker_pauses();
    let (mut pts, mut lp, mut bl, mut send) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut last_send = 0.0;
    // Chunks are numbered as rank 0 numbers them: in the order they arrive.
    let mut seq: u64 = 0;
    // Chunks rank 0 took back (numbers not yet reached are kept).
    let mut cancelled: Vec<u64> = Vec::new();
    let take_cancel = |msg: mpi::point_to_point::Message, cancelled: &mut Vec<u64>| {
        let mut c = [0.0f64; 1];
        msg.matched_receive_into(&mut c[..]);
        cancelled.push(c[0] as u64);
    };
    loop {
        let tw = Instant::now();
        let (msg, status) = loop {
            if let Some(m) = root.immediate_matched_probe() {
                break m;
            }
            pauses.pause();
        };
        pauses.reset();
        report.wait_seconds += tw.elapsed().as_secs_f64();
        match status.tag() {
            TAG_STOP => {
                let mut none: [f64; 0] = [];
                msg.matched_receive_into(&mut none[..]);
                break;
            }
            TAG_CANCEL => {
                take_cancel(msg, &mut cancelled); // for a chunk already evaluated: pruned below
                continue;
            }
            TAG_WORK => {}
            t => return Err(Error::Mpi(format!("worker {}: unexpected message (tag {t}) from rank 0", world.rank()))),
        }
        let this = seq;
        seq += 1;
        let len = status.count(f64::equivalent_datatype()) as usize;
        let k = len / dim.max(1);
        let t0 = Instant::now();
        pts.resize(len, 0.0);
        msg.matched_receive_into(&mut pts[..]);
        // Was this chunk taken back while it waited? (Cancels overtake the chunks
        // queued behind this one: this probe matches only them.)
        while let Some((m, _)) = root.immediate_matched_probe_with_tag(TAG_CANCEL) {
            take_cancel(m, &mut cancelled);
        }
        cancelled.retain(|&c| c >= this);
        let skip = cancelled.iter().position(|&c| c == this).map(|i| cancelled.swap_remove(i)).is_some();
        let t1 = Instant::now();
        let (fails, eval_s) = if skip || k == 0 {
            lp.clear();
            bl.clear();
            (0, 0.0)
        } else {
            lp.resize(k, 0.0);
            bl.resize(k * nb, 0.0);
            let f = local.evaluate_local(density, &pts, &mut lp, &mut bl);
            (f, t1.elapsed().as_secs_f64())
        };
        let t2 = Instant::now();
        let recv_s = (t1 - t0).as_secs_f64();
        send.clear();
        send.extend_from_slice(&[this as f64, fails as f64, eval_s, recv_s + last_send]);
        send.extend_from_slice(&lp);
        send.extend_from_slice(&bl);
        root.send_with_tag(&send[..], TAG_RESULT);
        last_send = t2.elapsed().as_secs_f64();
        report.chunks += 1;
        report.skipped += skip as u64;
        report.evaluations += if skip { 0 } else { k as u64 };
        report.failures += fails;
        report.eval_seconds += eval_s;
        report.mpi_seconds += recv_s + last_send;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn singleton_and_own_launcher_pass() {
        check_launcher(0, 1, env(&[])).unwrap();
        check_launcher(2, 4, env(&[("OMPI_COMM_WORLD_SIZE", "4"), ("OMPI_COMM_WORLD_RANK", "2"), ("PMIX_RANK", "2")])).unwrap();
    }

    #[test]
    fn threads_per_rank_default_shares_the_node() {
        assert_eq!(default_threads_per_rank(env(&[]), 8), 8);
        assert_eq!(default_threads_per_rank(env(&[("OMPI_COMM_WORLD_LOCAL_SIZE", "4")]), 8), 2);
        assert_eq!(default_threads_per_rank(env(&[("OMPI_COMM_WORLD_LOCAL_SIZE", "16")]), 8), 1);
        assert_eq!(default_threads_per_rank(env(&[("SLURM_CPUS_PER_TASK", "3"), ("MPI_LOCALNRANKS", "4")]), 8), 3);
        assert_eq!(default_threads_per_rank(env(&[("RAYON_NUM_THREADS", "5"), ("SLURM_CPUS_PER_TASK", "3")]), 8), 5);
    }

    #[test]
    fn foreign_launcher_is_named() {
        // MPICH's hydra started 4 processes; OpenMPI sees each as a singleton.
        let e = check_launcher(0, 1, env(&[("PMI_SIZE", "4"), ("PMI_RANK", "0")])).unwrap_err();
        assert!(e.is_bad_input());
        let m = e.to_string();
        assert!(m.contains("PMI_SIZE=4") && m.contains("sees 1") && m.contains("different MPI"), "{m}");
        let m = check_launcher(0, 1, env(&[("PMI_RANK", "3")])).unwrap_err().to_string();
        assert!(m.contains("PMI_RANK=3") && m.contains("rank 0 of 1"), "{m}");
        let m = check_launcher(0, 1, env(&[("SLURM_STEP_NUM_TASKS", "8")])).unwrap_err().to_string();
        assert!(m.contains("srun"), "{m}");
    }
}
