//! `climcal info`: the posterior table and diagnostics of a chain file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use climcal::derived::DerivedTable;
use climcal::diagnostics::quantile;
use climcal::error::Result;
use climcal::executor::RankStats;
use climcal::sampler::Chain;
use climcal::storage::read_chain;

#[derive(Args)]
pub(crate) struct InfoArgs {
    /// The chain file.
    pub(crate) file: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Steps to drop as burn-in before the statistics (default 0): the stored rows
    /// of steps 1..=DISCARD (with thin 10, --discard 1000 drops 100 rows), as
    /// `discard` of the Python API.
    #[arg(long, default_value_t = 0)]
    pub(crate) discard: u64,
}

pub(crate) fn cmd_info(a: InfoArgs) -> Result<ExitCode> {
    // `climcal info run.h5 | head` should end quietly when the reader closes the pipe,
    // as other command-line tools do (only here: MPI runs keep their own handling).
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any output; no
    // other thread is writing yet.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    #[cfg(feature = "hdf5")]
    if climcal::storage::ensemble::is_ensemble_file(&a.file) {
        return super::ensemble::cmd_info_ensemble(&a.file, a.json);
    }
    let (chain, meta) = read_chain(&a.file)?;
    let rows = chain.n_rows();
    let discard_steps = a.discard;
    let discard = discarded_rows(rows, chain.n_steps(), chain.thin(), discard_steps);
    let units = meta.as_ref().map(|m| m.units.clone()).unwrap_or_default();
    let kept = rows - discard;
    let acc = chain.acceptance_fraction();
    let acc_mean = chain.mean_acceptance_rate();
    let acc_min = acc.iter().cloned().fold(f64::INFINITY, f64::min);
    let acc_max = acc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let report = (kept >= 4).then(|| chain.is_converged(discard, 1.1, true));
    let converged = report.as_ref().is_some_and(|r| r.converged);
    let reasons = match &report {
        Some(r) => r.reasons.clone(),
        None => vec![format!("only {kept} rows after discarding {discard_steps} steps ({discard} rows); need at least 4")],
    };
    let params = column_stats(&chain, discard, &units);
    // Derived quantities (ECS, TCR, …): the last blob columns, as a chain of their own.
    let derived = match meta.as_ref().and_then(|m| DerivedTable::chain_of(&chain, m).map(|c| (c, m.derived_units.clone()))) {
        Some((dc, du)) => column_stats(&dc, discard, &du),
        None => Vec::new(),
    };
    let rank_times = climcal::storage::read_rank_times(&a.file);
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
            "discard": discard_steps,
            "discard_rows": discard,
            "n_blobs": chain.n_blobs(),
            "parameters": params,
            "derived": derived,
            "acceptance_per_walker": acc,
            "acceptance_mean": acc_mean,
            "acceptance_min": acc_min,
            "acceptance_max": acc_max,
            "failures": chain.failures(),
            "rank_times": rank_times.as_ref().map(|rt| rank_times_json(rt)),
            "converged": converged,
            "reasons": reasons,
        });
        println!("{}", serde_json::to_string_pretty(&j).expect("serialisable"));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} walkers × {} parameters, {} steps, {} rows stored (thin {}), first {} steps ({} rows) discarded{}",
        a.file.display(),
        chain.n_walkers(),
        chain.dim(),
        chain.n_steps(),
        rows,
        chain.thin(),
        discard_steps,
        discard,
        match &meta {
            Some(m) => format!(", model '{}', seed {}", m.model, m.seed),
            None => " (emcee file)".into(),
        }
    );
    // Row labels "name [unit]" (just the name when it has no unit); the column is as
    // wide as the longest, derived quantities included.
    let label = |p: &serde_json::Value| {
        let name = p["name"].as_str().unwrap_or("");
        match p["unit"].as_str().filter(|u| !u.is_empty()) {
            Some(u) => format!("{name} [{u}]"),
            None => name.to_string(),
        }
    };
    let w = params.iter().chain(&derived).map(|p| label(p).chars().count()).max().unwrap_or(0).max(9);
    let header = |first: &str| {
        println!(
            "{:<w$} {:>11} {:>10} {:>11} {:>11} {:>11} {:>7} {:>8} {:>8}",
            first, "mean", "sd", "5%", "50%", "95%", "R-hat", "ESS", "tau"
        )
    };
    let print_rows = |rows: &[serde_json::Value]| {
        for p in rows {
            let f = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "{:<w$} {:>11} {:>10} {:>11} {:>11} {:>11} {:>7.3} {:>8.0} {:>8.1}",
                label(p),
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
    };
    header("parameter");
    print_rows(&params);
    if !derived.is_empty() {
        header("derived");
        print_rows(&derived);
    }
    println!("acceptance: mean {acc_mean:.3} (walkers {acc_min:.3}–{acc_max:.3}); failed evaluations: {}", chain.failures());
    if let Some(m) = &meta {
        let times = climcal::storage::read_eval_times(&a.file)
            .map(|[e, c, w]| format!("; last run: evaluating {e:.3} s, communicating {c:.3} s, waiting {w:.3} s (rank 0)"))
            .unwrap_or_default();
        println!("layout: {} MPI rank(s) × {} thread(s) per rank{times}", m.ranks, m.threads);
        if let Some(rt) = &rank_times {
            print_rank_times(rt);
        }
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

/// The last run's split per MPI rank, as shares of each rank's time in batches.
fn print_rank_times(rt: &[RankStats]) {
    println!("  per rank (last run)  evaluations   evaluating    communicating  waiting");
    for (r, s) in rt.iter().enumerate() {
        let total = (s.eval_seconds + s.comm_seconds + s.wait_seconds).max(1e-300);
        let cell = |v: f64| format!("{v:.3} s {:>3.0} %", 100.0 * v / total);
        println!(
            "  rank {r:<15} {:>11}   {:<13} {:<14} {}",
            s.evaluations,
            cell(s.eval_seconds),
            cell(s.comm_seconds),
            cell(s.wait_seconds)
        );
    }
}

fn rank_times_json(rt: &[RankStats]) -> serde_json::Value {
    rt.iter()
        .enumerate()
        .map(|(r, s)| {
            serde_json::json!({
                "rank": r,
                "evaluations": s.evaluations,
                "failures": s.failures,
                "eval_seconds": s.eval_seconds,
                "comm_seconds": s.comm_seconds,
                "wait_seconds": s.wait_seconds,
            })
        })
        .collect()
}

/// Mean, sd, 5/50/95 %, R-hat, bulk ESS and τ (in steps) of every column of `chain`
/// after `discard` stored rows, as JSON rows named by the chain's names and `units`.
fn column_stats(chain: &Chain, discard: usize, units: &[String]) -> Vec<serde_json::Value> {
    let kept = chain.n_rows() - discard.min(chain.n_rows());
    let flat = chain.flat_samples(discard);
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
    let mut rows = Vec::new();
    for (p, name) in chain.names().iter().enumerate() {
        // Failed derivations are NaN: the statistics are over the finite values.
        let mut col: Vec<f64> = flat.column(p).iter().copied().filter(|v| !v.is_nan()).collect();
        let n = col.len() as f64;
        let mean = col.iter().sum::<f64>() / n;
        let sd = (col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        col.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| if col.is_empty() { f64::NAN } else { quantile(&col, p) };
        rows.push(serde_json::json!({
            "name": name,
            "unit": units.get(p).cloned().unwrap_or_default(),
            "mean": mean,
            "sd": sd,
            "q05": q(0.05),
            "q50": q(0.50),
            "q95": q(0.95),
            "r_hat": r_hat[p],
            "ess_bulk": ess[p],
            "tau": tau[p],
        }));
    }
    rows
}

/// Four significant digits, plain notation for 1e-3 ≤ |x| < 1e5, scientific otherwise.
pub(crate) fn sig4(x: f64) -> String {
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

/// Rows stored at steps `1..=discard_steps`: row `i` of `rows` holds step
/// `last − (rows − 1 − i)·thin`, `last` the last multiple of `thin` up to `n_steps`.
pub(crate) fn discarded_rows(rows: usize, n_steps: u64, thin: usize, discard_steps: u64) -> usize {
    let thin = thin.max(1) as u64;
    let last = n_steps / thin; // the last row's step, in units of thin
    let first = last.saturating_sub(rows.saturating_sub(1) as u64);
    // rows with step/thin in first..=discard_steps/thin
    let upto = discard_steps / thin;
    if upto < first {
        0
    } else {
        ((upto - first + 1) as usize).min(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::{discarded_rows, sig4};

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

    #[test]
    fn discard_counts_steps() {
        // 40 rows of steps 10, 20, ..., 400
        assert_eq!(discarded_rows(40, 400, 10, 0), 0);
        assert_eq!(discarded_rows(40, 400, 10, 9), 0);
        assert_eq!(discarded_rows(40, 400, 10, 100), 10);
        assert_eq!(discarded_rows(40, 400, 10, 105), 10);
        assert_eq!(discarded_rows(40, 400, 10, 10_000), 40);
        // thin 1: steps are rows
        assert_eq!(discarded_rows(3000, 3000, 1, 200), 200);
        // 405 steps with thin 10: rows still end at step 400
        assert_eq!(discarded_rows(40, 405, 10, 100), 10);
    }
}
