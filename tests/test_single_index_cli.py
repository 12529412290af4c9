"""``reducedflow run single-index`` and the berthier2023 claims."""

import re

import numpy as np
import xarray as xr

from reducedflow.claims import run_checks
from reducedflow.cli import main


def test_run_single_index_writes_files_and_reports_the_phase_one_law(tmp_path, capsys):
    args = ["run", "single-index", "--width", "64", "--epsilon", "1e-4", "--t1", "3", "--out", str(tmp_path)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    ratio = float(re.search(r"measured / law = ([0-9.]+)", printed).group(1))
    assert abs(ratio - 1) < 0.03
    ds = xr.load_dataset(tmp_path / "single_index_eps0.0001.nc", engine="h5netcdf")
    assert ds.attrs["epsilon"] == 1e-4 and ds["overlap"].shape == (300, 64)
    assert abs(ds["risk"].values[0] - 1.5) < 1e-4 and ds["risk"].values[-1] < 0.2
    assert (tmp_path / "single_index.png").stat().st_size > 10_000


def test_bad_single_index_arguments(tmp_path, capsys):
    assert main(["run", "single-index", "--epsilon", "0", "--out", str(tmp_path)]) == 2
    assert "`epsilon`" in capsys.readouterr().err
    assert main(["run", "single-index", "--width", "0", "--out", str(tmp_path)]) == 2
    assert "`width`" in capsys.readouterr().err


def test_berthier2023_claims_pass():
    results = run_checks("berthier2023")
    assert len(results) >= 5
    for result in results:
        assert result.passed, result.summary()


def test_activation_and_target_arguments_parse_names_and_coefficients():
    from reducedflow.commands.single_index import _function_or_coefficients

    assert _function_or_coefficients("erf_sqrt2") == "erf_sqrt2"
    assert _function_or_coefficients("relu") == "relu"
    assert _function_or_coefficients("0,1,0.5") == [0.0, 1.0, 0.5]
    assert _function_or_coefficients("2") == [2.0]
