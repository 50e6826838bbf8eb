//! What a Python run must match to continue a chain file: the model, the
//! likelihood and the target data (parameter names and priors are checked
//! separately). Stored as the chain file's `fingerprint`, as the CLI stores its own.

use crate::target::Target;

/// The fingerprint of a Python calibration run (JSON text).
/// `likelihood` names the likelihood and its settings (`gaussian relative_error=0`, or
/// [`crate::likelihood::ar1::Ar1Likelihood::describe`]).
pub(crate) fn of_run(model: &str, likelihood: &str, target: &Target) -> String {
    serde_json::json!({
        "model": model,
        "likelihood": likelihood,
        "target": crate::config::target_digest(target),
    })
    .to_string()
}

/// What differs between the fingerprint stored in a file and this run's, in
/// words; `None` when they agree. Only keys both carry are compared (files from
/// the CLI carry no likelihood key: their run file text holds it), and an empty or
/// unreadable fingerprint (emcee files, `log_prob_fn` runs) compares equal.
pub(crate) fn mismatch(file: &str, mine: &str) -> Option<String> {
    let parse = |s: &str| match serde_json::from_str::<serde_json::Value>(s) {
        Ok(serde_json::Value::Object(m)) => Some(m),
        _ => None,
    };
    let (a, b) = (parse(file)?, parse(mine)?);
    let diffs: Vec<String> = ["model", "likelihood", "target"]
        .iter()
        .filter_map(|k| match (a.get(*k), b.get(*k)) {
            (Some(x), Some(y)) if x != y => Some(match *k {
                "target" => "target: the observations (times, values or uncertainties) differ from the file's run".to_string(),
                _ => format!("{k}: the file's run has {x}, this sampler has {y}"),
            }),
            _ => None,
        })
        .collect();
    (!diffs.is_empty()).then(|| diffs.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_differs() {
        let t = Target::new().add_variable("tas", vec![1.0, 2.0], vec![0.0, 1.0], vec![0.1, 0.1]).unwrap();
        let u = Target::new().add_variable("tas", vec![1.0, 2.0], vec![0.0, 1.5], vec![0.1, 0.1]).unwrap();
        let a = of_run("one_box", "gaussian relative_error=0.05", &t);
        assert_eq!(mismatch(&a, &a), None);
        let m = mismatch(&a, &of_run("one_box", "gaussian relative_error=0", &t)).unwrap();
        assert!(m.contains("relative_error=0.05") && m.contains("relative_error=0\""), "{m}");
        assert!(mismatch(&a, &of_run("one_box", "gaussian relative_error=0.05", &u)).unwrap().starts_with("target"));
        assert_eq!(mismatch("", &a), None);
        // A CLI fingerprint has no likelihood key: only the common keys count.
        let cli = serde_json::json!({"model": "one_box", "target": crate::config::target_digest(&t), "priors": []}).to_string();
        assert_eq!(mismatch(&cli, &a), None);
    }
}
