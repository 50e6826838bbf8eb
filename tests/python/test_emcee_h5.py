"""climcal.emcee's HDFBackend writes through Rust (climcal._lib.EmceeH5Writer):
files identical in type and value to emcee's own for every element type, read and
continued by emcee (and emcee's by climcal), the moves' state stored, and readers in
another process never failing while a run writes."""

import json
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

import climcal.emcee as cemcee

emcee = pytest.importorskip("emcee")

NW, NDIM, N = 4, 2, 3

# Element types h5py stores, as emcee's tests use them (float, structured
# log_prior/mean, sub-array shapes) and beyond: every numpy kind, byte orders,
# offsets, alignment padding, nesting.
BLOB_DTYPES = {
    "f8": "f8", "f4": "f4", "f2": "f2", "longdouble": np.longdouble, "i8": "i8", "i1": "i1", "u2": "u2",
    ">i4": ">i4", ">f8": ">f8", "bool": "?", "c8": "c8", "c16": "c16", "clongdouble": np.clongdouble,
    "S5": "S5", "V4": "V4",
    "emcee_struct": [("log_prior", float), ("mean", int)],
    "struct_sub": [("a", "f8"), ("b", "i4", (2, 3)), ("c", "?"), ("d", "S3")],
    "offsets": {"names": ["x", "y"], "formats": ["f4", "i2"], "offsets": [8, 0], "itemsize": 16},
    "aligned": np.dtype([("a", "i1"), ("b", "f8")], align=True),
    "sub3": ("f8", (3,)),
    "sub2x3": ("i2", (2, 3)),
    "nested": [("p", [("q", "f4"), ("r", "c8")]), ("s", "u1")],
}


def _fill(rng, a):
    """Random values in every field of `a` (in place)."""
    if a.dtype.names is not None:
        for n in a.dtype.names:
            _fill(rng, a[n])
    elif a.dtype.kind in "fc":
        a[...] = rng.standard_normal(a.shape) * 3 + (1j * rng.standard_normal(a.shape) if a.dtype.kind == "c" else 0)
    elif a.dtype.kind in "iu":
        a[...] = rng.integers(0, 100, a.shape)
    elif a.dtype.kind == "b":
        a[...] = rng.random(a.shape) > 0.5
    elif a.dtype.kind == "S":
        a[...] = np.array([bytes(rng.integers(97, 123, a.dtype.itemsize).astype(np.uint8)) for _ in range(a.size)],
                          a.dtype).reshape(a.shape)
    else:  # V (whole arrays only)
        a.view(np.uint8)[...] = rng.integers(0, 256, a.view(np.uint8).shape)


