//! Validation of the two-layer model against CMIP6 abrupt-4xCO2 runs.
//!
//! For MRI-ESM2-0, GFDL-CM4 and CanESM5, calibrate λ, C, C_d, γ, ε to the model's
//! own 150-year global-mean temperature and TOA imbalance (constant forcing F_4x
//! from the AR6 two-layer table) with the ensemble sampler, and compare with the
//! published two-layer fit (AR6 WG1 Ch. 7, Geoffroy et al. 2013 method).
//!
//! Noise model: σ_T and σ_N are fixed, one per series, from the series' own
//! year-to-year variability: the standard deviation of its residuals about a centred
//! 11-year running mean over years 10–144 (skipping the fast initial adjustment),
//! inflated by √(11/10) for the point's own weight in the mean.
//!
//! Run: `cargo run --release --no-default-features --example validate_4xco2`
//! (about 40 s on a loaded 2-core machine). Prints a Markdown table (the one in docs/two-layer.md).
//! With `-- --ar1` the residuals are AR(1) (`Ar1Likelihood`) with ρ_T and ρ_N sampled
//! (uniform priors on [0, 0.99]), the same σ_T and σ_N as marginal scales: the
//! side-by-side table of docs/two-layer.md's "Correlated residuals".

use std::path::{Path, PathBuf};
use std::sync::Arc;

use climcal::models::two_layer::{Feedback, Forcing, TwoLayerModel, TwoLayerParams};
use climcal::prelude::*;

#[path = "coverage/four_x_co2.rs"]
mod four_x_co2;

const MODELS: [&str; 3] = ["MRI-ESM2-0", "GFDL-CM4", "CanESM5"];
const N_YEARS: usize = 150;
const N_WALKERS: usize = 40;
const N_STEPS: u64 = 12000;
const DISCARD: usize = 4000;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-examples/data")
}

/// Published fit: (F_4x, λ, C, C_d, γ, ε).
fn published(name: &str) -> Result<[f64; 6]> {
    let path = data_dir().join("cmip6_twolayer_tuning_params.csv");
    let mut rdr = csv::Reader::from_path(&path).map_err(|e| Error::Data { path: path.clone(), reason: e.to_string() })?;
    let h: Vec<String> =
        rdr.headers().map_err(|e| Error::Data { path: path.clone(), reason: e.to_string() })?.iter().map(String::from).collect();
    for r in rdr.records() {
        let r = r.map_err(|e| Error::Data { path: path.clone(), reason: e.to_string() })?;
        if &r[0] == name {
            let g = |c: &str| r[h.iter().position(|x| x == c).unwrap()].parse::<f64>().unwrap();
            return Ok([g("q4x"), -g("lamg"), g("cmix"), g("cdeep"), g("gamma_2l"), g("eff")]);
        }
    }
    Err(Error::Data { path, reason: format!("no row for {name}") })
}

/// (tas, N) for the first 150 years.
fn abrupt(name: &str) -> Result<(Vec<f64>, Vec<f64>)> {
    let dir = data_dir().join("cmip6_abrupt-4xCO2");
    let path = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|f| f.to_string_lossy().starts_with(&format!("{name}_"))))
        .ok_or_else(|| Error::Data { path: dir.clone(), reason: format!("no file for {name}") })?;
    let mut rdr = csv::Reader::from_path(&path).map_err(|e| Error::Data { path: path.clone(), reason: e.to_string() })?;
    let (mut t, mut n) = (Vec::new(), Vec::new());
    for r in rdr.records().take(N_YEARS) {
        let r = r.map_err(|e| Error::Data { path: path.clone(), reason: e.to_string() })?;
        let g = |i: usize| r[i].parse::<f64>().unwrap();
        t.push(g(1));
        n.push(g(4) - g(3) - g(2)); // N = rsdt − rsut − rlut
    }
    Ok((t, n))
}

