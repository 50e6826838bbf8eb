//! Writer of emcee's HDF5 chain layout (feature `hdf5`), for `climcal.emcee`'s
//! `HDFBackend`: one group (`name`) per chain, as emcee 3's `HDFBackend` writes it.
//!
//! - attrs `version` (text), `nwalkers`, `ndim`, `iteration` (int64; the commit
//!   point), `has_blobs` (bool, as h5py stores it: an int8 enum `FALSE`/`TRUE`),
//!   `random_state_0` … `random_state_4` (numpy's `RandomState.get_state()`:
//!   `'MT19937'` as a variable-length UTF-8 string, the `uint32[624]` key, int64,
//!   int64, float64) and `climcal_move_state` (the moves' configuration and tuning
//!   state as JSON text in a zero-padded `uint8` array, see
//!   [`super::h5io::set_text_bytes_attr`]);
//! - datasets `chain (rows, nwalkers, ndim)` and `log_prob (rows, nwalkers)` in the
//!   backend's element type, `accepted (nwalkers)` float64, and `blobs (rows,
//!   nwalkers)` of the blob element type, created by [`EmceeWriter::grow`] when the
//!   model returns blobs.
//!
//! Element types come as a description of a numpy dtype ([`NpType`], JSON from
//! `climcal.emcee`), from which the HDF5 type h5py itself creates for that dtype is
//! built (h5py's `h5t.py_create`): integers and floats of their size and byte
//! order (long double as HDF5's native long double, float16 as h5py's IEEE half),
//! bool as the int8 enum `FALSE`/`TRUE`, complex as the compound `r`, `i`, fixed
//! bytes `S<n>` as a null-padded string, structured dtypes as compounds at their
//! offsets, sub-arrays as HDF5 arrays, void as opaque. Rows are written from raw
//! bytes in that layout, so h5py and emcee read back exactly what was passed.
//!
//! Commits ([`EmceeWriter::append`]): open the file without HDF5's lock, write the
//! rows after the committed `iteration` (growing the datasets when needed), flush,
//! add the acceptance counts, write the random state and the move state, then
//! `iteration` (the commit point), close. A reader in another process, or a run
//! killed at any moment, sees the rows up to `iteration` only. Live readers: as the
//! core's chain files (see [`crate::storage`]), the file is kept longer than HDF5's
//! allocated end while a run writes it, so a reader that checked the file's length
//! just before a commit moved that end never finds a "truncated file";
//! [`EmceeWriter::trim`] gives the margin back. Rows the run grows into are placed
//! when they are grown (early allocation, for uncompressed datasets), so commits
//! write into space the file already has.

use std::path::{Path, PathBuf};

use hdf5::plist::dataset_create::AllocTime;
use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, Datatype, File, Group, Location};
use hdf5_sys::h5d::H5Dwrite;
use hdf5_sys::h5p::H5P_DEFAULT;
use hdf5_sys::h5s::{H5S_seloper_t, H5Sclose, H5Screate_simple, H5Sselect_hyperslab};
use hdf5_sys::h5t::{
    H5T_class_t, H5T_cset_t, H5T_order_t, H5T_str_t, H5Tarray_create2, H5Tcopy, H5Tcreate, H5Tenum_create, H5Tenum_insert,
    H5Tinsert, H5Tset_cset, H5Tset_ebias, H5Tset_fields, H5Tset_order, H5Tset_precision, H5Tset_size, H5Tset_strpad, H5Tset_tag,
};
use serde::Deserialize;

use super::h5io::{create_file, ferr, get_attr, h5, keep_margin, open_retry, set_attr, set_str_attr, set_text_bytes_attr};
use crate::error::Result;

/// Byte order of a numpy dtype (`"<"`, `">"`, or `"="`/`"|"`: native).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Order {
    #[serde(rename = "<")]
    Little,
    #[serde(rename = ">")]
    Big,
    #[serde(rename = "=", alias = "|")]
    Native,
}

