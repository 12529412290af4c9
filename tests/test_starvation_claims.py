"""The registered claims of Pezeshki et al. 2021 and Tachet des Combes et al. 2018 (claims/pezeshki2021.py,
claims/combes2018.py) run and pass, with measured numbers."""

import warnings

import pytest

from reducedflow.claims import run_checks


@pytest.mark.parametrize("paper", ["pezeshki2021", "combes2018"])
def test_claims_pass(paper):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy: "jac has no effect" for explicit methods
        results = run_checks(paper)
    assert len(results) >= 4
    for result in results:
        print(result.summary())
        assert result.passed, result.summary()
        assert result.measured and result.expected


def test_cli_run_gradient_starvation(tmp_path, capsys):
    import numpy as np
    import xarray as xr

    from reducedflow.cli import main

    assert main(["run", "gradient-starvation", "--s1", "2,4", "--out", str(tmp_path)]) in (0, None)
    data = xr.load_dataset(tmp_path / "gradient_starvation.nc")
    assert (tmp_path / "phase_plane.png").stat().st_size > 0
    wd, sd = data["fixed_point_weight_decay"].values, data["fixed_point_spectral_decoupling"].values
    assert wd[1, 0] > wd[0, 0] and wd[1, 1] < wd[0, 1]  # feature 1 grows, feature 2 is starved
    np.testing.assert_allclose(sd[0], sd[1], rtol=1e-12)  # SD: independent of s1
    np.testing.assert_allclose(data["responses_weight_decay"].values[:, -1], wd, rtol=1e-6)
    assert data["starvation_derivative"].values[1] < 0
    assert "dz2*/d(s1^2)" in capsys.readouterr().out
    assert main(["run", "gradient-starvation", "--overlap", "1.5", "--out", str(tmp_path)]) == 2
