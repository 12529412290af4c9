"""``reducedflow run committee``: files written, and the printed plateau height, escape time and
final error agree with the closed forms and the finite-learning-rate fixed point."""

import math
import re

import numpy as np
import xarray as xr

from reducedflow.cli import main
from reducedflow.models.committee import plateau_escape_rate, plateau_generalisation_error, symmetric_plateau


def _number(text, pattern):
    match = re.search(pattern + r"\s*([-+0-9.eE]+|nan)", text)
    assert match, (pattern, text)
    return float(match.group(1))


def test_run_committee_plateau_and_escape(tmp_path, capsys):
    prefix = tmp_path / "scm"
    assert main(["run", "committee", "--K", "2", "--M", "2", "--lr", "1.0", "--dimension", "1000",
                 "--seed", "3", "--out", str(prefix)]) == 0
    out = capsys.readouterr().out
    plateau = symmetric_plateau(2, 1.0)
    measured = _number(out, r"plateau eps_g: measured")
    assert _number(out, r"closed form \(eta -> 0\)") == float(f"{plateau_generalisation_error(2):.6e}")
    assert _number(out, r"fixed point at eta \(with eta\^2 terms\)") == float(f"{plateau.generalisation_error:.6e}")
    # the trajectory lingers near the eta-shifted fixed point (not the eta -> 0 height, 45% lower)
    assert abs(measured - plateau.generalisation_error) < 0.05 * plateau.generalisation_error
    t_escape = _number(out, r"escape time:")
    predicted = 0.5 * math.log(1000) / plateau.escape_rate  # ln(1/delta0) / lambda, delta0 ~ N^-1/2
    assert predicted < t_escape < predicted + 60.0  # + the O(1) time to reach the plateau and leave it
    assert _number(out, r"\(eta -> 0 closed form") == float(f"{plateau_escape_rate(2, 1.0):.6e}")
    final = _number(out, r"final eps_g:")
    assert final < 0.2 * plateau.generalisation_error  # it escaped and learns

    ds = xr.load_dataset(tmp_path / "scm.nc", engine="h5netcdf")
    eg = ds["generalisation_error"].values
    assert eg[-1] == final or abs(eg[-1] - final) < 1e-6 * final
    assert ds.attrs["K"] == 2 and ds.attrs["learning_rate"] == 1.0
    assert abs(ds.attrs["escape_time"] - t_escape) < 1e-3 * t_escape
    assert ds["Q"].shape[1:] == (2, 2) and np.all(np.diff(ds["time"].values) > 0)
    assert (tmp_path / "scm.png").stat().st_size > 10_000


def test_run_committee_with_sgd_and_noise(tmp_path, capsys):
    prefix = tmp_path / "noisy"
    assert main(["run", "committee", "--K", "2", "--M", "2", "--lr", "1.0", "--noise", "0.3", "--t1", "8",
                 "--sgd-N", "300", "--sgd-seeds", "2", "--out", str(prefix)]) == 0
    out = capsys.readouterr().out
    ds = xr.load_dataset(tmp_path / "noisy.nc", engine="h5netcdf")
    sgd = ds["sgd_generalisation_error"].values
    assert sgd.shape == (2, 201)
    assert abs(ds["sgd_time"].values[-1] - 8.0) < 1e-9
    gap = _number(out, r"RMS gap to the ODE")
    # O(N^-1/2) fluctuations around the ODE (started from the SGD's measured overlaps)
    assert gap < 0.6 * sgd[:, 0].mean() / math.sqrt(300)
    assert gap == float(f"{ds.attrs['sgd_rms_gap']:.3e}")
    assert _number(out, r"noise floor \(linear response at the perfect solution\):") > 0
    assert (tmp_path / "noisy.png").stat().st_size > 10_000


def test_run_committee_rejects_bad_arguments(tmp_path, capsys):
    assert main(["run", "committee", "--lr", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "`lr`" in capsys.readouterr().err
    assert main(["run", "committee", "--K", "0", "--out", str(tmp_path / "x")]) == 2
    assert "`K`" in capsys.readouterr().err
