//! Scenario forcing and how it continues a calibration's historical forcing.
//!
//! The built-in scenarios are the IPCC AR6 WG1 Chapter 7 effective radiative
//! forcing of five CMIP6 Shared Socioeconomic Pathways (SSP1-1.9, SSP1-2.6,
//! SSP2-4.5, SSP3-7.0, SSP5-8.5), 1750–2500 by component, compiled into the binary
//! from `cluster-examples/data/ssp_erf/` (byte-for-byte copies; provenance in
//! `cluster-examples/data/PROVENANCE.md`). Any other ERF-by-component CSV in the
//! same layout can be given as a file.
//!
//! # The join
//!
//! A projection keeps the calibration's own forcing for every year it covers
//! (for the demo's run file: the IGCC 2024 update of AR6 ERF, 1750–2024), so the
//! historical part of a projection is the calibration run itself, bit for bit.
//! From the year after (2025) it takes the scenario. The two series disagree at
//! the join (the update revised volcanic, aerosol and CO2 forcing; the SSPs set
//! volcanic forcing to its long-term mean, 0, from 2025), so by default
//! ([`Join::DEFAULT_BLEND_YEARS`] = 10) the difference of each component
//! (aerosol, natural, other) in the last historical year `L` is carried into the
//! scenario and faded out linearly:
//!
//! ```text
//! F_c(L + k) = S_c(L + k) + (1 − k/B) · (H_c(L) − S_c(L))    for 1 ≤ k < B,
//! F_c(L + k) = S_c(L + k)                                       for k ≥ B,
//! ```
//!
//! with `H` the historical forcing, `S` the scenario and `B` the blend length in
//! years; `B = 0` joins abruptly. [`JoinReport`] gives the step at the join with
//! and without the blend.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::models::forcing::{Forcing, ForcingColumns};

/// Built-in scenarios: (name, AR6 label, CSV text).
const BUILTIN: [(&str, &str, &str); 5] = [
    ("ssp119", "SSP1-1.9", include_str!("../../cluster-examples/data/ssp_erf/ERF_ssp119_1750-2500.csv")),
    ("ssp126", "SSP1-2.6", include_str!("../../cluster-examples/data/ssp_erf/ERF_ssp126_1750-2500.csv")),
    ("ssp245", "SSP2-4.5", include_str!("../../cluster-examples/data/ssp_erf/ERF_ssp245_1750-2500.csv")),
    ("ssp370", "SSP3-7.0", include_str!("../../cluster-examples/data/ssp_erf/ERF_ssp370_1750-2500.csv")),
    ("ssp585", "SSP5-8.5", include_str!("../../cluster-examples/data/ssp_erf/ERF_ssp585_1750-2500.csv")),
];

/// Names of the built-in scenarios (`ssp119`, `ssp126`, `ssp245`, `ssp370`, `ssp585`).
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|b| b.0).collect()
}

/// A scenario: a name and its forcing by component.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Short name (`ssp245`, or what the user called a file).
    pub name: String,
    /// Long label (`SSP2-4.5`; the name for a file).
    pub label: String,
    /// Where it came from (`built-in AR6 …` or the file's path).
    pub source: String,
    /// ERF by component (aerosol = ARI + ACI, natural = solar + volcanic, other =
    /// total − aerosol − natural), W m⁻².
    pub forcing: Forcing,
}

/// Where a scenario comes from, as the CLI and MPI workers pass it around.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScenarioSource {
    pub name: String,
    /// `None`: built-in.
    pub file: Option<PathBuf>,
}

impl ScenarioSource {
    /// `ssp245` (built-in) or `NAME=FILE.csv` (a file in the AR6 ERF layout).
    pub fn parse(s: &str) -> Result<Self> {
        match s.split_once('=') {
            Some((n, f)) if !n.is_empty() && !f.is_empty() => Ok(Self { name: n.into(), file: Some(PathBuf::from(f)) }),
            Some(_) => Err(Error::Config(format!("scenario '{s}': give NAME=FILE.csv (both parts non-empty)"))),
            None => Ok(Self { name: s.into(), file: None }),
        }
    }

    /// Load it (checking the name of a built-in one).
    pub fn load(&self) -> Result<Scenario> {
        match &self.file {
            None => Scenario::builtin(&self.name),
            Some(f) => Scenario::from_csv(&self.name, f),
        }
    }
}

