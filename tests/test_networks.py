"""Finite deep linear networks (reducedflow.networks) and the validation layer against the
reduced mode systems (theory linear_networks.md §1-§3, §6-§8, §11 items 3, 8, 9).

Witnesses: exact whitening and Sigma_yx by construction; the logistic closed form (D = 2) and
the DeepModes ODE (D = 3) against GD at three step sizes (Euler: error O(lr)); the exact
one-step change of the conservation matrices under GD; the linearised escape time of each
mode from a small random init."""

import jax
import numpy as np
import pytest

import reducedflow  # noqa: F401  (float64)
from reducedflow.networks import (
    DeepLinearNetwork,
    SyntheticTask,
    empirical_loss,
    init_deep_linear,
    mode_matrix,
    mode_strengths,
    population_loss,
    synthetic_task,
    train_gd,
)
from reducedflow.networks.deep_linear import _sample_loss
from reducedflow.validate import (
    ValidationResult,
    convergence_in_learning_rate,
    validate_linear_modes,
)

S = np.array([3.0, 1.5, 0.5])
LEARNING_RATES = [0.02, 0.01, 0.005]


def test_synthetic_task_is_exactly_whitened_with_prescribed_correlation():
    for n_samples, noise in [(5, 0.0), (23, 0.7)]:
        task = synthetic_task(S, 5, 4, n_samples, jax.random.key(3), noise=noise)
        U, V = task.output_singular_vectors, task.input_singular_vectors
        assert np.max(np.abs(task.input_correlation() - np.eye(5))) < 1e-12
        assert np.max(np.abs(task.input_output_correlation() - U @ np.diag(S) @ V.T)) < 1e-12
        assert np.max(np.abs(U.T @ U - np.eye(3))) < 1e-12
        assert np.max(np.abs(V.T @ V - np.eye(3))) < 1e-12
        # The loss of the best linear map: 0 without noise, the projected noise power with it.
        best = DeepLinearNetwork([U @ np.diag(S) @ V.T])
        assert abs(float(empirical_loss(best, task)) - float(task.loss_offset())) < 1e-12
        if noise == 0:
            assert abs(float(task.loss_offset())) < 1e-12
        else:
            assert float(task.loss_offset()) > 0.1


def test_population_loss_equals_empirical_loss_and_its_gradient_is_the_flow():
    """With X^T X / P = I: (1/2P) sum ||y - W x||^2 = 1/2 ||Sigma_yx - W||_F^2 + const, and the
    sample gradient is the theory's vector field, e.g. dW_1 = W_2^T (Sigma_yx - W_2 W_1)."""
    task = synthetic_task(S, 5, 4, 17, 0, noise=0.5)
    network = init_deep_linear((5, 7, 4), 0.6, 1)
    emp, pop = float(empirical_loss(network, task)), float(population_loss(network, task))
    assert abs(emp - pop) < 1e-12 * abs(emp)
    assert float(task.loss_offset()) > 0.1  # the constant is non-trivial here
    W1, W2 = network.weights
    sigma_yx = np.asarray(task.input_output_correlation())
    residual = sigma_yx - W2 @ W1
    g1, g2 = jax.grad(_sample_loss)(network.weights, task.inputs, task.outputs)
    np.testing.assert_allclose(-g1, W2.T @ residual, atol=1e-12)
    np.testing.assert_allclose(-g2, residual @ W1.T, atol=1e-12)
    # Discriminative: with merely random (not whitened) inputs the identity fails.
    raw = np.asarray(jax.random.normal(jax.random.key(9), (17, 5)))
    unwhitened = SyntheticTask(raw, task.outputs, task.singular_values, task.output_singular_vectors,
                               task.input_singular_vectors)
    assert abs(float(empirical_loss(network, unwhitened)) - float(population_loss(network, unwhitened))) > 1e-2


