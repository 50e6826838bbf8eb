//! Effective radiative forcing by component on consecutive calendar years: the
//! driver of the two-layer model ([`super::two_layer`]) and of its scenario
//! projections ([`crate::projection`]).

use std::path::Path;

use crate::error::{Error, Result};

/// Effective radiative forcing (W m⁻²) by component on consecutive calendar years.
///
/// The model forcing is `aerosol_scale · aerosol + nonaerosol_scale · other + natural`.
#[derive(Debug, Clone, PartialEq)]
pub struct Forcing {
    years: Vec<f64>,
    other: Vec<f64>,
    aerosol: Vec<f64>,
    natural: Vec<f64>,
    has_components: bool,
}

/// Which columns of an ERF CSV make up each forcing component.
#[derive(Debug, Clone, PartialEq)]
pub struct ForcingColumns {
    /// Time column (default: the first column, whatever its name).
    pub time: Option<String>,
    /// Total ERF column (default `"total"`).
    pub total: String,
    /// Aerosol columns, summed (default `["aerosol"]`, falling back to
    /// `["aerosol-radiation_interactions", "aerosol-cloud_interactions"]` when the file has
    /// no `aerosol` column).
    pub aerosol: Vec<String>,
    /// Natural columns, summed and never scaled (default `["solar", "volcanic"]`).
    pub natural: Vec<String>,
}

impl Default for ForcingColumns {
    fn default() -> Self {
        Self {
            time: None,
            total: "total".into(),
            aerosol: vec!["aerosol".into()],
            natural: vec!["solar".into(), "volcanic".into()],
        }
    }
}

impl Forcing {
    /// From components on consecutive years (`other` = total − aerosol − natural).
    pub fn from_components(years: Vec<f64>, other: Vec<f64>, aerosol: Vec<f64>, natural: Vec<f64>) -> Result<Self> {
        let n = years.len();
        for (what, v) in [("other", &other), ("aerosol", &aerosol), ("natural", &natural)] {
            if v.len() != n {
                return Err(Error::LengthMismatch {
                    what: format!("forcing component '{what}' vs years"),
                    expected: n,
                    found: v.len(),
                });
            }
        }
        let f = Self { years, other, aerosol, natural, has_components: true };
        f.check()?;
        Ok(f)
    }

    /// A constant forcing `value` (W m⁻²) switched on at `start_year` for `n_years`
    /// years (a step, as in abrupt-4xCO2 experiments). It has no components, so the
    /// model has no forcing scale parameters.
    pub fn constant(value: f64, start_year: f64, n_years: usize) -> Result<Self> {
        Self::step(&[(start_year, value)], start_year, n_years)
    }

    /// A step forcing: `steps = [(year, value), …]` sets the forcing to `value` from
    /// `year` on (0 before the first step), on `n_years` years from `start_year`.
    pub fn step(steps: &[(f64, f64)], start_year: f64, n_years: usize) -> Result<Self> {
        if n_years == 0 {
            return Err(Error::Config("two_layer forcing: n_years must be at least 1".into()));
        }
        for w in steps.windows(2) {
            if w[1].0 <= w[0].0 {
                return Err(Error::Config(format!("two_layer forcing: step years must increase ({} after {})", w[1].0, w[0].0)));
            }
        }
        let years: Vec<f64> = (0..n_years).map(|i| start_year + i as f64).collect();
        let other = years.iter().map(|&y| steps.iter().rev().find(|(sy, _)| y >= *sy).map_or(0.0, |s| s.1)).collect();
        let f = Self { other, aerosol: vec![0.0; n_years], natural: vec![0.0; n_years], years, has_components: false };
        f.check()?;
        Ok(f)
    }

    /// Read an ERF-by-component CSV (AR6 `AR6_ERF_1750-2019.csv` layout or the IGCC
    /// `ERF_best_aggregates_1750-2024.csv` layout). Mid-year labels (`1750.5`) are read
    /// as calendar years (`1750`). `years = Some((first, last))` keeps those years only.
    pub fn from_csv(path: &Path, cols: &ForcingColumns, years: Option<(f64, f64)>) -> Result<Self> {
        let err = |reason: String| Error::Data { path: path.to_path_buf(), reason };
        let rdr = Self::csv_builder()
            .from_path(path)
            .map_err(|e| err(format!("{e} (the forcing file is read relative to the config file's directory)")))?;
        Self::from_reader(rdr, path, cols, years)
    }

    /// As [`Forcing::from_csv`], from CSV text (`source` names it in errors).
    pub fn from_csv_text(text: &str, source: &Path, cols: &ForcingColumns, years: Option<(f64, f64)>) -> Result<Self> {
        Self::from_reader(Self::csv_builder().from_reader(text.as_bytes()), source, cols, years)
    }

