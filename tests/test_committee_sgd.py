"""Finite-N online SGD of a soft committee machine tracks the order-parameter ODE
(Saad & Solla 1995), with a gap that shrinks like N^{-1/2}."""

import numpy as np
import pytest

import reducedflow
from reducedflow.models.committee import SoftCommittee
from reducedflow.networks.committee import sample_committee, train_committee_sgd

OVERLAP = np.array([[0.6, 0.1], [0.0, 0.3]])


def _gap(dimension, seeds=6, t1=5.0):
    """RMS over seeds and times of eps_g(SGD) - eps_g(ODE from the seed's measured start)."""
    teacher, students = sample_committee(2, 2, dimension, key=1, seeds=seeds, overlap=OVERLAP, scale=0.5)
    run = train_committee_sgd(teacher, students, t1, learning_rate=1.0, n_records=12, key=2)
    system = SoftCommittee(run.teacher_overlaps, 2, learning_rate=1.0)
    gaps = []
    for seed in range(seeds):
        traj = reducedflow.solve(system, run.initial_state(seed), float(run.times[-1]), saveat=run.times, rtol=1e-8, atol=1e-10)
        gaps.append(np.asarray(traj.observables["generalisation_error"]) - run.generalisation_error[seed])
    gaps = np.asarray(gaps)
    return float(np.sqrt(np.mean(gaps**2))), run


def test_sgd_tracks_ode_with_shrinking_gap():
    small_gap, _ = _gap(250)
    large_gap, run = _gap(1000)
    eg = run.generalisation_error.mean(axis=0)
    assert eg[-1] < 0.5 * eg[0]  # the network does learn over the window
    # O(N^{-1/2}) fluctuations: at N = 1000 the gap is a small fraction of the error scale
    assert large_gap < 0.1 * eg[-1] + 2e-3
    assert large_gap < small_gap / 1.4  # sqrt(4) = 2 expected; 1.4 leaves room for noise
    # the eta^2 terms matter at eta = 1: the first-order-only ODE is visibly further away
    first_order = SoftCommittee(run.teacher_overlaps, 2, learning_rate=1.0, sgd_noise_terms=False)
    traj = reducedflow.solve(first_order, run.initial_state(0), float(run.times[-1]), saveat=run.times)
    wrong = np.sqrt(np.mean((np.asarray(traj.observables["generalisation_error"]) - run.generalisation_error[0]) ** 2))
    assert wrong > 2 * large_gap


def test_sgd_rejects_bad_inputs():
    teacher, students = sample_committee(2, 1, 20, key=0)
    with pytest.raises(ValueError, match="learning_rate"):
        train_committee_sgd(teacher, students, 1.0, learning_rate=-1.0)
    with pytest.raises(ValueError, match="student_weights"):
        train_committee_sgd(teacher, students[..., :10], 1.0)
