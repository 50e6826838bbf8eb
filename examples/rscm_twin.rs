//! Writes the RSCM twin experiment of `cluster-examples/rscm-twin/`: the model
//! (RSCM's one-box `CarbonCycle` feeding `CO2ERF`, 1850–2020, CO₂ emissions rising
//! linearly from 0 to 10 GtC/yr) as RSCM serializes it, at the true parameters
//! τ = 40 yr and ERF₂ₓ = 3.93 W m⁻², and observations of the model's CO₂
//! concentration and ERF every 5 years with Gaussian noise (σ = 3 ppm and
//! 0.15 W m⁻², seed 2024). Deterministic: the same files on every machine.
//!
//! Run: `cargo run --release --features rscm --example rscm_twin -- cluster-examples/rscm-twin`

use std::fmt::Write as _;
use std::path::PathBuf;

use climcal::models::rscm::{carbon_cycle_erf_model, ParameterPath, RscmRunner};
use climcal::runner::ModelRunner;
use indexmap::IndexMap;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

pub const TRUE_TAU: f64 = 40.0;
pub const TRUE_F2X: f64 = 3.93;

fn main() -> climcal::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "cluster-examples/rscm-twin".into()));
    std::fs::create_dir_all(&dir)?;
    let years: Vec<f64> = (1850..=2020).map(f64::from).collect();
    let emissions: Vec<f64> = years.iter().map(|y| 10.0 * (y - 1850.0) / 170.0).collect();
    let text = carbon_cycle_erf_model(&years, &emissions, TRUE_TAU, TRUE_F2X)?;
    std::fs::write(dir.join("model.toml"), &text)?;

    let params: IndexMap<String, ParameterPath> = [("tau", "CarbonCycle", "tau"), ("erf_2xco2", "CO2ERF", "erf_2xco2")]
        .iter()
        .map(|(n, c, p)| (n.to_string(), ParameterPath { component: c.to_string(), parameter: p.to_string(), index: None }))
        .collect();
    let outputs = vec![
        ("co2".to_string(), "Atmospheric Concentration|CO2".to_string()),
        ("erf".to_string(), "Effective Radiative Forcing|CO2".to_string()),
    ];
    let out = RscmRunner::new(&text, &params, &outputs)?.run(&[TRUE_TAU, TRUE_F2X])?;
    let (co2, erf) = (out.get("co2").expect("co2"), out.get("erf").expect("erf"));
    let (s_co2, s_erf) = (3.0, 0.15);
    let mut rng = rand_pcg::Pcg64::seed_from_u64(2024);
    let (n_co2, n_erf) = (Normal::new(0.0, s_co2).expect("sigma > 0"), Normal::new(0.0, s_erf).expect("sigma > 0"));
    let mut csv = String::new();
    writeln!(csv, "# synthetic: RSCM CarbonCycle + CO2ERF at tau = {TRUE_TAU} yr, erf_2xco2 = {TRUE_F2X} W m-2, plus N(0, {s_co2}^2) ppm and N(0, {s_erf}^2) W m-2 noise (examples/rscm_twin.rs, seed 2024)").ok();
    writeln!(csv, "year,co2,co2_sigma,erf,erf_sigma").ok();
    for (i, y) in years.iter().enumerate() {
        if (*y as i64 - 1860) % 5 != 0 || *y < 1860.0 || erf[i].is_nan() {
            continue;
        }
        let (c, f) = (co2[i] + n_co2.sample(&mut rng), erf[i] + n_erf.sample(&mut rng));
        writeln!(csv, "{y},{c:.4},{s_co2},{f:.5},{s_erf}").ok();
    }
    std::fs::write(dir.join("observations.csv"), csv)?;
    println!("wrote {} and {}", dir.join("model.toml").display(), dir.join("observations.csv").display());
    Ok(())
}
