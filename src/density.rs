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

    /// [`LogDensity::to_physical`] of a block of row-major `dim()`-vectors (the
    /// sampler stores a whole ensemble at once). The default maps row by row; a
    /// density whose transform is the identity may copy the block in one go.
    fn to_physical_rows(&self, x: &[f64], out: &mut [f64]) {
        let dim = self.dim();
        if dim == 0 {
            return;
        }
        for (xr, or) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
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
    fn to_physical_rows(&self, x: &[f64], out: &mut [f64]) {
        out.copy_from_slice(x);
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
            fn to_physical_rows(&self, x: &[f64], out: &mut [f64]) {
                (**self).to_physical_rows(x, out)
            }
            fn param_names(&self) -> Vec<String> {
                (**self).param_names()
            }
        }
    )*};
}

forward_log_density!(&D, std::sync::Arc<D>, Box<D>);
