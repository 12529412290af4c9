"""The core: solve (diffrax and scipy), stiffness-aware solver choice, events, failures,
batching, caching, Trajectory conversions. Witnesses are closed forms."""

import diffrax as dfx
import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import reducedflow as rf
from reducedflow._checks import as_float_array
from reducedflow.models import CurvedFastSlowGradientFlow, FastSlowGradientFlow


class Logistic(rf.AbstractSystem):
    """du/dt = 2u(s - u): closed form u = s e^{2st} / (e^{2st} - 1 + s/u0)."""

    s: jnp.ndarray = eqx.field(converter=as_float_array)

    def vector_field(self, t, y, args):
        return 2 * y * (self.s - y)

    def observables(self, t, y):
        return {"risk": 0.5 * jnp.sum((self.s - y) ** 2)}

    def closed_form(self, t, y0):
        e = np.exp(2 * np.multiply.outer(t, np.asarray(self.s)))
        return np.asarray(self.s) * e / (e - 1 + np.asarray(self.s) / np.asarray(y0))


class Blowup(rf.AbstractSystem):
    """dy/dt = y^2: y = 1/(1 - t) from y0 = 1, singular at t = 1."""

    def vector_field(self, t, y, args):
        return y**2


S = np.array([3.0, 2.0, 1.0])
U0 = np.full(3, 1e-3)
HALF_TIMES = np.log((S - U0) / U0) / (2 * S)  # time to reach s/2 from u0


def test_explicit_solution_matches_closed_form():
    system = Logistic(S)
    traj = rf.solve(system, U0, 20.0, rtol=1e-11, atol=1e-13)
    exact = system.closed_form(traj.ts, U0)
    assert traj.stats.solver == "Tsit5"
    assert np.max(np.abs(traj.ys - exact) / exact) < 1e-8
    assert traj.observables["risk"][-1] < 1e-20
    np.testing.assert_allclose(traj.observables["risk"], 0.5 * np.sum((S - exact) ** 2, axis=1), rtol=1e-7, atol=1e-12)


def test_log_spaced_default_save_times():
    traj = rf.solve(Logistic(S), U0, 20.0)
    assert traj.ts[0] == 0.0 and traj.ts[-1] == 20.0 and traj.ts.size == 201
    ratios = traj.ts[2:] / traj.ts[1:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-10)


@pytest.mark.parametrize("eps", [1e-2, 1e-8])
def test_stiff_default_is_implicit_and_accurate(eps):
    system = FastSlowGradientFlow(eps)
    y0 = {"slow": 0.0, "fast": 2.0}
    traj = rf.solve(system, y0, 10.0, saveat=rf.LinearTimes(50))
    assert traj.stats.solver == "Kvaerno5"
    exact = system.closed_form(traj.ts, y0)
    for part in ("slow", "fast"):
        assert np.max(np.abs(traj.ys[part] - exact[part])) < 1e-6


def test_stiff_step_count_does_not_grow_with_timescale_ratio():
    y0 = {"slow": 0.0, "fast": 2.0}
    steps = {eps: rf.solve(FastSlowGradientFlow(eps), y0, 10.0).stats.steps for eps in (1e-2, 1e-8)}
    assert steps[1e-8] <= 1.5 * steps[1e-2], steps


def test_nonlinear_stiff_step_count_is_flat_and_follows_the_slow_manifold():
    y0 = {"slow": 0.2, "fast": 2.0}
    runs = {}
    for eps in (1e-2, 1e-4, 1e-8, 1e-10):
        system = CurvedFastSlowGradientFlow(eps)
        traj = rf.solve(system, y0, 10.0, saveat=rf.LinearTimes(51))
        # Tikhonov: after the O(eps) layer, x follows the reduced flow x' = -(x - 1) - x^3.
        gap = np.max(np.abs(traj.ys["slow"][5:] - system.reduced_slow_flow(traj.ts, 0.2)[5:]))
        runs[eps] = (traj.stats.steps, gap)
    assert runs[1e-8][0] <= 1.5 * runs[1e-2][0] and runs[1e-10][0] <= 1.5 * runs[1e-2][0], runs
    # O(eps) gap to the reduced flow: a factor 100 in eps gives about 100 in the gap ...
    assert 30 < runs[1e-2][1] / runs[1e-4][1] < 300, runs
    # ... down to the solver's accuracy.
    assert runs[1e-10][1] < 1e-7, runs