/// The floating-point formats h5py maps numpy floats to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FloatFormat {
    /// IEEE half, single, double (by `size`).
    Ieee,
    /// The platform's C `long double` (x87 80-bit extended on x86-64): HDF5's native long double.
    Native,
    /// IEEE quadruple (`long double` on some platforms).
    Quad,
}

/// A numpy dtype, as `climcal.emcee` describes it (tagged by `kind`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum NpType {
    /// `bool`.
    Bool,
    /// Signed integers (`size` 1, 2, 4, 8 bytes); `enum` members (h5py's enum hint) make it an enum.
    Int {
        size: usize,
        order: Order,
        #[serde(default, rename = "enum")]
        members: Option<Vec<(String, i64)>>,
    },
    /// Unsigned integers.
    Uint {
        size: usize,
        order: Order,
        #[serde(default, rename = "enum")]
        members: Option<Vec<(String, i64)>>,
    },
    /// Floats of `size` bytes in `format`.
    Float { size: usize, order: Order, format: FloatFormat },
    /// Complex: `size` bytes, two floats `r`, `i` of half that.
    Complex { size: usize, order: Order, format: FloatFormat },
    /// Fixed-length bytes (`S<size>`); `utf8` from h5py's `h5py_encoding` hint.
    Bytes {
        size: usize,
        #[serde(default)]
        utf8: bool,
    },
    /// Raw bytes (`V<size>`), with h5py's opaque tag when there is one.
    Opaque {
        size: usize,
        #[serde(default)]
        tag: Option<String>,
    },
    /// A sub-array of `base` with `shape`.
    Array { shape: Vec<usize>, base: Box<NpType> },
    /// A structured dtype of `size` bytes.
    Compound { size: usize, fields: Vec<Field> },
}

/// One field of a structured dtype.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Field {
    pub name: String,
    pub offset: usize,
    #[serde(rename = "type")]
    pub ty: NpType,
}

