r"""Online SGD of a finite soft committee machine: the finite-$N$ counterpart of
``reducedflow.models.committee.SoftCommittee``.

Student $\hat y = \sum_kv_kg(w_k\cdot x/\sqrt N)$, teacher $y = \sum_nA_ng(w^*_n\cdot x/\sqrt N) + \sigma\zeta$,
$g(z) = \mathrm{erf}(z/\sqrt2)$, one fresh sample $x \sim N(0, I_N)$ per step, $\Delta = y - \hat y$:

$$w_k \leftarrow w_k + \frac\eta{\sqrt N}v_kg'(\lambda_k)\Delta\,x - \frac\kappa Nw_k,\qquad
  v_k \leftarrow v_k + \frac{\eta_v}Ng(\lambda_k)\Delta - \frac\kappa Nv_k\ (\text{if trained}),$$

time $t = $ steps$/N$. The order parameters $Q = WW^\top/N$, $R = WW^{*\top}/N$ are measured
from the weights; as $N \to \infty$ they follow the ODEs of ``SoftCommittee`` with
$O(N^{-1/2})$ fluctuations. The run is one ``lax.scan`` (inner scan between records), with
``vmap`` over seeds.

References: Saad & Solla, PRE 52, 4225 (1995); Goldt et al., NeurIPS 2019, arXiv:1906.08632.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .._checks import check_finite, check_integer, check_positive
from .._random import as_key, generator, random_frame
from ..models.committee import committee_generalisation_error

__all__ = ["CommitteeSGDTrajectory", "sample_committee", "train_committee_sgd"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _g(z):
    return jax.scipy.special.erf(z / math.sqrt(2.0))


def _g_prime(z):
    return _SQRT_2_OVER_PI * jnp.exp(-0.5 * z**2)


@dataclasses.dataclass(frozen=True)
class CommitteeSGDTrajectory:
    """What ``train_committee_sgd`` recorded, for S seeds at T times.

    **Attributes:**

    - ``times``: $t$ = steps$/N$, shape ``(T,)``.
    - ``Q``, ``R``, ``v``: the measured order parameters, shapes ``(S, T, K, K)``,
      ``(S, T, K, M)``, ``(S, T, K)``.
    - ``generalisation_error``: $\\varepsilon_g$ of the measured order parameters (exact for the
      actual weights; without $\\sigma^2/2$), shape ``(S, T)``.
    - ``teacher_overlaps``: $T = W^*W^{*\\top}/N$, ``(M, M)``.
    - ``dimension``: $N$.
    """

    times: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    v: np.ndarray
    generalisation_error: np.ndarray
    teacher_overlaps: np.ndarray
    dimension: int

    def initial_state(self, seed: int = 0) -> dict[str, np.ndarray]:
        """The measured initial order parameters of one seed, as a ``SoftCommittee`` state."""
        return {"Q": self.Q[seed, 0], "R": self.R[seed, 0], "v": self.v[seed, 0]}

    def initial_states(self) -> dict[str, np.ndarray]:
        """The measured initial states of all seeds (leading axis S), for ``solve_many``."""
        return {"Q": self.Q[:, 0], "R": self.R[:, 0], "v": self.v[:, 0]}


def sample_committee(width: int, teacher_width: int, dimension: int, key, *, seeds: int = 1,
                     overlap=None, scale: float = 1.0):
    r"""Teacher and student weights for online SGD.

    The teacher rows are orthogonal with $|w^*_n|^2 = N$ (so $T = I$ exactly); each student row
    is $w_k = \sum_n B_{kn}w^*_n + \text{scale}\cdot\xi_k$ with $\xi_k \sim N(0, I_N)$, so
    $R \approx B$ and $Q \approx BB^\top + \text{scale}^2I$ up to $O(N^{-1/2})$.

    **Arguments:**

    - ``width`` $K$, ``teacher_width`` $M$ (<= ``dimension``), ``dimension`` $N$ (integers >= 1).
    - ``key``: a ``jax.random`` key or an integer seed.
    - ``seeds``: number of independent student initialisations S.
    - ``overlap``: $B$, shape ``(K, M)`` (default zero).
    - ``scale``: the standard deviation of the random part (>= 0).

    **Returns:** ``(teacher_weights (M, N), student_weights (S, K, N))``.
    """
    k = check_integer("width", width)
    m = check_integer("teacher_width", teacher_width)
    n = check_integer("dimension", dimension, minimum=m)
    s = check_integer("seeds", seeds)
    check_positive("scale", scale, allow_zero=True)
    b = np.zeros((k, m)) if overlap is None else np.asarray(overlap, np.float64)
    if b.shape != (k, m):
        raise ValueError(f"`overlap` must have shape ({k}, {m}); got {b.shape}.")
    check_finite("overlap", b)
    rng = generator(key)
    teacher = math.sqrt(n) * random_frame(rng, n, m).T
    students = b @ teacher + scale * rng.standard_normal((s, k, n))
    return jnp.asarray(teacher), jnp.asarray(students)


def _order_parameters(w, v, teacher, a, t_mat):
    n = w.shape[-1]
    q = w @ w.T / n
    r = w @ teacher.T / n
    return q, r, v, committee_generalisation_error(q, r, t_mat, v, a)


@partial(jax.jit, static_argnames=("n_records", "steps_per_record", "train_second_layer"))
def _run(w0, v0, keys, teacher, a, eta, eta_v, noise, kappa, *, n_records, steps_per_record, train_second_layer):
    n = teacher.shape[-1]
    sqrt_n = math.sqrt(n)
    t_mat = teacher @ teacher.T / n

    def one_seed(w, v, key):
        def step(carry, _):
            w, v, key = carry
            key, kx, kz = jr.split(key, 3)
            x = jr.normal(kx, (n,))
            lam = w @ x / sqrt_n
            rho = teacher @ x / sqrt_n
            y = a @ _g(rho) + noise * jr.normal(kz, ())
            delta = y - v @ _g(lam)
            w_new = w + (eta / sqrt_n) * (v * _g_prime(lam) * delta)[:, None] * x[None, :] - (kappa / n) * w
            if train_second_layer:
                v = v + (eta_v / n) * _g(lam) * delta - (kappa / n) * v
            return (w_new, v, key), None

        def record(carry, _):
            carry, _ = jax.lax.scan(step, carry, None, length=steps_per_record)
            w, v, _ = carry
            return carry, _order_parameters(w, v, teacher, a, t_mat)

        first = _order_parameters(w, v, teacher, a, t_mat)
        _, rest = jax.lax.scan(record, (w, v, key), None, length=n_records)
        return jax.tree.map(lambda f, r: jnp.concatenate([f[None], r]), first, rest)

    return jax.vmap(one_seed)(w0, v0, keys)


def train_committee_sgd(teacher_weights, student_weights, t1: float, *, second_layer=None,
                        teacher_second_layer=None, learning_rate: float = 1.0,
                        second_layer_rate: float = 0.0, train_second_layer: bool = False,
                        noise: float = 0.0, weight_decay: float = 0.0, n_records: int = 50,
                        key=0) -> CommitteeSGDTrajectory:
    r"""Online SGD of a soft committee machine (equations in the module docstring), vectorised
    over seeds.

    **Arguments:**

    - ``teacher_weights``: $W^*$, shape ``(M, N)``.
    - ``student_weights``: $W$ at $t = 0$, shape ``(K, N)`` or ``(S, K, N)`` (S seeds).
    - ``t1``: final time (> 0); the run makes ``round(t1 N / n_records) * n_records`` steps.
    - ``second_layer``: $v$ at $t = 0$, ``(K,)`` (default ones; shared by the seeds).
    - ``teacher_second_layer``: $A$, ``(M,)`` (default ones).
    - ``learning_rate`` $\eta \ge 0$; ``second_layer_rate`` $\eta_v \ge 0$ (used when
      ``train_second_layer``); ``noise`` $\sigma \ge 0$; ``weight_decay`` $\kappa \ge 0$.
    - ``n_records``: number of records after $t = 0$ (integer >= 1).
    - ``key``: a ``jax.random`` key or an integer seed (one sample stream per seed).

    **Returns:** a ``CommitteeSGDTrajectory`` (``n_records + 1`` times, $t = 0$ included).
    """
    teacher = jnp.asarray(teacher_weights, jnp.float64)
    w0 = jnp.asarray(student_weights, jnp.float64)
    if teacher.ndim != 2:
        raise ValueError(f"`teacher_weights` must have shape (M, N); got {teacher.shape}.")
    m, n = teacher.shape
    if w0.ndim == 2:
        w0 = w0[None]
    if w0.ndim != 3 or w0.shape[-1] != n:
        raise ValueError(f"`student_weights` must have shape (K, {n}) or (S, K, {n}); got {tuple(np.shape(student_weights))}.")
    seeds, k, _ = w0.shape
    check_finite("teacher_weights", teacher)
    check_finite("student_weights", w0)
    check_positive("t1", t1)
    for name, value in [("learning_rate", learning_rate), ("second_layer_rate", second_layer_rate),
                        ("noise", noise), ("weight_decay", weight_decay)]:
        check_positive(name, value, allow_zero=True)
    n_records = check_integer("n_records", n_records)
    v0 = jnp.ones(k) if second_layer is None else jnp.asarray(second_layer, jnp.float64)
    a = jnp.ones(m) if teacher_second_layer is None else jnp.asarray(teacher_second_layer, jnp.float64)
    if v0.shape != (k,):
        raise ValueError(f"`second_layer` must have shape ({k},); got {v0.shape}.")
    if a.shape != (m,):
        raise ValueError(f"`teacher_second_layer` must have shape ({m},); got {a.shape}.")
    steps_per_record = max(1, round(t1 * n / n_records))
    keys = jr.split(as_key(key), seeds)
    q, r, v, eg = _run(w0, jnp.broadcast_to(v0, (seeds, k)), keys, teacher, a, float(learning_rate),
                       float(second_layer_rate), float(noise), float(weight_decay), n_records=n_records,
                       steps_per_record=steps_per_record, train_second_layer=bool(train_second_layer))
    times = np.arange(n_records + 1) * steps_per_record / n
    return CommitteeSGDTrajectory(times, np.asarray(q), np.asarray(r), np.asarray(v), np.asarray(eg),
                                  np.asarray(teacher @ teacher.T / n), n)
