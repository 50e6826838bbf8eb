//! RSCM 0.5.0's `TwoLayer` component (crate `rscm-two-layer`) measured against
//! climcal's built-in two-layer model at the same parameters, forced by the AR6
//! SSP2-4.5 total ERF (1750–2100).
//!
//! `TwoLayer::solve` 0.5.0 starts every step from `y0 = (0, 0, 0)`, so each year's
//! temperature is the response of a model at rest to one year of forcing. To show
//! that the restart is the whole difference, the example also integrates the same
//! equations with the same scheme as the component (RK4, step 0.1 yr, the forcing at
//! the start of each year held over the year) but carries the state from year to
//! year; that run and climcal's exact integrator (end-of-year convention) agree.
//!
//! Run: `cargo run --release --features rscm-two-layer-bug --example rscm_two_layer_bug`

use std::path::Path;
use std::sync::Arc;

use climcal::models::two_layer::{Feedback, Forcing, TimeConvention, TwoLayerModel, OUTPUT_NAMES};
use climcal::runner::ModelRunner;
use ndarray_h5::Array1;
use rscm_core::model::ModelBuilder;
use rscm_core::timeseries::{TimeAxis, Timeseries};
use rscm_two_layer::{TwoLayer, TwoLayerParameters};

const LAMBDA: f64 = 1.2; // W m-2 K-1
const C: f64 = 8.0; // W yr m-2 K-1
const C_D: f64 = 100.0; // W yr m-2 K-1
const GAMMA: f64 = 0.6; // W m-2 K-1
const EPSILON: f64 = 1.3;

/// The total ERF of the SSP2-4.5 file, 1750..=2100.
fn ssp245() -> climcal::Result<(Vec<f64>, Vec<f64>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-examples/data/ssp_erf/ERF_ssp245_1750-2500.csv");
    let mut rdr =
        csv::Reader::from_path(&path).map_err(|e| climcal::Error::Model(format!("cannot read {}: {e}", path.display())))?;
    let headers = rdr.headers().map_err(|e| climcal::Error::Model(format!("{}: {e}", path.display())))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| climcal::Error::Model(format!("{}: no column '{name}'", path.display())))
    };
    let (iy, it) = (col("year")?, col("total")?);
    let (mut years, mut erf) = (Vec::new(), Vec::new());
    for rec in rdr.records() {
        let rec = rec.map_err(|e| climcal::Error::Model(format!("{}: {e}", path.display())))?;
        let num = |i: usize| {
            rec[i].parse::<f64>().map_err(|e| climcal::Error::Model(format!("{}: '{}': {e}", path.display(), &rec[i])))
        };
        let y = num(iy)?;
        if y <= 2100.0 {
            years.push(y);
            erf.push(num(it)?);
        }
    }
    Ok((years, erf))
}

/// Surface temperature from RSCM 0.5.0's TwoLayer component, on the years' axis.
fn rscm_two_layer(years: &[f64], erf: &[f64]) -> climcal::Result<Vec<f64>> {
    let t = Array1::from(years.to_vec());
    let mut model = ModelBuilder::new()
        .with_time_axis(TimeAxis::from_values(t.clone()))
        .with_component(Arc::new(TwoLayer::from_parameters(TwoLayerParameters {
            lambda0: LAMBDA,
            a: 0.0,
            efficacy: EPSILON,
            eta: GAMMA,
            heat_capacity_surface: C,
            heat_capacity_deep: C_D,
        })))
        .with_exogenous_variable("Effective Radiative Forcing", Timeseries::from_values(Array1::from(erf.to_vec()), t))
        .with_initial_values([("Surface Temperature".to_string(), 0.0)].into_iter().collect())
        .build()
        .map_err(|e| climcal::Error::Model(format!("RSCM TwoLayer model: {e}")))?;
    model.run();
    let ts = model
        .timeseries()
        .get_data("Surface Temperature")
        .and_then(|d| d.as_scalar())
        .ok_or_else(|| climcal::Error::Model("RSCM model has no scalar 'Surface Temperature'".into()))?;
    Ok(ts.values().column(0).to_vec())
}