    fn csv_builder() -> csv::ReaderBuilder {
        let mut b = csv::ReaderBuilder::new();
        b.comment(Some(b'#')).trim(csv::Trim::All);
        b
    }

    fn from_reader<R: std::io::Read>(
        mut rdr: csv::Reader<R>,
        path: &Path,
        cols: &ForcingColumns,
        years: Option<(f64, f64)>,
    ) -> Result<Self> {
        let err = |reason: String| Error::Data { path: path.to_path_buf(), reason };
        let headers: Vec<String> = rdr.headers().map_err(|e| err(e.to_string()))?.iter().map(|s| s.to_string()).collect();
        let col = |c: &str| {
            headers.iter().position(|h| h == c).ok_or_else(|| err(format!("no column '{c}'; the columns are {headers:?}")))
        };
        let it = match &cols.time {
            Some(c) => col(c)?,
            None => 0,
        };
        let itot = col(&cols.total)?;
        let mut aer_names = cols.aerosol.clone();
        if aer_names == ["aerosol"] && !headers.iter().any(|h| h == "aerosol") {
            aer_names = vec!["aerosol-radiation_interactions".into(), "aerosol-cloud_interactions".into()];
        }
        let iaer = aer_names.iter().map(|c| col(c)).collect::<Result<Vec<_>>>()?;
        let inat = cols.natural.iter().map(|c| col(c)).collect::<Result<Vec<_>>>()?;
        let (mut yv, mut ov, mut av, mut nv) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (row, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| err(e.to_string()))?;
            let num = |i: usize| -> Result<f64> {
                let f = rec.get(i).unwrap_or("");
                f.parse::<f64>().map_err(|_| err(format!("row {} column '{}': '{}' is not a number", row + 2, headers[i], f)))
            };
            let year = num(it)?.floor();
            if let Some((a, b)) = years {
                if year < a || year > b {
                    continue;
                }
            }
            let total = num(itot)?;
            let aer: f64 = iaer.iter().map(|&i| num(i)).sum::<Result<f64>>()?;
            let nat: f64 = inat.iter().map(|&i| num(i)).sum::<Result<f64>>()?;
            yv.push(year);
            av.push(aer);
            nv.push(nat);
            ov.push(total - aer - nat);
        }
        if yv.is_empty() {
            return Err(err(match years {
                Some((a, b)) => format!("no rows in years {a}–{b}"),
                None => "no data rows".into(),
            }));
        }
        Self::from_components(yv, ov, av, nv).map_err(|e| err(e.to_string()))
    }

    fn check(&self) -> Result<()> {
        for i in 0..self.years.len() {
            if i > 0 && (self.years[i] - self.years[i - 1] - 1.0).abs() > 1e-9 {
                return Err(Error::Config(format!(
                    "two_layer forcing: years must be consecutive (year {} follows {})",
                    self.years[i],
                    self.years[i - 1]
                )));
            }
            for (what, v) in [("other", &self.other), ("aerosol", &self.aerosol), ("natural", &self.natural)] {
                if !v[i].is_finite() {
                    return Err(Error::Config(format!(
                        "two_layer forcing: component '{what}' is {} in year {}",
                        v[i], self.years[i]
                    )));
                }
            }
        }
        Ok(())
    }

    /// Calendar years.
    pub fn years(&self) -> &[f64] {
        &self.years
    }

    /// Number of years.
    pub fn len(&self) -> usize {
        self.years.len()
    }

    /// True when there are no years (never, for a checked forcing).
    pub fn is_empty(&self) -> bool {
        self.years.is_empty()
    }

    /// True when built from components (a file), so the scale factors apply.
    pub fn has_components(&self) -> bool {
        self.has_components
    }

    /// Aerosol ERF by year.
    pub fn aerosol(&self) -> &[f64] {
        &self.aerosol
    }

    /// Natural (solar + volcanic) ERF by year.
    pub fn natural(&self) -> &[f64] {
        &self.natural
    }

    /// Anthropogenic non-aerosol ERF by year (total − aerosol − natural).
    pub fn other(&self) -> &[f64] {
        &self.other
    }

    /// Total forcing with the given scales.
    pub fn total(&self, aerosol_scale: f64, nonaerosol_scale: f64) -> Vec<f64> {
        (0..self.len()).map(|i| self.at(i, aerosol_scale, nonaerosol_scale)).collect()
    }

    #[inline(always)]
    fn at(&self, i: usize, sa: f64, sn: f64) -> f64 {
        sa * self.aerosol[i] + sn * self.other[i] + self.natural[i]
    }
}