impl NpType {
    /// Parse the JSON description.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("invalid dtype description {text}: {e}"))
    }

    /// Bytes per element (numpy's `itemsize`).
    pub fn size(&self) -> usize {
        match self {
            NpType::Bool => 1,
            NpType::Int { size, .. } | NpType::Uint { size, .. } | NpType::Float { size, .. } | NpType::Complex { size, .. } => {
                *size
            }
            NpType::Bytes { size, .. } | NpType::Opaque { size, .. } | NpType::Compound { size, .. } => *size,
            NpType::Array { shape, base } => base.size() * shape.iter().product::<usize>(),
        }
    }

    /// The HDF5 type h5py creates for this dtype.
    pub fn to_h5(&self) -> hdf5::Result<Datatype> {
        hdf5::sync::sync(|| unsafe { self.build() })
    }

    unsafe fn build(&self) -> hdf5::Result<Datatype> {
        use hdf5::globals::*;
        let own = |id| hdf5::from_id::<Datatype>(hdf5::h5check(id)?);
        let ordered = |t: Datatype, order: Order| -> hdf5::Result<Datatype> {
            match order {
                Order::Little => hdf5::h5check(H5Tset_order(t.id(), H5T_order_t::H5T_ORDER_LE))?,
                Order::Big => hdf5::h5check(H5Tset_order(t.id(), H5T_order_t::H5T_ORDER_BE))?,
                Order::Native => 0,
            };
            Ok(t)
        };
        let int = |size: usize, signed: bool, order: Order| -> hdf5::Result<Datatype> {
            let base = match (size, signed) {
                (1, true) => *H5T_NATIVE_INT8,
                (2, true) => *H5T_NATIVE_INT16,
                (4, true) => *H5T_NATIVE_INT32,
                (8, true) => *H5T_NATIVE_INT64,
                (1, false) => *H5T_NATIVE_UINT8,
                (2, false) => *H5T_NATIVE_UINT16,
                (4, false) => *H5T_NATIVE_UINT32,
                (8, false) => *H5T_NATIVE_UINT64,
                _ => return Err(format!("unsupported integer size ({size})").into()),
            };
            ordered(own(H5Tcopy(base))?, order)
        };
        let enumed = |base: Datatype, members: &[(String, i64)]| -> hdf5::Result<Datatype> {
            let t = own(H5Tenum_create(base.id()))?;
            // h5py inserts enum members sorted by name, each value converted to the base type.
            let mut m: Vec<_> = members.to_vec();
            m.sort();
            for (name, v) in m {
                let c = std::ffi::CString::new(name).map_err(|e| hdf5::Error::from(e.to_string()))?;
                let bytes = v.to_le_bytes();
                let n = base.size();
                let mut buf = [0u8; 8];
                buf[..n].copy_from_slice(&bytes[..n]);
                if base.byte_order() == hdf5::datatype::ByteOrder::BigEndian {
                    buf[..n].reverse();
                }
                hdf5::h5check(H5Tenum_insert(t.id(), c.as_ptr(), buf.as_ptr().cast()))?;
            }
            Ok(t)
        };
        let float = |size: usize, order: Order, format: FloatFormat| -> hdf5::Result<Datatype> {
            let t = match (format, size) {
                (FloatFormat::Ieee, 2) => {
                    // h5py's IEEE half (HDF5 before 1.14.4 has none built in).
                    let t = own(H5Tcopy(*H5T_IEEE_F32LE))?;
                    hdf5::h5check(H5Tset_fields(t.id(), 15, 10, 5, 0, 10))?;
                    hdf5::h5check(H5Tset_size(t.id(), 2))?;
                    hdf5::h5check(H5Tset_ebias(t.id(), 15))?;
                    t
                }
                (FloatFormat::Ieee, 4) => own(H5Tcopy(*H5T_NATIVE_FLOAT))?,
                (FloatFormat::Ieee, 8) => own(H5Tcopy(*H5T_NATIVE_DOUBLE))?,
                (FloatFormat::Native, _) => {
                    let t = own(H5Tcopy(*H5T_NATIVE_LDOUBLE))?;
                    if t.size() != size {
                        return Err(
                            format!("numpy's long double has {size} bytes, HDF5's native long double {}", t.size()).into()
                        );
                    }
                    t
                }
                (FloatFormat::Quad, 16) => {
                    let t = own(H5Tcopy(*H5T_IEEE_F64LE))?;
                    hdf5::h5check(H5Tset_size(t.id(), 16))?;
                    hdf5::h5check(H5Tset_precision(t.id(), 128))?;
                    hdf5::h5check(H5Tset_fields(t.id(), 127, 112, 15, 0, 112))?;
                    hdf5::h5check(H5Tset_ebias(t.id(), 16383))?;
                    t
                }
                _ => return Err(format!("unsupported float type ({size} bytes, {format:?})").into()),
            };
            ordered(t, order)
        };
        match self {
            NpType::Bool => enumed(own(H5Tcopy(*H5T_NATIVE_INT8))?, &[("FALSE".into(), 0), ("TRUE".into(), 1)]),
            NpType::Int { size, order, members } | NpType::Uint { size, order, members } => {
                let base = int(*size, matches!(self, NpType::Int { .. }), *order)?;
                match members {
                    Some(m) => enumed(base, m),
                    None => Ok(base),
                }
            }
            NpType::Float { size, order, format } => float(*size, *order, *format),
            NpType::Complex { size, order, format } => {
                let half = size / 2;
                let part = float(half, *order, *format)?;
                let t = own(H5Tcreate(H5T_class_t::H5T_COMPOUND, *size))?;
                hdf5::h5check(H5Tinsert(t.id(), c"r".as_ptr(), 0, part.id()))?;
                hdf5::h5check(H5Tinsert(t.id(), c"i".as_ptr(), half, part.id()))?;
                Ok(t)
            }
            NpType::Bytes { size, utf8 } => {
                let t = own(H5Tcopy(*H5T_C_S1))?;
                hdf5::h5check(H5Tset_size(t.id(), *size))?;
                hdf5::h5check(H5Tset_strpad(t.id(), H5T_str_t::H5T_STR_NULLPAD))?;
                if *utf8 {
                    hdf5::h5check(H5Tset_cset(t.id(), H5T_cset_t::H5T_CSET_UTF8))?;
                }
                Ok(t)
            }
            NpType::Opaque { size, tag } => {
                let t = own(H5Tcreate(H5T_class_t::H5T_OPAQUE, *size))?;
                if let Some(tag) = tag {
                    let c = std::ffi::CString::new(tag.as_str()).map_err(|e| hdf5::Error::from(e.to_string()))?;
                    hdf5::h5check(H5Tset_tag(t.id(), c.as_ptr()))?;
                }
                Ok(t)
            }
            NpType::Array { shape, base } => {
                let b = base.build()?;
                let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
                own(H5Tarray_create2(b.id(), dims.len() as u32, dims.as_ptr()))
            }
            NpType::Compound { size, fields } => {
                // As h5py: members placed in order of offset, none overlapping the one
                // before it; the compound at least numpy's itemsize.
                let mut order: Vec<usize> = (0..fields.len()).collect();
                order.sort_by_key(|&i| fields[i].offset);
                let mut placed = vec![(0usize, None::<Datatype>); fields.len()];
                let mut next = 0usize;
                for i in order {
                    let t = fields[i].ty.build()?;
                    let off = next.max(fields[i].offset);
                    next = off + t.size();
                    placed[i] = (off, Some(t));
                }
                let t = own(H5Tcreate(H5T_class_t::H5T_COMPOUND, next.max(*size)))?;
                for (f, (off, ft)) in fields.iter().zip(placed) {
                    let c = std::ffi::CString::new(f.name.as_str()).map_err(|e| hdf5::Error::from(e.to_string()))?;
                    hdf5::h5check(H5Tinsert(t.id(), c.as_ptr(), off, ft.expect("placed").id()))?;
                }
                Ok(t)
            }
        }
    }
}