def test_explicit_step_count_grows_like_inverse_epsilon():
    y0 = {"slow": 0.0, "fast": 2.0}
    steps = [
        rf.solve(FastSlowGradientFlow(eps), y0, 10.0, solver=dfx.Tsit5(), max_steps=10**6).stats.steps
        for eps in (1e-2, 1e-3, 1e-4)
    ]
    # Stability-limited: steps ~ c / eps, so each factor 10 in eps gives nearly 10x the steps.
    assert steps[1] / steps[0] > 5 and steps[2] / steps[1] > 8, steps


def test_crossings_are_root_refined_and_do_not_stop_the_solve():
    system = Logistic(S)
    half = rf.Crossing("half", lambda t, y, s: y, level=S / 2, direction=+1)
    risk_low = rf.Crossing.of_observable("risk", level=1e-3, direction=-1)
    traj = rf.solve(system, U0, 20.0, events=(half, risk_low), rtol=1e-11, atol=1e-13)
    assert traj.t_final == 20.0
    ev = traj.events["half"]
    np.testing.assert_allclose(ev.first_per_component(3), HALF_TIMES, rtol=1e-9)
    assert np.all(ev.directions == 1)
    # The risk crossing: one time, after the slowest mode's half time, where risk = 1e-3.
    (t_risk,) = traj.events["risk"].times
    u = system.closed_form(np.array(t_risk), U0)
    assert abs(0.5 * np.sum((S - u) ** 2) - 1e-3) < 1e-9
    # Direction filtering: no downward crossings of s/2 exist.
    down = rf.Crossing("down", lambda t, y, s: y, level=S / 2, direction=-1)
    assert rf.solve(system, U0, 20.0, events=(down,)).events["down"].times.size == 0


def test_scipy_backend_agrees_with_diffrax_and_finds_the_same_events():
    system = Logistic(S)
    half = rf.Crossing("half", lambda t, y, s: y, level=S / 2, direction=+1)
    ref = rf.solve(system, U0, 20.0, events=(half,), rtol=1e-11, atol=1e-13)
    for method in ("LSODA", "Radau"):
        traj = rf.solve(system, U0, 20.0, events=(half,), backend="scipy", solver=method, rtol=1e-10, atol=1e-12)
        assert traj.stats.solver == f"scipy-{method}"
        assert np.max(np.abs(traj.ys - ref.ys) / ref.ys) < 1e-6
        np.testing.assert_allclose(traj.events["half"].first_per_component(3), HALF_TIMES, rtol=1e-6)
    stiff = rf.solve(FastSlowGradientFlow(1e-6), {"slow": 0.0, "fast": 2.0}, 10.0, backend="scipy")
    assert stiff.stats.solver == "scipy-Radau"


def test_dense_output_evaluates_between_save_times():
    system = Logistic(S)
    traj = rf.solve(system, U0, 20.0, saveat=rf.LinearTimes(3), dense=True, rtol=1e-11, atol=1e-13)
    t = np.array([0.7, 1.9, 3.3])
    np.testing.assert_allclose(traj.evaluate(t), system.closed_form(t, U0), rtol=1e-8)
    np.testing.assert_allclose(traj.evaluate(1.9), system.closed_form(1.9, U0), rtol=1e-8)
    with pytest.raises(ValueError, match="dense"):
        rf.solve(system, U0, 1.0).evaluate(0.5)


def test_compiled_solve_is_reused_across_parameters():
    rf.solve(Logistic(S), U0, 20.0, saveat=rf.LinearTimes(17))
    other = Logistic(2 * S)
    traj = rf.solve(other, 2 * U0, 7.0, saveat=rf.LinearTimes(17))
    assert traj.stats.compile_seconds == 0.0
    np.testing.assert_allclose(traj.ys, other.closed_form(traj.ts, 2 * U0), rtol=1e-6)