def _same(a, b):
    """Equal values, bit for bit (structured: field by field, as padding bytes carry nothing)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.names is not None:
        return all(_same(a[n], b[n]) for n in a.dtype.names)
    return np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def _blobs(dt, rng):
    dt = np.dtype(dt)
    base, shape = (dt.base, dt.shape) if dt.subdtype is not None else (dt, ())
    b = np.zeros((N, NW) + shape, base)
    _fill(rng, b)
    return b


def _write(mod, path, blobs, dtype=None, coords=None, lp=None):
    be = mod.backends.HDFBackend(str(path), dtype=dtype)
    be.reset(NW, NDIM)
    be.grow(N, None if blobs is None else blobs[0])
    rng = np.random.default_rng(5)
    coords = rng.standard_normal((N, NW, NDIM)) if coords is None else coords
    lp = rng.standard_normal((N, NW)) if lp is None else lp
    rs = np.random.RandomState(3).get_state()
    for i in range(N):
        st = mod.State(coords[i], log_prob=lp[i], blobs=None if blobs is None else blobs[i], random_state=rs)
        be.save_step(st, np.arange(NW) % 2 == i % 2)
    getattr(be, "flush", lambda: None)()
    return be


@pytest.mark.parametrize("name", list(BLOB_DTYPES))
def test_blob_types_as_emcee_writes_them(tmp_path, name):
    blobs = _blobs(BLOB_DTYPES[name], np.random.default_rng(1))
    ours = _write(cemcee, tmp_path / "c.h5", blobs)
    _write(emcee, tmp_path / "e.h5", blobs)
    with h5py.File(tmp_path / "c.h5") as fc, h5py.File(tmp_path / "e.h5") as fe:
        a, b = fc["mcmc/blobs"], fe["mcmc/blobs"]
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.id.get_type().equal(b.id.get_type()), "the HDF5 type is the one h5py creates"
        assert _same(a[...], b[...])
        for k in ("chain", "log_prob", "accepted"):
            assert np.array_equal(fc["mcmc"][k][...], fe["mcmc"][k][...]), k
        ga, gb = fc["mcmc"].attrs, fe["mcmc"].attrs
        assert set(gb) <= set(ga)
        for k in gb:
            assert type(ga[k]) is type(gb[k]), k
            if k != "version":
                assert np.array_equal(ga[k], gb[k]), k
    assert _same(ours.get_blobs(), blobs)
    assert _same(emcee.backends.HDFBackend(str(tmp_path / "c.h5"), read_only=True).get_blobs(), blobs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.longdouble])
def test_chain_dtypes_kept(tmp_path, dtype):
    # emcee's test_longdouble_preserved: long doubles one epsilon apart stay apart.
    coords = (np.arange(N * NW * NDIM).reshape(N, NW, NDIM) + 1).astype(dtype)
    coords[..., 1] += coords[..., 0] * 2 * np.finfo(dtype).eps
    lp = (1 + np.arange(N * NW).reshape(N, NW) * np.finfo(dtype).eps).astype(dtype)
    ours = _write(cemcee, tmp_path / "c.h5", None, dtype=dtype, coords=coords, lp=lp)
    _write(emcee, tmp_path / "e.h5", None, dtype=dtype, coords=coords, lp=lp)
    with h5py.File(tmp_path / "c.h5") as fc, h5py.File(tmp_path / "e.h5") as fe:
        assert fc["mcmc/chain"].id.get_type().equal(fe["mcmc/chain"].id.get_type())
        assert fc["mcmc/chain"].dtype == np.dtype(dtype)
    assert np.all(ours.get_chain() == coords) and ours.get_chain().dtype == np.dtype(dtype)
    assert np.all(ours.get_log_prob() == lp)


def _lp_blobs(x):
    return -0.5 * float(x @ x), -0.1 * float(x[0] ** 2), float(x.sum())


def test_emcee_continues_ours_and_ours_continues_emcee(tmp_path):
    np.random.seed(7)
    p0 = np.random.randn(8, 2)
    dt = [("lp", float), ("s", float)]
    fn = str(tmp_path / "c.h5")
    s = cemcee.EnsembleSampler(8, 2, _lp_blobs, backend=cemcee.backends.HDFBackend(fn), blobs_dtype=dt)
    s.run_mcmc(p0, 20, progress=False)
    s2 = emcee.EnsembleSampler(8, 2, _lp_blobs, backend=emcee.backends.HDFBackend(fn), blobs_dtype=dt)
    s2.run_mcmc(None, 10, progress=False)  # from the stored last sample and random state
    assert s2.iteration == 30 and s2.get_blobs().shape == (30, 8)
    chain30 = s2.get_chain()
    s3 = cemcee.EnsembleSampler(8, 2, _lp_blobs, backend=cemcee.backends.HDFBackend(fn), blobs_dtype=dt)
    s3.run_mcmc(None, 5, progress=False)
    assert s3.iteration == 35
    chain = cemcee.backends.HDFBackend(fn, read_only=True).get_chain()
    assert np.array_equal(chain[:30], chain30) and np.all(chain[30:] != 0)
    blobs = cemcee.backends.HDFBackend(fn).get_blobs()
    assert np.allclose(blobs["s"], chain.sum(axis=-1))
    acc = emcee.backends.HDFBackend(fn).accepted
    assert acc.dtype == np.float64 and np.all(acc <= 35) and acc.sum() > 0


def test_move_state_round_trip_and_cleared_by_steps_without_one(tmp_path):
    fn = str(tmp_path / "c.h5")
    be = cemcee.backends.HDFBackend(fn, flush_interval=100)
    be.reset(NW, NDIM)
    be.grow(4, None)
    assert be.move_state is None
    rs = np.random.RandomState(1).get_state()
    c, lp, acc = np.ones((2, NW, NDIM)), np.zeros((2, NW)), np.ones((2, NW), bool)
    ms = json.dumps({"moves": [{"kind": "dime"}], "tuning": [{"mean": [0.1, 0.2]}]})
    be._save_steps(c, lp, acc, None, rs, ms)
    assert be.move_state == ms  # pending
    be.flush()
    assert cemcee.backends.HDFBackend(fn).move_state == ms
    with h5py.File(fn) as f:
        a = f["mcmc"].attrs["climcal_move_state"]
        assert a.dtype == np.uint8 and a.size >= 256  # fixed size: rewritten in place
    # Steps stored without the moves' state (the Python loop, save_step) leave none:
    # a stale one would resume DIME with the adaptation of an earlier step.
    be._save_steps(2 * c, lp, acc, None, rs)
    assert be.move_state is None  # pending
    be.flush()
    b2 = cemcee.backends.HDFBackend(fn)
    assert b2.iteration == 4 and b2.move_state is None and b2.random_state[0] == "MT19937"
    with h5py.File(fn) as f:
        assert "climcal_move_state" not in f["mcmc"].attrs
    assert np.array_equal(b2.get_chain()[2:], 2 * c)
    # A text attribute (as h5py writes a str) reads too; emcee ignores the attribute.
    with h5py.File(fn, "a") as f:
        f["mcmc"].attrs["climcal_move_state"] = "{}"
    assert cemcee.backends.HDFBackend(fn).move_state == "{}"
    assert emcee.backends.HDFBackend(fn).iteration == 4
    mem = cemcee.backends.Backend()
    assert mem.move_state is None
    mem.reset(NW, NDIM)
    mem.grow(2, None)
    mem._save_steps(c, lp, acc, None, rs, ms)
    assert mem.move_state == ms and mem.iteration == 2


def test_compression(tmp_path):
    fn = str(tmp_path / "c.h5")
    be = cemcee.backends.HDFBackend(fn, compression="gzip", compression_opts=6)
    be.reset(NW, NDIM)
    be.grow(N, np.zeros(NW))
    with h5py.File(fn) as f:
        for k in ("chain", "log_prob", "blobs"):
            assert f["mcmc"][k].compression == "gzip" and f["mcmc"][k].compression_opts == 6, k
    with pytest.raises(ValueError, match="lzf"):
        cemcee.backends.HDFBackend(str(tmp_path / "l.h5"), compression="lzf").reset(NW, NDIM)


READER = textwrap.dedent(
    """
    import json, os, sys, time
    import h5py, numpy as np
    path, stop, ready = sys.argv[1], sys.argv[2], sys.argv[3]
    open(ready, "w").close()
    reads = fails = wrong = 0
    errors = []
    last = 0
    while not os.path.exists(stop):
        try:
            with h5py.File(path, "r") as f:
                g = f["mcmc"]
                it = int(g.attrs["iteration"])
                chain = g["chain"][:it]
                blobs = g["blobs"][:it]
            reads += 1
            rows = np.arange(1, it + 1, dtype=float)
            if it < last or not (np.all(chain == rows[:, None, None]) and np.all(blobs == rows[:, None])):
                wrong += 1
            last = it
        except Exception as e:  # noqa: BLE001 - counted
            fails += 1
            errors.append(repr(e)[:200])
        time.sleep(0.002)
    print(json.dumps({"reads": reads, "fails": fails, "wrong": wrong, "last": last, "errors": errors[:5]}))
    """
)


def test_reader_in_another_process_never_fails(tmp_path):
    fn = tmp_path / "live.h5"
    stop, ready = tmp_path / "stop", tmp_path / "ready"
    n, nw = 1000, 16
    be = cemcee.backends.HDFBackend(str(fn), flush_interval=0)  # a commit per step, as emcee
    be.reset(nw, 3)
    be.grow(n, np.zeros(nw))
    proc = subprocess.Popen([sys.executable, "-c", READER, str(fn), str(stop), str(ready)], stdout=subprocess.PIPE,
                            text=True)
    rs = np.random.RandomState(2).get_state()
    try:
        t0 = time.monotonic()
        while not ready.exists() and proc.poll() is None and time.monotonic() - t0 < 60:
            time.sleep(0.01)
        for i in range(n):
            st = cemcee.State(np.full((nw, 3), i + 1.0), log_prob=np.zeros(nw), blobs=np.full(nw, i + 1.0),
                              random_state=rs)
            be.save_step(st, np.ones(nw, bool))
        be.flush()
    finally:
        stop.write_text("")
        out, _ = proc.communicate(timeout=60)
    r = json.loads(out)
    assert r["fails"] == 0, r
    assert r["wrong"] == 0, r
    assert r["reads"] >= 20, r
    with h5py.File(fn) as f:
        assert int(f["mcmc"].attrs["iteration"]) == n


@pytest.mark.parametrize("backend", ["memory", "hdf"])
def test_save_steps_with_blobs(tmp_path, backend):
    # The sampler's call for a chunk of steps with blobs (interface of the engine's Rust loop).
    dt = np.dtype([("lp", "f8"), ("v", "i4", (2,))])
    be = cemcee.backends.Backend() if backend == "memory" else cemcee.backends.HDFBackend(str(tmp_path / "c.h5"))
    be.reset(NW, NDIM)
    blobs = _blobs(dt, np.random.default_rng(2))
    be.grow(N, blobs[0])
    c = np.random.default_rng(3).standard_normal((N, NW, NDIM))
    acc = np.ones((N, NW), bool)
    acc[1, 0] = False
    be._save_steps(c, c[..., 0], acc, blobs, np.random.RandomState(4).get_state(), '{"moves": []}')
    be.flush()
    assert _same(be.get_blobs(), blobs) and np.array_equal(be.get_chain(), c)
    assert list(be.accepted) == [N - 1] + [N] * (NW - 1)
    assert be.move_state == '{"moves": []}' and be.iteration == N