/// Rows of one element type: its description and the raw bytes (numpy's layout,
/// C order).
#[derive(Debug, Clone, Copy)]
pub struct RawRows<'a> {
    pub dtype: &'a NpType,
    pub bytes: &'a [u8],
}

/// One value of numpy's `RandomState.get_state()` tuple (stored as
/// `random_state_<i>`).
#[derive(Debug, Clone, PartialEq)]
pub enum StateValue {
    Text(String),
    Int(i64),
    Float(f64),
    U32s(Vec<u32>),
}

/// What one commit stores.
#[derive(Debug, Clone)]
pub struct Commit<'a> {
    /// Rows (steps) in this commit.
    pub n: usize,
    /// `(n, nwalkers, ndim)` positions.
    pub chain: RawRows<'a>,
    /// `(n, nwalkers)` log-probabilities.
    pub log_prob: RawRows<'a>,
    /// `(n, nwalkers)` blobs (each of the blob dtype).
    pub blobs: Option<RawRows<'a>>,
    /// Acceptance masks `(n, nwalkers)`, row-major.
    pub accepted: &'a [bool],
    /// The random state after the last row (none: left as stored).
    pub random_state: Option<Vec<StateValue>>,
    /// The moves' state after the last row (none: left as stored).
    pub move_state: Option<&'a str>,
    /// Keep the margin for live readers after the commit (more commits follow
    /// soon); otherwise give it back.
    pub keep_margin: bool,
}

/// Writer of one emcee-layout group of an HDF5 file (see the module docs). Every
/// call opens the file, writes and closes it, so that readers (h5py, emcee) can
/// read between calls.
#[derive(Debug)]
pub struct EmceeWriter {
    path: PathBuf,
    name: String,
    /// gzip level of the row datasets (`None`: uncompressed).
    gzip: Option<u8>,
    /// The file length [`keep_margin`] last set (0: none kept).
    reserved: u64,
}

/// Rows per chunk: about 128 KiB per chunk, at least one row.
fn chunk_rows(row_bytes: usize) -> usize {
    (131_072 / row_bytes.max(1)).clamp(1, 4096)
}

