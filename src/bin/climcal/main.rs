//! `climcal`: calibrate a model from a TOML run file, continue a run, summarise a
//! chain file.
//!
//! Exit codes: 0 success, 2 bad input (config, data, arguments, existing or
//! mismatched files), 1 run failure, 130 interrupted (Ctrl-C/SIGTERM) after a
//! checkpoint was written (continue with `climcal resume`).

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use climcal::config::{Problem, RunConfig};
use climcal::density::LogDensity;
use climcal::error::{Error, Result};
use climcal::executor::{Executor, RayonExecutor, SerialExecutor};
use climcal::optimizer::Objective;
#[cfg(feature = "mpi")]
use climcal::optimizer::PosteriorObjective;
use climcal::sampler::{Chain, EnsembleSampler, ProgressInfo, RunOptions, RunOutcome, SamplerState};
use climcal::storage::{read_chain, read_resume, ChainMeta, HdfSink};

#[cfg(feature = "mpi")]
mod cluster;
mod ensemble;
mod info;
mod optimize;
mod project;

use ensemble::{cmd_ensemble, EnsembleArgs};
use info::{cmd_info, InfoArgs};
use optimize::{cmd_optimize, resolve_best_init, OptimizeArgs};
use project::{cmd_project, ProjectArgs};

#[derive(Parser)]
#[command(
    name = "climcal",
    version,
    about = "Calibrate reduced-complexity climate models with an affine-invariant ensemble sampler"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a calibration from a TOML run file, writing an HDF5 chain file.
    Run(RunArgs),
    /// Continue a run from its chain file (after a kill, Ctrl-C, or for more steps).
    Resume(ResumeArgs),
    /// Summarise a chain file (climcal's or emcee's): posterior table and diagnostics.
    Info(InfoArgs),
    /// Find the best fit (MAP, or MLE with --mle) of a run file's calibration.
    Optimize(OptimizeArgs),
    /// Draw a prior ensemble, evaluate it (threads, MPI ranks) into an HDF5 file,
    /// then filter, weight and draw a constrained ensemble as [ensemble] says.
    Ensemble(EnsembleArgs),
    /// Run posterior draws (of a chain or a constrained ensemble) under scenario
    /// forcing (AR6 SSPs built in): per-draw series to an HDF5 file, warming by 2100.
    Project(ProjectArgs),
}

#[derive(Args)]
struct CommonRunArgs {
    /// Threads for model evaluation (default: all cores; 1 = serial). The chain
    /// does not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar or log lines.
    #[arg(long, short)]
    quiet: bool,
    /// Stop early once converged: every 50·τ < N and τ changed < 1% since the last
    /// check (emcee's rule, checked every 100 steps).
    #[arg(long)]
    until_converged: bool,
}

#[derive(Args)]
struct RunArgs {
    /// The TOML run file.
    config: PathBuf,
    /// Chain file (default: [output] path, else the run file's name with .h5).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Overwrite an existing chain file.
    #[arg(long)]
    force: bool,
    /// Steps (default: [sampler] n_steps).
    #[arg(long)]
    steps: Option<u64>,
    /// Seed (default: [sampler] seed, else drawn and recorded).
    #[arg(long)]
    seed: Option<u64>,
    /// Where walkers start, overriding [sampler] init: `prior`, `best` (optimise
    /// first with L-BFGS, then a ball of radius 1e-3 around the best fit), or a
    /// best-fit file written by `climcal optimize -o`.
    #[arg(long)]
    init: Option<String>,
    #[command(flatten)]
    common: CommonRunArgs,
}

#[derive(Args)]
struct ResumeArgs {
    /// The chain file to continue.
    file: PathBuf,
    /// Steps to add (default: the steps left of the original run).
    #[arg(long)]
    steps: Option<u64>,
    /// A run file that must match the stored one (everything but [output] and n_steps).
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    common: CommonRunArgs,
}

/// Set on MPI ranks other than 0: they ignore Ctrl-C/SIGTERM (which mpirun
/// forwards to every rank) and serve evaluations until rank 0 has checkpointed
/// and releases them.
static IGNORE_INTERRUPTS: AtomicBool = AtomicBool::new(false);

