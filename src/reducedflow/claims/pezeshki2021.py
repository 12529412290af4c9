"""Claims of Pezeshki, Kaba, Bengio, Courville, Precup, Lajoie, "Gradient Starvation: A Learning
Proclivity in Neural Networks", NeurIPS 2021, arXiv:2011.09468, checked on the linearised (NTK)
cross-entropy dynamics of ``reducedflow.models.ntk_cross_entropy``.

Provenance: the paper was not read. The statements below are those of the authors' blog, code and
a secondary source (definition of starvation: feature i starves feature j if dz_j*/d(s_i^2) < 0;
"an L2 penalty on the logits decouples the fixed points"), in the forms derived in
``shared/theory/gradient_starvation.md`` §5-§7; the paper's own theorem statements are not
verified."""

from __future__ import annotations

import numpy as np

from ._registry import claim, compare

PAPER = "pezeshki2021"
OVERLAP, S2, WEIGHT_DECAY, SD = 0.5, 2.0, 0.01, 0.002  # the authors' Figure_6/toy_fig_6.py
S1_VALUES = np.array([3.0, 4.0, 5.0, 6.0])


@claim(PAPER, "gradient-starvation-sign",
       "With two positively overlapping features (U a rotation by delta = 0.5, y = (1, 1), weight decay 0.01), "
       "a stronger feature 1 starves feature 2: dz_2*/d(s_1^2) < 0 for s_1 > s_2 = 2, equal to "
       "-c delta (D_2 - D_1) lambda z_1* / (s_1^4 det A) and to central finite differences of Newton fixed points.")
def _starvation_sign():
    from ..models.ntk_cross_entropy import two_feature_starvation_derivative, two_feature_system

    formula, finite_difference, z2 = [], [], []
    for s1 in S1_VALUES:
        system = two_feature_system(s1, S2, OVERLAP, WEIGHT_DECAY)
        z = system.fixed_point()
        z2.append(z[1])
        formula.append(two_feature_starvation_derivative(system, z))
        h = 1e-4 * s1**2
        up = two_feature_system(np.sqrt(s1**2 + h), S2, OVERLAP, WEIGHT_DECAY).fixed_point()[1]
        down = two_feature_system(np.sqrt(s1**2 - h), S2, OVERLAP, WEIGHT_DECAY).fixed_point()[1]
        finite_difference.append((up - down) / (2 * h))
    formula, finite_difference = np.array(formula), np.array(finite_difference)
    measured = {"dz2*/d(s1^2) (finite differences)": finite_difference, "z2* (decreasing in s1)": np.array(z2)}
    expected = {"dz2*/d(s1^2) (finite differences)": formula, "z2* (decreasing in s1)": "decreasing"}
    rel = float(np.max(np.abs(finite_difference - formula) / np.abs(formula)))
    passed = rel < 1e-6 and bool(np.all(formula < 0)) and bool(np.all(np.diff(z2) < 0))
    return measured, expected, 1e-6, passed, f"s1 = {S1_VALUES.tolist()}; max relative gap FD vs formula {rel:.1e}; all derivatives < 0"


@claim(PAPER, "spectral-decoupling-fixed-point-independent-of-s",
       "With Spectral Decoupling (L2 penalty 0.002 on the logits, no weight decay) the fixed point does not depend "
       "on S: z* = m*(lambda) U^T 1 with lambda m* (1 + e^m*) = 1 for every s_1, and dz*/d(s^2) = 0.")
def _sd_independent():
    from ..models.ntk_cross_entropy import spectral_decoupling_fixed_point, two_feature_system

    points = np.array([two_feature_system(s1, S2, OVERLAP, 0.0, SD).fixed_point() for s1 in np.append(S2, S1_VALUES)])
    system = two_feature_system(S1_VALUES[-1], S2, OVERLAP, 0.0, SD)
    closed = spectral_decoupling_fixed_point(system.left_singular_vectors, SD)
    spread = float(np.max(np.abs(points - closed)) / np.max(np.abs(closed)))
    derivative = float(np.max(np.abs(system.starvation_matrix())))
    passed = spread < 1e-12 and derivative < 1e-14
    return (
        {"max relative |z*(s1) - m* U^T 1|": spread, "max |dz*/d(s^2)|": derivative},
        {"max relative |z*(s1) - m* U^T 1|": 0.0, "max |dz*/d(s^2)|": 0.0},
        1e-12, passed, "absolute criteria: spread < 1e-12 (rounding), derivative < 1e-14",
    )


