//! Small HDF5 helpers shared by the chain, ensemble and projection files: errors
//! naming the file, opening without HDF5's lock (and retrying on a reader's lock),
//! the margin kept for live readers, scalar/text attributes and string datasets.

use std::path::Path;
use std::time::{Duration, Instant};

use hdf5::types::VarLenUnicode;
use hdf5::{File, Group, H5Type, Location};

use crate::error::{Error, Result};

/// How long a writer or reader keeps retrying while another process holds the
/// file's lock (default 10 s), and the pause between tries.
pub(crate) const LOCK_RETRY_FOR: Duration = Duration::from_secs(10);
pub(crate) const LOCK_RETRY_PAUSE: Duration = Duration::from_millis(10);

pub(crate) fn ferr(path: &Path, reason: impl Into<String>) -> Error {
    Error::ChainFile { path: path.to_path_buf(), reason: reason.into() }
}

pub(crate) fn h5<'a>(path: &'a Path, what: &str) -> impl Fn(hdf5::Error) -> Error + 'a {
    let what = what.to_string();
    move |e| ferr(path, format!("{what}: {e}"))
}

/// A real lock conflict (another process holds the file's lock), as HDF5's sec2
/// driver reports it: "unable to lock file, errno = 11, error message = 'Resource
/// temporarily unavailable'". Corrupt files ("unable to read superblock", "truncated
/// file") must not match: they fail at once.
pub(crate) fn is_lock_error(e: &hdf5::Error) -> bool {
    is_lock_message(&e.to_string())
}

pub(crate) fn is_lock_message(m: &str) -> bool {
    let m = m.to_lowercase();
    m.contains("unable to lock file") || m.contains("resource temporarily unavailable") || m.contains("errno = 11,")
}

/// Open a file for writing without HDF5's file lock, so that stock readers (which
/// take HDF5's shared lock) never fail to open it while a checkpoint is written
/// and never make the writer wait (see [`crate::storage`], "Live readers").
pub(crate) fn open_write(path: &Path) -> hdf5::Result<File> {
    File::with_options().with_fapl(|p| p.file_locking(false)).open_rw(path)
}

/// Create (truncate) a file without HDF5's file lock.
pub(crate) fn create_file(path: &Path) -> hdf5::Result<File> {
    File::with_options().with_fapl(|p| p.file_locking(false)).create(path)
}

/// Keep the file at `path` at least `extra` bytes longer than HDF5's allocated end,
/// so that a reader opening the file while a checkpoint is written never finds the
/// superblock's end of file beyond the file's actual end ("truncated file"). A
/// reader checks the file's length when it opens the file and reads the superblock
/// a moment later; should the writer grow the file in between, a file exactly as
/// long as its allocated end would fail that check. HDF5 trims the file to its
/// allocated end at a flush when its own idea of the file's end differs from the
/// allocated end; `reserved` is the length this function last set, so a length
/// other than it means HDF5 trimmed (or grew) the file since, and the margin is
/// renewed — otherwise nothing is written. Measured with stock h5py polling every
/// 2 ms (loaded 2-core machine, load ~12): trimming the file back to its allocated
/// end after each checkpoint left 83 of 10 341 reads failing, 4 096 bytes short.
pub(crate) fn keep_margin(path: &Path, extra: u64, reserved: &mut u64) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    let len = f.metadata()?.len();
    if len != *reserved {
        f.set_len(len + extra)?;
        *reserved = len + extra;
    }
    Ok(())
}

/// Open with retries while another process holds the lock.
pub(crate) fn open_retry(path: &Path, write: bool) -> Result<File> {
    let t0 = Instant::now();
    loop {
        let r = if write { open_write(path) } else { File::open(path) };
        match r {
            Ok(f) => return Ok(f),
            Err(e) if is_lock_error(&e) && t0.elapsed() < LOCK_RETRY_FOR => std::thread::sleep(LOCK_RETRY_PAUSE),
            Err(e) => {
                if !path.exists() {
                    return Err(ferr(path, "does not exist"));
                }
                return Err(ferr(
                    path,
                    format!("cannot open it as HDF5 (corrupt, truncated, not a chain file, or locked by another process): {e}"),
                ));
            }
        }
    }
}

