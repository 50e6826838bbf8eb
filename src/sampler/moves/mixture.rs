//! Weighted mixtures of moves, as emcee's `moves=[(DEMove(), 0.8),
//! (DESnookerMove(), 0.2)]`: each step uses one move, move `i` with
//! probability `wᵢ / Σ w` (drawn from walker 0's stream, once per step).

use rand::Rng;
use rand_pcg::Pcg64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{MoveSpec, StretchMove};
use crate::error::{Error, Result};

/// A weighted list of moves (one move with weight 1 is the common case).
#[derive(Debug, Clone, PartialEq)]
pub struct Moves {
    entries: Vec<(MoveSpec, f64)>,
}

impl Default for Moves {
    /// climcal's default: the stretch move with `a = 2`, first/second-half split.
    fn default() -> Self {
        Self { entries: vec![(MoveSpec::Stretch(StretchMove::default()), 1.0)] }
    }
}

impl Moves {
    /// A mixture; weights must be finite and ≥ 0 with a positive sum.
    pub fn new(entries: Vec<(MoveSpec, f64)>) -> Result<Self> {
        if entries.is_empty() {
            return Err(Error::InvalidSampler("moves: the list is empty; give at least one move".into()));
        }
        for (i, (m, w)) in entries.iter().enumerate() {
            if !(w.is_finite() && *w >= 0.0) {
                return Err(Error::InvalidSampler(format!("moves[{i}] ({}): weight must be finite and >= 0, got {w}", m.name())));
            }
        }
        if entries.iter().map(|e| e.1).sum::<f64>() <= 0.0 {
            return Err(Error::InvalidSampler("moves: the weights sum to 0; give at least one a positive weight".into()));
        }
        Ok(Self { entries })
    }

    /// One move with weight 1.
    pub fn single(m: MoveSpec) -> Self {
        Self { entries: vec![(m, 1.0)] }
    }

    /// The moves and their (unnormalised) weights.
    pub fn entries(&self) -> &[(MoveSpec, f64)] {
        &self.entries
    }

    /// Check every move against the ensemble size.
    pub fn validate(&self, n_walkers: usize, dim: usize) -> Result<()> {
        for (i, (m, _)) in self.entries.iter().enumerate() {
            m.proposal().validate(n_walkers, dim).map_err(|e| match e {
                Error::InvalidSampler(s) if self.entries.len() > 1 => Error::InvalidSampler(format!("moves[{i}]: {s}")),
                e => e,
            })?;
        }
        Ok(())
    }

    /// The stretch scale when this is the plain default-split stretch move
    /// (which runs on the sampler's inlined fast path).
    pub fn plain_stretch(&self) -> Option<f64> {
        match self.entries.as_slice() {
            [(MoveSpec::Stretch(s), _)] if s.nsplits == 2 && !s.randomize_split => Some(s.a),
            _ => None,
        }
    }

    /// The move for this step: as `numpy.random.choice(p=w/Σw)` (cumulative
    /// weights, first one above `u · Σ w`), with no draw for a single move.
    pub fn choose(&self, rng0: &mut Pcg64) -> usize {
        if self.entries.len() == 1 {
            return 0;
        }
        let total: f64 = self.entries.iter().map(|e| e.1).sum();
        let u: f64 = rng0.random::<f64>() * total;
        let mut cum = 0.0;
        for (i, (_, w)) in self.entries.iter().enumerate() {
            cum += w;
            if u < cum {
                return i;
            }
        }
        // Rounding at the top end: the last move with a positive weight.
        self.entries.iter().rposition(|e| e.1 > 0.0).unwrap_or(0)
    }

    /// As a JSON list of tables `{kind, weight, …}` (the chain-file form).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("moves serialise")
    }

    /// From a list of tables `{kind, weight (default 1), …parameters}`, e.g. the
    /// JSON form of the run file's `[sampler] moves`. Errors name the entry.
    pub fn from_values(values: Vec<serde_json::Value>) -> Result<Self> {
        let mut entries = Vec::with_capacity(values.len());
        for (i, v) in values.into_iter().enumerate() {
            let serde_json::Value::Object(mut t) = v else {
                return Err(Error::InvalidSampler(format!(
                    "moves[{i}]: expected a table such as {{ kind = \"de\", weight = 0.8 }}, got {v}"
                )));
            };
            let w = match t.remove("weight") {
                None => 1.0,
                Some(w) => {
                    w.as_f64().ok_or_else(|| Error::InvalidSampler(format!("moves[{i}]: weight must be a number, got {w}")))?
                }
            };
            let kind = t.get("kind").and_then(|k| k.as_str()).map(str::to_owned);
            let spec: MoveSpec = serde_json::from_value(serde_json::Value::Object(t)).map_err(|e| {
                Error::InvalidSampler(format!(
                    "moves[{i}]{}: {e} (kinds: stretch, walk, de, de_snooker, kde, gaussian, dime)",
                    kind.map(|k| format!(" ({k})")).unwrap_or_default()
                ))
            })?;
            entries.push((spec, w));
        }
        Self::new(entries)
    }

    /// From [`Moves::to_json`] or any JSON list of move tables.
    pub fn from_json(text: &str) -> Result<Self> {
        let v: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(|e| Error::InvalidSampler(format!("moves: not a JSON list of tables: {e}")))?;
        Self::from_values(v)
    }
}

impl Serialize for Moves {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let list: Vec<serde_json::Value> = self
            .entries
            .iter()
            .map(|(m, w)| {
                let mut v = serde_json::to_value(m).expect("move serialises");
                v.as_object_mut().expect("a move is a table").insert("weight".into(), (*w).into());
                v
            })
            .collect();
        list.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Moves {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Vec::<serde_json::Value>::deserialize(d)?;
        Moves::from_values(v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::moves::{DEMove, DESnookerMove};
    use crate::sampler::rng::walker_rng;

    #[test]
    fn json_round_trip_and_errors_name_the_entry() {
        let m = Moves::new(vec![(MoveSpec::De(DEMove::default()), 0.8), (MoveSpec::DeSnooker(DESnookerMove::default()), 0.2)])
            .unwrap();
        assert_eq!(Moves::from_json(&m.to_json()).unwrap(), m);
        let e = Moves::from_json(r#"[{"kind": "de"}, {"kind": "snooker"}]"#).unwrap_err().to_string();
        assert!(e.contains("moves[1]") && e.contains("snooker"), "{e}");
        let e = Moves::from_json(r#"[{"kind": "de", "sigmaa": 1}]"#).unwrap_err().to_string();
        assert!(e.contains("sigmaa"), "{e}");
        let e = Moves::from_json(r#"[{"kind": "de", "weight": -1}]"#).unwrap_err().to_string();
        assert!(e.contains("weight"), "{e}");
    }

    #[test]
    fn choice_frequencies_follow_the_weights() {
        let m = Moves::new(vec![
            (MoveSpec::De(DEMove::default()), 3.0),
            (MoveSpec::DeSnooker(DESnookerMove::default()), 1.0),
            (MoveSpec::Stretch(StretchMove::default()), 0.0),
        ])
        .unwrap();
        let mut r = walker_rng(5, 0);
        let n = 100_000;
        let mut c = [0usize; 3];
        for _ in 0..n {
            c[m.choose(&mut r)] += 1;
        }
        // Binomial sd of the fraction √(0.75·0.25/n) = 0.0014: 5 sd = 0.007.
        assert!((c[0] as f64 / n as f64 - 0.75).abs() < 0.007, "{c:?}");
        assert_eq!(c[2], 0);
    }
}
