"""``reducedflow portrait`` and ``reducedflow sweep`` (commands/dynamics.py)."""

import numpy as np
import pytest
import xarray as xr

from reducedflow.cli import main
from reducedflow.commands.dynamics import SYSTEMS, with_parameters


def test_portrait_writes_a_figure_and_prints_the_fixed_points(tmp_path, capsys):
    out = tmp_path / "fhn.png"
    assert main(["portrait", "fitzhugh-nagumo", "--x", "v", "--y", "w", "--param", "current=0",
                 "--trajectory", "2,1", "--t1", "10", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "stable focus" in printed and "-1.19941" in printed  # the root of the cubic at I = 0
    assert out.stat().st_size > 20_000


def test_portrait_errors_name_the_bad_argument(tmp_path, capsys):
    assert main(["portrait", "double-well", "--x", "x", "--y", "q", "--out", str(tmp_path / "a.png")]) == 2
    assert "`--y` must name a state coordinate" in capsys.readouterr().err
    assert main(["portrait", "no-such-system", "--out", str(tmp_path / "a.png")]) == 2
    assert "`SYSTEM` must be one of" in capsys.readouterr().err
    assert main(["portrait", "double-well", "--param", "mass=1", "--out", str(tmp_path / "a.png")]) == 2
    assert "'mass' is not a parameter of DoubleWell" in capsys.readouterr().err
    assert main(["portrait", "fold", "--out", str(tmp_path / "a.png")]) == 2
    assert "needs two" in capsys.readouterr().err


def test_sweep_writes_netcdf_with_statuses(tmp_path, capsys):
    out = tmp_path / "fold.nc"
    assert main(["sweep", "fold", "--over", "r=-1:1:11", "--t1", "4", "--saves", "5", "--out", str(out)]) == 0
    assert "11 points" in capsys.readouterr().out
    ds = xr.load_dataset(out, engine="h5netcdf")
    r = ds["r"].values
    failed = ds["status"].values != "success"
    np.testing.assert_array_equal(failed, r > (np.pi / 8) ** 2)
    good = r < 0
    np.testing.assert_allclose(ds["x"].values[good, -1], -np.sqrt(-r[good]) * np.tanh(np.sqrt(-r[good]) * 4), atol=1e-7)
    assert main(["sweep", "fold", "--over", "r=1:2", "--out", str(out)]) == 2
    assert "`--over`" in capsys.readouterr().err


def test_with_parameters_sets_arrays_and_runs_checks():
    linear = with_parameters(SYSTEMS["linear"].build(), ["matrix=1,2,3,4"])
    np.testing.assert_array_equal(np.asarray(linear.matrix), [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="`stiffness`"):
        with_parameters(SYSTEMS["double-well"].build(), ["stiffness=-1"])