impl EmceeWriter {
    /// A writer of group `name` of `path` (nothing is opened yet).
    pub fn new(path: &Path, name: &str, gzip: Option<u8>) -> Self {
        Self { path: path.to_path_buf(), name: name.to_string(), gzip, reserved: 0 }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self) -> Result<File> {
        if self.path.exists() {
            open_retry(&self.path, true)
        } else {
            create_file(&self.path).map_err(h5(&self.path, "cannot create"))
        }
    }

    fn reserve(&mut self, extra: u64) -> Result<()> {
        if !self.path.exists() {
            return Ok(()); // created by the call that follows
        }
        keep_margin(&self.path, extra, &mut self.reserved).map_err(|e| ferr(&self.path, format!("cannot reserve space: {e}")))
    }

    fn group(&self, f: &File) -> Result<Group> {
        f.group(&self.name).map_err(|_| ferr(&self.path, format!("has no group '{}' (reset the backend first)", self.name)))
    }

    fn row_dataset(&self, g: &Group, name: &str, t: &Datatype, inner: &[usize]) -> hdf5::Result<Dataset> {
        let row: usize = inner.iter().product::<usize>() * t.size();
        let mut chunk = vec![chunk_rows(row)];
        chunk.extend_from_slice(inner);
        let mut b = g.new_dataset_builder().empty_as(t).chunk(chunk);
        b = match self.gzip {
            Some(level) => b.deflate(level),
            // Rows grown are placed at once (see the module docs).
            None => b.alloc_time(Some(AllocTime::Early)),
        };
        let mut shape: Vec<hdf5::Extent> = vec![hdf5::Extent::resizable(0)];
        shape.extend(inner.iter().map(|&d| hdf5::Extent::fixed(d)));
        b.shape(shape).create(name)
    }

    /// Create (or empty) the group for `nwalkers × ndim`, chain and log-probabilities
    /// of `dtype`, as emcee's `reset`: other groups of the file stay. Creates the
    /// file when missing.
    pub fn reset(&mut self, nwalkers: usize, ndim: usize, dtype: &NpType, version: &str) -> Result<()> {
        self.reserve(1 << 20)?;
        let f = self.open()?;
        let path = self.path.clone();
        let e = h5(&path, "cannot reset");
        if f.link_exists(&self.name) {
            f.unlink(&self.name).map_err(&e)?;
        }
        let g = f.create_group(&self.name).map_err(&e)?;
        set_str_attr(&g, "version", version).map_err(&e)?;
        set_attr(&g, "nwalkers", &(nwalkers as i64)).map_err(&e)?;
        set_attr(&g, "ndim", &(ndim as i64)).map_err(&e)?;
        set_attr(&g, "has_blobs", &false).map_err(&e)?;
        set_attr(&g, "iteration", &0i64).map_err(&e)?;
        g.new_dataset::<f64>()
            .shape(vec![nwalkers])
            .create("accepted")
            .and_then(|d| d.write_raw(&vec![0.0f64; nwalkers]))
            .map_err(&e)?;
        let t = dtype.to_h5().map_err(&e)?;
        self.row_dataset(&g, "chain", &t, &[nwalkers, ndim]).map_err(&e)?;
        self.row_dataset(&g, "log_prob", &t, &[nwalkers]).map_err(&e)?;
        drop(g);
        f.close().map_err(&e)?;
        self.reserve(1 << 20)
    }