/// Year-to-year variability: std of residuals about a centred 11-year running mean.
fn noise(x: &[f64]) -> f64 {
    let w = 5;
    let r: Vec<f64> = (10..x.len() - w).map(|i| x[i] - x[i - w..=i + w].iter().sum::<f64>() / (2 * w + 1) as f64).collect();
    let m = r.iter().sum::<f64>() / r.len() as f64;
    let v = r.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (r.len() - 1) as f64;
    (v * (2 * w + 1) as f64 / (2 * w) as f64).sqrt()
}

fn rms(a: &[f64], b: &[f64]) -> f64 {
    (a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
}

/// Quantile `q` of `v` (sorted in place).
fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    climcal::diagnostics::quantile(v, q)
}

fn fmt_q(v: &mut [f64], digits: usize) -> String {
    let (a, m, b) = (quantile(v, 0.05), quantile(v, 0.5), quantile(v, 0.95));
    format!("{m:.digits$} [{a:.digits$}–{b:.digits$}]")
}

/// Lag-1 autocorrelation of `a − b`.
fn lag1(a: &[f64], b: &[f64]) -> f64 {
    let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let m = r.iter().sum::<f64>() / r.len() as f64;
    let c0: f64 = r.iter().map(|x| (x - m).powi(2)).sum();
    r.windows(2).map(|w| (w[0] - m) * (w[1] - m)).sum::<f64>() / c0
}