def test_solve_many_matches_individual_solves():
    scales = np.linspace(0.5, 2.0, 6)
    systems = eqx.filter_vmap(Logistic)(jnp.asarray(scales[:, None] * S))
    batch = rf.solve_many(systems, U0, 20.0, saveat=rf.LinearTimes(30))
    assert batch.batched and batch.ys.shape == (6, 30, 3)
    for i, k in enumerate(scales):
        single = Logistic(k * S)
        np.testing.assert_allclose(batch.ys[i], single.closed_form(batch.ts, U0), rtol=1e-6)
    assert batch.observables["risk"].shape == (6, 30)
    assert batch.to_xarray()["y"].dims[:2] == ("batch", "time")


def test_log_time_reaches_large_times_cheaply():
    class Harmonic(rf.AbstractSystem):  # dy/dt = 1/(1+t): y = ln(1+t)
        def vector_field(self, t, y, args):
            return 1.0 / (1.0 + t) * jnp.ones_like(y)

    system = rf.LogTime(Harmonic())
    t1 = 1e8
    traj = rf.solve(system, jnp.zeros(1), float(rf.LogTime.to_sigma(t1)), rtol=1e-10, atol=1e-12)
    t = np.asarray(rf.LogTime.to_time(traj.ts))
    np.testing.assert_allclose(traj.ys[:, 0], np.log1p(t), atol=1e-9)
    assert traj.stats.steps < 50


def test_max_steps_failure_is_explained():
    with pytest.raises(rf.SolveError) as info:
        rf.solve(Logistic(S), U0, 1e4, solver=dfx.Tsit5(), max_steps=20)
    err = info.value
    assert err.status == "max_steps_reached"
    assert 0 < err.t < 1e4
    assert "max_steps = 20" in str(err) and f"t = {err.t:.6g}" in str(err) and "Try" in str(err)
    traj = rf.solve(Logistic(S), U0, 1e4, max_steps=20, throw=False)
    assert traj.status == "max_steps_reached" and not traj.succeeded
    assert np.isnan(traj.ys[-1]).all() and np.isfinite(traj.ys[0]).all()


def test_blow_up_is_reported_at_the_singularity():
    traj = rf.solve(Blowup(), jnp.array(1.0), 2.0, throw=False)
    assert traj.status in ("step_size_collapse", "non_finite_state")
    assert abs(traj.t_final - 1.0) < 1e-3  # y = 1/(1 - t) is singular at t = 1
    assert "t = 1" in traj.message


