//! MPI wiring (feature `mpi`): rank 0 does everything the CLI does without MPI and
//! evaluates through an [`MpiExecutor`]; the other ranks receive the run file from
//! rank 0, build the same problem and serve evaluations until released. Workers
//! never open the chain file.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use climcal::config::RunConfig;
use climcal::error::Result;
use climcal::executor::mpi::{self, MpiExecutor, MpiWorld};
use climcal::executor::{Executor, RayonExecutor};

static ACTIVE: AtomicBool = AtomicBool::new(false);
static SHARED: AtomicBool = AtomicBool::new(false);
static EXECUTOR: Mutex<Option<Arc<MpiExecutor>>> = Mutex::new(None);

/// Initialise MPI (refusing a launcher from another MPI: exit 2).
pub fn start() -> Result<MpiWorld> {
    let w = mpi::init()?;
    ACTIVE.store(true, Ordering::SeqCst);
    Ok(w)
}

pub fn active() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

fn threads_or_default(threads: Option<usize>) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    threads.unwrap_or_else(|| mpi::default_threads_per_rank(|k| std::env::var(k).ok(), cores))
}

/// Rank 0: send the validated run file to the workers, then build the executor.
pub fn coordinator_executor(threads: Option<usize>, cfg: &RunConfig, tag: &str) -> Result<Arc<dyn Executor>> {
    if threads == Some(0) {
        return Err(climcal::Error::InvalidSampler("--threads must be >= 1".into()));
    }
    // First line: what the workers evaluate (see `super::evaluated_density`).
    let payload = format!("{tag}\n{}\n{}", cfg.base_dir.display(), cfg.text);
    mpi::broadcast_text(Some(&payload));
    SHARED.store(true, Ordering::SeqCst);
    let exec = Arc::new(MpiExecutor::new(RayonExecutor::with_threads(threads_or_default(threads))?)?);
    let info = exec.info();
    tracing::info!("MPI: {} ranks, threads per rank {:?}", info.ranks, exec.threads_by_rank());
    let workers: usize = exec.threads_by_rank().iter().sum();
    if let Some(advice) = cfg.file.sampler.n_walkers.and_then(|w| climcal::executor::dynamic::layout_advice(w, workers)) {
        tracing::warn!("{advice}");
    }
    *EXECUTOR.lock().unwrap_or_else(|e| e.into_inner()) = Some(exec.clone());
    Ok(exec)
}

/// Rank 0: where a chain-file sink gets the per-rank evaluating / communicating /
/// waiting figures it stores at each checkpoint (`None` without MPI). Holds the
/// executor weakly, so the sink never keeps the workers from being released.
pub fn rank_times_source() -> Option<climcal::storage::RankTimesSource> {
    let guard = EXECUTOR.lock().unwrap_or_else(|e| e.into_inner());
    let weak = Arc::downgrade(guard.as_ref()?);
    Some(climcal::storage::RankTimesSource(Arc::new(move || weak.upgrade().map(|e| e.rank_stats()).unwrap_or_default())))
}

/// Rank 0, after the run: log the evaluating/communicating/waiting split per rank
/// (the chain file got it at every checkpoint, see [`rank_times_source`]).
pub fn record_times(out: &Path) -> Result<()> {
    let guard = EXECUTOR.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(exec) = guard.as_ref() {
        let by_rank: Vec<String> = exec
            .rank_stats()
            .iter()
            .enumerate()
            .map(|(r, s)| {
                format!(
                    "rank {r}: {} evaluated ({} failed), evaluating {:.3} s, communicating {:.3} s, waiting {:.3} s",
                    s.evaluations, s.failures, s.eval_seconds, s.comm_seconds, s.wait_seconds
                )
            })
            .collect();
        tracing::info!(
            "MPI: {} ranks × {} threads ({}): {}",
            exec.ranks(),
            exec.info().threads_per_rank,
            out.display(),
            by_rank.join("; ")
        );
    }
    Ok(())
}

/// Rank 0, whatever happened: release the workers (with "nothing to do" when
/// the run file was never sent, e.g. after a bad config).
pub fn release_workers() {
    if !active() {
        return;
    }
    if !SHARED.swap(true, Ordering::SeqCst) {
        mpi::broadcast_text(None);
    }
    if let Some(exec) = EXECUTOR.lock().unwrap_or_else(|e| e.into_inner()).take() {
        exec.shutdown();
    }
}

/// Ranks other than 0: build the problem rank 0 sends and serve evaluations.
pub fn worker(rank: usize, threads: Option<usize>) -> ExitCode {
    let Some(payload) = mpi::broadcast_text(None) else {
        return ExitCode::SUCCESS; // rank 0 reports the error
    };
    let (tag, rest) = payload.split_once('\n').unwrap_or(("sample", ""));
    let (dir, text) = rest.split_once('\n').unwrap_or((".", ""));
    let r = RunConfig::from_toml_str(text, dir).and_then(|cfg| {
        let local = RayonExecutor::with_threads(threads_or_default(threads))?;
        if let Some(spec) = tag.strip_prefix("project:") {
            // Projections: the same scenarios and join rank 0 runs.
            let projector = super::project::worker_density(&cfg, spec)?;
            return mpi::run_worker(&projector, &local);
        }
        if tag == "ensemble" {
            // Ensemble members: the same per-member evaluation rank 0 builds.
            let setup = super::ensemble::build(&cfg)?;
            return mpi::run_worker(&*setup.model, &local);
        }
        let problem = cfg.build_problem()?;
        let density = super::evaluated_density(&problem, super::objective_from_tag(tag));
        mpi::run_worker(&*density, &local)
    });
    match r {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("climcal: MPI rank {rank}: error: {e}");
            ExitCode::from(if e.is_bad_input() { 2 } else { 1 })
        }
    }
}
