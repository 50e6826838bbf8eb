//! Cost per evaluation of an RSCM model run by climcal's `RscmRunner`: building the
//! model at new parameters (copy the parsed value tree, write the parameters,
//! deserialize), running it, reading the outputs; next to the built-in two-layer
//! model on the same 351 years (1750–2100), and the RSCM run's cost by number of
//! years and the CarbonCycle's step size. Median of 7 batches.
//!
//! Run: `cargo run --release --features rscm --example bench_rscm`

use std::hint::black_box;
use std::time::Instant;

use climcal::models::rscm::{carbon_cycle_erf_model, ParameterPath, RscmRunner};
use climcal::models::two_layer::{Feedback, Forcing, TwoLayerModel};
use climcal::runner::ModelRunner;
use indexmap::IndexMap;

fn median_us(mut f: impl FnMut(), n: usize) -> f64 {
    let mut v: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[3]
}

fn main() -> climcal::Result<()> {
    let years: Vec<f64> = (1750..=2100).map(f64::from).collect();
    let emissions: Vec<f64> =
        years.iter().map(|y| if *y < 1850.0 { 0.0 } else { 10.0 * ((y - 1850.0) / 170.0).min(1.0) }).collect();
    let text = carbon_cycle_erf_model(&years, &emissions, 40.0, 3.93)?;
    let params: IndexMap<String, ParameterPath> = [("tau", "CarbonCycle", "tau"), ("f2x", "CO2ERF", "erf_2xco2")]
        .iter()
        .map(|(n, c, p)| (n.to_string(), ParameterPath { component: c.to_string(), parameter: p.to_string(), index: None }))
        .collect();
    let outputs = vec![
        ("co2".to_string(), "Atmospheric Concentration|CO2".to_string()),
        ("erf".to_string(), "Effective Radiative Forcing|CO2".to_string()),
    ];
    let r = RscmRunner::new(&text, &params, &outputs)?;
    let theta = [35.0, 3.8];
    let build = median_us(|| drop(black_box(r.build(black_box(&theta)).unwrap())), 200);
    let total = median_us(|| drop(black_box(r.run(black_box(&theta)).unwrap())), 20);
    let mut m = r.build(&theta)?;
    m.run();
    let read = median_us(|| drop(black_box(r.outputs_of(black_box(&m)).unwrap())), 2000);
    let tl = TwoLayerModel::builder(Forcing::constant(3.93, 1750.0, years.len())?).feedback(Feedback::Lambda).build()?;
    let tl_theta = vec![1.2, 8.0, 100.0, 0.6, 1.3][..tl.param_names().len()].to_vec();
    let two_layer = median_us(|| drop(black_box(tl.run(black_box(&tl_theta)).unwrap())), 20_000);
    println!("RSCM CarbonCycle + CO2ERF, 1750-2100 (351 years), per evaluation:");
    println!("  build at new parameters (tree copy + writes + deserialize) {build:9.1} us");
    println!("  run (351 steps)                                            {:9.1} us", total - build - read);
    println!("  read the 2 outputs                                         {read:9.1} us");
    println!(
        "  total (RscmRunner::run)                                    {total:9.1} us  ({:.0} evals/s per core)",
        1e6 / total
    );
    println!(
        "built-in two-layer model, same 351 years, one run            {two_layer:9.2} us  ({:.0}x less than RSCM)",
        total / two_layer
    );
    // Why an RSCM run costs what it does: RSCM 0.5.0 finds the current time in each
    // input's time axis by a linear scan (TimeAxis::index_of) every time a component
    // reads an input, and the CarbonCycle reads its inputs in each of the 4 RK4 stages
    // of each 1/step_size sub-steps of a year: the cost grows with years² / step_size.
    println!("RSCM run cost by length and CarbonCycle step size (RscmRunner::run, median of 7):");
    println!("  {:>6} {:>10} {:>12} {:>14}", "years", "step (yr)", "us per run", "us per year");
    for n_years in [51usize, 101, 171, 351] {
        let y = &years[years.len() - n_years..];
        let e = &emissions[emissions.len() - n_years..];
        let text = carbon_cycle_erf_model(y, e, 40.0, 3.93)?;
        let mut p = params.clone();
        p.insert(
            "h".into(),
            ParameterPath { component: "CarbonCycle".into(), parameter: "solver_options.step_size".into(), index: None },
        );
        let r = RscmRunner::new(&text, &p, &outputs)?;
        for h in [0.1, 1.0] {
            let th = [35.0, 3.8, h];
            let n = if n_years > 200 && h < 0.5 { 10 } else { 40 };
            let us = median_us(|| drop(black_box(r.run(black_box(&th)).unwrap())), n);
            println!("  {n_years:>6} {h:>10.1} {us:>12.1} {:>14.2}", us / n_years as f64);
        }
    }
    Ok(())
}
