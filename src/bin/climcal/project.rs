//! `climcal project CHAIN.h5 --scenario ssp245 [--scenario …] [--draws N] -o projections.h5`:
//! posterior draws (of a chain, or the members of a constrained ensemble) run
//! under scenario forcing; per-draw series to an HDF5 file
//! ([`climcal::storage::projection`]) and the 5/50/95 % of the warming per scenario.
// Without HDF5 the command only reports that it needs it.
#![cfg_attr(not(feature = "hdf5"), allow(dead_code))]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use climcal::config::RunConfig;
use climcal::error::{Error, Result};
use climcal::projection::scenario::{Join, Scenario, ScenarioSource};
use climcal::projection::Projector;

/// Draws per batch (and per write): 4096 two-layer draws to 2100 are ~35 MB of series.
const DEFAULT_BATCH: usize = 4096;

#[derive(Args)]
pub(crate) struct ProjectArgs {
    /// A chain file (`climcal run`) or an ensemble file holding a constrained
    /// ensemble (`climcal ensemble` with [ensemble.draw]).
    pub(crate) input: PathBuf,
    /// Scenario to run: ssp119, ssp126, ssp245, ssp370 or ssp585 (AR6 SSP ERF,
    /// built in), or NAME=FILE.csv (ERF by component in the same layout). Repeat
    /// for several.
    #[arg(long = "scenario", short = 's', required = true)]
    pub(crate) scenarios: Vec<String>,
    /// Draws to project, thinned evenly from the samples kept after --discard
    /// (default 1000), or `all`.
    #[arg(long, default_value = "1000")]
    pub(crate) draws: String,
    /// Steps to drop as burn-in before drawing (chain files; as `climcal info
    /// --discard`, default 0 as there).
    #[arg(long, default_value_t = 0)]
    pub(crate) discard: u64,
    /// Last year of the projection (default 2100; at most the scenario's last year).
    #[arg(long, default_value_t = 2100)]
    pub(crate) end: i64,
    /// Years over which the difference between the calibration's forcing and the
    /// scenario's at the join fades out (default 10; 0 joins abruptly).
    #[arg(long, default_value_t = Join::DEFAULT_BLEND_YEARS)]
    pub(crate) blend: u32,
    /// Projection file (default: the input's name with .projections.h5).
    #[arg(short, long)]
    pub(crate) output: Option<PathBuf>,
    /// Overwrite an existing projection file.
    #[arg(long)]
    pub(crate) force: bool,
    /// Threads for model evaluation (default: all cores; 1 = serial). The file does not depend on it.
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Draws per batch (default 4096).
    #[arg(long)]
    pub(crate) batch: Option<usize>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress bar or log lines.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// What MPI workers need besides the run file: the scenarios and the join.
#[derive(serde::Serialize, serde::Deserialize)]
struct WorkerSpec {
    scenarios: Vec<ScenarioSource>,
    join: Join,
}

fn load_scenarios(sources: &[ScenarioSource]) -> Result<Vec<Scenario>> {
    let mut out: Vec<Scenario> = Vec::new();
    for s in sources {
        let sc = s.load()?;
        if out.iter().any(|o| o.name == sc.name) {
            return Err(Error::Config(format!("scenario '{}' is given twice", sc.name)));
        }
        out.push(sc);
    }
    Ok(out)
}

/// The projector of a run file (rank 0 and MPI workers alike).
fn build_projector(cfg: &RunConfig, scenarios: Vec<Scenario>, join: Join) -> Result<(Projector, climcal::config::Problem)> {
    let problem = cfg.build_problem()?;
    let post = problem.posterior.as_ref().ok_or_else(|| {
        Error::Unsupported(format!(
            "model '{}' is a plain log-density with no outputs: there is nothing to project",
            problem.model_name
        ))
    })?;
    let p = Projector::new(post.runner().clone(), scenarios, join)
        .map_err(|e| Error::Unsupported(format!("model '{}': {e}", problem.model_name)))?;
    Ok((p, problem))
}

/// MPI ranks other than 0: the density they evaluate for tag `project:SPEC`.
#[cfg(feature = "mpi")]
pub(crate) fn worker_density(cfg: &RunConfig, spec: &str) -> Result<Projector> {
    let spec: WorkerSpec =
        serde_json::from_str(spec).map_err(|e| Error::Mpi(format!("projection spec from rank 0 is not readable: {e}")))?;
    Ok(build_projector(cfg, load_scenarios(&spec.scenarios)?, spec.join)?.0)
}

#[cfg(feature = "hdf5")]
pub(crate) fn cmd_project(a: ProjectArgs) -> Result<ExitCode> {
    use std::io::IsTerminal;
    use std::time::{Duration, Instant};

    use climcal::projection::{quantiles_5_50_95, thin_evenly, BASELINE, LATE_CENTURY};
    use climcal::storage::ensemble::is_ensemble_file;
    use climcal::storage::projection::{ProjectionFile, ProjectionHeader};
    use climcal::storage::read_chain;

    let sources = a.scenarios.iter().map(|s| ScenarioSource::parse(s)).collect::<Result<Vec<_>>>()?;
    let scenarios = load_scenarios(&sources)?;
    let n_wanted = match a.draws.as_str() {
        "all" => None,
        s => match s.parse::<usize>() {
            Ok(n) if n >= 1 => Some(n),
            _ => return Err(Error::Config(format!("--draws must be a positive integer or `all`, got '{s}'"))),
        },
    };
    let batch = a.batch.unwrap_or(DEFAULT_BATCH);
    if batch == 0 {
        return Err(Error::Config("--batch must be >= 1".into()));
    }
    let out = a.output.clone().unwrap_or_else(|| default_output(&a.input));
    if out.exists() && !a.force {
        return Err(Error::ChainFile { path: out, reason: "already exists; use --force to overwrite it".into() });
    }
    if !a.input.exists() {
        return Err(Error::ChainFile { path: a.input.clone(), reason: "no such file".into() });
    }
    let ensemble = is_ensemble_file(&a.input);
    let bad = |reason: String| Error::ChainFile { path: a.input.clone(), reason };
    if ensemble && hdf5_has_no_draw(&a.input) {
        return Err(bad(
            "is an ensemble file without a constrained ensemble; give the run file an [ensemble.draw] section and re-apply the constraints (`climcal ensemble CONFIG -o FILE --resume`)".into(),
        ));
    }
    let (chain, meta) = read_chain(&a.input)?;
    let meta = meta.ok_or_else(|| bad("is an emcee file: it holds no run file to rebuild the model from".into()))?;
    if meta.config_toml.is_empty() {
        return Err(bad("holds no run file (written by the library, not `climcal run`); project it from Python or Rust".into()));
    }
    let cfg = RunConfig::from_toml_str(&meta.config_toml, &meta.config_dir)
        .map_err(|e| bad(format!("its stored run file cannot be used ({e})")))?;
    let join = Join { end_year: a.end as f64, blend_years: a.blend };
    let (projector, problem) = build_projector(&cfg, scenarios, join).map_err(|e| match e {
        Error::Unsupported(m) | Error::Config(m) => bad(format!("cannot be projected: {m}")),
        other => bad(format!("its model cannot be rebuilt from the stored run file: {other}")),
    })?;
    let stored_problem = serde_json::from_str::<serde_json::Value>(&meta.fingerprint)
        .ok()
        .and_then(|v| v.get("problem").and_then(|p| p.as_str()).map(String::from));
    if meta.fingerprint != problem.fingerprint && stored_problem.as_deref() != Some(problem.fingerprint.as_str()) {
        return Err(bad(
            "its model no longer matches what this binary builds from the stored run file (the model, priors or data files changed since the run); its historical years would not be the calibration's".into(),
        ));
    }
    let post = problem.posterior.as_ref().expect("build_projector checked");
    // The kept samples: rows after the burn-in (chains), or the constrained members.
    let (nw, dim) = (chain.n_walkers(), chain.dim());
    let discard_rows =
        if ensemble { 0 } else { super::info::discarded_rows(chain.n_rows(), chain.n_steps(), chain.thin(), a.discard) };
    let kept = (chain.n_rows() - discard_rows) * nw;
    if kept == 0 {
        return Err(bad(format!(
            "has no samples left after discarding {} steps ({discard_rows} of {} rows); use a smaller --discard",
            a.discard,
            chain.n_rows()
        )));
    }
    let idx = thin_evenly(kept, n_wanted);
    let raw = chain.samples_raw();
    let first = discard_rows * nw * dim;
    let mut physical = Vec::with_capacity(idx.len() * dim);
    let mut model_draws = Vec::with_capacity(idx.len() * projector.param_names().len());
    for &k in &idx {
        let theta = &raw[first + k * dim..first + (k + 1) * dim];
        physical.extend_from_slice(theta);
        model_draws.extend(post.model_params(theta));
    }
    let n = idx.len();
    if !ensemble && !a.quiet {
        if let Some(r) = (chain.n_rows() - discard_rows >= 4).then(|| chain.is_converged(discard_rows, 1.1, true)) {
            if !r.converged {
                tracing::warn!(
                    "the chain has not converged after discarding {} steps ({}); the projections inherit it",
                    a.discard,
                    r.reasons.join("; ")
                );
            }
        }
    }
    let spec = WorkerSpec { scenarios: sources.clone(), join };
    let tag = format!("project:{}", serde_json::to_string(&spec).expect("serialisable"));
    let executor = super::make_executor_tagged(a.threads, &cfg, &tag)?;
    let info = executor.info();
    let names: Vec<String> = projector.scenarios().iter().map(|s| s.name.clone()).collect();
    let header = ProjectionHeader {
        source: a.input.display().to_string(),
        source_kind: if ensemble { "constrained_ensemble" } else { "chain" }.into(),
        model: problem.model_name.clone(),
        config_toml: cfg.text.clone(),
        config_dir: cfg.base_dir.display().to_string(),
        discard: if ensemble { 0 } else { a.discard },
        end_year: join.end_year,
        blend_years: join.blend_years,
        n_history: projector.n_history(),
        last_history_year: projector.reports()[0].last_history_year,
        years: projector.years().to_vec(),
        param_names: problem.names.clone(),
        output_names: projector.outputs().to_vec(),
        scenario_names: names.clone(),
        parameters: physical,
        draw_index: idx.iter().map(|&i| i as u64).collect(),
    };
    let file = ProjectionFile::create(&out, &header, a.force)?;
    if !a.quiet {
        tracing::info!(
            "project {} ({}): model '{}', {n} of {kept} draws, {} scenario(s) to {}, {} rank(s) × {} thread(s) → {}",
            a.input.display(),
            header.source_kind,
            problem.model_name,
            names.len(),
            join.end_year,
            info.ranks,
            info.threads_per_rank,
            out.display()
        );
        for (s, r) in projector.scenarios().iter().zip(projector.reports()) {
            tracing::info!(
                "{}: history to {}, scenario from {}; forcing at the join (scales 1): history − scenario in {} = {:+.3} W m-2 (aerosol {:+.3}, natural {:+.3}, other {:+.3}); step {}→{} {:+.3} W m-2 with the {}-year blend, {:+.3} without",
                s.name,
                r.last_history_year,
                r.last_history_year + 1.0,
                r.last_history_year,
                r.offset[0],
                r.offset[1],
                r.offset[2],
                r.offset[3],
                r.last_history_year,
                r.last_history_year + 1.0,
                r.step,
                join.blend_years,
                r.step_unblended
            );
        }
    }
    let total = (n * names.len()) as u64;
    let bar = (!a.quiet && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} projections {msg} [{elapsed_precise} < {eta_precise}]")
                .expect("valid template"),
        );
        b
    });
    let stop = super::stop_flag();
    let t0 = Instant::now();
    let mut last_log = Instant::now();
    let mut done = 0u64;
    let mut failures_all = 0u64;
    let mut eval_seconds = 0.0;
    let mut summary = Vec::new();
    let np = projector.param_names().len();
    let has_t = projector.outputs().iter().any(|o| o == "Surface Temperature");
    for (i, sc) in projector.scenarios().iter().enumerate() {
        let forcing = projector.model(i).forcing().expect("projected models have forcing");
        file.add_scenario(&sc.name, &sc.label, &sc.source, forcing, &projector.reports()[i])?;
        let (mut late, mut y2100, mut failures) = (Vec::with_capacity(n), Vec::with_capacity(n), 0u64);
        for start in (0..n).step_by(batch) {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                drop(file);
                eprintln!("climcal: interrupted; no projection file written (run the command again)");
                return Ok(ExitCode::from(130));
            }
            let end = (start + batch).min(n);
            let p = projector.run(i, &model_draws[start * np..end * np], &*executor);
            file.write_batch(&sc.name, start, &p.values, &p.failed)?;
            failures += p.failed.iter().filter(|f| **f).count() as u64;
            eval_seconds += p.stats.eval_seconds;
            if has_t {
                late.extend(
                    p.change("Surface Temperature", LATE_CENTURY, BASELINE).unwrap_or_else(|_| vec![f64::NAN; end - start]),
                );
                y2100.extend(
                    p.change("Surface Temperature", (2100.0, 2100.0), BASELINE).unwrap_or_else(|_| vec![f64::NAN; end - start]),
                );
            }
            done += (end - start) as u64;
            let rate = done as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            if let Some(b) = &bar {
                b.set_position(done);
                b.set_message(format!("{rate:.0} projections/s, {} failed", failures_all + failures));
            } else if !a.quiet && (last_log.elapsed() >= Duration::from_secs(5) || done == total) {
                last_log = Instant::now();
                tracing::info!("{done}/{total} projections, {rate:.0} projections/s, {} failed", failures_all + failures);
            }
        }
        failures_all += failures;
        let (ql, q21) = (quantiles_5_50_95(&late), quantiles_5_50_95(&y2100));
        file.finish_scenario(&sc.name, failures, &[("warming_2081-2100".into(), ql), ("warming_2100".into(), q21)])?;
        summary.push((sc.name.clone(), sc.label.clone(), failures, ql, q21));
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let path = file.finish()?;
    let dt = t0.elapsed().as_secs_f64();
    if !a.quiet {
        tracing::info!(
            "projected {total} draw-scenarios in {dt:.2} s ({:.0} projections/s, {:.2} s evaluating), {failures_all} failed → {}",
            total as f64 / dt.max(1e-9),
            eval_seconds,
            path.display()
        );
    }
    print_summary(&a, &path, n, &summary, has_t);
    Ok(ExitCode::SUCCESS)
}