def test_trajectory_to_netcdf_and_plot(tmp_path):
    traj = rf.solve(FastSlowGradientFlow(1e-3), {"slow": 0.0, "fast": 2.0}, 10.0,
                    events=(rf.Crossing("mid", lambda t, y, s: y["slow"], level=0.5),))
    ds = traj.to_xarray()
    assert set(ds.data_vars) >= {"fast", "slow", "potential", "event_mid"}
    assert ds.attrs["solver_solver"] == "Kvaerno5"
    path = tmp_path / "traj.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    import xarray as xr

    back = xr.load_dataset(path, engine="h5netcdf")
    np.testing.assert_array_equal(back["slow"].values, traj.ys["slow"])
    ax = traj.plot(["slow", "fast", "potential"])
    assert len(ax.lines) == 3


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(t1=-1.0), "t1"),
        (dict(rtol=0.0), "rtol"),
        (dict(atol=-1.0), "atol"),
        (dict(max_steps=0), "max_steps"),
        (dict(backend="julia"), "backend"),
        (dict(saveat=[5.0, 1.0]), "saveat"),
        (dict(saveat=[0.0, 100.0]), "saveat"),
        (dict(solver="Radau"), "solver"),
        (dict(backend="scipy", solver="Euler"), "solver"),
        (dict(y0={"slow": np.nan, "fast": 0.0}), "y0"),
        (dict(y0={"slow": 0.0}), "y0"),
        (dict(y0={"slow": np.zeros(2), "fast": 0.0}), "y0"),
        (dict(events=("not an event",)), "events"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(kwargs, name):
    call = dict(y0={"slow": 0.0, "fast": 1.0}, t1=1.0)
    call.update(kwargs)
    with pytest.raises(ValueError, match=f"`{name}"):
        rf.solve(FastSlowGradientFlow(1e-3), call.pop("y0"), call.pop("t1"), **call)


def test_bad_system_parameters_and_events():
    with pytest.raises(ValueError, match="`epsilon`"):
        FastSlowGradientFlow(-1e-3)
    with pytest.raises(ValueError, match="`Crossing.direction`"):
        rf.Crossing("x", lambda t, y, s: y, direction=2)
    with pytest.raises(ValueError, match="`system`"):
        rf.solve(lambda t, y: y, jnp.zeros(1), 1.0)


def test_solve_in_log_time_maps_times_in_and_out():
    class Harmonic(rf.AbstractSystem):  # dy/dt = 1/(1+t): y = ln(1+t)
        def vector_field(self, t, y, args):
            return 1.0 / (1.0 + t) * jnp.ones_like(y)

    level = rf.Crossing("y=10", lambda t, y, s: y[0], level=10.0, direction=+1)
    traj = rf.solve(Harmonic(), jnp.zeros(1), 1e8, log_time=True, events=(level,), dense=True,
                    rtol=1e-10, atol=1e-12)
    assert traj.ts[-1] == 1e8 and traj.t_final == pytest.approx(1e8, rel=1e-12)
    np.testing.assert_allclose(traj.ys[:, 0], np.log1p(traj.ts), atol=1e-9)
    np.testing.assert_allclose(traj.events["y=10"].times, [np.expm1(10.0)], rtol=1e-8)
    np.testing.assert_allclose(traj.evaluate(np.array([3.0, 1e5])), np.log1p([[3.0], [1e5]]), atol=1e-9)
    assert traj.stats.steps < 50 and isinstance(traj.system, Harmonic)
    with pytest.raises(ValueError, match="`t0`"):
        rf.solve(Harmonic(), jnp.zeros(1), 1.0, t0=-2.0, log_time=True)


def test_changing_tolerances_or_save_times_does_not_recompile():
    system = FastSlowGradientFlow(1e-3)
    y0 = {"slow": 0.0, "fast": 2.0}
    rf.solve(system, y0, 10.0, saveat=rf.LinearTimes(23))
    again = rf.solve(FastSlowGradientFlow(1e-5), y0, 5.0, saveat=rf.LogTimes(22), rtol=1e-9, atol=1e-11)
    assert again.stats.compile_seconds == 0.0


def test_progress_output(capsys):
    rf.solve(FastSlowGradientFlow(1e-3), {"slow": 0.0, "fast": 2.0}, 10.0, progress=True)
    assert "100.00%" in capsys.readouterr().out


def test_gradients_flow_through_solve_arrays():
    """d u(t) / d s of the logistic mode, through the solver, against the closed form's."""
    import jax

    ts = jnp.linspace(0.0, 3.0, 7)

    def u_final(s):
        return rf.solve_arrays(Logistic(s), U0, ts, rtol=1e-11, atol=1e-13)[-1]

    def u_exact(s):
        e = jnp.exp(2 * s * ts[-1])
        return s * e / (e - 1 + s / U0)

    s = jnp.asarray(S)
    np.testing.assert_allclose(u_final(s), u_exact(s), rtol=1e-8)
    np.testing.assert_allclose(jax.jacrev(u_final)(s), jax.jacfwd(u_exact)(s), rtol=1e-6, atol=1e-10)
    forward = jax.jacfwd(lambda s: rf.solve_arrays(Logistic(s), U0, ts, rtol=1e-11, atol=1e-13, adjoint=dfx.ForwardMode())[-1])
    np.testing.assert_allclose(forward(s), jax.jacfwd(u_exact)(s), rtol=1e-6, atol=1e-10)
    grad = jax.grad(lambda s: jnp.sum(u_final(s)))(s)
    np.testing.assert_allclose(grad, np.diag(jax.jacfwd(u_exact)(s)), rtol=1e-6)
    # Under tracing the stiffness of a system with traced parameters is unknown.
    with pytest.raises(ValueError, match="pass `solver` explicitly"):
        jax.grad(lambda eps: rf.solve_arrays(FastSlowGradientFlow(eps), {"slow": 0.0, "fast": 1.0}, ts)["slow"][-1])(1e-3)
