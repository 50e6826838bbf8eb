"""``Chain.project``, ``climcal.load_projection`` and ``climcal.plot.projection`` on a
short HadCRUT5 calibration made by the CLI: the same series as ``climcal project``
(bit for bit), the historical years equal to the chain's stored model values, the
scenarios ordered as their forcing, clear errors.

Needs the climcal binary (CLIMCAL_BIN, default target/debug/climcal)."""

import os
import pathlib
import subprocess

import numpy as np
import pytest

import climcal
import climcal.plot

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("CLIMCAL_BIN", str(ROOT / "target" / "debug" / "climcal"))
DATA = ROOT / "cluster-examples" / "data"

pytestmark = pytest.mark.skipif(not os.path.exists(BIN), reason=f"no climcal binary at {BIN} (cargo build, or set CLIMCAL_BIN)")


@pytest.fixture(scope="module")
def chain_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("proj")
    text = (ROOT / "cluster-examples" / "two-layer-hadcrut5.toml").read_text()
    text = text.replace('"data/', f'"{DATA.as_posix()}/').replace("thin = 48", "thin = 10")
    cfg = d / "h.toml"
    cfg.write_text(text)
    out = d / "chain.h5"
    r = subprocess.run([BIN, "run", str(cfg), "--steps", "300", "-q", "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


def test_chain_project_matches_the_cli_and_the_calibration(chain_file, tmp_path):
    chain = climcal.load(chain_file)
    p = chain.project(["ssp119", "ssp585"], draws=40, discard=100)
    assert p.scenarios == ["ssp119", "ssp585"]
    assert p.years[0] == 1750 and p.years[-1] == 2100 and p.n_history == 275
    assert p.outputs == ["Surface Temperature", "Ocean Heat Content", "Net Energy Imbalance"]
    t = p.series["ssp585"]["Surface Temperature"]
    assert t.shape == (40, 351) and not p.failed["ssp585"].any()
    # The same draws and series as `climcal project` (same thinning rule), bit for bit.
    out = tmp_path / "p.h5"
    r = subprocess.run(
        [BIN, "project", str(chain_file), "-s", "ssp119", "-s", "ssp585", "--draws", "40", "--discard", "100", "-q", "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    q = climcal.load_projection(out)
    np.testing.assert_array_equal(q.parameters, p.parameters)
    np.testing.assert_array_equal(q.draw_index, p.draw_index)
    for s in p.scenarios:
        for o in p.outputs:
            np.testing.assert_array_equal(q.series[s][o], p.series[s][o])
    assert q.info["ssp119"]["label"] == "SSP1-1.9"
    # Historical years: the chain's stored model values at the observation years
    # (re-based to 1850-1900 as the target is). The Rust test checks this bit for
    # bit; numpy sums the baseline in another order, hence 1e-12 K.
    flat_blobs = chain.blobs[chain._rows(100)].reshape(-1, chain.blobs.shape[-1])[p.draw_index]
    var, obs_years = chain.blob_layout[0]
    assert var == "Surface Temperature"
    i = np.searchsorted(p.years, obs_years)
    assert np.all(i < p.n_history)
    rel = p.relative("ssp585")
    np.testing.assert_allclose(rel[:, i], flat_blobs[:, : len(obs_years)], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(p.series["ssp119"]["Surface Temperature"][:, :275], t[:, :275])
    # Warming 2081-2100: SSP5-8.5 above SSP1-1.9 for every draw; the summary agrees.
    w119, w585 = p.change("ssp119"), p.change("ssp585")
    assert np.all(w585 > w119 + 1.0)
    df = p.summary()
    assert list(df.index) == ["ssp119", "ssp585"]
    assert df.loc["ssp585", "q05"] < df.loc["ssp585", "q50"] < df.loc["ssp585", "q95"]
    np.testing.assert_allclose(df.loc["ssp119", "q50"], np.percentile(w119, 50))
    # Thinning: all draws with draws=None.
    n_kept = chain.flat_samples(discard=100).shape[0]
    assert chain.project("ssp245", draws=None, discard=100, end=2030).n_draws == n_kept


def test_errors_name_the_problem(chain_file, tmp_path):
    chain = climcal.load(chain_file)
    with pytest.raises(ValueError, match="unknown scenario 'ssp999'"):
        chain.project("ssp999", draws=5)
    with pytest.raises(ValueError, match="covers 1750"):
        chain.project("ssp245", draws=5, end=2600)
    with pytest.raises(ValueError, match="positive integer"):
        chain.project("ssp245", draws=0)
    p = chain.project("ssp245", draws=5)
    with pytest.raises(ValueError, match="no scenario 'ssp126'"):
        p.change("ssp126")
    # A chain from the Python API holds no run file.
    bare = climcal.Chain(chain.samples, chain.log_prob, names=chain.names)
    with pytest.raises(ValueError, match="no run file"):
        bare.project("ssp245")


def test_plot_projection_draws_bands_and_observations(chain_file):
    import pandas as pd

    chain = climcal.load(chain_file)
    p = chain.project(["ssp126", "ssp370"], draws=30, discard=100)
    obs = pd.read_csv(DATA / "derived" / "hadcrut5_gmst_1850-2024.csv", comment="#").set_index("year")["gmst"]
    fig = climcal.plot.projection(p, observed=obs, observed_label="HadCRUT5")
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert any("SSP1-2.6" in lab for lab in labels) and any("SSP3-7.0" in lab for lab in labels)
    assert "HadCRUT5" in labels and "model, historical" in labels
    # The observed line is re-based to 1850-1900.
    hc = [line for line in ax.get_lines() if line.get_label() == "HadCRUT5"][0]
    x, y = hc.get_data()
    assert abs(np.mean(y[(x >= 1850) & (x <= 1900)])) < 1e-12