impl Scenario {
    /// A built-in AR6 SSP scenario by name (`ssp119`, `ssp126`, `ssp245`, `ssp370`,
    /// `ssp585`; `SSP2-4.5` style labels are accepted too).
    pub fn builtin(name: &str) -> Result<Self> {
        let key: String = name.to_ascii_lowercase().chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        let (n, label, text) = BUILTIN.iter().find(|b| b.0 == key).ok_or_else(|| {
            Error::Config(format!(
                "unknown scenario '{name}'; the built-in scenarios are {} (AR6 SSP ERF), or give NAME=FILE.csv",
                builtin_names().join(", ")
            ))
        })?;
        let file = format!("ERF_{n}_1750-2500.csv");
        let forcing = Forcing::from_csv_text(text, Path::new(&file), &ForcingColumns::default(), None)?;
        Ok(Self { name: n.to_string(), label: label.to_string(), source: format!("built-in AR6 WG1 Ch. 7 ERF {file}"), forcing })
    }

    /// A scenario from an ERF-by-component CSV (AR6 `ERF_ssp*_1750-2500.csv` or IGCC
    /// aggregates layout: `total`, `aerosol` or ARI + ACI, `solar`, `volcanic`).
    pub fn from_csv(name: &str, path: &Path) -> Result<Self> {
        let forcing = Forcing::from_csv(path, &ForcingColumns::default(), None)?;
        Ok(Self { name: name.into(), label: name.into(), source: path.display().to_string(), forcing })
    }
}

/// How a scenario continues the historical forcing.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Join {
    /// Last year of the projection (inclusive; default 2100).
    pub end_year: f64,
    /// Years over which the difference at the join fades out (0 = abrupt).
    pub blend_years: u32,
}

impl Default for Join {
    fn default() -> Self {
        Self { end_year: 2100.0, blend_years: Self::DEFAULT_BLEND_YEARS }
    }
}

impl Join {
    /// Default blend length: 10 years (the join's offset is gone by 2034 for a
    /// history ending in 2024).
    pub const DEFAULT_BLEND_YEARS: u32 = 10;
}

/// What a join did, at component scales 1 (W m⁻²).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JoinReport {
    /// Last historical year `L`.
    pub last_history_year: f64,
    /// Historical minus scenario forcing in year `L`: (total, aerosol, natural, other).
    pub offset: [f64; 4],
    /// Total forcing of year `L + 1` minus that of year `L` as joined.
    pub step: f64,
    /// The same without a blend (scenario `L + 1` minus history `L`).
    pub step_unblended: f64,
}

