//! Diagnostics against the reference implementations (emcee 3.1.6, ArviZ 0.23) and
//! ArviZ's own behavioural checks.
//!
//! Reference values: `tests/reference/diagnostics_refs.json`, written by
//! `tests/reference/gen_diagnostics_refs.py` (versions recorded in the file).

use climcal::diagnostics::{ess_bulk, function_1d, integrated_time, rhat, AutocorrError};
use ndarray::{Array1, Array2, Array3, Axis};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64;
use serde_json::Value;

/// Relative agreement demanded of every reference value. The algorithms are the
/// same; what differs is FFT lengths/rounding, summation order and the normal
/// quantile (Boost's erfc⁻¹ in statrs vs Cephes' ndtri in scipy), all ~1e-15
/// relative. 1e-8 leaves room for that but catches any change of definition
/// (window rule, offsets, ddof, split, truncation), which moves values by ≫ 1e-6.
const REL_TOL: f64 = 1e-8;

fn refs() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/diagnostics_refs.json");
    let text = std::fs::read_to_string(path).expect("tests/reference/diagnostics_refs.json is checked in");
    serde_json::from_str(&text).expect("valid JSON")
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
}

/// Asserts agreement and returns the relative difference (printed with `--nocapture`).
fn close(what: &str, got: f64, want: f64) -> f64 {
    if want.is_nan() {
        assert!(got.is_nan(), "{what}: expected NaN, got {got}");
        return 0.0;
    }
    let rel = (got - want).abs() / want.abs().max(1e-300);
    assert!(rel <= REL_TOL, "{what}: got {got}, reference {want}, relative difference {rel:.3e}");
    rel
}

