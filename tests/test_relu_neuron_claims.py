"""The lee2022 claims (single ReLU neuron) are registered for ``reducedflow check`` and pass."""

import pytest

from reducedflow.claims import _registry


@pytest.mark.parametrize(
    "name", ["norm-identity", "norm-growth-small-init", "support-vectors-projection", "vardi-shamir-path-dependence"]
)
def test_lee2022_claims_pass(name):
    (result,) = _registry.run_checks("lee2022", name)
    assert result.passed, result.summary()


def test_run_relu_neuron_command_writes_netcdf_and_prints_events(tmp_path, capsys):
    import xarray as xr

    from reducedflow.cli import main

    assert main(["run", "relu-neuron", "--gamma", "5", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "active -> inactive" in printed and "support vectors [0, 1]" in printed
    ds = xr.open_dataset(tmp_path / "trajectory.nc", engine="h5netcdf")
    assert abs(float(ds["limit"][0]) - 5.0) < 1e-12 and list(ds["event_point"].values) == [2]
    assert (tmp_path / "relu_neuron.png").exists()