    /// Make room for `ngrow` steps after the committed ones (as emcee's `grow`:
    /// the row datasets get `iteration + ngrow` rows), creating `blobs` of the
    /// element type `blobs` (`Array` for blobs with a shape of their own) the
    /// first time.
    pub fn grow(&mut self, ngrow: usize, blobs: Option<&NpType>) -> Result<()> {
        let path = self.path.clone();
        let f = open_retry(&path, true)?;
        let e = h5(&path, "cannot grow");
        let g = self.group(&f)?;
        let it = committed(&g, &self.path)?;
        let nw = get_attr::<i64>(&g, "nwalkers").map_err(&e)? as usize;
        let total = it + ngrow;
        let mut bytes = 0u64;
        for name in ["chain", "log_prob", "blobs"] {
            if let Ok(ds) = g.dataset(name) {
                let shape = ds.shape();
                let row: usize = shape[1..].iter().product::<usize>() * ds.dtype().map(|t| t.size()).unwrap_or(8);
                bytes += (total.saturating_sub(shape[0]) * row) as u64;
            }
        }
        if let Some(b) = blobs {
            bytes += (total * nw * b.size()) as u64;
        }
        drop(g);
        f.close().map_err(&e)?;
        // The space the new rows take (placed now), and room for metadata.
        self.reserve(bytes + (1 << 20))?;
        let f = open_retry(&path, true)?;
        let g = self.group(&f)?;
        for name in ["chain", "log_prob", "blobs"] {
            if let Ok(ds) = g.dataset(name) {
                let mut shape = ds.shape();
                shape[0] = total;
                ds.resize(shape).map_err(&e)?;
            }
        }
        if let Some(b) = blobs {
            if !g.link_exists("blobs") {
                let t = b.to_h5().map_err(&e)?;
                self.row_dataset(&g, "blobs", &t, &[nw]).map_err(&e)?.resize((total, nw)).map_err(&e)?;
            }
            set_attr(&g, "has_blobs", &true).map_err(&e)?;
        }
        drop(g);
        f.close().map_err(&e)?;
        self.reserve(1 << 20)
    }

    /// Append `c.n` rows after the committed ones and commit them (see the module
    /// docs for the order). Returns the new `iteration`.
    pub fn append(&mut self, c: &Commit<'_>) -> Result<usize> {
        let path = self.path.clone();
        let e = h5(&path, "cannot write");
        let row_bytes = c.chain.bytes.len() + c.log_prob.bytes.len() + c.blobs.map_or(0, |b| b.bytes.len());
        let extra = 2 * row_bytes as u64 + (1 << 20);
        self.reserve(extra)?;
        let f = open_retry(&path, true)?;
        let g = self.group(&f)?;
        let r0 = committed(&g, &path)?;
        let nw = get_attr::<i64>(&g, "nwalkers").map_err(&e)? as usize;
        if c.accepted.len() != c.n * nw {
            return Err(ferr(&path, format!("{} acceptance flags for {} rows of {nw} walkers", c.accepted.len(), c.n)));
        }
        if c.n > 0 {
            write_rows(&g, "chain", r0, c.n, c.chain, &path)?;
            write_rows(&g, "log_prob", r0, c.n, c.log_prob, &path)?;
            match (c.blobs, g.link_exists("blobs")) {
                (Some(b), true) => write_rows(&g, "blobs", r0, c.n, b, &path)?,
                (Some(_), false) => return Err(ferr(&path, "has no blobs dataset (grow the backend with blobs first)")),
                (None, _) => {}
            }
            f.flush().map_err(&e)?;
            self.reserve(extra)?;
        }
        let acc = g.dataset("accepted").map_err(&e)?;
        let mut counts = acc.read_raw::<f64>().map_err(&e)?;
        if counts.len() != nw {
            return Err(ferr(&path, format!("'accepted' has {} values for {nw} walkers", counts.len())));
        }
        for row in c.accepted.chunks_exact(nw.max(1)) {
            for (a, &x) in counts.iter_mut().zip(row) {
                *a += f64::from(u8::from(x));
            }
        }
        acc.write_raw(&counts).map_err(&e)?;
        if let Some(rs) = &c.random_state {
            for (i, v) in rs.iter().enumerate() {
                set_state_value(&g, &format!("random_state_{i}"), v).map_err(&e)?;
            }
        }
        match c.move_state {
            // Steps stored without the moves' state: a stale one must not outlive them.
            Some("") => {
                let stale = g.attr("climcal_move_state").is_ok();
                stale.then(|| g.delete_attr("climcal_move_state")).transpose().map_err(&e)?;
            }
            Some(m) => set_text_bytes_attr(&g, "climcal_move_state", m).map_err(&e)?,
            None => {}
        }
        let r1 = r0 + c.n;
        set_attr(&g, "iteration", &(r1 as i64)).map_err(&e)?;
        drop((acc, g));
        f.close().map_err(&e)?;
        if c.keep_margin {
            self.reserve(extra)?;
        } else {
            self.reserved = 0;
        }
        Ok(r1)
    }