@pytest.mark.parametrize(
    "widths, t1, bound",
    [((5, 6, 4), 10.0, 0.03), ((5, 6, 7, 4), 20.0, 0.07)],
    ids=["depth2", "depth3"],
)
def test_aligned_gd_tracks_reduced_modes_with_error_order_lr(widths, t1, bound):
    """Aligned balanced init (u0 = 0.01): GD with step lr vs BalancedModes / DeepModes.
    Measured max errors (lr = 0.02, 0.01, 0.005): depth 2: 0.0821, 0.0412, 0.0206
    (ratios 1.994, 1.998); depth 3: 0.203, 0.0995, 0.0491 (ratios 2.04, 2.03)."""
    study = convergence_in_learning_rate(
        validate_linear_modes, LEARNING_RATES, singular_values=S, widths=widths, t1=t1, key=0,
        initial_strength=1e-2,
    )
    assert np.all((study.ratios > 1.7) & (study.ratios < 2.3)), study.ratios
    assert 0.9 < study.order < 1.1
    finest = study.results[-1]
    assert finest.max_error < bound
    assert finest.max_abs_error["mode_strengths"].shape == (3,)
    # every mode has been learned by t1, in the network and in the reduced system
    np.testing.assert_allclose(finest.network["mode_strengths"][-1], S, rtol=5e-3)
    np.testing.assert_allclose(finest.reduced["mode_strengths"][-1], S, rtol=5e-3)
    if len(widths) == 3:  # the reduced solve itself against the logistic closed form (theory §3)
        growth = np.exp(2 * np.multiply.outer(finest.times, S))
        exact = S * growth / (growth - 1 + S / 1e-2)
        assert np.max(np.abs(finest.reduced["mode_strengths"] - exact)) < 1e-7
    for res in study.results:
        assert np.max(res.diagnostics["off_diagonal"]) < 1e-12
    ds = finest.to_xarray()
    assert ds["reduced_mode_strengths"].dims == ("time", "mode")
    assert float(ds["max_abs_error_mode_strengths"].max()) == finest.max_error
    assert study.to_xarray().attrs["parameter"] == "learning_rate"


def test_aligned_init_stays_aligned_and_balanced():
    """Aligned balanced init, depth 3, unequal widths: the off-diagonal modes, the part of W
    outside span(U) x span(V), and the conservation matrices stay at rounding level."""
    task = synthetic_task(S, 6, 4, 6, 5)
    U, V = task.output_singular_vectors, task.input_singular_vectors
    network = init_deep_linear((6, 5, 8, 4), np.array([0.02, 0.01, 0.05]), 6, aligned_to=task)
    np.testing.assert_allclose(mode_strengths(network, U, V), [0.02, 0.01, 0.05], rtol=1e-12)
    assert all(np.max(np.abs(c)) < 1e-14 for c in network.conservation_matrices())
    run = train_gd(network, task, 0.01, 2000, record_every=100)
    assert np.max(run.off_diagonal) < 1e-12
    assert np.all(np.abs(run.mode_strengths[-1] - S) < 1e-3)
    W = run.network.end_to_end()
    assert np.max(np.abs(W - U @ np.diag(run.mode_strengths[-1]) @ V.T)) < 1e-12
    assert all(np.max(np.abs(c)) < 1e-12 for c in run.network.conservation_matrices())
    np.testing.assert_allclose(mode_matrix(run.network, U, V), run.mode_matrix[-1], atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1])
