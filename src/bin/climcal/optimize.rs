//! `climcal optimize` and `--init best`: point estimates of a run file's problem.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use climcal::config::{Init, Problem, RunConfig};
use climcal::error::{Error, Result};
use climcal::executor::Executor;
use climcal::optimizer::Objective;

use super::{local_executor, make_executor_for};

#[derive(Args)]
pub(crate) struct OptimizeArgs {
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
    pub(crate) threads: Option<usize>,
    /// Print only the best fit.
    #[arg(long, short)]
    pub(crate) quiet: bool,
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
pub(crate) fn resolve_best_init(mut problem: Problem, flag: Option<&str>, seed: u64, threads: Option<usize>) -> Result<Problem> {
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

pub(crate) fn cmd_optimize(a: OptimizeArgs) -> Result<ExitCode> {
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