@claim(PAPER, "spectral-decoupling-times-inverse-s-squared",
       "With Spectral Decoupling and U = I each response obeys dz_j/dt = s_j^2 [sigma(-z_j) - lambda z_j]: the time to "
       "reach any fraction of z_j* scales exactly as 1/s_j^2.")
def _sd_times():
    from .._events import Crossing
    from .._save_times import LinearTimes
    from .._solve import solve
    from ..models.ntk_cross_entropy import FeatureResponseFlow

    s = np.array([4.0, 2.0, 1.0])
    flow = FeatureResponseFlow(np.eye(3), s, spectral_decoupling=0.01)
    z_star = flow.fixed_point()
    measured, expected = {}, {}
    for fraction in (0.5, 0.9):
        crossing = Crossing("reach", lambda t, y, system: y, level=fraction * z_star, direction=+1)
        traj = solve(flow, np.zeros(3), 50.0, saveat=LinearTimes(10), events=(crossing,), rtol=1e-11, atol=1e-13,
                     backend="scipy", solver="DOP853")
        scaled = traj.events["reach"].first_per_component(3) * s**2
        measured[f"t({fraction:g} z*) * s^2"] = scaled
        expected[f"t({fraction:g} z*) * s^2"] = np.full(3, scaled[0])
    return compare(measured, expected, rtol=1e-7, note="equal across s = 4, 2, 1")


@claim(PAPER, "quadratic-approximation-has-no-coupling",
       "Replacing the cross-entropy by its quadratic (small-margin) approximation makes the response flow linear and "
       "diagonal for every U, z_j(t) = z_j^inf (1 - exp(-(s_j^2/4 + lambda) t)): the coupling, hence starvation, "
       "comes from the saturation of the sigmoid.")
def _quadratic():
    import jax
    import jax.numpy as jnp

    from .._save_times import LinearTimes
    from .._solve import solve
    from ..models.ntk_cross_entropy import FeatureResponseFlow, QuadraticResponseFlow

    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    s = np.array([4.0, 2.5, 1.5, 0.8])
    quad = QuadraticResponseFlow(u, s, weight_decay=WEIGHT_DECAY)
    ce = FeatureResponseFlow(u, s, weight_decay=WEIGHT_DECAY)

    def off_diagonal(system):
        jac = np.asarray(jax.jacfwd(lambda z: system.vector_field(0.0, z, None))(jnp.full(4, 0.7)))
        return float(np.max(np.abs(jac - np.diag(np.diag(jac)))))

    traj = solve(quad, np.zeros(4), 10.0, saveat=LinearTimes(20), rtol=1e-12, atol=1e-14, backend="scipy", solver="DOP853")
    err = float(np.max(np.abs(traj.ys - quad.closed_form(traj.ts, np.zeros(4)))))
    starve = quad.starvation_matrix()
    off_starve = float(np.max(np.abs(starve - np.diag(np.diag(starve)))))
    measured = {"off-diagonal Jacobian (quadratic)": off_diagonal(quad), "off-diagonal dz*/d(s^2) (quadratic)": off_starve,
                "|ODE - closed form|": err, "off-diagonal Jacobian (cross-entropy)": off_diagonal(ce)}
    expected = {"off-diagonal Jacobian (quadratic)": 0.0, "off-diagonal dz*/d(s^2) (quadratic)": 0.0,
                "|ODE - closed form|": 0.0, "off-diagonal Jacobian (cross-entropy)": "> 0"}
    passed = measured["off-diagonal Jacobian (quadratic)"] < 1e-14 and off_starve < 1e-14 and err < 1e-10 and \
        measured["off-diagonal Jacobian (cross-entropy)"] > 1e-2
    return measured, expected, 1e-10, passed, "absolute criteria; the cross-entropy Jacobian at the same point is coupled"