def test_small_random_init_learns_modes_in_order_of_singular_value(seed):
    """Two layers, entries N(0, 1e-6): mode alpha reaches s_alpha/2 at t_alpha, with
    t_1 < t_2 < t_3 for s = (4, 2, 1). Linearising at 0, the growing direction of (a, b) =
    (W_1 v, W_2^T u) is a + b, so u(t) ~ u_eff e^{2st}, u_eff = ||(a_0 + b_0)/2||^2, and
    t_alpha ~ ln((s - u_eff)/u_eff) / (2 s) (theory §3, §8). Measured ratio to that
    prediction: 1.008-1.029 (seeds 0, 1; GD with lr = 0.005 grows ~1% slower than the flow)."""
    s = np.array([4.0, 2.0, 1.0])
    task = synthetic_task(s, 6, 5, 6, seed)
    U, V = np.asarray(task.output_singular_vectors), np.asarray(task.input_singular_vectors)
    network = init_deep_linear((6, 10, 5), 1e-3, seed + 100)
    lr = 0.005
    run = train_gd(network, task, lr, 2400)
    u = run.mode_strengths
    assert np.max(np.abs(u[0])) < 1e-4  # small init
    half_times = []
    for alpha in range(3):
        i = int(np.argmax(u[:, alpha] >= s[alpha] / 2))
        assert i > 0
        frac = (s[alpha] / 2 - u[i - 1, alpha]) / (u[i, alpha] - u[i - 1, alpha])
        half_times.append(run.times[i - 1] + frac * lr)
    half_times = np.array(half_times)
    assert np.all(np.diff(half_times) > 0), half_times
    W1, W2 = network.weights
    u_eff = np.sum((W1 @ V + W2.T @ U) ** 2, axis=0) / 4
    predicted = np.log((s - u_eff) / u_eff) / (2 * s)
    assert np.all(np.abs(half_times / predicted - 1) < 0.1), half_times / predicted
    np.testing.assert_allclose(u[-1], s, rtol=1e-4)


def test_small_random_init_depth3_learns_modes_in_order():
    s = np.array([4.0, 2.0, 1.0])
    task = synthetic_task(s, 6, 5, 6, 0)
    run = train_gd(init_deep_linear((6, 10, 10, 5), 0.1, 100), task, 0.005, 12000, record_every=10)
    u = run.mode_strengths
    half_times = np.array([run.times[np.argmax(u[:, a] >= s[a] / 2)] for a in range(3)])
    assert np.all(np.diff(half_times) > 0) and half_times[-1] < run.times[-1], half_times


def test_conservation_law_drift_under_gd_is_order_lr():
    """C_l = W_{l+1}^T W_{l+1} - W_l W_l^T. Under GD, W -> W - lr G, the O(lr) change cancels
    (the law of the flow) and one step changes C_l by exactly lr^2 (G_{l+1}^T G_{l+1} - G_l G_l^T).
    Over a fixed time T = 2 (T/lr steps) the drift max_l ||C_l(T) - C_l(0)||_F is therefore
    O(lr). Measured (depth 3, random init of scale 0.5, ||C_l(0)||_F = 6.5, 6.7): drift
    0.0362, 0.0168, 0.00809 at lr = 0.01, 0.005, 0.0025 (ratios 2.16, 2.07) while every W_l
    moves by at least 0.70; the one-step identity holds to 5e-16 (terms ~1e-2)."""
    task = synthetic_task(np.array([2.0, 1.0, 0.5]), 4, 3, 9, 0, noise=0.2)
    network = init_deep_linear((4, 5, 6, 3), 0.5, 1)
    start = network.conservation_matrices()
    lr = 0.01
    grads = jax.grad(_sample_loss)(network.weights, task.inputs, task.outputs)
    after_one = train_gd(network, task, lr, 1).network.conservation_matrices()
    for l in range(2):
        predicted = lr**2 * (grads[l + 1].T @ grads[l + 1] - grads[l] @ grads[l].T)
        assert np.max(np.abs(predicted)) > 1e-4
        np.testing.assert_allclose(after_one[l] - start[l], predicted, rtol=0, atol=1e-14)
    drifts, moves = [], []
    for lr in [0.01, 0.005, 0.0025]:
        run = train_gd(network, task, lr, int(round(2.0 / lr)), record_every=int(round(2.0 / lr)))
        end = run.network.conservation_matrices()
        drifts.append(max(np.linalg.norm(a - b) for a, b in zip(end, start)))
        moves.append(min(np.linalg.norm(a - b) for a, b in zip(run.network.weights, network.weights)))
    drifts = np.array(drifts)
    ratios = drifts[:-1] / drifts[1:]
    assert np.all((ratios > 1.7) & (ratios < 2.3)), ratios
    assert drifts[-1] < 1e-2 and min(moves) > 0.4
    assert drifts[-1] < 3e-3 * min(np.linalg.norm(c) for c in start)