fn main() -> Result<()> {
    use climcal::likelihood::ar1::{Ar1Likelihood, Ar1Variable, Setting};
    let ar1 = std::env::args().any(|a| a == "--ar1");
    let mut table = String::from(
        "| model | | λ (W m⁻² K⁻¹) | C | C_d | γ | ε | ECS (K) | RMS T (K) | RMS N (W m⁻²) |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    if ar1 {
        table = table.replace(" |\n|---", " | ρ_T | ρ_N |\n|---|---|---");
    }
    let mut notes = String::new();
    for name in MODELS {
        let pubp = published(name)?;
        let f4x = pubp[0];
        let (tas, n_obs) = abrupt(name)?;
        let (s_t, s_n) = (noise(&tas), noise(&n_obs));
        let times: Vec<f64> = (0..N_YEARS).map(|i| i as f64).collect();
        let target = Target::new()
            .add_variable("Surface Temperature", times.clone(), tas.clone(), vec![s_t; N_YEARS])?
            .add_variable("Net Energy Imbalance", times, n_obs.clone(), vec![s_n; N_YEARS])?;
        let model = TwoLayerModel::builder(Forcing::constant(f4x, 0.0, N_YEARS)?).feedback(Feedback::Lambda).build()?;
        let params = four_x_co2::priors()?;
        let mut center = four_x_co2::CENTER.to_vec();
        let (params, lik): (ParameterSet, Arc<dyn LikelihoodFn>) = if ar1 {
            let v = |p: &str| Ar1Variable { rho: Setting::Param(p.into()), sigma_extra: None };
            center.extend([0.3, 0.3]);
            (
                params.add_with("rho_T", Arc::new(Uniform::new(0.0, 0.99)?), Transform::Logit, "1")?.add_with(
                    "rho_N",
                    Arc::new(Uniform::new(0.0, 0.99)?),
                    Transform::Logit,
                    "1",
                )?,
                Arc::new(Ar1Likelihood::new(
                    0.0,
                    None,
                    vec![("Surface Temperature".into(), v("rho_T")), ("Net Energy Imbalance".into(), v("rho_N"))],
                )?),
            )
        } else {
            (params, Arc::new(GaussianLikelihood::default()))
        };
        let post = Posterior::new(params, target, Arc::new(model.clone()), lik)?;
        let sampler = EnsembleSampler::new(post, 2024).with_n_walkers(N_WALKERS)?;
        // Start in a small ball around the CMIP6 multi-model mean fit (the table's `Mean`
        // row: λ 1.06, C 8.1, C_d 110, γ 0.62, ε 1.34), not the model's own fit: with
        // walkers drawn from these wide priors some strand in far, flat regions.
        let mut state = sampler.initialize(InitMethod::Ball { center, radius: 0.05 })?;
        let chain = sampler.run(&mut state, N_STEPS, &RunOptions::default())?;
        let flat = chain.flat_samples(DISCARD);
        let tau = chain.autocorr_time_quiet(DISCARD);
        let rhat = chain.r_hat(DISCARD);
        // Best point: the highest log-posterior sample (uniform priors: maximum likelihood).
        let lp = chain.ln_probs();
        let (mut best, mut best_lp) = (vec![0.0; chain.dim()], f64::NEG_INFINITY);
        let samples = chain.samples();
        for r in 0..chain.n_rows() {
            for w in 0..chain.n_walkers() {
                if lp[[r, w]] > best_lp {
                    best_lp = lp[[r, w]];
                    best = samples.slice(ndarray::s![r, w, ..]).to_vec();
                }
            }
        }
        let resid = |p: &[f64]| -> Result<(f64, f64)> {
            let out = model.run(&p[..5])?;
            Ok((rms(out.get("Surface Temperature").unwrap(), &tas), rms(out.get("Net Energy Imbalance").unwrap(), &n_obs)))
        };
        let (bt, bn) = resid(&best)?;
        let best_out = model.run(&best[..5])?;
        let (l1_t, l1_n) = (
            lag1(best_out.get("Surface Temperature").unwrap(), &tas),
            lag1(best_out.get("Net Energy Imbalance").unwrap(), &n_obs),
        );
        let (pt, pn) = resid(&pubp[1..])?;
        let col = |i: usize| flat.column(i).to_vec();
        let mut ecs: Vec<f64> = flat.column(0).iter().map(|l| f4x / (2.0 * l)).collect();
        table += &format!(
            "| {name} | posterior | {} | {} | {} | {} | {} | {} | {bt:.3} | {bn:.3} |{}\n",
            fmt_q(&mut col(0), 2),
            fmt_q(&mut col(1), 1),
            fmt_q(&mut col(2), 0),
            fmt_q(&mut col(3), 2),
            fmt_q(&mut col(4), 2),
            fmt_q(&mut ecs, 2),
            if ar1 { format!(" {} | {} |", fmt_q(&mut col(5), 2), fmt_q(&mut col(6), 2)) } else { String::new() },
        );
        let pp = TwoLayerParams { lambda: pubp[1], c: pubp[2], c_d: pubp[3], gamma: pubp[4], epsilon: pubp[5] };
        table += &format!(
            "| | published | {:.2} | {:.1} | {:.0} | {:.2} | {:.2} | {:.2} | {pt:.3} | {pn:.3} |{}\n",
            pubp[1],
            pubp[2],
            pubp[3],
            pubp[4],
            pubp[5],
            pp.ecs(f4x / 2.0),
            if ar1 { " | |" } else { "" }
        );
        notes += &format!(
            "- {name}: F_4x = {f4x:.2} W m⁻², σ_T = {s_t:.3} K, σ_N = {s_n:.3} W m⁻²; best point {:?}; acceptance {:.2}; τ = {:?}; R-hat max {:.3}; ECS change vs published {:+.1} %; lag-1 autocorrelation of the residuals at the best point: T {l1_t:.2}, N {l1_n:.2}\n",
            best.iter().map(|v| (v * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
            chain.mean_acceptance_rate(),
            tau.iter().map(|v| v.round()).collect::<Vec<_>>(),
            rhat.iter().cloned().fold(0.0, f64::max),
            100.0 * (quantile(&mut ecs, 0.5) / pp.ecs(f4x / 2.0) - 1.0),
        );
    }
    println!("{table}");
    println!(
        "{N_WALKERS} walkers × {N_STEPS} steps, first {DISCARD} discarded; uniform priors λ∈[0.1,4], C∈[1,40], C_d∈[10,1000], γ∈[0.05,3], ε∈[0.2,3]{}; likelihood {}.\n",
        if ar1 { ", ρ_T, ρ_N∈[0,0.99]" } else { "" },
        if ar1 { "AR(1), ρ sampled" } else { "independent Gaussian" }
    );
    println!("{notes}");
    Ok(())
}
