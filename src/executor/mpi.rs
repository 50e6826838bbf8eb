//! MPI execution (feature `mpi`): rank 0 coordinates, every rank evaluates.
//!
//! Rank 0 owns the sampler, the random streams and the chain file, and evaluates
//! batches through an [`MpiExecutor`]. Every other rank runs [`run_worker`], which
//! holds no sampler state: for each batch it
//!
//! 1. receives a small control message (`Bcast` of `[command, n, dim, n_blobs]`),
//! 2. receives its contiguous block of proposals (`Scatterv`, rank 0 included),
//! 3. evaluates the block on its local [`RayonExecutor`] (serial fast path for cheap
//!    models),
//! 4. sends back `ln_prob`s, blobs, its failure count and its evaluation time in one
//!    `Gatherv`.
//!
//! Evaluation is a pure function of each point, so the chain is bitwise identical
//! for any number of ranks and threads. A model that errors, returns NaN or panics
//! gives −∞ for that walker on whatever rank it ran (counted), never a hang.
//!
//! Timing: every batch's wall time on rank 0 is split into evaluating (rank 0's own
//! block), waiting (for the slowest other rank to finish its block) and
//! communicating (the rest: control message, scatter, gather), reported through
//! [`EvalStats`].
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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use mpi::datatype::{Partition, PartitionMut};
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Count;

use super::{EvalStats, Executor, ExecutorInfo, RayonExecutor};
use crate::density::LogDensity;
use crate::error::{Error, Result};

const CMD_STOP: u64 = 0;
const CMD_EVAL: u64 = 1;
/// Values a rank appends to its results: failure count and evaluation seconds.
const TRAILER: usize = 2;

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

/// Contiguous blocks of `n` rows over `size` ranks: `(counts, displacements)` in
/// rows. Blocks differ by at most one row; the larger ones go to the last ranks,
/// leaving rank 0 (which also coordinates) the lighter share.
pub fn block_layout(n: usize, size: usize) -> (Vec<usize>, Vec<usize>) {
    let base = n / size;
    let rem = n % size;
    let counts: Vec<usize> = (0..size).map(|r| base + usize::from(r >= size - rem)).collect();
    let displs = counts
        .iter()
        .scan(0, |acc, &c| {
            let d = *acc;
            *acc += c;
            Some(d)
        })
        .collect();
    (counts, displs)
}

fn to_count(v: usize) -> Count {
    Count::try_from(v).expect("MPI message larger than 2^31 elements; use fewer walkers per batch")
}

/// Cumulative figures of one rank, kept on the coordinator.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RankStats {
    /// Points this rank evaluated.
    pub evaluations: u64,
    /// Of which failed (error, NaN, panic → −∞).
    pub failures: u64,
    /// Seconds this rank spent evaluating.
    pub eval_seconds: f64,
}

/// Buffers reused for every batch (the hot loop allocates only when a batch grows).
#[derive(Default)]
struct Scratch {
    counts: Vec<Count>,
    displs: Vec<Count>,
    rcounts: Vec<Count>,
    rdispls: Vec<Count>,
    my_points: Vec<f64>,
    my_lp: Vec<f64>,
    my_blobs: Vec<f64>,
    send: Vec<f64>,
    recv: Vec<f64>,
    ranks: Vec<RankStats>,
    totals: EvalStats,
}

/// The executor of rank 0: scatters each batch over all ranks (itself included),
/// evaluates its own block on its local rayon pool and gathers the results in
/// order. Create it on rank 0 only, after [`init`], while every other rank calls
/// [`run_worker`]; release the workers with [`MpiExecutor::shutdown`] (also done
/// on drop).
///
/// MPI calls are made from the thread that calls [`Executor::evaluate`], one
/// batch at a time (a lock serialises concurrent callers).
pub struct MpiExecutor {
    local: RayonExecutor,
    size: usize,
    /// Threads, dimension and blob count announced by each rank at the handshake.
    announced: Vec<[u64; 3]>,
    scratch: Mutex<Scratch>,
    stopped: AtomicBool,
}