def test_train_gd_compiles_once_and_reports_progress(capsys):
    task = synthetic_task(S, 5, 4, 5, 0)
    network = init_deep_linear((5, 6, 4), 1e-2, 1, aligned_to=task)
    train_gd(network, task, 0.01, 200, record_every=20)
    again = train_gd(network, task, 0.003, 400, record_every=40, progress=False)
    assert again.compile_seconds == 0.0  # new learning rate and steps per record: no recompile
    np.testing.assert_allclose(again.times, 0.003 * 40 * np.arange(11))
    train_gd(network, task, 0.01, 200, record_every=20, progress=True)
    out = capsys.readouterr().out
    assert out.count("train_gd: step") == 10 and "step 200/200" in out
    with pytest.raises(FloatingPointError, match="learning_rate"):
        train_gd(network, task, 5.0, 200, record_every=20)


def test_bad_inputs_raise_value_errors_naming_the_argument():
    key = jax.random.key(0)
    task = synthetic_task(S, 5, 4, 5, key)
    network = init_deep_linear((5, 6, 4), 0.1, key)
    cases = [
        ("singular_values", lambda: synthetic_task([1.0, -2.0], 5, 4, 5, key)),
        ("singular_values", lambda: synthetic_task([1.0, np.nan], 5, 4, 5, key)),
        ("singular_values", lambda: synthetic_task([[1.0, 2.0]], 5, 4, 5, key)),
        ("singular_values", lambda: synthetic_task([], 5, 4, 5, key)),
        ("singular_values", lambda: synthetic_task([3.0, 2.0, 1.0], 5, 2, 5, key)),
        ("n_samples", lambda: synthetic_task(S, 5, 4, 4, key)),
        ("n_samples", lambda: synthetic_task(S, 5, 4, 5, key, noise=0.1)),
        ("noise", lambda: synthetic_task(S, 5, 4, 8, key, noise=-1.0)),
        ("key", lambda: synthetic_task(S, 5, 4, 5, "seed")),
        ("widths", lambda: init_deep_linear((5,), 0.1, key)),
        ("widths", lambda: init_deep_linear((5, 0, 4), 0.1, key)),
        ("widths", lambda: init_deep_linear((5, 2, 4), 0.1, key, aligned_to=task)),
        ("widths", lambda: init_deep_linear((6, 6, 4), 0.1, key, aligned_to=task)),
        ("scale", lambda: init_deep_linear((5, 6, 4), 0.0, key)),
        ("scale", lambda: init_deep_linear((5, 6, 4), [0.1, 0.2], key, aligned_to=task)),
        ("learning_rate", lambda: train_gd(network, task, 0.0, 10)),
        ("learning_rate", lambda: train_gd(network, task, -0.1, 10)),
        ("learning_rate", lambda: train_gd(network, task, np.inf, 10)),
        ("n_steps", lambda: train_gd(network, task, 0.01, 0)),
        ("n_steps", lambda: train_gd(network, task, 0.01, 10, record_every=3)),
        ("network", lambda: train_gd(init_deep_linear((4, 6, 4), 0.1, key), task, 0.01, 10)),
        ("weights", lambda: DeepLinearNetwork([np.ones((3, 5)), np.ones((4, 4))])),
        ("learning_rate", lambda: validate_linear_modes(S, (5, 6, 4), learning_rate=-1.0, t1=1.0, key=0)),
        ("widths", lambda: validate_linear_modes(S, (5, 4), learning_rate=0.01, t1=1.0, key=0)),
        ("t1", lambda: validate_linear_modes(S, (5, 6, 4), learning_rate=0.01, t1=0.0, key=0)),
        ("initial_strength", lambda: validate_linear_modes(S, (5, 6, 4), learning_rate=0.01, t1=1.0, key=0, initial_strength=-1e-2)),
    ]
    for name, call in cases:
        with pytest.raises(ValueError, match=f"`{name}"):
            call()
    with pytest.raises(ValueError, match="`reduced"):
        ValidationResult("x", np.arange(3.0), {"a": np.zeros(3)}, {"a": np.zeros(4)})