/// The historical forcing followed by the scenario's from the year after it, to
/// `join.end_year`, blended as the module docs say.
pub fn join_forcing(history: &Forcing, scenario: &Scenario, join: &Join) -> Result<(Forcing, JoinReport)> {
    if !history.has_components() {
        return Err(Error::Unsupported(
            "the model's forcing is constant or a step (an idealised experiment), not forcing by component that a scenario can continue".into(),
        ));
    }
    let hy = history.years();
    let last = *hy.last().expect("a checked forcing has years");
    let sy = scenario.forcing.years();
    let (s_first, s_last) = (sy[0], *sy.last().expect("a checked forcing has years"));
    if !(join.end_year > last) {
        return Err(Error::Config(format!(
            "the projection must end after the calibration's forcing, which ends in {last}; the end year is {}",
            join.end_year
        )));
    }
    if join.end_year.fract() != 0.0 {
        return Err(Error::Config(format!("the end year must be a whole year, got {}", join.end_year)));
    }
    if s_first > last || s_last < join.end_year {
        return Err(Error::Config(format!(
            "scenario '{}' ({}) covers {s_first}–{s_last}, but the projection needs {last} (the calibration's last forcing year, for the join) to {}",
            scenario.name, scenario.source, join.end_year
        )));
    }
    let s0 = (last - s_first) as usize; // scenario index of year L
    let hl = hy.len() - 1;
    let s = &scenario.forcing;
    let comps_h = [history.aerosol(), history.natural(), history.other()];
    let comps_s = [s.aerosol(), s.natural(), s.other()];
    let d: Vec<f64> = (0..3).map(|c| comps_h[c][hl] - comps_s[c][s0]).collect();
    let n_future = (join.end_year - last) as usize;
    let mut years = hy.to_vec();
    let mut out: Vec<Vec<f64>> = comps_h.iter().map(|c| c.to_vec()).collect();
    let b = join.blend_years as f64;
    for k in 1..=n_future {
        years.push(last + k as f64);
        let w = if (k as f64) < b { 1.0 - k as f64 / b } else { 0.0 };
        for c in 0..3 {
            out[c].push(comps_s[c][s0 + k] + w * d[c]);
        }
    }
    let [aer, nat, oth]: [Vec<f64>; 3] = out.try_into().expect("three components");
    let total = |a: &[f64], n: &[f64], o: &[f64], i: usize| a[i] + n[i] + o[i];
    let step = total(&aer, &nat, &oth, hl + 1) - total(&aer, &nat, &oth, hl);
    let step_unblended = total(comps_s[0], comps_s[1], comps_s[2], s0 + 1) - total(&aer, &nat, &oth, hl);
    let report = JoinReport { last_history_year: last, offset: [d[0] + d[1] + d[2], d[0], d[1], d[2]], step, step_unblended };
    Ok((Forcing::from_components(years, oth, aer, nat)?, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist() -> Forcing {
        let y: Vec<f64> = (2000..=2024).map(f64::from).collect();
        let n = y.len();
        Forcing::from_components(y, vec![3.0; n], vec![-1.0; n], vec![0.2; n]).unwrap()
    }

    #[test]
    fn builtin_scenarios_load_and_match_their_sanity_values() {
        // PROVENANCE.md: total ERF in 2100, SSP1-1.9 2.33, SSP2-4.5 5.40, SSP5-8.5 10.0 W m-2.
        for (n, want) in [("ssp119", 2.33), ("ssp245", 5.40), ("SSP5-8.5", 10.0)] {
            let s = Scenario::builtin(n).unwrap();
            let i = s.forcing.years().iter().position(|&y| y == 2100.0).unwrap();
            let t = s.forcing.total(1.0, 1.0)[i];
            assert!((t - want).abs() < 0.006, "{n}: {t}");
        }
        assert!(Scenario::builtin("ssp999").unwrap_err().to_string().contains("ssp119, ssp126, ssp245, ssp370, ssp585"));
    }

    #[test]
    fn join_keeps_history_and_blends_the_offset_away() {
        let s = Scenario::builtin("ssp245").unwrap();
        let h = hist();
        let (f, r) = join_forcing(&h, &s, &Join { end_year: 2100.0, blend_years: 10 }).unwrap();
        assert_eq!(f.years().first(), Some(&2000.0));
        assert_eq!(f.years().last(), Some(&2100.0));
        assert_eq!(&f.aerosol()[..25], h.aerosol());
        assert_eq!(&f.other()[..25], h.other());
        let i24 = s.forcing.years().iter().position(|&y| y == 2024.0).unwrap();
        let d_aer = -1.0 - s.forcing.aerosol()[i24];
        // 2025 = k 1: 0.9 of the offset; 2034 = k 10: none.
        assert!((f.aerosol()[25] - (s.forcing.aerosol()[i24 + 1] + 0.9 * d_aer)).abs() < 1e-12);
        assert_eq!(f.aerosol()[34], s.forcing.aerosol()[i24 + 10]);
        assert_eq!(f.natural()[100], s.forcing.natural()[i24 + 76]);
        assert!((r.offset[1] - d_aer).abs() < 1e-12);
        // Abrupt join: the scenario's own values from 2025.
        let (g, r0) = join_forcing(&h, &s, &Join { end_year: 2030.0, blend_years: 0 }).unwrap();
        assert_eq!(g.aerosol()[25], s.forcing.aerosol()[i24 + 1]);
        assert_eq!(r0.step, r0.step_unblended);
        assert!(r.step.abs() < r0.step.abs());
    }

    #[test]
    fn join_errors_name_the_problem() {
        let s = Scenario::builtin("ssp126").unwrap();
        let e = join_forcing(&hist(), &s, &Join { end_year: 2600.0, blend_years: 10 }).unwrap_err().to_string();
        assert!(e.contains("covers 1750–2500"), "{e}");
        let e = join_forcing(&hist(), &s, &Join { end_year: 2020.0, blend_years: 10 }).unwrap_err().to_string();
        assert!(e.contains("ends in 2024"), "{e}");
        let step = Forcing::constant(7.8, 0.0, 10).unwrap();
        assert!(join_forcing(&step, &s, &Join::default()).is_err());
    }
}