/// The component's equations and scheme (RK4, h = 0.1 yr, forcing of the year's
/// start), with the state carried from year to year. Index i: state at years[i].
fn rk4_carried(erf: &[f64]) -> Vec<f64> {
    let rhs = |f: f64, y: [f64; 2]| {
        let exchange = GAMMA * (y[0] - y[1]);
        [(f - LAMBDA * y[0] - EPSILON * exchange) / C, exchange / C_D]
    };
    let (h, n_sub) = (0.1, 10);
    let mut y = [0.0, 0.0];
    let mut out = vec![0.0];
    for &f in &erf[..erf.len() - 1] {
        for _ in 0..n_sub {
            let k1 = rhs(f, y);
            let k2 = rhs(f, [y[0] + 0.5 * h * k1[0], y[1] + 0.5 * h * k1[1]]);
            let k3 = rhs(f, [y[0] + 0.5 * h * k2[0], y[1] + 0.5 * h * k2[1]]);
            let k4 = rhs(f, [y[0] + h * k3[0], y[1] + h * k3[1]]);
            for j in 0..2 {
                y[j] += h / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]);
            }
        }
        out.push(y[0]);
    }
    out
}

fn main() -> climcal::Result<()> {
    let (years, erf) = ssp245()?;
    let n = years.len();
    let rscm = rscm_two_layer(&years, &erf)?;
    let carried = rk4_carried(&erf);

    // climcal: forcing erf[i] over calendar year years[i]; the end-of-year state of
    // year y is the state at y + 1, RSCM's value at index i + 1.
    let steps: Vec<(f64, f64)> = years.iter().copied().zip(erf.iter().copied()).collect();
    let tl = TwoLayerModel::builder(Forcing::step(&steps, years[0], n)?)
        .feedback(Feedback::Lambda)
        .time_convention(TimeConvention::EndOfYear)
        .build()?;
    let names = tl.param_names();
    let theta: Vec<f64> = names
        .iter()
        .map(|p| match p.as_str() {
            "lambda" => Ok(LAMBDA),
            "C" => Ok(C),
            "C_d" => Ok(C_D),
            "gamma" => Ok(GAMMA),
            "epsilon" => Ok(EPSILON),
            other => Err(climcal::Error::Model(format!("unexpected two-layer parameter '{other}'"))),
        })
        .collect::<climcal::Result<_>>()?;
    let out = tl.run(&theta)?;
    let temp = out
        .get(OUTPUT_NAMES[0])
        .ok_or_else(|| climcal::Error::Model(format!("two-layer model has no '{}' output", OUTPUT_NAMES[0])))?;
    let climcal_at = |year: f64| {
        let i = years.iter().position(|y| *y == year - 1.0).expect("year on the axis");
        temp[i]
    };

    println!(
        "two-layer model, SSP2-4.5 total ERF 1750-2100, lambda {LAMBDA}, C {C}, C_d {C_D}, gamma {GAMMA}, epsilon {EPSILON}"
    );
    println!("surface temperature (K) at 1 January of the year:");
    println!(
        "{:>6} {:>9} {:>18} {:>22} {:>16}",
        "year", "ERF(y-1)", "RSCM 0.5.0 TwoLayer", "same RK4, state kept", "climcal exact"
    );
    for year in [1850.0, 1900.0, 1950.0, 2000.0, 2020.0, 2050.0, 2100.0] {
        let i = years.iter().position(|y| *y == year).expect("year on the axis");
        println!("{year:>6} {:>9.3} {:>18.4} {:>22.4} {:>16.4}", erf[i - 1], rscm[i], carried[i], climcal_at(year));
    }
    let i = n - 1;
    let max_rk4_vs_exact = (1..n).map(|i| (carried[i] - climcal_at(years[i])).abs()).fold(0.0, f64::max);
    // A model at rest forced by F for one year: what each RSCM step returns.
    let one_year = rk4_carried(&[erf[i - 1], 0.0])[1];
    println!(
        "2100: RSCM 0.5.0 TwoLayer {:.3} K, climcal {:.3} K ({:.0} % of it); one year of the 2099 ERF from rest: {:.3} K (differs by {:.1e} K)",
        rscm[i],
        climcal_at(2100.0),
        100.0 * rscm[i] / climcal_at(2100.0),
        one_year,
        (rscm[i] - one_year).abs()
    );
    println!("largest |RK4 with state kept - climcal exact| over 1751-2100: {max_rk4_vs_exact:.2e} K");
    Ok(())
}
