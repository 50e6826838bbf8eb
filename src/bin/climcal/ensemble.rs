//! `climcal ensemble CONFIG.toml --members N [--sampling random|lhs|sobol] -o ensemble.h5`:
//! a prior ensemble streamed to an HDF5 file, then the constraints of the run
//! file's `[ensemble]` section (filters, weights, a seeded draw).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use climcal::config::RunConfig;
use climcal::ensemble::model::{EnsembleModel, OutputColumn};
use climcal::ensemble::sampling::Sampling;
use climcal::ensemble::spec::EnsembleSpec;
use climcal::error::{Error, Result};
use climcal::likelihood::GaussianLikelihood;

#[derive(Args)]
pub(crate) struct EnsembleArgs {
    /// The TOML run file (priors, model, target data; constraints in [ensemble]).
    pub(crate) config: PathBuf,
    /// Members (default: [ensemble] members).
    #[arg(long, short = 'n')]
    pub(crate) members: Option<u64>,
    /// How members are drawn from the priors (default: [ensemble] sampling, else random).
    #[arg(long)]
    pub(crate) sampling: Option<Sampling>,
    /// Ensemble file (default: the run file's name with .ensemble.h5).
    #[arg(short, long)]
    pub(crate) output: Option<PathBuf>,
    /// Overwrite an existing ensemble file.
    #[arg(long)]
    pub(crate) force: bool,
    /// Continue the ensemble in the output file (after a kill or Ctrl-C); the run
    /// file, members, sampling and seed must match it. Also re-applies the
    /// constraints of the run file to a finished ensemble. Starts a new file when
    /// there is none.
    #[arg(long)]
    pub(crate) resume: bool,
    /// Seed (default: [ensemble] seed, else [sampler] seed, else drawn and recorded).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Members per batch and per commit (default: [ensemble] batch, else 8192).
    #[arg(long)]
    pub(crate) batch: Option<usize>,
    /// Threads for model evaluation (default: all cores; 1 = serial). The file does not depend on it.
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// No progress bar or log lines.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// Everything an ensemble run needs, built from a run file (rank 0 and MPI workers alike).
#[cfg_attr(not(feature = "hdf5"), allow(dead_code))]
pub(crate) struct EnsembleSetup {
    pub(crate) model: Arc<EnsembleModel>,
    pub(crate) spec: EnsembleSpec,
    pub(crate) priors: Vec<climcal::distribution::PriorSpec>,
    pub(crate) units: Vec<String>,
    pub(crate) fingerprint: String,
}

/// Build the per-member evaluation of a run file.
#[cfg_attr(not(feature = "hdf5"), allow(dead_code))]
pub(crate) fn build(cfg: &RunConfig) -> Result<EnsembleSetup> {
    let problem = cfg.build_problem()?;
    let post = problem.posterior.as_ref().ok_or_else(|| {
        Error::Config(format!(
            "climcal ensemble needs a model that simulates target variables; '{}' is a plain density",
            problem.model_name
        ))
    })?;
    let spec = cfg.file.ensemble.clone().unwrap_or_default();
    let model_outputs = post.runner().output_names();
    let outputs = spec.outputs.iter().map(|(n, o)| OutputColumn::new(n, o, &model_outputs)).collect::<Result<Vec<_>>>()?;
    let derived: Vec<String> = post.runner().derived_quantities().into_iter().map(|d| d.name).collect();
    for o in &outputs {
        if problem.names.contains(&o.name) || derived.contains(&o.name) || o.name.contains(':') || o.name == "loglike" {
            return Err(Error::Config(format!(
                "[ensemble.outputs] {}: the name is taken (a parameter, a derived quantity of the model {derived:?}, `loglike`, or it contains ':'); choose another",
                o.name
            )));
        }
    }
    let lik = Arc::new(GaussianLikelihood::new(cfg.file.likelihood.relative_error)?);
    let model = EnsembleModel::new(problem.names.clone(), post.runner().clone(), lik, post.target(), outputs)?;
    let priors = problem
        .priors
        .iter()
        .zip(&problem.names)
        .map(|(p, n)| p.clone().ok_or_else(|| Error::Config(format!("parameter '{n}' has no prior to draw from"))))
        .collect::<Result<Vec<_>>>()?;
    let fingerprint = serde_json::json!({
        "problem": problem.fingerprint,
        "outputs": format!("{:?}", model.outputs()),
    })
    .to_string();
    Ok(EnsembleSetup { model: Arc::new(model), spec, priors, units: problem.units.clone(), fingerprint })
}

#[cfg(feature = "hdf5")]
pub(crate) fn cmd_ensemble(a: EnsembleArgs) -> Result<ExitCode> {
    use std::io::IsTerminal;
    use std::time::{Duration, Instant};

    use climcal::density::LogDensity;
    use climcal::ensemble::sampling::MemberSampler;
    use climcal::ensemble::{constrain, run_members, ColumnSource, EnsembleOutcome, MemberSink, Plan, DEFAULT_BATCH};
    use climcal::storage::ensemble::{EnsembleFile, EnsembleHeader};

    let cfg = RunConfig::load(&a.config)?;
    let setup = build(&cfg)?;
    let spec = &setup.spec;
    let out = match &a.output {
        Some(p) => p.clone(),
        None => {
            let stem = a.config.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "ensemble".into());
            cfg.resolve(&PathBuf::from(format!("{stem}.ensemble.h5")))
        }
    };
    if a.resume && a.force {
        return Err(Error::Config("--resume and --force exclude each other".into()));
    }
    let model = &setup.model;
    let names = model.param_names();
    let variables = model.variable_names();
    let mut columns: Vec<String> = names.clone();
    columns.push("loglike".into());
    columns.extend(model.column_names());
    let batch = a.batch.or(spec.batch).unwrap_or(DEFAULT_BATCH);
    if batch == 0 {
        return Err(Error::Config("--batch must be >= 1".into()));
    }
    // --resume on a file that is not there (yet) starts it: a job script can always pass it.
    let (existing, seed, n, sampling) = if a.resume && out.exists() {
        let f = EnsembleFile::open(&out)?;
        let h = f.header().clone();
        let seed = a.seed.unwrap_or(h.seed);
        let n = a.members.unwrap_or(h.n_members);
        let sampling = a.sampling.or(spec.sampling).unwrap_or(h.sampling.parse()?);
        let mut diffs = Vec::new();
        if h.fingerprint != setup.fingerprint {
            diffs.push("the model, priors, data or outputs".to_string());
        }
        if seed != h.seed {
            diffs.push(format!("seed ({seed} vs {})", h.seed));
        }
        if n != h.n_members {
            diffs.push(format!("members ({n} vs {})", h.n_members));
        }
        if sampling.as_str() != h.sampling {
            diffs.push(format!("sampling ({} vs {})", sampling.as_str(), h.sampling));
        }
        if !diffs.is_empty() {
            return Err(Error::ChainFile {
                path: out.clone(),
                reason: format!(
                    "holds another ensemble: it differs in {}; resume with the original settings or start a new file",
                    diffs.join(", ")
                ),
            });
        }
        (Some(f), seed, n, sampling)
    } else {
        let n = a
            .members
            .or(spec.members)
            .ok_or_else(|| Error::Config("how many members? give --members N or [ensemble] members = N".into()))?;
        let seed = a.seed.or(spec.seed).unwrap_or_else(|| cfg.seed_or_random());
        let sampling = a.sampling.or(spec.sampling).unwrap_or_default();
        if out.exists() && !a.force {
            return Err(Error::ChainFile {
                path: out.clone(),
                reason: "already exists; use --force to overwrite it, or --resume to continue the ensemble it holds".into(),
            });
        }
        (None, seed, n, sampling)
    };
    let sampler = MemberSampler::new(&setup.priors, sampling, seed, n)?;
    // Check the constraints before any model runs.
    let plan = Plan::new(spec, &columns, &variables, seed)?;
    let executor = super::make_executor_tagged(a.threads, &cfg, "ensemble")?;
    let info = executor.info();
    let mut file = match existing {
        Some(f) => f,
        None => {
            let header = EnsembleHeader {
                n_members: n,
                names: names.clone(),
                units: setup.units.clone(),
                priors: setup.priors.iter().map(|p| serde_json::to_string(p).unwrap_or_default()).collect(),
                variables: variables.clone(),
                output_names: model.outputs().iter().map(|o| o.name.clone()).collect(),
                output_units: model.outputs().iter().map(|o| o.unit.clone()).collect(),
                derived_names: model.derived().iter().map(|d| d.name.clone()).collect(),
                derived_units: model.derived().iter().map(|d| d.unit.clone()).collect(),
                derived_descriptions: model.derived().iter().map(|d| d.description.clone()).collect(),
                sampling: sampling.as_str().into(),
                seed,
                batch: batch as u64,
                model: cfg.file.model.name.clone(),
                config_toml: cfg.text.clone(),
                config_dir: cfg.base_dir.display().to_string(),
                fingerprint: setup.fingerprint.clone(),
            };
            let f = EnsembleFile::create(&out, &header, a.force)?;
            // A new ensemble starts a new run log.
            let _ = std::fs::remove_file(f.log_path());
            f
        }
    };
    let start = file.committed();
    if !a.quiet {
        tracing::info!(
            "ensemble {}: model '{}', {} parameters, {n} members ({}), seed {seed}, batches of {batch}, {} rank(s) × {} thread(s) → {}{}",
            a.config.display(),
            cfg.file.model.name,
            names.len(),
            sampling.as_str(),
            info.ranks,
            info.threads_per_rank,
            out.display(),
            if start > 0 { format!(" (resuming at member {start})") } else { String::new() }
        );
    }
    let bar = (!a.quiet && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(n);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} members {msg} [{elapsed_precise} < {eta_precise}]")
                .expect("valid template"),
        );
        b.set_position(start);
        b
    });
    let mut last_log = Instant::now();
    let t0 = Instant::now();
    let stop = super::stop_flag();
    let (outcome, stats) = run_members(model, &sampler, &*executor, &mut file, batch, Some(&stop), |p| {
        if let Some(b) = &bar {
            b.set_position(p.done);
            b.set_message(format!("{:.0} members/s, {} failed", p.rate, p.failures));
        } else if !a.quiet && (last_log.elapsed() >= Duration::from_secs(5) || p.done == p.total) {
            last_log = Instant::now();
            tracing::info!("{}/{} members, {:.0} members/s, {} failed", p.done, p.total, p.rate, p.failures);
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let dt = t0.elapsed().as_secs_f64();
    let ran = file.committed() - start;
    // Run records go to the log and the sidecar FILE.log, never into the file:
    // the file must not depend on the layout or the machine's speed.
    let record = |event: &str, seconds: f64, extra: serde_json::Value| {
        let mut j = serde_json::json!({
            "event": event,
            "seconds": seconds,
            "ranks": info.ranks,
            "threads_per_rank": info.threads_per_rank,
            "host": hostname(),
            "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
        });
        if let (Some(o), serde_json::Value::Object(x)) = (j.as_object_mut(), extra) {
            o.extend(x);
        }
        append_log(&file.log_path(), &j);
    };
    record(
        if outcome == EnsembleOutcome::Interrupted { "interrupted" } else { "members" },
        dt,
        serde_json::json!({"from": start, "to": file.committed(), "members_per_second": ran as f64 / dt.max(1e-9),
            "eval_seconds": stats.eval_seconds, "failures": file.failures()}),
    );
    if outcome == EnsembleOutcome::Interrupted {
        eprintln!(
            "climcal: interrupted at member {} of {n}; committed to {}; continue with `climcal ensemble {} -o {} --resume`",
            file.committed(),
            out.display(),
            a.config.display(),
            out.display()
        );
        return Ok(ExitCode::from(130));
    }
    if !a.quiet && ran > 0 {
        let cores = (info.ranks * info.threads_per_rank).max(1) as f64;
        tracing::info!(
            "evaluated {ran} members in {dt:.2} s: {:.0} members/s ({:.0} per core), {} failed in all; {:.1} s evaluating",
            ran as f64 / dt,
            ran as f64 / dt / cores,
            file.failures(),
            stats.eval_seconds
        );
    }
    let has_constraints = !spec.filters.is_empty() || !spec.targets.is_empty() || spec.draw.is_some();
    if has_constraints {
        let tc = Instant::now();
        let c = constrain(&plan, &file as &dyn ColumnSource)?;
        file.write_constrained(&plan, &c)?;
        record("constraints", tc.elapsed().as_secs_f64(), serde_json::json!({"n_passed": c.n_passed, "ess": c.ess}));
        if !a.quiet {
            tracing::info!(
                "constraints: {} of {n} members pass the filters; weights: {}; effective sample size {:.1}{}; drew {} members{}",
                c.n_passed,
                match &plan.weighting {
                    climcal::ensemble::Weighting::None => "none".to_string(),
                    climcal::ensemble::Weighting::Histogram { iterations } =>
                        format!("histogram matching ({iterations} passes, {} targets)", plan.targets.len()),
                    climcal::ensemble::Weighting::Likelihood { .. } => "likelihood".to_string(),
                },
                c.ess,
                c.ess_fair.map(|f| format!(" (fair-calibrate's Σmin(w,1): {f})")).unwrap_or_default(),
                c.drawn.len(),
                plan.draw
                    .map(|(_, r, s, _)| format!(" ({} replacement, seed {s})", if r { "with" } else { "without" }))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `climcal info ENSEMBLE.h5`: progress, constraint results, and the 5/50/95 %
/// of every parameter and stored quantity in the prior ensemble (all committed
/// members) and in the constrained draw.
#[cfg(feature = "hdf5")]
pub(crate) fn cmd_info_ensemble(path: &std::path::Path, json: bool) -> Result<ExitCode> {
    use climcal::diagnostics::quantile;
    use climcal::ensemble::ColumnSource;
    use climcal::storage::ensemble::EnsembleFile;

    let f = EnsembleFile::open(path)?;
    let h = f.header().clone();
    let committed = climcal::ensemble::MemberSink::committed(&f) as usize;
    let summary = f.constraints_summary()?;
    let drawn: Vec<u64> = summary.as_ref().map(|s| s.drawn.clone()).unwrap_or_default();
    let stats = |v: &mut Vec<f64>| -> [f64; 3] {
        v.retain(|x| x.is_finite());
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            [f64::NAN; 3]
        } else {
            [quantile(v, 0.05), quantile(v, 0.5), quantile(v, 0.95)]
        }
    };
    let mut rows = Vec::new();
    let mut units: Vec<String> = h.units.clone();
    units.push(String::new());
    units.extend(h.variables.iter().map(|_| String::new()));
    units.extend(h.variables.iter().map(|_| String::new()));
    units.extend(h.output_units.iter().cloned());
    units.extend(h.derived_units.iter().cloned());
    for (k, name) in f.column_names().iter().enumerate() {
        let col = f.column(name)?;
        let mut prior: Vec<f64> = col[..committed].to_vec();
        let mut post: Vec<f64> = drawn.iter().map(|&i| col[i as usize]).collect();
        rows.push((name.clone(), units.get(k).cloned().unwrap_or_default(), stats(&mut prior), stats(&mut post)));
    }
    if json {
        let q = |v: &[f64; 3]| serde_json::json!({"q05": v[0], "q50": v[1], "q95": v[2]});
        let j = serde_json::json!({
            "file": path.display().to_string(),
            "kind": "ensemble",
            "model": h.model,
            "n_members": h.n_members,
            "committed": committed,
            "failures": f.failures(),
            "sampling": h.sampling,
            "seed": h.seed,
            "constraints": summary.as_ref().map(|s| serde_json::json!({
                "method": s.method, "n_passed": s.n_passed, "ess": s.ess,
                "ess_fair": if s.ess_fair.is_finite() { Some(s.ess_fair) } else { None }, "drawn": s.drawn.len()})),
            "quantities": rows.iter().map(|(n, u, p, c)| serde_json::json!({
                "name": n, "unit": u, "prior": q(p), "constrained": if drawn.is_empty() { None } else { Some(q(c)) }})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&j).expect("serialisable"));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: ensemble of {} members ({} committed{}), model '{}', sampling {}, seed {}, {} failed evaluations{}",
        path.display(),
        h.n_members,
        committed,
        if committed as u64 == h.n_members { ", complete" } else { ": resume with `climcal ensemble CONFIG -o FILE --resume`" },
        h.model,
        h.sampling,
        h.seed,
        f.failures(),
        logged_seconds(&f.log_path())
            .map(|t| format!(", {t:.1} s of runs ({})", f.log_path().file_name().unwrap_or_default().to_string_lossy()))
            .unwrap_or_default()
    );
    match &summary {
        Some(s) => println!(
            "constraints: {} members pass the filters; weights: {}; effective sample size {:.1}{}; constrained ensemble: {} members",
            s.n_passed,
            s.method,
            s.ess,
            if s.ess_fair.is_finite() { format!(" (fair-calibrate's Σmin(w,1): {})", s.ess_fair) } else { String::new() },
            s.drawn.len()
        ),
        None => println!("constraints: not applied yet"),
    }
    let labels: Vec<String> =
        rows.iter().map(|(n, u, _, _)| if u.is_empty() { n.clone() } else { format!("{n} [{u}]") }).collect();
    let w = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0).max(9);
    println!(
        "{:<w$} {:>11} {:>11} {:>11}   {:>11} {:>11} {:>11}",
        "quantity", "prior 5%", "50%", "95%", "constr. 5%", "50%", "95%"
    );
    let s4 = super::info::sig4;
    for ((_, _, p, c), l) in rows.iter().zip(&labels) {
        println!(
            "{l:<w$} {:>11} {:>11} {:>11}   {:>11} {:>11} {:>11}",
            s4(p[0]),
            s4(p[1]),
            s4(p[2]),
            s4(c[0]),
            s4(c[1]),
            s4(c[2])
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// This machine's name, for the run log.
#[cfg(feature = "hdf5")]
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

/// Append one JSON line to the sidecar log; a log that cannot be written is a
/// warning, never a failed run.
#[cfg(feature = "hdf5")]
fn append_log(path: &std::path::Path, j: &serde_json::Value) {
    use std::io::Write;
    let r = std::fs::OpenOptions::new().create(true).append(true).open(path).and_then(|mut f| writeln!(f, "{j}"));
    if let Err(e) = r {
        tracing::warn!("cannot append to the run log {}: {e}", path.display());
    }
}

/// Wall seconds of every run in the sidecar log (members and constraint stages).
#[cfg(feature = "hdf5")]
fn logged_seconds(path: &std::path::Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let t = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|j| j.get("seconds").and_then(|s| s.as_f64()))
        .sum();
    Some(t)
}

#[cfg(not(feature = "hdf5"))]
pub(crate) fn cmd_ensemble(a: EnsembleArgs) -> Result<ExitCode> {
    let _ = a;
    Err(Error::Unsupported("climcal ensemble writes HDF5 files: rebuild with --features hdf5".into()))
}
