//! The small dense linear algebra the moves need (means, sample covariances,
//! Cholesky factors, Gaussian and Student-t log-densities), on row-major
//! `d × d` slices. Dimensions are those of a calibration (≤ a few dozen), so
//! plain loops are enough.

/// Mean of the rows `rows` of `x` (row length `d`) into `out`.
pub fn mean_of(x: &[f64], d: usize, rows: &[usize], out: &mut [f64]) {
    out[..d].fill(0.0);
    for &r in rows {
        for i in 0..d {
            out[i] += x[r * d + i];
        }
    }
    let n = rows.len() as f64;
    for v in &mut out[..d] {
        *v /= n;
    }
}

/// Sample covariance (denominator `n − 1`, as `numpy.cov`) of the rows `rows`
/// of `x`, into `out` (`d × d`, row-major). Needs at least two rows.
pub fn cov_of(x: &[f64], d: usize, rows: &[usize], out: &mut [f64]) {
    let mut m = vec![0.0; d];
    mean_of(x, d, rows, &mut m);
    out[..d * d].fill(0.0);
    for &r in rows {
        let row = &x[r * d..(r + 1) * d];
        for i in 0..d {
            let di = row[i] - m[i];
            for j in 0..=i {
                out[i * d + j] += di * (row[j] - m[j]);
            }
        }
    }
    let n1 = rows.len() as f64 - 1.0;
    for i in 0..d {
        for j in 0..=i {
            let v = out[i * d + j] / n1;
            out[i * d + j] = v;
            out[j * d + i] = v;
        }
    }
}

/// Lower Cholesky factor `L` (`a = L Lᵀ`) of a symmetric `d × d` matrix, or
/// `None` when it is not positive definite.
pub fn cholesky(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
                    return None;
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    Some(l)
}

/// `out = L g` for a lower-triangular `L`.
pub fn lower_mul(l: &[f64], d: usize, g: &[f64], out: &mut [f64]) {
    for i in 0..d {
        let mut s = 0.0;
        for k in 0..=i {
            s += l[i * d + k] * g[k];
        }
        out[i] = s;
    }
}

/// `|L⁻¹ v|²` (the squared Mahalanobis length of `v` for `Σ = L Lᵀ`), using
/// `work` (length `d`).
pub fn mahalanobis2(l: &[f64], d: usize, v: &[f64], work: &mut [f64]) -> f64 {
    let mut s2 = 0.0;
    for i in 0..d {
        let mut s = v[i];
        for k in 0..i {
            s -= l[i * d + k] * work[k];
        }
        let y = s / l[i * d + i];
        work[i] = y;
        s2 += y * y;
    }
    s2
}

/// `ln det Σ` from its Cholesky factor.
pub fn ln_det(l: &[f64], d: usize) -> f64 {
    2.0 * (0..d).map(|i| l[i * d + i].ln()).sum::<f64>()
}

/// `ln Σᵢ exp(xᵢ)` without overflow (−∞ for an empty or all −∞ input).
pub fn log_sum_exp(x: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = x.clone().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY || !m.is_finite() {
        return m;
    }
    m + x.map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// `ln(eᵃ + eᵇ)`, with `−∞` handled.
pub fn log_add_exp(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// Multivariate Student-t log-density with `df` degrees of freedom, location
/// `mu` and scale matrix `Σ = L Lᵀ` (as `scipy.stats.multivariate_t.logpdf`).
pub fn student_t_ln_pdf(x: &[f64], mu: &[f64], l: &[f64], d: usize, df: f64, work: &mut [f64]) -> f64 {
    let v: Vec<f64> = (0..d).map(|i| x[i] - mu[i]).collect();
    let m = mahalanobis2(l, d, &v, work);
    let dd = d as f64;
    statrs::function::gamma::ln_gamma(0.5 * (df + dd))
        - statrs::function::gamma::ln_gamma(0.5 * df)
        - 0.5 * dd * (df * std::f64::consts::PI).ln()
        - 0.5 * ln_det(l, d)
        - 0.5 * (df + dd) * (m / df).ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_reconstructs_and_rejects_indefinite() {
        let a = [4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
        let l = cholesky(&a, 3).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let s: f64 = (0..3).map(|k| l[i * 3 + k] * l[j * 3 + k]).sum();
                assert!((s - a[i * 3 + j]).abs() < 1e-14);
            }
        }
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
        // ln det by the factor: det = 4·5·3 + 2·2·0.4·2 ... computed directly.
        let det = 4.0 * (5.0 * 3.0 - 1.0) - 2.0 * (2.0 * 3.0 - 0.4) + 0.4 * (2.0 - 5.0 * 0.4);
        assert!((ln_det(&l, 3) - f64::ln(det)).abs() < 1e-13);
    }

    #[test]
    fn covariance_matches_numpy_definition() {
        // numpy.cov([[1,2],[3,5],[4,4]], rowvar=False) = [[2.3333, 1.8333], [1.8333, 2.3333]]
        let x = [1.0, 2.0, 3.0, 5.0, 4.0, 4.0];
        let mut c = [0.0; 4];
        cov_of(&x, 2, &[0, 1, 2], &mut c);
        let want = [7.0 / 3.0, 11.0 / 6.0, 11.0 / 6.0, 7.0 / 3.0];
        for (a, b) in c.iter().zip(want) {
            assert!((a - b).abs() < 1e-14, "{c:?}");
        }
    }

    #[test]
    fn student_t_matches_scipy() {
        // scipy.stats.multivariate_t.logpdf([0.3, -1.2], loc=[0.1, 0.2],
        //   shape=[[2.0, 0.3], [0.3, 0.5]], df=10) = -4.02601148524386 (scipy 1.17.1)
        let l = cholesky(&[2.0, 0.3, 0.3, 0.5], 2).unwrap();
        let v = student_t_ln_pdf(&[0.3, -1.2], &[0.1, 0.2], &l, 2, 10.0, &mut [0.0; 2]);
        assert!((v - -4.02601148524386).abs() < 1e-12, "{v}");
    }

    #[test]
    fn log_sum_exp_is_stable() {
        assert!((log_sum_exp([1000.0, 1000.0].into_iter()) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert_eq!(log_sum_exp([f64::NEG_INFINITY].into_iter()), f64::NEG_INFINITY);
        assert_eq!(log_add_exp(f64::NEG_INFINITY, 3.0), 3.0);
        assert!((log_add_exp(0.0, 0.0) - 2f64.ln()).abs() < 1e-15);
    }
}
