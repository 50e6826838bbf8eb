//! Fuzz pass over the run-file parser and the model options (proptest, fixed
//! seed, part of the normal test run, well under a minute): mutated copies of
//! every example run file, and random option tables for every built-in model, are
//! parsed, built and — when cheap — evaluated at their initial walkers. Each case
//! must end in Ok or a bad-input error: no panic, no abort (an allocation failure
//! would kill the test binary), no hang (every case is timed).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use climcal::config::RunConfig;
use climcal::executor::SerialExecutor;
use climcal::models::registry::{build_model, ModelContext};
use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestCaseError, TestRunner};

fn config(cases: u32) -> ProptestConfig {
    // Fixed seed: the same cases on every run and machine.
    ProptestConfig { cases, rng_seed: RngSeed::Fixed(0x00c0_ffee_0013), ..ProptestConfig::default() }
}

/// Seed run files: (path, whether building it may start processes).
fn seeds() -> Vec<(PathBuf, String, bool)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = Vec::new();
    for dir in ["cluster-examples", "tests/data"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for p in files {
            let text = std::fs::read_to_string(&p).unwrap();
            let external = text.contains("\"command\"") || text.contains("\"python\"");
            v.push((p, text, external));
        }
    }
    assert!(v.len() >= 6, "seed run files: {v:?}");
    v
}

/// Values that have broken parsers and models before.
const EDGE_VALUES: &[&str] = &[
    "-1",
    "0",
    "-0.0",
    "1e308",
    "-1e308",
    "1e12",
    "nan",
    "inf",
    "-inf",
    "18446744073709551615",
    "9223372036854775807",
    "-9223372036854775808",
    "8000000000",
    "\"\"",
    "\"x\"",
    "[]",
    "{}",
    "true",
    "[1.0, 2.0, 3.0]",
    "{ a = 1 }",
    "0.5",
];

/// The first `N_NUMERIC` of [`EDGE_VALUES`] are numbers.
const N_NUMERIC: usize = 13;

/// Keys that appear in run files and model options.
const KEYS: &[&str] = &[
    "n_walkers",
    "n_steps",
    "thin",
    "seed",
    "init",
    "stretch_scale",
    "checkpoint_every",
    "blobs",
    "path",
    "dim",
    "mean",
    "std",
    "scale",
    "t_start",
    "t_end",
    "t0",
    "sleep_us",
    "cost_us",
    "work_us",
    "work_spread",
    "sigma",
    "reference_period",
    "time_range",
    "relative_error",
    "kind",
    "radius",
    "center",
    "n_years",
    "first_year",
    "last_year",
    "constant",
    "file",
    "column",
    "time_column",
    "unit",
    "transform",
    "prior",
    "dist",
    "lower",
    "upper",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the n-th number in the text by an edge value.
    Number(usize, usize),
    /// Delete line n.
    DeleteLine(usize),
    /// Duplicate line n.
    DuplicateLine(usize),
    /// Insert `key = value` after line n.
    InsertKey(usize, usize, usize),
    /// Replace the byte at a position by one of a few syntax characters.
    Byte(usize, u8),
    /// Cut the text at a position.
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        8 => (any::<usize>(), 0..N_NUMERIC).prop_map(|(n, v)| Mutation::Number(n, v)),
        1 => any::<usize>().prop_map(Mutation::DeleteLine),
        1 => any::<usize>().prop_map(Mutation::DuplicateLine),
        2 => (any::<usize>(), 0..KEYS.len(), 0..EDGE_VALUES.len()).prop_map(|(l, k, v)| Mutation::InsertKey(l, k, v)),
        1 => (any::<usize>(), prop::sample::select(b"=[]{}\",.\n#0-9ae".to_vec())).prop_map(|(p, b)| Mutation::Byte(p, b)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let n_lines = lines.len().max(1);
    match m {
        Mutation::Number(n, v) => {
            // Spans of ASCII number-looking tokens.
            let b = text.as_bytes();
            let mut spans = Vec::new();
            let mut i = 0;
            while i < b.len() {
                if b[i].is_ascii_digit() && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) {
                    let s = if i > 0 && b[i - 1] == b'-' { i - 1 } else { i };
                    let mut j = i;
                    while j < b.len() && (b[j].is_ascii_digit() || b"._eE+-".contains(&b[j])) {
                        j += 1;
                    }
                    spans.push((s, j));
                    i = j;
                } else {
                    i += 1;
                }
            }
            if spans.is_empty() {
                return text.to_string();
            }
            let (s, e) = spans[n % spans.len()];
            format!("{}{}{}", &text[..s], EDGE_VALUES[*v], &text[e..])
        }
        Mutation::DeleteLine(n) => {
            let k = n % n_lines;
            lines.iter().enumerate().filter(|(i, _)| *i != k).map(|(_, l)| *l).collect::<Vec<_>>().join("\n")
        }
        Mutation::DuplicateLine(n) => {
            let k = n % n_lines;
            let mut v: Vec<&str> = lines.clone();
            if let Some(l) = lines.get(k) {
                v.insert(k, l);
            }
            v.join("\n")
        }
        Mutation::InsertKey(n, k, v) => {
            // Right after a section header, so that the key lands in a section.
            let headers: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].trim_start().starts_with('[')).collect();
            let at = if headers.is_empty() { n % (lines.len() + 1) } else { headers[n % headers.len()] + 1 };
            let new = format!("{} = {}", KEYS[*k], EDGE_VALUES[*v]);
            let mut out: Vec<&str> = lines.clone();
            out.insert(at, &new);
            out.join("\n")
        }
        Mutation::Byte(p, c) => {
            let mut b = text.as_bytes().to_vec();
            if !b.is_empty() {
                let i = p % b.len();
                b[i] = *c;
            }
            String::from_utf8_lossy(&b).into_owned()
        }
        Mutation::Truncate(p) => {
            let b = text.as_bytes();
            String::from_utf8_lossy(&b[..p % (b.len() + 1)]).into_owned()
        }
    }
}