/// Raised by Ctrl-C / SIGTERM: the sampler finishes its step, checkpoints and stops.
fn stop_flag() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let f = Arc::new(AtomicBool::new(false));
        let g = f.clone();
        let _ = ctrlc::set_handler(move || {
            if IGNORE_INTERRUPTS.load(Ordering::SeqCst) {
                return;
            }
            if g.swap(true, Ordering::SeqCst) {
                eprintln!("climcal: second interrupt, exiting without a checkpoint");
                std::process::exit(130);
            }
            eprintln!("climcal: interrupt: finishing the current step and writing a checkpoint (again to abort)");
        });
        f
    })
    .clone()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Install the Ctrl-C/SIGTERM handler before any work.
    let _ = stop_flag();
    let quiet = match &cli.command {
        Command::Run(a) => a.common.quiet,
        Command::Resume(a) => a.common.quiet,
        Command::Info(_) => true,
        Command::Optimize(a) => a.quiet,
        Command::Ensemble(a) => a.quiet,
        Command::Project(a) => a.quiet,
    };
    init_logging(quiet);
    // Under mpirun/srun: rank 0 runs the command, the other ranks serve evaluations.
    #[cfg(feature = "mpi")]
    let _mpi = match &cli.command {
        Command::Run(_) | Command::Resume(_) | Command::Optimize(_) | Command::Ensemble(_) | Command::Project(_)
            if climcal::executor::mpi::launched_by_mpi() =>
        {
            match cluster::start() {
                Ok(w) => Some(w),
                Err(e) => {
                    eprintln!("climcal: error: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        _ => None,
    };
    #[cfg(feature = "mpi")]
    if let Some(w) = &_mpi {
        if !w.is_coordinator() {
            let threads = match &cli.command {
                Command::Run(a) => a.common.threads,
                Command::Resume(a) => a.common.threads,
                Command::Optimize(a) => a.threads,
                Command::Ensemble(a) => a.threads,
                Command::Project(a) => a.threads,
                Command::Info(_) => None,
            };
            IGNORE_INTERRUPTS.store(true, Ordering::SeqCst);
            return cluster::worker(w.rank(), threads);
        }
    }
    let r = match cli.command {
        Command::Run(a) => cmd_run(a),
        Command::Resume(a) => cmd_resume(a),
        Command::Info(a) => cmd_info(a),
        Command::Optimize(a) => cmd_optimize(a),
        Command::Ensemble(a) => cmd_ensemble(a),
        Command::Project(a) => cmd_project(a),
    };
    #[cfg(feature = "mpi")]
    cluster::release_workers();
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("climcal: error: {e}");
            ExitCode::from(if e.is_bad_input() { 2 } else { 1 })
        }
    }
}

fn init_logging(quiet: bool) {
    let level = if quiet { "warn" } else { "info" };
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("CLIMCAL_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// The executor for `--threads` (None = rayon's global pool, 1 = serial). Under
/// MPI, rank 0 first hands `cfg` to the other ranks, then scatters every batch
/// over all ranks.
fn make_executor(threads: Option<usize>, cfg: &RunConfig) -> Result<Arc<dyn Executor>> {
    make_executor_for(threads, cfg, None)
}

/// As [`make_executor`], telling MPI workers what they evaluate: the sampler's
/// density (`None`) or the optimiser's objective.
pub(crate) fn make_executor_for(
    threads: Option<usize>,
    cfg: &RunConfig,
    objective: Option<Objective>,
) -> Result<Arc<dyn Executor>> {
    make_executor_tagged(threads, cfg, objective_tag(objective))
}

/// As [`make_executor`], telling MPI workers what they evaluate by a tag:
/// `sample`, `max_posterior`, `max_likelihood` ([`objective_tag`]) or `ensemble`.
pub(crate) fn make_executor_tagged(threads: Option<usize>, cfg: &RunConfig, tag: &str) -> Result<Arc<dyn Executor>> {
    #[cfg(feature = "mpi")]
    if cluster::active() {
        return cluster::coordinator_executor(threads, cfg, tag);
    }
    let _ = (cfg, tag);
    local_executor(threads)
}

/// A serial or rayon executor for `--threads` (None = rayon's global pool, 1 = serial), never MPI.
pub(crate) fn local_executor(threads: Option<usize>) -> Result<Arc<dyn Executor>> {
    Ok(match threads {
        Some(0) => return Err(Error::InvalidSampler("--threads must be >= 1".into())),
        Some(1) => Arc::new(SerialExecutor),
        Some(t) => Arc::new(RayonExecutor::with_threads(t)?),
        None => Arc::new(RayonExecutor::global()),
    })
}

fn meta_for(cfg: &RunConfig, problem: &Problem, seed: u64) -> ChainMeta {
    let derived = problem.posterior.as_ref().map(|p| p.derived_quantities()).unwrap_or_default();
    ChainMeta {
        names: problem.names.clone(),
        units: problem.units.clone(),
        priors: problem
            .priors
            .iter()
            .map(|p| p.as_ref().map(|p| serde_json::to_string(p).unwrap_or_default()).unwrap_or_default())
            .collect(),
        transforms: problem
            .transforms
            .iter()
            .map(|t| serde_json::to_value(t).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default())
            .collect(),
        blob_names: problem.blob_names.clone(),
        derived_names: derived.iter().map(|q| q.name.clone()).collect(),
        derived_units: derived.iter().map(|q| q.unit.clone()).collect(),
        derived_descriptions: derived.iter().map(|q| q.description.clone()).collect(),
        config_toml: cfg.text.clone(),
        config_dir: cfg.base_dir.display().to_string(),
        model: problem.model_name.clone(),
        fingerprint: problem.fingerprint.clone(),
        seed,
        thin: cfg.file.sampler.thin,
        ..ChainMeta::for_density(&*problem.density, seed, cfg.file.sampler.thin)
    }
}

fn cmd_run(a: RunArgs) -> Result<ExitCode> {
    let cfg = RunConfig::load(&a.config)?;
    let out = match &a.output {
        Some(p) => p.clone(),
        None => cfg.output_path(),
    };
    if out.is_dir() {
        return Err(Error::ChainFile {
            path: out,
            reason: "is a directory; give a file name for the chain file (e.g. -o DIR/run.h5)".into(),
        });
    }
    if out.exists() && !a.force {
        return Err(Error::ChainFile {
            path: out,
            reason: "already exists; use --force to overwrite it, or `climcal resume` to continue the run it holds".into(),
        });
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
        return Err(Error::ChainFile {
            path: out.clone(),
            reason: format!("directory {} does not exist; create it or choose another -o", dir.display()),
        });
    }
    let problem = cfg.build_problem()?;
    let seed = a.seed.unwrap_or_else(|| cfg.seed_or_random());
    let steps = a.steps.unwrap_or(cfg.file.sampler.n_steps);
    let executor = make_executor(a.common.threads, &cfg)?;
    // Sizes first: nothing is optimised, evaluated or written for a run that cannot fit.
    let opts = RunOptions { stop: Some(stop_flag()), ..cfg.run_options() };
    cfg.sampler(&problem, seed, executor.clone())?.check_run_memory(steps, &opts)?;
    let problem = resolve_best_init(problem, a.init.as_deref(), seed, a.common.threads)?;
    let info = executor.info();
    let sampler = cfg.sampler(&problem, seed, executor)?;
    let mut state = problem.initial_state(&sampler)?;
    let n_blobs = if opts.store_blobs { problem.density.n_blobs() } else { 0 };
    let mut meta = meta_for(&cfg, &problem, seed);
    meta.n_steps_target = steps;
    meta.ranks = info.ranks;
    meta.threads = info.threads_per_rank;
    let mut sink = HdfSink::create(&out, &meta, &state, n_blobs, a.force)?;
    #[cfg(feature = "mpi")]
    if let Some(src) = cluster::rank_times_source() {
        sink.record_rank_times(src);
    }
    tracing::info!(
        "run {}: model '{}', {} parameters, {} walkers, {} steps, seed {seed} → {}",
        a.config.display(),
        problem.model_name,
        problem.names.len(),
        sampler.n_walkers(),
        steps,
        out.display()
    );
    let outcome = drive(&sampler, &mut state, &mut sink, steps, &opts, &a.common, None)?;
    finish(&out, outcome, &state, &sink)
}

fn cmd_resume(a: ResumeArgs) -> Result<ExitCode> {
    let file = &a.file;
    let point = read_resume(file)?;
    let meta = &point.meta;
    if meta.config_toml.is_empty() {
        return Err(Error::ChainFile {
            path: file.clone(),
            reason: "holds no run file (written by the library, not `climcal run`); resume it from Rust or Python".into(),
        });
    }
    let cfg = RunConfig::from_toml_str(&meta.config_toml, &meta.config_dir).map_err(|e| Error::ChainFile {
        path: file.clone(),
        reason: format!("its stored run file cannot be used ({e}); the file is damaged or was edited — start a new run"),
    })?;
    if let Some(p) = &a.config {
        let other = RunConfig::load(p)?;
        let diffs = cfg.resume_differences(&other);
        if !diffs.is_empty() {
            return Err(Error::ChainFile {
                path: file.clone(),
                reason: format!(
                    "its run file differs from {} in: {}; resume with the original settings (drop --config) or start a new run",
                    p.display(),
                    diffs.join(", ")
                ),
            });
        }
    }
    let problem = cfg.build_problem()?;
    if problem.fingerprint != meta.fingerprint {
        return Err(Error::ChainFile {
            path: file.clone(),
            reason: format!(
                "its run no longer matches what this binary builds from the stored run file (differs in: {}); the model, priors or data files changed — start a new run",
                fingerprint_diff(&meta.fingerprint, &problem.fingerprint)
            ),
        });
    }
    let st = &point.state;
    if st.n_walkers != problem.n_walkers || st.dim != problem.names.len() {
        return Err(Error::ChainFile {
            path: file.clone(),
            reason: format!(
                "holds {} walkers × {} parameters but the run file gives {} × {}",
                st.n_walkers,
                st.dim,
                problem.n_walkers,
                problem.names.len()
            ),
        });
    }
    let steps = match a.steps {
        Some(n) => n,
        None => meta.n_steps_target.saturating_sub(st.iteration),
    };
    let executor = make_executor(a.common.threads, &cfg)?;
    let info = executor.info();
    let sampler = cfg.sampler(&problem, meta.seed, executor)?;
    let opts = RunOptions { stop: Some(stop_flag()), ..cfg.run_options() };
    if opts.thin != meta.thin {
        return Err(Error::ChainFile { path: file.clone(), reason: "thin differs from the stored run".into() });
    }
    sampler.check_run_memory(steps, &opts)?;
    let (mut sink, point) = HdfSink::open_resume(file)?;
    #[cfg(feature = "mpi")]
    if let Some(src) = cluster::rank_times_source() {
        sink.record_rank_times(src);
    }
    let mut state = point.state;
    sink.set_run_info(info.ranks, info.threads_per_rank, state.iteration + steps)?;
    if steps == 0 {
        tracing::info!(
            "{}: already at iteration {}; nothing to do (use --steps N to add steps)",
            file.display(),
            state.iteration
        );
        return Ok(ExitCode::SUCCESS);
    }
    tracing::info!("resume {} at iteration {}: {steps} more steps", file.display(), state.iteration);
    let prior_chain = if a.common.until_converged { Some(read_chain(file)?.0) } else { None };
    let outcome = drive(&sampler, &mut state, &mut sink, steps, &opts, &a.common, prior_chain)?;
    finish(file, outcome, &state, &sink)
}

fn fingerprint_diff(a: &str, b: &str) -> String {
    let (Ok(serde_json::Value::Object(x)), Ok(serde_json::Value::Object(y))) =
        (serde_json::from_str::<serde_json::Value>(a), serde_json::from_str::<serde_json::Value>(b))
    else {
        return "its description".into();
    };
    let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| x.get(*k) != y.get(*k)).map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

fn finish(out: &Path, outcome: RunOutcome, state: &SamplerState, sink: &HdfSink) -> Result<ExitCode> {
    #[cfg(feature = "mpi")]
    cluster::record_times(out)?;
    match outcome {
        RunOutcome::Interrupted => {
            eprintln!(
                "climcal: interrupted at iteration {}; checkpoint written to {}; continue with `climcal resume {}`",
                state.iteration,
                out.display(),
                out.display()
            );
            Ok(ExitCode::from(130))
        }
        _ => {
            tracing::info!(
                "done: iteration {}, {} rows in {} ({} failed evaluations, {:.3} s in checkpoints)",
                state.iteration,
                sink.rows(),
                out.display(),
                state.failures,
                sink.checkpoint_seconds()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Run `n_steps` (or until converged), with a progress bar on a terminal or log
/// lines otherwise.
fn drive(
    sampler: &EnsembleSampler<Arc<dyn LogDensity>>,
    state: &mut SamplerState,
    sink: &mut HdfSink,
    n_steps: u64,
    opts: &RunOptions,
    common: &CommonRunArgs,
    prior_chain: Option<Chain>,
) -> Result<RunOutcome> {
    let bar = (!common.quiet && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(n_steps);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} it {msg} [{elapsed_precise} < {eta_precise}]")
                .expect("valid template"),
        );
        b
    });
    let log_lines = !common.quiet && bar.is_none();
    let mut last_log = Instant::now();
    let start_iter = state.iteration;
    let mut done: u64 = 0;
    let mut progress = |p: &ProgressInfo, done_before: u64| {
        let step = done_before + p.step;
        if let Some(b) = &bar {
            b.set_position(step);
            if p.step % 10 == 0 || step == n_steps {
                b.set_message(format!(
                    "acc {:.3} lnp {:.4e} {:.0} evals/s fail {}",
                    p.acceptance, p.mean_ln_prob, p.evals_per_second, p.failures
                ));
            }
        } else if log_lines && (last_log.elapsed() >= Duration::from_secs(5) || step == n_steps) {
            last_log = Instant::now();
            tracing::info!(
                "iteration {} ({step}/{n_steps}): acceptance {:.3}, mean ln p {:.4e}, {:.0} evals/s, {} failures",
                p.iteration,
                p.acceptance,
                p.mean_ln_prob,
                p.evals_per_second,
                p.failures
            );
        }
    };
    let outcome = if !common.until_converged {
        let (_, o) = sampler.run_with_sink(state, n_steps, opts, Some(sink), |p| {
            progress(p, 0);
            ControlFlow::Continue(())
        })?;
        o
    } else {
        // Segments of 100 steps; after each, emcee's convergence rule on the whole chain.
        const CHECK_EVERY: u64 = 100;
        let mut full = prior_chain;
        let mut old_tau: Option<Vec<f64>> = None;
        let mut outcome = RunOutcome::Completed;
        while done < n_steps {
            let seg = CHECK_EVERY.min(n_steps - done);
            let before = done;
            let (chain, o) = sampler.run_with_sink(state, seg, opts, Some(&mut *sink), |p| {
                progress(p, before);
                ControlFlow::Continue(())
            })?;
            done += state.iteration - start_iter - before;
            match &mut full {
                Some(f) => f.extend(&chain),
                None => full = Some(chain),
            }
            if o != RunOutcome::Completed {
                outcome = o;
                break;
            }
            let f = full.as_ref().expect("set above");
            let tau: Vec<f64> = f.autocorr_time_quiet(0).iter().map(|t| t * f.thin() as f64).collect();
            let n = state.iteration as f64;
            let long_enough = tau.iter().all(|t| t.is_finite() && 50.0 * t < n);
            let stable = old_tau.as_ref().is_some_and(|o| o.iter().zip(&tau).all(|(a, b)| ((a - b) / b).abs() < 0.01));
            if long_enough && stable {
                tracing::info!(
                    "converged at iteration {}: max τ = {:.1} steps",
                    state.iteration,
                    tau.iter().cloned().fold(0.0, f64::max)
                );
                outcome = RunOutcome::Stopped;
                break;
            }
            old_tau = Some(tau);
        }
        outcome
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(outcome)
}

/// What MPI workers evaluate, as the first line of the run file rank 0 sends.
pub(crate) fn objective_tag(objective: Option<Objective>) -> &'static str {
    match objective {
        None => "sample",
        Some(Objective::MaxPosterior) => "max_posterior",
        Some(Objective::MaxLikelihood) => "max_likelihood",
    }
}

#[cfg(feature = "mpi")]
pub(crate) fn objective_from_tag(tag: &str) -> Option<Objective> {
    match tag {
        "max_posterior" => Some(Objective::MaxPosterior),
        "max_likelihood" => Some(Objective::MaxLikelihood),
        _ => None,
    }
}

#[cfg(feature = "mpi")]
/// The density a rank evaluates: the sampler's, or the optimiser's objective —
/// the same function [`estimator_for`] optimises (for a calibration posterior,
/// [`PosteriorObjective`]; a plain density model is optimised as it is).
pub(crate) fn evaluated_density(problem: &Problem, objective: Option<Objective>) -> Arc<dyn LogDensity> {
    match (objective, &problem.posterior) {
        (Some(o), Some(p)) => Arc::new(PosteriorObjective::new(p.clone(), o)),
        _ => problem.density.clone(),
    }
}