    /// Give back the margin kept for live readers (the file ends at HDF5's
    /// allocated end again). Nothing to do when none is kept.
    pub fn trim(&mut self) -> Result<()> {
        if self.reserved == 0 || !self.path.exists() {
            return Ok(());
        }
        // Opening the file for writing and closing it makes HDF5 trim it.
        let f = open_retry(&self.path, true)?;
        f.close().map_err(h5(&self.path, "cannot trim"))?;
        self.reserved = 0;
        Ok(())
    }
}

fn committed(g: &Group, path: &Path) -> Result<usize> {
    let it = get_attr::<i64>(g, "iteration").map_err(h5(path, "has no 'iteration'"))?;
    usize::try_from(it).map_err(|_| ferr(path, format!("has a negative 'iteration' ({it})")))
}

/// Write `n` rows at row `r0` of dataset `name` from raw bytes of `rows.dtype`
/// (HDF5 converts to the dataset's type, as h5py's writes do), growing it first
/// when it is shorter.
fn write_rows(g: &Group, name: &str, r0: usize, n: usize, rows: RawRows<'_>, path: &Path) -> Result<()> {
    let e = h5(path, &format!("cannot write '{name}'"));
    let ds = g.dataset(name).map_err(&e)?;
    let mut shape = ds.shape();
    let inner: usize = shape[1..].iter().product();
    let want = n * inner * rows.dtype.size();
    if rows.bytes.len() != want {
        return Err(ferr(
            path,
            format!(
                "'{name}': {} bytes for {n} rows of {:?} elements of {} bytes",
                rows.bytes.len(),
                &shape[1..],
                rows.dtype.size()
            ),
        ));
    }
    if shape[0] < r0 + n {
        shape[0] = r0 + n;
        ds.resize(shape.clone()).map_err(&e)?;
    }
    let mt = rows.dtype.to_h5().map_err(&e)?;
    let mut count: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    count[0] = n as u64;
    let mut start = vec![0u64; shape.len()];
    start[0] = r0 as u64;
    let rc = hdf5::sync::sync(|| unsafe {
        let fs = hdf5_sys::h5d::H5Dget_space(ds.id());
        if fs < 0 {
            return -1;
        }
        let ms = H5Screate_simple(count.len() as i32, count.as_ptr(), std::ptr::null());
        let mut rc = -1;
        if ms >= 0
            && H5Sselect_hyperslab(
                fs,
                H5S_seloper_t::H5S_SELECT_SET,
                start.as_ptr(),
                std::ptr::null(),
                count.as_ptr(),
                std::ptr::null(),
            ) >= 0
        {
            rc = H5Dwrite(ds.id(), mt.id(), ms, fs, H5P_DEFAULT, rows.bytes.as_ptr().cast());
        }
        if ms >= 0 {
            H5Sclose(ms);
        }
        H5Sclose(fs);
        rc
    });
    hdf5::h5check(rc).map(|_| ()).map_err(&e)
}

/// Write one value of the random state, in place when the attribute has its type
/// and shape (so that commits do not allocate), otherwise (re)created. The text
/// (`'MT19937'`) is a variable-length string, as h5py writes a `str` (numpy's
/// `set_state` needs a `str`, not bytes), written only when it changes: rewriting
/// a variable-length string allocates a new global heap collection at the file's
/// end at every commit.
fn set_state_value(g: &Location, name: &str, v: &StateValue) -> hdf5::Result<()> {
    match v {
        StateValue::Text(s) => {
            let same = g.attr(name).and_then(|a| a.read_scalar::<VarLenUnicode>()).map(|x| x.as_str() == s).unwrap_or(false);
            if !same {
                if g.attr(name).is_ok() {
                    g.delete_attr(name)?;
                }
                set_str_attr(g, name, s)?;
            }
            Ok(())
        }
        StateValue::Int(x) => scalar_attr(g, name, x),
        StateValue::Float(x) => scalar_attr(g, name, x),
        StateValue::U32s(x) => {
            if let Ok(a) = g.attr(name) {
                if a.shape() == [x.len()] && a.dtype().map(|t| t.is::<u32>()).unwrap_or(false) {
                    return a.write_raw(x);
                }
                g.delete_attr(name)?;
            }
            g.new_attr::<u32>().shape([x.len()]).create(name)?.write_raw(x)
        }
    }
}