/// Option values that make one evaluation expensive (a sleep or busy loop, a
/// long time axis): such cases are built but not evaluated.
fn costly(cfg: &RunConfig) -> bool {
    let o = &cfg.file.model.options;
    let num = |k: &str| o.get(k).and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)));
    ["sleep_us", "cost_us", "work_us"].iter().any(|k| num(k).is_some_and(|v| v != 0.0))
        || (num("t_end").unwrap_or(20.0) - num("t_start").unwrap_or(0.0)).abs() > 1e5
        || o.contains_key("forcing") && o["forcing"].get("n_years").is_some()
}

/// How far a case got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    Parse,
    Build,
    Evaluate,
    Done,
}

/// Parse, build and (when cheap) evaluate one run file; Err only when it ends in
/// anything but Ok or a bad-input error.
fn exercise(text: &str, base: &Path, external: bool) -> Result<Reached, String> {
    let t0 = Instant::now();
    let mut reached = Reached::Parse;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> climcal::error::Result<()> {
        let cfg = RunConfig::from_toml_str(text, base)?;
        if external {
            return Ok(()); // building may start interpreters or programs
        }
        reached = Reached::Build;
        let problem = cfg.build_problem()?;
        let sampler = cfg.sampler(&problem, 1, Arc::new(SerialExecutor))?;
        sampler.check_run_memory(cfg.file.sampler.n_steps, &cfg.run_options())?;
        if problem.n_walkers <= 256 && !costly(&cfg) {
            reached = Reached::Evaluate;
            match problem.initial_state(&sampler) {
                Ok(_) | Err(climcal::error::Error::BadInitialPositions { .. }) => {}
                Err(e) => return Err(e),
            }
            reached = Reached::Done;
        }
        Ok(())
    }));
    let elapsed = t0.elapsed();
    if elapsed > Duration::from_secs(10) {
        return Err(format!("took {elapsed:?} (a hang?)"));
    }
    match r {
        Err(_) => Err("panicked".into()),
        Ok(Ok(())) => Ok(reached),
        Ok(Err(e)) if e.is_bad_input() => Ok(reached),
        Ok(Err(e)) => Err(format!("not a bad-input error: {e}")),
    }
}

#[test]
fn mutated_run_files_never_panic_abort_or_hang() {
    let seeds = seeds();
    let counts = std::cell::RefCell::new([0usize; 4]);
    let mut runner = TestRunner::new(config(1000));
    let strategy = (any::<usize>(), prop::collection::vec(mutation(), 1..3));
    let result = runner.run(&strategy, |(seed, muts)| {
        let (path, text, external) = &seeds[seed % seeds.len()];
        let mut t = text.clone();
        for m in &muts {
            t = apply(&t, m);
        }
        match exercise(&t, path.parent().unwrap(), *external) {
            Ok(r) => {
                counts.borrow_mut()[r as usize] += 1;
                Ok(())
            }
            Err(e) => Err(TestCaseError::fail(format!("{} with {muts:?}: {e}\n--- run file ---\n{t}", path.display()))),
        }
    });
    let c = counts.into_inner();
    eprintln!("run-file fuzz: cases ended at parse {}, build {}, evaluation {}, evaluated {}", c[0], c[1], c[2], c[3]);
    if let Err(e) = result {
        panic!("{e}");
    }
    // The mutations must not all die in the TOML parser: a fuzz that never
    // reaches the models tests nothing.
    assert!(c[1] + c[2] + c[3] >= 300 && c[3] >= 100, "too few cases got past the parser: {c:?}");
}

#[test]
fn random_model_options_never_panic() {
    let mut runner = TestRunner::new(config(1000));
    let models = vec!["gaussian", "rosenbrock", "linear", "two_layer"];
    let strategy = (prop::sample::select(models), prop::collection::vec((0..KEYS.len(), 0..EDGE_VALUES.len()), 0..5));
    let built = std::cell::Cell::new(0usize);
    let result = runner.run(&strategy, |(model, opts)| {
        let text: String = opts.iter().map(|(k, v)| format!("{} = {}\n", KEYS[*k], EDGE_VALUES[*v])).collect();
        // Duplicate keys are a TOML error, not a case.
        let Ok(table) = text.parse::<toml::Table>() else { return Ok(()) };
        let names: Vec<String> = Vec::new();
        let ctx = ModelContext { base_dir: Path::new(env!("CARGO_MANIFEST_DIR")), param_names: &names };
        match std::panic::catch_unwind(|| build_model(model, &table, &ctx).map(|_| ())) {
            Err(_) => Err(TestCaseError::fail(format!("model '{model}' panicked on options {table:?}"))),
            Ok(Err(e)) if !e.is_bad_input() => Err(TestCaseError::fail(format!("{model} {table:?}: {e}"))),
            Ok(Err(_)) => Ok(()),
            Ok(Ok(())) => {
                built.set(built.get() + 1);
                Ok(())
            }
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(built.get() >= 100, "only {} option tables built a model", built.get());
}