type SummaryRow = (String, String, u64, [f64; 3], [f64; 3]);

#[cfg(feature = "hdf5")]
fn print_summary(a: &ProjectArgs, path: &Path, n: usize, rows: &[SummaryRow], has_t: bool) {
    if a.json {
        let q = |v: &[f64; 3]| {
            let f = |x: f64| if x.is_finite() { serde_json::json!(x) } else { serde_json::Value::Null };
            serde_json::json!({"q05": f(v[0]), "q50": f(v[1]), "q95": f(v[2])})
        };
        let j = serde_json::json!({
            "file": path.display().to_string(),
            "draws": n,
            "scenarios": rows.iter().map(|(s, l, f, w, y)| serde_json::json!({
                "name": s, "label": l, "failed": f, "warming_2081_2100": q(w), "warming_2100": q(y)})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&j).expect("serialisable"));
        return;
    }
    println!("{}: {n} draws per scenario", path.display());
    if !has_t {
        println!("(the model has no 'Surface Temperature' output: no warming summary)");
        return;
    }
    let s4 = super::info::sig4;
    println!("surface warming relative to 1850-1900 [K]:");
    println!("{:<20} {:>7}   {:^26}   {:^26}", "", "", "mean 2081-2100", "year 2100");
    println!(
        "{:<20} {:>7}   {:>8} {:>8} {:>8}   {:>8} {:>8} {:>8}",
        "scenario", "failed", "5%", "50%", "95%", "5%", "50%", "95%"
    );
    for (s, l, f, w, y) in rows {
        let name = if s == l { s.clone() } else { format!("{s} ({l})") };
        println!(
            "{name:<20} {f:>7}   {:>8} {:>8} {:>8}   {:>8} {:>8} {:>8}",
            s4(w[0]),
            s4(w[1]),
            s4(w[2]),
            s4(y[0]),
            s4(y[1]),
            s4(y[2])
        );
    }
}

/// True when an ensemble file has no constrained draw (no `mcmc` group).
#[cfg(feature = "hdf5")]
fn hdf5_has_no_draw(path: &Path) -> bool {
    climcal::storage::ensemble::EnsembleFile::open(path)
        .ok()
        .and_then(|f| f.constraints_summary().ok().flatten())
        .is_none_or(|s| s.drawn.is_empty())
}

fn default_output(input: &Path) -> PathBuf {
    let stem = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "chain".into());
    input.with_file_name(format!("{stem}.projections.h5"))
}

#[cfg(not(feature = "hdf5"))]
pub(crate) fn cmd_project(a: ProjectArgs) -> Result<ExitCode> {
    let _ = a;
    Err(Error::Unsupported("climcal project reads and writes HDF5 files: rebuild with --features hdf5".into()))
}
