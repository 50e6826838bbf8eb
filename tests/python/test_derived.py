"""Derived quantities (ECS, TCR, ...) of the built-in two-layer model: stored with
every sample, named in the chain file, read back by ``climcal.load``, as a DataFrame
and in ArviZ."""

from pathlib import Path

import h5py
import numpy as np

import climcal

DATA = Path(__file__).resolve().parents[2] / "cluster-examples" / "data"
NAMES = ["ECS", "TCR", "warming_2015-2024", "aerosol_ERF_2005-2014", "ocean_heat_uptake_1971-2018"]


def _sampler():
    params = (
        climcal.ParameterSet({"lambda": climcal.Uniform(0.6, 2.0), "C": climcal.Uniform(6.0, 10.0)})
        .add("C_d", climcal.Uniform(60.0, 140.0))
        .add("gamma", climcal.Uniform(0.4, 0.9))
        .add("epsilon", climcal.Uniform(0.9, 1.5))
        .add("aerosol_scale", climcal.Uniform(0.5, 1.5))
    )
    years = np.arange(1850.0, 2021.0, 10.0)
    target = climcal.Target().add_variable("Surface Temperature", years, 1.1 * ((years - 1850) / 170) ** 2,
                                           np.full(years.size, 0.1)).with_reference_period(1850, 1900)
    runner = climcal.ModelRunner("two_layer", feedback="lambda", fixed={"nonaerosol_scale": 1.0},
                                 forcing={"file": str(DATA / "ERF_best_aggregates_1750-2024.csv")})
    return climcal.EnsembleSampler(parameters=params, target=target, runner=runner, n_walkers=16, seed=5)


def test_derived_quantities_are_stored_and_read_back(tmp_path):
    s = _sampler()
    path = tmp_path / "d.h5"
    chain = s.run(s.initialize("prior"), n_steps=40, checkpoint_path=path, progress=False)
    assert chain.derived_names == NAMES
    df = chain.derived(discard=5)
    assert list(df.columns) == ["step", "walker"] + NAMES
    assert len(df) == 35 * 16
    assert df.attrs["units"]["ocean_heat_uptake_1971-2018"] == "ZJ"
    # ECS = F_2x / lambda, sample by sample (F_2x = 3.93 W m-2, the model's default).
    lam = chain.get_chain(discard=5, flat=True)[:, chain.names.index("lambda")]
    np.testing.assert_allclose(df["ECS"].to_numpy(), 3.93 / lam, rtol=1e-14)
    assert np.all(df["TCR"] < df["ECS"]) and np.all(df["TCR"] > 0)
    # The file: names and units in the climcal group, values as emcee-readable blobs.
    with h5py.File(path, "r") as f:
        assert [n.decode() if isinstance(n, bytes) else n for n in f["climcal/derived_names"][()]] == NAMES
        np.testing.assert_array_equal(f["mcmc/blobs"][:, :, -5:], chain.get_derived())
    back = climcal.load(path)
    assert back.derived_quantities == chain.derived_quantities
    np.testing.assert_array_equal(back.derived(discard=5).to_numpy(), df.to_numpy())
    idata = back.to_arviz(discard=5)
    assert "ECS" in idata.posterior and idata.posterior["TCR"].shape == (16, 35)