impl MpiExecutor {
    /// Coordinator side of the handshake (collective with [`run_worker`] on the
    /// other ranks): learns each rank's thread count and problem size.
    /// `local` evaluates rank 0's own block. Errors unless called on rank 0 of an
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
        let scratch = Scratch { ranks: vec![RankStats::default(); size], ..Default::default() };
        Ok(Self { local, size, announced, scratch: Mutex::new(scratch), stopped: AtomicBool::new(false) })
    }

    /// Number of ranks (including rank 0).
    pub fn ranks(&self) -> usize {
        self.size
    }

    /// Rayon threads of each rank.
    pub fn threads_by_rank(&self) -> Vec<usize> {
        let mut t: Vec<usize> = self.announced.iter().map(|a| a[0] as usize).collect();
        t[0] = self.local.threads();
        t
    }

    /// Evaluations, failures and evaluation time of each rank so far.
    pub fn rank_stats(&self) -> Vec<RankStats> {
        self.scratch.lock().unwrap_or_else(|e| e.into_inner()).ranks.clone()
    }

    /// Evaluating / communicating / waiting time and failures of every batch so far.
    pub fn totals(&self) -> EvalStats {
        self.scratch.lock().unwrap_or_else(|e| e.into_inner()).totals
    }

    /// Tell the workers to leave [`run_worker`]. Idempotent; called on drop. After
    /// it, [`Executor::evaluate`] panics.
    pub fn shutdown(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) || mpi::is_finalized() {
            return;
        }
        let _guard = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let mut header = [CMD_STOP, 0, 0, 0];
        SimpleCommunicator::world().process_at_rank(0).broadcast_into(&mut header[..]);
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
}

impl Drop for MpiExecutor {
    fn drop(&mut self) {
        self.shutdown();
    }
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
        let world = SimpleCommunicator::world();
        let root = world.process_at_rank(0);
        let size = self.size;

        let t0 = Instant::now();
        let mut header = [CMD_EVAL, n as u64, dim as u64, nb as u64];
        root.broadcast_into(&mut header[..]);

        let (rows, first) = block_layout(n, size);
        s.counts.clear();
        s.displs.clear();
        s.rcounts.clear();
        s.rdispls.clear();
        let mut off = 0;
        for r in 0..size {
            s.counts.push(to_count(rows[r] * dim));
            s.displs.push(to_count(first[r] * dim));
            let c = rows[r] * (1 + nb) + TRAILER;
            s.rcounts.push(to_count(c));
            s.rdispls.push(to_count(off));
            off += c;
        }
        let my = rows[0];
        s.my_points.resize(my * dim, 0.0);
        s.my_lp.resize(my, 0.0);
        s.my_blobs.resize(my * nb, 0.0);
        {
            let part = Partition::new(points, &s.counts[..], &s.displs[..]);
            root.scatter_varcount_into_root(&part, &mut s.my_points[..]);
        }
        let t1 = Instant::now();
        let fails = self.local.evaluate_local(density, &s.my_points, &mut s.my_lp, &mut s.my_blobs);
        let t2 = Instant::now();
        let my_eval = (t2 - t1).as_secs_f64();
        s.send.clear();
        s.send.extend_from_slice(&s.my_lp);
        s.send.extend_from_slice(&s.my_blobs);
        s.send.extend_from_slice(&[fails as f64, my_eval]);
        s.recv.resize(off, 0.0);
        {
            let mut part = PartitionMut::new(&mut s.recv[..], &s.rcounts[..], &s.rdispls[..]);
            root.gather_varcount_into_root(&s.send[..], &mut part);
        }
        let t3 = Instant::now();

        let mut failures = 0u64;
        let mut slowest_other = 0.0f64;
        for r in 0..size {
            let (k, b) = (rows[r], first[r]);
            let base = s.rdispls[r] as usize;
            let block = &s.recv[base..base + k * (1 + nb) + TRAILER];
            ln_probs[b..b + k].copy_from_slice(&block[..k]);
            blobs[b * nb..(b + k) * nb].copy_from_slice(&block[k..k * (1 + nb)]);
            let f = block[k * (1 + nb)] as u64;
            let secs = block[k * (1 + nb) + 1];
            failures += f;
            if r > 0 {
                slowest_other = slowest_other.max(secs);
            }
            let st = &mut s.ranks[r];
            st.evaluations += k as u64;
            st.failures += f;
            st.eval_seconds += secs;
        }
        // Rank 0 waits in the gather for whichever rank finishes last; the rest of
        // the time outside its own evaluation is communication.
        let gather = (t3 - t2).as_secs_f64();
        let wait = (slowest_other - my_eval).clamp(0.0, gather);
        let comm = (t1 - t0).as_secs_f64() + gather - wait;
        let stats = EvalStats { failures, eval_seconds: my_eval, comm_seconds: comm, wait_seconds: wait };
        s.totals += stats;
        stats
    }

    fn info(&self) -> ExecutorInfo {
        ExecutorInfo { ranks: self.size, threads_per_rank: self.threads_by_rank().into_iter().max().unwrap_or(1) }
    }
}

