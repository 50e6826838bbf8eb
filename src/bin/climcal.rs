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
use climcal::config::{Init, Problem, RunConfig};
use climcal::density::LogDensity;
use climcal::diagnostics::quantile;
use climcal::error::{Error, Result};
use climcal::executor::{Executor, RayonExecutor, SerialExecutor};
use climcal::optimizer::Objective;
#[cfg(feature = "mpi")]
use climcal::optimizer::PosteriorObjective;
use climcal::sampler::{Chain, EnsembleSampler, ProgressInfo, RunOptions, RunOutcome, SamplerState};
use climcal::storage::{read_chain, read_resume, ChainMeta, HdfSink};

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

#[derive(Args)]
struct InfoArgs {
    /// The chain file.
    file: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Stored rows to drop as burn-in before the statistics (default 0).
    #[arg(long, default_value_t = 0)]
    discard: usize,
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
    };
    init_logging(quiet);
    // Under mpirun/srun: rank 0 runs the command, the other ranks serve evaluations.
    #[cfg(feature = "mpi")]
    let _mpi = match &cli.command {
        Command::Run(_) | Command::Resume(_) | Command::Optimize(_) if climcal::executor::mpi::launched_by_mpi() => {
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
fn make_executor_for(threads: Option<usize>, cfg: &RunConfig, objective: Option<Objective>) -> Result<Arc<dyn Executor>> {
    #[cfg(feature = "mpi")]
    if cluster::active() {
        return cluster::coordinator_executor(threads, cfg, objective);
    }
    let _ = (cfg, objective);
    local_executor(threads)
}

/// A serial or rayon executor for `--threads` (None = rayon's global pool, 1 = serial), never MPI.
fn local_executor(threads: Option<usize>) -> Result<Arc<dyn Executor>> {
    Ok(match threads {
        Some(0) => return Err(Error::InvalidSampler("--threads must be >= 1".into())),
        Some(1) => Arc::new(SerialExecutor),
        Some(t) => Arc::new(RayonExecutor::with_threads(t)?),
        None => Arc::new(RayonExecutor::global()),
    })
}

fn meta_for(cfg: &RunConfig, problem: &Problem, seed: u64) -> ChainMeta {
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
    let problem = resolve_best_init(problem, a.init.as_deref(), seed, a.common.threads)?;
    let info = executor.info();
    let sampler = cfg.sampler(&problem, seed, executor)?;
    let mut state = problem.initial_state(&sampler)?;
    let opts = RunOptions { stop: Some(stop_flag()), ..cfg.run_options() };
    let n_blobs = if opts.store_blobs { problem.density.n_blobs() } else { 0 };
    let mut meta = meta_for(&cfg, &problem, seed);
    meta.n_steps_target = steps;
    meta.ranks = info.ranks;
    meta.threads = info.threads_per_rank;
    let mut sink = HdfSink::create(&out, &meta, &state, n_blobs, a.force)?;
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
    let cfg = RunConfig::from_toml_str(&meta.config_toml, &meta.config_dir)?;
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
    let (mut sink, point) = HdfSink::open_resume(file)?;
    let mut state = point.state;
    let opts = RunOptions { stop: Some(stop_flag()), ..cfg.run_options() };
    if opts.thin != point.meta.thin {
        return Err(Error::ChainFile { path: file.clone(), reason: "thin differs from the stored run".into() });
    }
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

fn cmd_info(a: InfoArgs) -> Result<ExitCode> {
    // `climcal info run.h5 | head` should end quietly when the reader closes the pipe,
    // as other command-line tools do (only here: MPI runs keep their own handling).
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any output; no
    // other thread is writing yet.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let (chain, meta) = read_chain(&a.file)?;
    let rows = chain.n_rows();
    let discard = a.discard.min(rows);
    let units = meta.as_ref().map(|m| m.units.clone()).unwrap_or_default();
    let flat = chain.flat_samples(discard);
    let kept = rows - discard;
    let (r_hat, ess, tau) = if kept >= 4 {
        (
            chain.r_hat(discard),
            chain.ess(discard),
            chain.autocorr_time_quiet(discard).iter().map(|t| t * chain.thin() as f64).collect(),
        )
    } else {
        let nan = vec![f64::NAN; chain.dim()];
        (nan.clone(), nan.clone(), nan)
    };
    let acc = chain.acceptance_fraction();
    let acc_mean = chain.mean_acceptance_rate();
    let acc_min = acc.iter().cloned().fold(f64::INFINITY, f64::min);
    let acc_max = acc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let report = (kept >= 4).then(|| chain.is_converged(discard, 1.1, true));
    let converged = report.as_ref().is_some_and(|r| r.converged);
    let reasons = match &report {
        Some(r) => r.reasons.clone(),
        None => vec![format!("only {kept} rows after discarding {discard}; need at least 4")],
    };
    let mut params = Vec::new();
    for (p, name) in chain.names().iter().enumerate() {
        let mut col: Vec<f64> = flat.column(p).iter().copied().collect();
        let n = col.len() as f64;
        let mean = col.iter().sum::<f64>() / n;
        let sd = (col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        col.sort_by(|a, b| a.total_cmp(b));
        params.push(serde_json::json!({
            "name": name,
            "unit": units.get(p).cloned().unwrap_or_default(),
            "mean": mean,
            "sd": sd,
            "q05": quantile(&col, 0.05),
            "q50": quantile(&col, 0.50),
            "q95": quantile(&col, 0.95),
            "r_hat": r_hat[p],
            "ess_bulk": ess[p],
            "tau": tau[p],
        }));
    }
    if a.json {
        let j = serde_json::json!({
            "file": a.file.display().to_string(),
            "climcal_file": meta.is_some(),
            "model": meta.as_ref().map(|m| m.model.clone()),
            "seed": meta.as_ref().map(|m| m.seed),
            "n_walkers": chain.n_walkers(),
            "n_params": chain.dim(),
            "n_rows": rows,
            "n_steps": chain.n_steps(),
            "thin": chain.thin(),
            "discard": discard,
            "n_blobs": chain.n_blobs(),
            "parameters": params,
            "acceptance_per_walker": acc,
            "acceptance_mean": acc_mean,
            "acceptance_min": acc_min,
            "acceptance_max": acc_max,
            "failures": chain.failures(),
            "converged": converged,
            "reasons": reasons,
        });
        println!("{}", serde_json::to_string_pretty(&j).expect("serialisable"));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} walkers × {} parameters, {} steps, {} rows stored (thin {}), {} discarded{}",
        a.file.display(),
        chain.n_walkers(),
        chain.dim(),
        chain.n_steps(),
        rows,
        chain.thin(),
        discard,
        match &meta {
            Some(m) => format!(", model '{}', seed {}", m.model, m.seed),
            None => " (emcee file)".into(),
        }
    );
    // Row labels "name [unit]" (just the name when it has no unit); the column is as
    // wide as the longest.
    let labels: Vec<String> = params
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap_or("");
            match p["unit"].as_str().filter(|u| !u.is_empty()) {
                Some(u) => format!("{name} [{u}]"),
                None => name.to_string(),
            }
        })
        .collect();
    let w = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0).max(9);
    println!(
        "{:<w$} {:>11} {:>10} {:>11} {:>11} {:>11} {:>7} {:>8} {:>8}",
        "parameter", "mean", "sd", "5%", "50%", "95%", "R-hat", "ESS", "tau"
    );
    for (p, name) in params.iter().zip(&labels) {
        let f = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<w$} {:>11} {:>10} {:>11} {:>11} {:>11} {:>7.3} {:>8.0} {:>8.1}",
            name,
            sig4(f("mean")),
            sig4(f("sd")),
            sig4(f("q05")),
            sig4(f("q50")),
            sig4(f("q95")),
            f("r_hat"),
            f("ess_bulk"),
            f("tau")
        );
    }
    println!("acceptance: mean {acc_mean:.3} (walkers {acc_min:.3}–{acc_max:.3}); failed evaluations: {}", chain.failures());
    if let Some(m) = &meta {
        let times = climcal::storage::read_eval_times(&a.file)
            .map(|[e, c, w]| format!("; last run: evaluating {e:.3} s, communicating {c:.3} s, waiting {w:.3} s (rank 0)"))
            .unwrap_or_default();
        println!("layout: {} MPI rank(s) × {} thread(s) per rank{times}", m.ranks, m.threads);
    }
    if converged {
        println!("converged: yes (R-hat < 1.1 and N > 50 τ for every parameter)");
    } else {
        println!("converged: no");
        for r in &reasons {
            println!("  - {r}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// MPI wiring (feature `mpi`): rank 0 does everything the CLI does without MPI and
/// evaluates through an [`MpiExecutor`]; the other ranks receive the run file from
/// rank 0, build the same problem and serve evaluations until released. Workers
/// never open the chain file.
#[cfg(feature = "mpi")]
mod cluster {
    use std::path::Path;
    use std::process::ExitCode;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use climcal::config::RunConfig;
    use climcal::error::Result;
    use climcal::executor::mpi::{self, MpiExecutor, MpiWorld};
    use climcal::executor::{Executor, RayonExecutor};
    use climcal::optimizer::Objective;

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
    pub fn coordinator_executor(
        threads: Option<usize>,
        cfg: &RunConfig,
        objective: Option<Objective>,
    ) -> Result<Arc<dyn Executor>> {
        if threads == Some(0) {
            return Err(climcal::Error::InvalidSampler("--threads must be >= 1".into()));
        }
        // First line: what the workers evaluate (see `super::evaluated_density`).
        let payload = format!("{}\n{}\n{}", super::objective_tag(objective), cfg.base_dir.display(), cfg.text);
        mpi::broadcast_text(Some(&payload));
        SHARED.store(true, Ordering::SeqCst);
        let exec = Arc::new(MpiExecutor::new(RayonExecutor::with_threads(threads_or_default(threads))?)?);
        let info = exec.info();
        tracing::info!("MPI: {} ranks, threads per rank {:?}", info.ranks, exec.threads_by_rank());
        *EXECUTOR.lock().unwrap_or_else(|e| e.into_inner()) = Some(exec.clone());
        Ok(exec)
    }

    /// Rank 0, after the run: store the evaluating/communicating/waiting split.
    pub fn record_times(out: &Path) -> Result<()> {
        let guard = EXECUTOR.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(exec) = guard.as_ref() {
            let t = exec.totals();
            let by_rank: Vec<String> =
                exec.rank_stats().iter().enumerate().map(|(r, s)| format!("{r}:{}/{}", s.failures, s.evaluations)).collect();
            tracing::info!(
                "MPI: {} ranks × {} threads: rank 0 evaluating {:.3} s, communicating {:.3} s, waiting {:.3} s; failed/evaluated by rank {}",
                exec.ranks(),
                exec.info().threads_per_rank,
                t.eval_seconds,
                t.comm_seconds,
                t.wait_seconds,
                by_rank.join(" ")
            );
            climcal::storage::set_eval_times(out, &t)?;
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
        let r = RunConfig::from_toml_str(text, dir).and_then(|cfg| cfg.build_problem()).and_then(|problem| {
            let local = RayonExecutor::with_threads(threads_or_default(threads))?;
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
}

#[derive(Args)]
struct OptimizeArgs {
    /// The TOML run file.
    config: PathBuf,
    /// Write the best fit to this file (`.json` for JSON, else TOML); `climcal run
    /// --init FILE` starts MCMC around it.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Overwrite an existing output file.
    #[arg(long)]
    force: bool,
    /// lbfgs (default), nelder-mead, particle-swarm, random-search[:N].
    #[arg(long, default_value = "lbfgs")]
    method: String,
    /// Restarts from prior draws (default 4).
    #[arg(long, default_value_t = 4)]
    restarts: usize,
    /// Seed (default: [sampler] seed, else drawn and printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Iterations per restart (default: the method's).
    #[arg(long)]
    max_iters: Option<u64>,
    /// Convergence tolerance (default 1e-6; see docs/optimize.md).
    #[arg(long, default_value_t = 1e-6)]
    tolerance: f64,
    /// Maximise the likelihood instead of the posterior.
    #[arg(long)]
    mle: bool,
    /// Threads for model evaluation (default: all cores; 1 = serial).
    #[arg(long)]
    threads: Option<usize>,
    /// Print only the best fit.
    #[arg(long, short)]
    quiet: bool,
    /// Print the best fit as JSON.
    #[arg(long)]
    json: bool,
}

/// A point estimator for a run file's problem: the calibration posterior, or a
/// density model started from its priors or its init ball centre.
fn estimator_for(
    problem: &Problem,
    objective: Objective,
    executor: Arc<dyn Executor>,
) -> Result<climcal::optimizer::PointEstimator> {
    use climcal::optimizer::{ParameterPrior, PointEstimator};
    let est = match &problem.posterior {
        Some(p) => PointEstimator::from_posterior(p.clone(), objective),
        None => {
            if objective == Objective::MaxLikelihood {
                return Err(Error::Config(format!(
                    "--mle needs a model with observations ([target]); model '{}' is a plain density: drop --mle",
                    problem.model_name
                )));
            }
            let est = PointEstimator::new(problem.density.clone());
            match (&problem.params, &problem.init) {
                (Some(params), _) => est.with_start_sampler(Arc::new(ParameterPrior(params.clone()))),
                (None, Init::Ball { center, .. }) => est.with_start_point(center)?,
                _ => {
                    return Err(Error::Config(format!(
                        "model '{}' has no [parameters] priors to draw starting points from; add them or give [sampler] init = {{ method = \"ball\", center = [...] }}",
                        problem.model_name
                    )))
                }
            }
        }
    };
    Ok(est.with_executor(executor))
}

/// Turn `--init` / `init = "best"` into a ball around the best fit. The search runs
/// on this process's threads: under MPI the workers already evaluate the sampler's
/// density, not the optimiser's objective.
fn resolve_best_init(mut problem: Problem, flag: Option<&str>, seed: u64, threads: Option<usize>) -> Result<Problem> {
    let radius = match &problem.init {
        Init::Best { radius, .. } => *radius,
        _ => 1e-3,
    };
    let file = match (flag, &problem.init) {
        (Some("prior"), _) => {
            problem.init = Init::Prior;
            return Ok(problem);
        }
        (Some("best"), _) => None,
        (Some(path), _) => Some(PathBuf::from(path)),
        (None, Init::Best { file, .. }) => file.clone(),
        (None, _) => return Ok(problem),
    };
    let center = match file {
        Some(p) => climcal::optimizer::BestFit::read(&p)?.values_for(&problem.names)?,
        None => {
            use climcal::optimizer::{OptimizeMethod, OptimizeOptions};
            let est = estimator_for(&problem, Objective::MaxPosterior, local_executor(threads)?)?;
            let r = est.optimize(OptimizeMethod::LBFGS, &OptimizeOptions { seed, ..Default::default() })?;
            tracing::info!("best fit ({} evaluations): {:?}", r.n_evals, r.best_params);
            r.best_physical()
        }
    };
    problem.init = Init::Ball { center, radius };
    Ok(problem)
}

fn cmd_optimize(a: OptimizeArgs) -> Result<ExitCode> {
    use climcal::optimizer::{OptimizeMethod, OptimizeOptions};
    if let Some(out) = &a.output {
        if out.exists() && !a.force {
            return Err(Error::Config(format!("{} already exists; use --force to overwrite it", out.display())));
        }
    }
    let cfg = RunConfig::load(&a.config)?;
    let problem = cfg.build_problem()?;
    let method: OptimizeMethod = a.method.parse()?;
    let seed = a.seed.unwrap_or_else(|| cfg.seed_or_random());
    let objective = if a.mle { Objective::MaxLikelihood } else { Objective::MaxPosterior };
    let est = estimator_for(&problem, objective, make_executor_for(a.threads, &cfg, Some(objective))?)?;
    let opts = OptimizeOptions {
        n_restarts: a.restarts,
        max_iters: a.max_iters,
        tolerance: a.tolerance,
        seed,
        keep_samples: false,
        ..Default::default()
    };
    tracing::info!(
        "optimize {}: model '{}', {} parameters, {}, {} restarts, seed {seed}",
        a.config.display(),
        problem.model_name,
        problem.names.len(),
        method.name(),
        a.restarts
    );
    let r = est.optimize(method, &opts)?;
    let fit = r.best_fit();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&fit).map_err(|e| Error::Config(format!("cannot encode the best fit: {e}")))?
        );
    } else if a.quiet {
        for (n, v) in &fit.params {
            println!("{n} = {v:e}");
        }
    } else {
        print!("{}", r.summary());
    }
    if let Some(out) = &a.output {
        fit.write(out)?;
        tracing::info!(
            "best fit written to {}; start MCMC around it with `climcal run {} --init {}`",
            out.display(),
            a.config.display(),
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "mpi")]
/// What MPI workers evaluate, as the first line of the run file rank 0 sends.
fn objective_tag(objective: Option<Objective>) -> &'static str {
    match objective {
        None => "sample",
        Some(Objective::MaxPosterior) => "max_posterior",
        Some(Objective::MaxLikelihood) => "max_likelihood",
    }
}

#[cfg(feature = "mpi")]
fn objective_from_tag(tag: &str) -> Option<Objective> {
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
fn evaluated_density(problem: &Problem, objective: Option<Objective>) -> Arc<dyn LogDensity> {
    match (objective, &problem.posterior) {
        (Some(o), Some(p)) => Arc::new(PosteriorObjective::new(p.clone(), o)),
        _ => problem.density.clone(),
    }
}

/// Four significant digits, plain notation for 1e-3 ≤ |x| < 1e5, scientific otherwise.
fn sig4(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if a == 0.0 {
        "0".to_string()
    } else if (1e-3..1e5).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::sig4;

    #[test]
    fn sig4_keeps_four_significant_digits() {
        assert_eq!(sig4(1.33583), "1.336");
        assert_eq!(sig4(70.129), "70.13");
        assert_eq!(sig4(0.080061), "0.08006");
        assert_eq!(sig4(-1.0824), "-1.082");
        assert_eq!(sig4(12345.6), "12346");
        assert_eq!(sig4(2.5e-5), "2.500e-5");
        assert_eq!(sig4(0.0), "0");
        assert_eq!(sig4(f64::NAN), "NaN");
    }
}
