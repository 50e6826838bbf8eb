//! The one interface the sampler, the optimiser and the executors see: a
//! log-density over an unbounded parameter vector.

/// A log-probability density over `dim()`-vectors in the sampler's space.
///
/// Return `-inf` for points outside the support and `NaN` for a *failure* (a
/// model that errored or produced NaN): executors count NaN and panics as
/// failures and turn them into `-inf`.
pub trait LogDensity: Send + Sync {
    /// Length of the parameter vector.
    fn dim(&self) -> usize;

    /// Log-density at `x` (sampler space).
    fn ln_prob(&self, x: &[f64]) -> f64;

    /// Number of extra values ("blobs") stored per sample; 0 by default.
    fn n_blobs(&self) -> usize {
        0
    }

    /// Log-density and blobs (written into `blob`, length `n_blobs()`).
    /// The default ignores `blob`.
    fn ln_prob_with_blob(&self, x: &[f64], blob: &mut [f64]) -> f64 {
        let _ = blob;
        self.ln_prob(x)
    }

    /// Map a sampler-space vector to the physical values stored in chains.
    /// The default is the identity.
    fn to_physical(&self, x: &[f64], out: &mut [f64]) {
        out.copy_from_slice(x);
    }

    /// Map physical values to sampler space (inverse of [`LogDensity::to_physical`]).
    fn to_sampler(&self, x: &[f64], out: &mut [f64]) {
        out.copy_from_slice(x);
    }

    /// Append [`LogDensity::to_physical`] of a block of row-major `dim()`-vectors
    /// to `out` (the sampler stores a whole ensemble at once). The default maps
    /// row by row; a density whose transform is the identity appends the block in
    /// one copy.
    fn extend_physical(&self, x: &[f64], out: &mut Vec<f64>) {
        let dim = self.dim();
        let start = out.len();
        out.resize(start + x.len(), 0.0);
        if dim == 0 {
            return;
        }
        for (xr, or) in x.chunks_exact(dim).zip(out[start..].chunks_exact_mut(dim)) {
            self.to_physical(xr, or);
        }
    }

    /// Names of the parameters (defaults to `p0, p1, …`).
    fn param_names(&self) -> Vec<String> {
        (0..self.dim()).map(|i| format!("p{i}")).collect()
    }
}

/// A log-density from a closure, as emcee's `log_prob_fn`.
///
/// ```
/// # use climcal::density::{FnDensity, LogDensity};
/// let d = FnDensity::new(2, |x: &[f64]| -0.5 * (x[0] * x[0] + x[1] * x[1]));
/// assert_eq!(d.ln_prob(&[0.0, 0.0]), 0.0);
/// ```
#[derive(Clone)]
pub struct FnDensity<F> {
    dim: usize,
    f: F,
}

impl<F: Fn(&[f64]) -> f64 + Send + Sync> FnDensity<F> {
    /// Wrap `f` as a `dim`-dimensional density.
    pub fn new(dim: usize, f: F) -> Self {
        Self { dim, f }
    }
}

impl<F: Fn(&[f64]) -> f64 + Send + Sync> LogDensity for FnDensity<F> {
    #[inline]
    fn dim(&self) -> usize {
        self.dim
    }
    #[inline]
    fn ln_prob(&self, x: &[f64]) -> f64 {
        (self.f)(x)
    }
    /// The transform is the identity: one copy for the whole block.
    fn extend_physical(&self, x: &[f64], out: &mut Vec<f64>) {
        out.extend_from_slice(x);
    }
}

/// Forward every method of [`LogDensity`] through a pointer type.
macro_rules! forward_log_density {
    ($($ptr:ty),*) => {$(
        impl<D: LogDensity + ?Sized> LogDensity for $ptr {
            fn dim(&self) -> usize {
                (**self).dim()
            }
            fn ln_prob(&self, x: &[f64]) -> f64 {
                (**self).ln_prob(x)
            }
            fn n_blobs(&self) -> usize {
                (**self).n_blobs()
            }
            fn ln_prob_with_blob(&self, x: &[f64], blob: &mut [f64]) -> f64 {
                (**self).ln_prob_with_blob(x, blob)
            }
            fn to_physical(&self, x: &[f64], out: &mut [f64]) {
                (**self).to_physical(x, out)
            }
            fn to_sampler(&self, x: &[f64], out: &mut [f64]) {
                (**self).to_sampler(x, out)
            }
            fn extend_physical(&self, x: &[f64], out: &mut Vec<f64>) {
                (**self).extend_physical(x, out)
            }
            fn param_names(&self) -> Vec<String> {
                (**self).param_names()
            }
        }
    )*};
}

forward_log_density!(&D, std::sync::Arc<D>, Box<D>);

#[cfg(test)]
mod tests {
    use super::*;

    /// A density whose chains store `exp` of the sampler coordinates.
    struct LogScale;
    impl LogDensity for LogScale {
        fn dim(&self) -> usize {
            2
        }
        fn ln_prob(&self, _: &[f64]) -> f64 {
            0.0
        }
        fn to_physical(&self, x: &[f64], out: &mut [f64]) {
            for (o, v) in out.iter_mut().zip(x) {
                *o = v.exp();
            }
        }
    }

    #[test]
    fn extend_physical_maps_every_row_and_appends() {
        let x = [0.0, 1.0, 2.0, 3.0, -1.0, 0.5];
        let mut out = vec![7.0];
        LogScale.extend_physical(&x, &mut out);
        let want: Vec<f64> = std::iter::once(7.0).chain(x.iter().map(|v| v.exp())).collect();
        assert_eq!(out, want);
        // Through a pointer, and the identity of a closure density.
        let mut out = Vec::new();
        std::sync::Arc::new(LogScale).extend_physical(&x, &mut out);
        assert_eq!(out, want[1..]);
        let mut out = vec![1.0];
        FnDensity::new(2, |_: &[f64]| 0.0).extend_physical(&x, &mut out);
        assert_eq!(out, [1.0, 0.0, 1.0, 2.0, 3.0, -1.0, 0.5]);
    }
}
