"""Claims of Saxe, McClelland, Ganguli, "Exact solutions to the nonlinear dynamics of learning in
deep linear neural networks", ICLR 2014, arXiv:1312.6120 (as stated in
shared/theory/linear_networks.md), checked by solving the reduced and the full flows."""

from __future__ import annotations

import numpy as np

from .._events import Crossing
from .._save_times import LinearTimes
from .._solve import solve
from ._registry import claim, compare

PAPER = "saxe2014"
S = np.array([3.0, 2.0, 1.0, 0.5])


def _half_way(t, y, system):
    return y


def _leading_mode_strengths(t, y, system):
    # diag(U^T W2 W1 V) for the 4 modes with s > 0 (mode_strengths returns min(N1, N3) of them)
    return system.mode_strengths(y)[:4]


@claim(PAPER, "sigmoidal-mode-closed-form",
       "A balanced mode obeys tau du/dt = 2u(s-u) with the logistic solution u(t) = s e^{2st/tau} / (e^{2st/tau} - 1 + s/u0).")
def _closed_form():
    from ..models.linear_modes import BalancedModes

    system = BalancedModes(S, tau=1.0)
    u0 = np.full(S.size, 1e-4)
    traj = solve(system, u0, 15.0, rtol=1e-11, atol=1e-14)
    exact = np.asarray(system.closed_form(traj.ts, u0))
    err = float(np.max(np.abs(traj.ys - exact) / exact))
    return {"max relative error ODE vs closed form": err}, {"max relative error ODE vs closed form": 0.0}, 1e-8, err < 1e-8, "absolute criterion: error < 1e-8"


@claim(PAPER, "learning-time-inverse-in-s",
       "The time for a mode to be learned scales as 1/s: s * t_half = (1/2) ln((s - u0)/u0), so stronger modes are learned first.")
def _inverse_s():
    from ..models.linear_modes import BalancedModes

    system = BalancedModes(S)
    u0 = np.full(S.size, 1e-6)
    half = Crossing("half", _half_way, level=S / 2, direction=+1)
    traj = solve(system, u0, 40.0, events=(half,), rtol=1e-10, atol=1e-14)
    t_half = traj.events["half"].first_per_component(S.size)
    return compare({"s * t_half": S * t_half}, {"s * t_half": 0.5 * np.log((S - u0) / u0)}, rtol=1e-6)


@claim(PAPER, "aligned-network-decouples-into-modes",
       "With an aligned balanced initialisation, U^T W2 W1 V of the full two-layer network stays diagonal and each diagonal entry follows its own mode's closed form.")
def _decoupling():
    from ..models.linear_modes import TwoLayerLinearFlow

    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    v, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    syx = (u[:, :4] * S) @ v[:, :4].T
    system = TwoLayerLinearFlow(syx, hidden_width=4)
    a0 = np.full(4, 1e-2)
    y0 = system.aligned_init(a0, key=1)
    traj = solve(system, y0, 10.0, saveat=LinearTimes(60), rtol=1e-11, atol=1e-13)
    basis_u, s, basis_v = system.mode_basis()
    matrix = np.einsum("ia,tij,jb->tab", basis_u, traj.observables["network_map"], basis_v)[:, :4, :4]
    diag = np.diagonal(matrix, axis1=1, axis2=2)
    e = np.exp(2 * np.outer(traj.ts, s[:4]))
    exact = s[:4] * e / (e - 1 + s[:4] / a0**2)
    diag_err = float(np.max(np.abs(diag - exact)))
    off = float(np.max(np.abs(matrix - np.einsum("ta,ab->tab", diag, np.eye(4)))))
    passed = diag_err < 1e-8 and off < 1e-10
    return (
        {"max |diag - closed form|": diag_err, "max |off-diagonal|": off},
        {"max |diag - closed form|": 0.0, "max |off-diagonal|": 0.0},
        1e-8,
        passed,
        "absolute criteria: diagonal error < 1e-8, off-diagonal < 1e-10",
    )


@claim(PAPER, "incremental-learning-order",
       "From a small random initialisation the modes are learned one at a time, in decreasing order of singular value, at s_a t_a ~ (1/2) ln(s_a/u0_a).")
def _incremental():
    from ..models.linear_modes import TwoLayerLinearFlow

    rng = np.random.default_rng(3)
    n = 6
    u, _ = np.linalg.qr(rng.normal(size=(n, n)))
    v, _ = np.linalg.qr(rng.normal(size=(n, n)))
    syx = (u[:, :4] * S) @ v[:, :4].T
    system = TwoLayerLinearFlow(syx, hidden_width=n)
    scale = 1e-3
    y0 = {
        "first_layer": scale * rng.normal(size=(n, n)) / np.sqrt(n),
        "second_layer": scale * rng.normal(size=(n, n)) / np.sqrt(n),
    }
    half = Crossing("half", _leading_mode_strengths, level=S / 2, direction=+1)
    traj = solve(system, y0, 40.0, events=(half,), rtol=1e-9, atol=1e-12)
    t_half = traj.events["half"].first_per_component(4)
    u0 = np.abs(np.asarray(system.mode_strengths(y0))[:4])
    predicted = 0.5 * np.log(S / u0)
    in_order = bool(np.all(np.diff(t_half) > 0))
    ratio = S * t_half / predicted
    passed = in_order and bool(np.all(np.abs(ratio - 1) < 0.5))
    return (
        {"t_half (decreasing s)": t_half, "s t_half / (0.5 ln(s/u0))": ratio},
        {"t_half (decreasing s)": "increasing", "s t_half / (0.5 ln(s/u0))": np.ones(4)},
        0.5,
        passed,
        "order must be strict; ratio within 50% (random projection factors make it O(1), not exact)",
    )


@claim(PAPER, "depth-plateau-polynomial",
       "For depth D >= 3 the escape from a small initialisation a0 takes t ~ tau / ((D - 2) s a0^(D - 2)): polynomial in 1/a0 (logarithmic for D = 2).")
def _depth_plateau():
    from ..models.linear_modes import DeepModes

    depth, s = 3, np.array([1.0])
    system = DeepModes(s, depth=depth)
    a0 = np.array([1e-2, 1e-3, 1e-4])
    u0 = a0**depth
    times = []
    for u in u0:
        half = Crossing("half", _half_way, level=s / 2, direction=+1)
        t1 = 3.0 / (s[0] * u ** ((depth - 2) / depth))
        traj = solve(system, np.array([u]), float(t1), events=(half,), rtol=1e-10, atol=1e-30)
        times.append(traj.events["half"].first(0))
    times = np.array(times)
    asymptotic = np.array([float(np.asarray(system.escape_time_asymptotic(np.array([u])))[0]) for u in u0])
    rel = np.abs(times - asymptotic) / asymptotic
    passed = bool(rel[-1] < 0.01 and np.all(np.diff(rel) < 0))
    return (
        {"t_half": times, "relative gap to asymptotic": rel},
        {"t_half": asymptotic, "relative gap to asymptotic": "-> 0"},
        0.01,
        passed,
        "gap must shrink as a0 -> 0 and be < 1% at a0 = 1e-4",
    )