fn scalar_attr<T: hdf5::H5Type>(g: &Location, name: &str, v: &T) -> hdf5::Result<()> {
    if let Ok(a) = g.attr(name) {
        if a.shape().is_empty() && a.dtype().map(|t| t.is::<T>()).unwrap_or(false) {
            return a.write_scalar(v);
        }
        g.delete_attr(name)?;
    }
    g.new_attr::<T>().create(name)?.write_scalar(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f8() -> NpType {
        NpType::Float { size: 8, order: Order::Native, format: FloatFormat::Ieee }
    }

    #[test]
    fn describes_parse_and_size() {
        let t = NpType::from_json(
            r#"{"kind":"compound","size":24,"fields":[{"name":"a","offset":0,"type":{"kind":"float","size":8,"order":"<","format":"ieee"}},
               {"name":"b","offset":8,"type":{"kind":"array","shape":[2],"base":{"kind":"int","size":4,"order":"="}}},
               {"name":"c","offset":16,"type":{"kind":"bool"}}]}"#,
        )
        .unwrap();
        assert_eq!(t.size(), 24);
        let h = t.to_h5().unwrap();
        assert_eq!(h.size(), 24);
        assert!(NpType::from_json(r#"{"kind":"unicode","size":4}"#).is_err());
    }

    #[test]
    fn commit_round_trip_and_other_groups_stay() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.h5");
        let mut w = EmceeWriter::new(&p, "mcmc", None);
        w.reset(4, 2, &f8(), "3.1.6").unwrap();
        let mut other = EmceeWriter::new(&p, "other", Some(4));
        other.reset(2, 1, &f8(), "3.1.6").unwrap();
        w.grow(3, None).unwrap();
        let chain: Vec<f64> = (0..2 * 4 * 2).map(f64::from).collect();
        let lp: Vec<f64> = (0..2 * 4).map(|i| -f64::from(i)).collect();
        let cb: Vec<u8> = chain.iter().flat_map(|x| x.to_ne_bytes()).collect();
        let lb: Vec<u8> = lp.iter().flat_map(|x| x.to_ne_bytes()).collect();
        let acc = [true, false, true, true, false, false, true, true];
        let t = f8();
        let c = Commit {
            n: 2,
            chain: RawRows { dtype: &t, bytes: &cb },
            log_prob: RawRows { dtype: &t, bytes: &lb },
            blobs: None,
            accepted: &acc,
            random_state: Some(vec![
                StateValue::Text("MT19937".into()),
                StateValue::U32s(vec![7; 624]),
                StateValue::Int(3),
                StateValue::Int(0),
                StateValue::Float(0.5),
            ]),
            move_state: Some(r#"{"moves":[]}"#),
            keep_margin: false,
        };
        assert_eq!(w.append(&c).unwrap(), 2);
        assert_eq!(w.append(&c).unwrap(), 4); // grows past the 3 rows placed
        let f = File::open(&p).unwrap();
        let g = f.group("mcmc").unwrap();
        assert_eq!(get_attr::<i64>(&g, "iteration").unwrap(), 4);
        let got = g.dataset("chain").unwrap().read_raw::<f64>().unwrap();
        assert_eq!(&got[..16], &chain[..]);
        assert_eq!(&got[16..], &chain[..]);
        assert_eq!(g.dataset("accepted").unwrap().read_raw::<f64>().unwrap(), vec![2.0, 0.0, 4.0, 4.0]);
        assert_eq!(super::super::h5io::get_text_bytes_attr(&g, "climcal_move_state").unwrap(), r#"{"moves":[]}"#);
        assert!(f.group("other").is_ok());
    }
}