/// What a worker did, returned when rank 0 released it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WorkerReport {
    /// Batches (half-steps, initialisations, optimiser batches) served.
    pub batches: u64,
    /// Points evaluated.
    pub evaluations: u64,
    /// Of which failed (−∞).
    pub failures: u64,
    /// Seconds spent evaluating.
    pub eval_seconds: f64,
    /// Seconds spent in MPI calls (communicating and waiting for rank 0).
    pub mpi_seconds: f64,
}

/// The loop of every rank but 0: evaluate the blocks rank 0 sends, with `density`
/// (which must be the same problem rank 0 samples) on `local`, until rank 0 calls
/// [`MpiExecutor::shutdown`] (or drops its executor). Holds no sampler state and
/// never touches the chain file. Errors when called on rank 0 or before [`init`].
pub fn run_worker(density: &dyn LogDensity, local: &RayonExecutor) -> Result<WorkerReport> {
    if !mpi::is_initialized() || mpi::is_finalized() {
        return Err(Error::Mpi("MPI is not initialised: call climcal::executor::mpi::init() first".into()));
    }
    let world = SimpleCommunicator::world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    if rank == 0 {
        return Err(Error::Mpi("run_worker is for ranks other than 0; rank 0 coordinates with an MpiExecutor".into()));
    }
    let root = world.process_at_rank(0);
    let mine = [local.threads() as u64, density.dim() as u64, density.n_blobs() as u64];
    root.gather_into(&mine[..]);

    let mut report = WorkerReport::default();
    let (mut pts, mut lp, mut bl, mut send) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    loop {
        let t0 = Instant::now();
        let mut header = [0u64; 4];
        root.broadcast_into(&mut header[..]);
        if header[0] == CMD_STOP {
            report.mpi_seconds += t0.elapsed().as_secs_f64();
            break;
        }
        let (n, dim, nb) = (header[1] as usize, header[2] as usize, header[3] as usize);
        let (rows, _) = block_layout(n, size);
        let my = rows[rank];
        pts.resize(my * dim, 0.0);
        lp.resize(my, 0.0);
        bl.resize(my * nb, 0.0);
        root.scatter_varcount_into(&mut pts[..]);
        let t1 = Instant::now();
        let fails = local.evaluate_local(density, &pts, &mut lp, &mut bl);
        let t2 = Instant::now();
        let secs = (t2 - t1).as_secs_f64();
        send.clear();
        send.extend_from_slice(&lp);
        send.extend_from_slice(&bl);
        send.extend_from_slice(&[fails as f64, secs]);
        root.gather_varcount_into(&send[..]);
        report.batches += 1;
        report.evaluations += my as u64;
        report.failures += fails;
        report.eval_seconds += secs;
        report.mpi_seconds += (t1 - t0).as_secs_f64() + t2.elapsed().as_secs_f64();
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
    fn blocks_are_contiguous_and_cover_the_batch() {
        for n in 0..40 {
            for size in 1..9 {
                let (c, d) = block_layout(n, size);
                assert_eq!(c.iter().sum::<usize>(), n);
                assert!(c.iter().max().unwrap() - c.iter().min().unwrap() <= 1, "{n} {size} {c:?}");
                for r in 1..size {
                    assert_eq!(d[r], d[r - 1] + c[r - 1]);
                }
                assert!(c[0] <= c[size - 1]);
            }
        }
        assert_eq!(block_layout(10, 4), (vec![2, 2, 3, 3], vec![0, 2, 4, 7]));
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
