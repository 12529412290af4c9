"""The command line and the claim registry."""

import numpy as np
import pytest
import xarray as xr

from reducedflow.claims import REGISTRY, compare, run_checks
from reducedflow.cli import main


def test_run_linear_modes_writes_files_and_matches_theory(tmp_path, capsys):
    assert main(["run", "linear-modes", "--singular-values", "2,1", "--init", "1e-3", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "BalancedModes" in printed and "steps" in printed
    ds = xr.load_dataset(tmp_path / "trajectory.nc", engine="h5netcdf")
    s, u0 = np.array([2.0, 1.0]), 1e-3
    measured = ds["event_half_learned"].values[np.argsort(ds["event_half_learned_component"].values)]
    np.testing.assert_allclose(measured, np.log((s - u0) / u0) / (2 * s), rtol=1e-7)
    assert (tmp_path / "modes.png").stat().st_size > 10_000


def test_run_deep_modes_compares_with_quadrature(tmp_path, capsys):
    assert main(["run", "linear-modes", "--depth", "3", "--singular-values", "1.5,1", "--out", str(tmp_path)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]
    rel_errors = [float(row[-1]) for row in rows]
    assert len(rel_errors) == 2 and max(rel_errors) < 1e-6


def test_bad_cli_arguments_exit_with_a_message(tmp_path, capsys):
    assert main(["run", "linear-modes", "--init", "5", "--out", str(tmp_path)]) == 2
    assert "`init`" in capsys.readouterr().err
    assert main(["run", "linear-modes", "--singular-values", "1,-2", "--out", str(tmp_path)]) == 2
    assert "`singular_values`" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "linear-modes", "--singular-values", "a,b"])


def test_list_and_check(capsys):
    assert main(["list"]) == 0
    assert "saxe2014" in capsys.readouterr().out
    assert main(["check", "saxe2014", "--claim", "learning-time-inverse-in-s"]) == 0
    out = capsys.readouterr().out
    assert "[PASS]" in out and "1 passed, 0 failed" in out


def test_claim_registry_reports_failures_and_unknown_names():
    _, _, _, passed, _ = compare({"x": 1.01}, {"x": 1.0}, rtol=1e-3)
    assert not passed
    _, _, _, passed, _ = compare({"x": 1.0005}, {"x": 1.0}, rtol=1e-3)
    assert passed
    assert set(REGISTRY["saxe2014"]) >= {"learning-time-inverse-in-s", "depth-plateau-polynomial"}
    with pytest.raises(ValueError, match="`paper`"):
        run_checks("nonexistent2099")
    with pytest.raises(ValueError, match="`name`"):
        run_checks("saxe2014", "no-such-claim")


@pytest.mark.parametrize("name", ["sigmoidal-mode-closed-form", "aligned-network-decouples-into-modes",
                                  "incremental-learning-order", "depth-plateau-polynomial"])
def test_saxe_claims_pass(name):
    (result,) = run_checks("saxe2014", name)
    assert result.passed, result.summary()


def test_validate_linear_modes_reports_first_order_gap(tmp_path, capsys):
    args = ["validate", "linear-modes", "--learning-rates", "0.02,0.01", "--t1", "5", "--out", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    ratio = float([line for line in out.splitlines() if line.strip().startswith("0.01")][0].split()[2])
    assert 1.8 < ratio < 2.2  # GD's gap to gradient flow is O(learning rate)
    ds = xr.load_dataset(tmp_path / "validation.nc", engine="h5netcdf")
    assert ds.attrs["parameter"] == "learning_rate" and 0.85 < ds.attrs["order"] < 1.15