fn case_array(c: &Value) -> Array3<f64> {
    let s: Vec<usize> = c["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    Array3::from_shape_vec((s[0], s[1], s[2]), f64s(&c["x"])).unwrap()
}

#[test]
fn reference_file_records_versions() {
    let r = refs();
    assert!(r["versions"]["emcee"].as_str().unwrap().starts_with("3.1"));
    assert!(r["versions"]["arviz"].as_str().unwrap().starts_with("0.23"));
    assert!(r["cases"].as_array().unwrap().len() >= 10);
}

#[test]
fn normal_quantile_matches_scipy() {
    // statrs' Φ⁻¹ (used for rank normalisation) against scipy.stats.norm.ppf.
    let r = refs();
    let p = f64s(&r["norm_ppf"]["p"]);
    let z = f64s(&r["norm_ppf"]["z"]);
    let n = statrs::distribution::Normal::new(0.0, 1.0).unwrap();
    for (pi, zi) in p.iter().zip(&z) {
        let got = statrs::distribution::ContinuousCDF::inverse_cdf(&n, *pi);
        if *zi == 0.0 {
            assert!(got.abs() < 1e-15, "ppf(0.5) = {got}");
        } else {
            // Tighter than REL_TOL: the quantile itself is accurate to a few ulp.
            let rel = (got - zi).abs() / zi.abs();
            assert!(rel < 1e-13, "ppf({pi}): {got} vs scipy {zi} ({rel:.2e})");
        }
    }
}

#[test]
fn integrated_time_matches_emcee() {
    let r = refs();
    let mut worst = 0.0f64;
    for c in r["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let x = case_array(c);
        let want = f64s(&c["integrated_time"]);
        let raised = c["autocorr_error"].as_bool().unwrap();
        let got = match integrated_time(x.view(), 5.0, 50.0) {
            Ok(t) => {
                assert!(!raised, "{name}: emcee raises AutocorrError, climcal did not");
                t
            }
            Err(AutocorrError { tau, n, .. }) => {
                assert!(raised, "{name}: climcal raised AutocorrError, emcee did not");
                assert_eq!(n, x.len_of(Axis(0)));
                tau
            }
        };
        assert_eq!(got.len(), want.len());
        for (d, (g, w)) in got.iter().zip(&want).enumerate() {
            worst = worst.max(close(&format!("{name} integrated_time[{d}]"), *g, *w));
        }
    }
    println!("integrated_time: largest relative difference from emcee {worst:.2e}");
}

#[test]
fn rhat_and_ess_bulk_match_arviz() {
    let r = refs();
    let (mut worst_r, mut worst_e) = (0.0f64, 0.0f64);
    for c in r["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let x = case_array(c);
        let (rh, es) = (f64s(&c["rhat"]), f64s(&c["ess_bulk"]));
        for d in 0..x.len_of(Axis(2)) {
            // ArviZ layout: (chains, draws) = walkers × steps
            let cd = x.index_axis(Axis(2), d).t().to_owned();
            worst_r = worst_r.max(close(&format!("{name} rhat[{d}]"), rhat(cd.view()), rh[d]));
            worst_e = worst_e.max(close(&format!("{name} ess_bulk[{d}]"), ess_bulk(cd.view()), es[d]));
        }
    }
    println!("largest relative difference from ArviZ: rhat {worst_r:.2e}, ess_bulk {worst_e:.2e}");
}

fn normal_draws(seed: u64, chains: usize, draws: usize) -> Array2<f64> {
    let mut rng = Pcg64::seed_from_u64(seed);
    Array2::from_shape_fn((chains, draws), |_| StandardNormal.sample(&mut rng))
}

#[test]
fn ess_of_constant_chains_is_their_size() {
    // ArviZ: ess(np.ones((4, 100))) == 400 (the split array's size).
    let ones = Array2::<f64>::ones((4, 100));
    assert_eq!(ess_bulk(ones.view()), 400.0);
    // odd draws: the middle draw is dropped by the split, 4 × 2 × 50
    assert_eq!(ess_bulk(Array2::<f64>::ones((4, 101)).view()), 400.0);
    // R-hat of constant chains is undefined (0/0), as in ArviZ.
    assert!(rhat(ones.view()).is_nan());
}

#[test]
fn too_few_draws_or_chains_give_nan() {
    let x = normal_draws(1, 4, 3);
    assert!(rhat(x.view()).is_nan(), "fewer than 4 draws");
    assert!(ess_bulk(x.view()).is_nan(), "fewer than 4 draws");
    let one = normal_draws(2, 1, 100);
    assert!(rhat(one.view()).is_nan(), "a single chain");
    assert!(ess_bulk(one.view()).is_finite(), "ESS works on one chain");
    let mut nan = normal_draws(3, 4, 100);
    nan[[2, 17]] = f64::NAN;
    assert!(rhat(nan.view()).is_nan() && ess_bulk(nan.view()).is_nan());
}

#[test]
fn iid_chains_have_rhat_near_one_and_full_ess() {
    // 4 × 1000 iid draws: split R-hat's sampling sd is ~1/sqrt(N) ≈ 0.003 → 1.01 is
    // > 3σ; bulk ESS of iid draws ≈ 4000 with relative sd ≈ sqrt(2/N)·... ≲ 10 %.
    let x = normal_draws(4, 4, 1000);
    let r = rhat(x.view());
    assert!(r < 1.01, "{r}");
    let e = ess_bulk(x.view());
    assert!((3000.0..5000.0).contains(&e), "{e}");
}

#[test]
fn chains_far_apart_have_large_rhat() {
    // ArviZ's check: chains 20σ apart must fail any reasonable threshold.
    let mut x = normal_draws(5, 4, 200);
    for v in x.row_mut(3).iter_mut() {
        *v += 20.0;
    }
    let r = rhat(x.view());
    assert!(r > 1.5, "R-hat {r} for a chain 20σ away");
    // A chain with 10× the spread but the same centre is caught by the tail (folded) R-hat.
    let mut y = normal_draws(6, 4, 1000);
    for v in y.row_mut(0).iter_mut() {
        *v *= 10.0;
    }
    assert!(rhat(y.view()) > 1.1, "{}", rhat(y.view()));
}

#[test]
fn function_1d_is_normalised_and_matches_direct_sum() {
    let x: Array1<f64> = normal_draws(7, 1, 37).row(0).to_owned();
    let acf = function_1d(x.view());
    assert_eq!(acf.len(), 37);
    assert!((acf[0] - 1.0).abs() < 1e-15);
    let m = x.mean().unwrap();
    let c0: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
    for t in [1, 5, 36] {
        let ct: f64 = (0..37 - t).map(|i| (x[i] - m) * (x[i + t] - m)).sum();
        assert!((acf[t] - ct / c0).abs() < 1e-12, "lag {t}");
    }
}

#[test]
fn ar1_autocorrelation_time_is_known() {
    // emcee's test_autocorr: AR(1) with a = 0.9 has τ = (1 + a)/(1 − a) = 19.
    // Here 32 walkers × 20 000 steps (640 000 draws, as emcee's 250 000 × several):
    // the estimate's relative error is ~ sqrt(2·M/N) with window M ≈ 5τ ≈ 95 per
    // walker, averaged over walkers → a few %, so 20 % is a loose bound.
    let (steps, walkers, a) = (20_000, 32, 0.9);
    let mut rng = Pcg64::seed_from_u64(1234);
    let mut x = Array3::zeros((steps, walkers, 1));
    for k in 0..walkers {
        let mut v: f64 = StandardNormal.sample(&mut rng);
        v /= (1.0f64 - a * a).sqrt();
        for t in 0..steps {
            let e: f64 = StandardNormal.sample(&mut rng);
            v = a * v + e;
            x[[t, k, 0]] = v;
        }
    }
    let tau = integrated_time(x.view(), 5.0, 50.0).unwrap();
    assert!((tau[0] - 19.0).abs() < 0.2 * 19.0, "tau = {}", tau[0]);
    // Too short a chain raises, carrying the estimate (emcee: AutocorrError with .tau).
    let short = x.slice(ndarray::s![..200, .., ..]);
    let e = integrated_time(short, 5.0, 50.0).unwrap_err();
    assert_eq!(e.n, 200);
    assert!(e.tau[0] > 4.0, "{:?}", e.tau);
    assert!(e.to_string().contains("run longer"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Rank R-hat and bulk ESS depend on the set of chains, not their order.
    #[test]
    fn rhat_and_ess_are_invariant_under_chain_reordering(
        seed in any::<u64>(),
        chains in 2usize..7,
        draws in 4usize..60,
        perm_seed in any::<u64>(),
        shift in 0.0f64..3.0,
    ) {
        let mut x = normal_draws(seed, chains, draws);
        for v in x.row_mut(0).iter_mut() { *v += shift; }
        let mut order: Vec<usize> = (0..chains).collect();
        let mut r = Pcg64::seed_from_u64(perm_seed);
        rand::seq::SliceRandom::shuffle(&mut order[..], &mut r);
        let y = x.select(Axis(0), &order);
        let (a, b) = (rhat(x.view()), rhat(y.view()));
        // Same values, summed in another order: equal to rounding.
        prop_assert!((a - b).abs() <= 1e-12 * a.abs(), "rhat {} vs {}", a, b);
        let (e1, e2) = (ess_bulk(x.view()), ess_bulk(y.view()));
        prop_assert!((e1 - e2).abs() <= 1e-9 * e1.abs(), "ess {} vs {}", e1, e2);
    }
}