pub(crate) fn set_attr<T: H5Type>(loc: &Location, name: &str, v: &T) -> hdf5::Result<()> {
    match loc.attr(name) {
        Ok(a) => a.write_scalar(v),
        Err(_) => loc.new_attr::<T>().create(name)?.write_scalar(v),
    }
}

pub(crate) fn set_str_attr(loc: &Location, name: &str, v: &str) -> hdf5::Result<()> {
    let s: VarLenUnicode = v.parse().map_err(|e| hdf5::Error::from(format!("{e:?}")))?;
    set_attr(loc, name, &s)
}

pub(crate) fn get_attr<T: H5Type>(loc: &Location, name: &str) -> hdf5::Result<T> {
    loc.attr(name)?.read_scalar::<T>()
}

pub(crate) fn get_str_attr(loc: &Location, name: &str) -> String {
    get_attr::<VarLenUnicode>(loc, name).map(|s| s.as_str().to_string()).unwrap_or_default()
}

/// Store text that a checkpoint rewrites (the moves' tuning state) as a
/// zero-padded byte array attribute, its size a power of two of at least 256
/// bytes, instead of a variable-length string. HDF5 keeps variable-length strings
/// in its global heap, and rewriting one allocates a new heap collection (4 096
/// bytes) at the end of the file during a flush — after an earlier flush of the
/// same checkpoint trimmed the file to its allocated end: a reader that checked the
/// file's length in that instant found it 4 096 bytes short of the new superblock's
/// end ("truncated file"; 1 in ~13 000 reads polling every 2 ms). Rewritten at the
/// same size, the array stays where it is.
pub(crate) fn set_text_bytes_attr(loc: &Location, name: &str, v: &str) -> hdf5::Result<()> {
    let cap = v.len().max(256).next_power_of_two();
    let mut bytes = vec![0u8; cap];
    bytes[..v.len()].copy_from_slice(v.as_bytes());
    if let Ok(a) = loc.attr(name) {
        if a.shape() == [cap] && a.dtype().map(|t| t.is::<u8>()).unwrap_or(false) {
            return a.write_raw(&bytes);
        }
        loc.delete_attr(name)?;
    }
    loc.new_attr::<u8>().shape([cap]).create(name)?.write_raw(&bytes)
}

/// Text written by [`set_text_bytes_attr`] (or, in files written before it, as a
/// variable-length string); empty when absent.
pub(crate) fn get_text_bytes_attr(loc: &Location, name: &str) -> std::result::Result<String, String> {
    let Ok(a) = loc.attr(name) else { return Ok(String::new()) };
    if let Ok(s) = a.read_scalar::<VarLenUnicode>() {
        return Ok(s.as_str().to_string());
    }
    let bytes = a.read_raw::<u8>().map_err(|e| format!("attribute '{name}' is neither text nor bytes: {e}"))?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8(bytes[..end].to_vec()).map_err(|e| format!("attribute '{name}' is not UTF-8 text: {e}"))
}

pub(crate) fn write_strings(g: &Group, name: &str, v: &[String]) -> hdf5::Result<()> {
    if g.link_exists(name) {
        g.unlink(name)?;
    }
    let data: Vec<VarLenUnicode> = v.iter().map(|s| s.parse().unwrap_or_default()).collect();
    g.new_dataset_builder().with_data(&data).create(name)?;
    Ok(())
}

pub(crate) fn read_strings(g: &Group, name: &str) -> Vec<String> {
    g.dataset(name)
        .and_then(|d| d.read_raw::<VarLenUnicode>())
        .map(|v| v.into_iter().map(|s| s.as_str().to_string()).collect())
        .unwrap_or_default()
}

/// Write a fixed-shape dataset, creating it the first time.
pub(crate) fn put<T: H5Type>(g: &Group, name: &str, shape: &[usize], data: &[T]) -> hdf5::Result<()> {
    let ds = match g.dataset(name) {
        Ok(d) if d.shape() == shape => d,
        Ok(_) => {
            g.unlink(name)?;
            g.new_dataset::<T>().shape(shape.to_vec()).create(name)?
        }
        Err(_) => g.new_dataset::<T>().shape(shape.to_vec()).create(name)?,
    };
    ds.write_raw(data)
}
