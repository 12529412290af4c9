r"""Lyapunov exponents: of an ODE by the tangent flow with QR re-orthonormalisation, and the
almost-sure growth rate of the linearisation of an SDE along sample paths.

**ODEs.** Along a solution $y(t)$ of $\dot y = f(y)$, a matrix $Q$ of $k$ tangent vectors
obeys $\dot Q = J(y)Q$, $J = \partial f/\partial y$. Integrating $(y, Q)$ over intervals of
length $\Delta$ and factoring $Q = \hat Q R$ (QR, $R_{ii} > 0$) after each, then restarting
from $\hat Q$, the $k$ largest exponents are

$$\lambda_i = \lim_{T\to\infty} \frac1T \sum_{\text{intervals}} \ln R_{ii}$$

(Benettin, Galgani, Giorgilli, Strelcyn 1980; Shimada & Nagashima 1979). The integration is
the classical fixed-step Runge–Kutta 4 scheme inside ``jax.lax.scan``, compiled once: the
tangent vectors are pushed by Jacobian-vector products (``jax.jvp``), never forming $J$.

**SDEs.** For $dX = b(X)\,dt + \sigma(X)\,dW$ the linearisation $dV = Db(X)V\,dt +
D\sigma(X)[V]\,dW$ has, under ergodicity, the almost-sure growth rate
$\lambda = \lim_T \frac1T\ln|V(T)|$ (Oseledets / Arnold, *Random Dynamical Systems*, 1998).
It is estimated on sample paths of the Euler–Maruyama scheme, the tangent vector being pushed
by the derivative of the same Euler–Maruyama step map (same Brownian increments), and
renormalised every step. For geometric Brownian motion $dX = \mu X\,dt + \sigma X\,dW$ (Itô)
this is $\mu - \sigma^2/2$.
"""

from __future__ import annotations

import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .._checks import check_finite, check_integer, check_positive, check_real
from .._random import as_key
from .._system import AbstractSystem
from ._layout import StateLayout, as_flat, flat_field, layout_of


@dataclasses.dataclass(frozen=True)
class LyapunovSpectrum:
    """The result of ``lyapunov_spectrum``.

    **Attributes:**

    - ``exponents``: the ``k`` largest exponents, descending, shape ``(k,)``.
    - ``times``: the ends of the averaging intervals, shape ``(m,)``; ``running``: the
      running estimates at those times, shape ``(m, k)`` (to judge convergence).
    - ``final_state``: the flat state at the end; ``names``: its coordinate names.
    - ``t1``, ``dt``, ``transient``: the averaging time, RK4 step and discarded transient.
    - ``seconds``: wall time (compilation included).
    """

    exponents: np.ndarray
    times: np.ndarray
    running: np.ndarray = dataclasses.field(repr=False)
    final_state: np.ndarray = dataclasses.field(repr=False)
    names: tuple[str, ...] = dataclasses.field(repr=False)
    t1: float
    dt: float
    transient: float
    seconds: float

    @property
    def largest(self) -> float:
        return float(self.exponents[0])

    @property
    def kaplan_yorke_dimension(self) -> float:
        r"""$D_{KY} = j + \sum_{i\le j}\lambda_i/|\lambda_{j+1}|$ with $j$ the largest index
        whose partial sum is $\ge 0$ (NaN when not determined by the computed exponents)."""
        sums = np.cumsum(self.exponents)
        nonneg = np.flatnonzero(sums >= 0)
        if nonneg.size == 0:
            return 0.0
        j = int(nonneg[-1])
        if j + 1 >= self.exponents.size:
            return float("nan")
        return float(j + 1 + sums[j] / abs(self.exponents[j + 1]))

    def to_xarray(self):
        """An ``xarray.Dataset``: ``exponent`` on dimension ``index`` and ``running`` on
        ``(time, index)``."""
        import xarray as xr

        k = self.exponents.size
        return xr.Dataset(
            {"exponent": ("index", self.exponents), "running": (("time", "index"), self.running)},
            coords={"index": np.arange(k), "time": self.times},
            attrs=dict(t1=self.t1, dt=self.dt, transient=self.transient, seconds=self.seconds),
        )


def _rk4_step(field, x, h):
    k1 = field(x)
    k2 = field(x + 0.5 * h * k1)
    k3 = field(x + 0.5 * h * k2)
    k4 = field(x + h * k3)
    return x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def _tangent_field(system, layout, t, args):
    """The right-hand side of $(\\dot y, \\dot Q) = (f(y), J(y)Q)$ on ``(x, Q)``."""
    f = lambda x: flat_field(system, layout, t, x, args)

    def field(xq):
        x, q = xq
        fx, jq = jax.vmap(lambda column: jax.jvp(f, (x,), (column,)), in_axes=1, out_axes=(None, 1))(q)
        return fx, jq

    return field


class _Pair(eqx.Module):
    """``(x, Q)`` with the vector-space operations RK4 needs."""

    x: jax.Array
    q: jax.Array

    def __add__(self, other):
        return _Pair(self.x + other.x, self.q + other.q)

    def __mul__(self, scalar):
        return _Pair(scalar * self.x, scalar * self.q)

    __rmul__ = __mul__


@eqx.filter_jit
def _spectrum_kernel(system, layout, x0, q0, t, args, dt, transient_steps, steps_per_interval, intervals):
    f = lambda x: flat_field(system, layout, t, x, args)
    tangent = _tangent_field(system, layout, t, args)

    def pair_field(p):
        fx, jq = tangent((p.x, p.q))
        return _Pair(fx, jq)

    def transient_body(x, _):
        return _rk4_step(f, x, dt), None

    x, _ = jax.lax.scan(transient_body, x0, None, length=transient_steps)

    def step_body(p, _):
        return _rk4_step(pair_field, p, dt), None

    def interval_body(carry, _):
        x, q = carry
        p, _ = jax.lax.scan(step_body, _Pair(x, q), None, length=steps_per_interval)
        q_new, r = jnp.linalg.qr(p.q)
        diag = jnp.diagonal(r)
        sign = jnp.where(diag < 0, -1.0, 1.0)
        return (p.x, q_new * sign[None, :]), jnp.log(jnp.abs(diag))

    (x, _), logs = jax.lax.scan(interval_body, (x, q0), None, length=intervals)
    return x, logs


def lyapunov_spectrum(
    system: AbstractSystem,
    y0,
    *,
    t1: float = 1000.0,
    dt: float = 0.01,
    transient: float = 0.0,
    n_exponents: int | None = None,
    interval: float = 1.0,
    t: float = 0.0,
    args=None,
    like=None,
    seed: int = 0,
) -> LyapunovSpectrum:
    r"""The ``n_exponents`` largest Lyapunov exponents of the autonomous system
    $\dot y = f(t, y)$ (frozen at time ``t``) from ``y0``, by the tangent flow with QR
    re-orthonormalisation every ``interval`` (module docstring).

    Fixed-step RK4 with step ``dt``: the exponents carry an $O(\text{dt}^4)$ integration
    error plus the statistical error of a finite average, $O(1/t_1)$ for regular motion and
    typically $O(1/\sqrt{t_1})$ on a chaotic attractor (inspect ``running``). Pick ``dt``
    well below the fastest time scale (RK4 is unstable for $|\lambda|\,\text{dt} > 2.8$).

    **Arguments:**

    - ``system``: an ``AbstractSystem``; ``y0`` the initial state (PyTree or flat vector).
    - ``t1``: averaging time (> 0), after ``transient`` (>= 0) of plain integration that is
      discarded (to land on the attractor).
    - ``dt``: RK4 step (> 0); ``interval``: re-orthonormalisation period, a multiple of
      ``dt`` after rounding (> 0).
    - ``n_exponents``: how many (default: all, ``n``); 1 gives the largest only.
    - ``t``, ``args``, ``like``: as for ``find_fixed_points``.
    - ``seed``: seed of the random initial orthonormal tangent frame.

    **Returns:** a ``LyapunovSpectrum``.
    """
    start = time.perf_counter()
    layout = layout_of(system, like)
    n = layout.size
    t1 = check_real("t1", t1)
    check_positive("t1", t1)
    check_positive("dt", dt)
    check_positive("interval", interval)
    check_positive("transient", transient, allow_zero=True)
    k = n if n_exponents is None else check_integer("n_exponents", n_exponents)
    if k > n:
        raise ValueError(f"`n_exponents` must be at most the state dimension {n}; got {k}.")
    steps_per_interval = max(1, int(round(interval / dt)))
    intervals = max(1, int(round(t1 / (steps_per_interval * dt))))
    transient_steps = int(round(transient / dt))
    x0 = as_flat(layout, y0, "y0")
    check_finite("y0", x0)
    q0, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, k)))
    x_end, logs = _spectrum_kernel(
        system, layout, jnp.asarray(x0), jnp.asarray(q0 * np.sign(np.diag(r))), jnp.float64(check_real("t", t)),
        args, jnp.float64(dt), transient_steps, steps_per_interval, intervals,
    )
    logs = np.asarray(logs)
    if not (np.all(np.isfinite(logs)) and np.all(np.isfinite(np.asarray(x_end)))):
        raise ValueError(
            "the tangent flow became non-finite: the trajectory from `y0` diverges or `dt` is too "
            f"large for RK4 (dt = {dt:g}); reduce `dt` or start on a bounded solution."
        )
    times = (np.arange(1, intervals + 1) * steps_per_interval * float(dt))
    running = np.cumsum(logs, axis=0) / times[:, None]
    exponents = running[-1]
    return LyapunovSpectrum(exponents, times, running, np.asarray(x_end), layout.names, float(times[-1]), float(dt),
                            transient_steps * float(dt), time.perf_counter() - start)


def largest_lyapunov_exponent(system: AbstractSystem, y0, **kwargs) -> float:
    """The largest Lyapunov exponent: ``lyapunov_spectrum(system, y0, n_exponents=1, **kwargs).largest``."""
    return lyapunov_spectrum(system, y0, n_exponents=1, **kwargs).largest


# ----------------------------------------------------------------------------------------------
# SDEs


@dataclasses.dataclass(frozen=True)
class SDEGrowthRate:
    r"""The result of ``sde_lyapunov_exponent``.

    **Attributes:** ``exponent`` (mean over paths of $\frac1T\ln|V(T)|/|V(0)|$),
    ``standard_error`` (over paths), ``per_path`` (shape ``(n_paths,)``), ``t1``, ``dt``,
    ``transient``, ``seconds``.
    """

    exponent: float
    standard_error: float
    per_path: np.ndarray = dataclasses.field(repr=False)
    t1: float
    dt: float
    transient: float
    seconds: float


def _sde_parts(sde, diffusion):
    if diffusion is None:
        drift = getattr(sde, "vector_field", None)
        diffusion = getattr(sde, "diffusion", None)
        if not (callable(drift) and callable(diffusion)):
            raise ValueError(
                "`sde` must have `vector_field(t, y, args)` and `diffusion(t, y, args)` methods, or pass the "
                f"drift and the diffusion as two callables; got {type(sde).__name__}."
            )
        return drift, diffusion
    if not (callable(sde) and callable(diffusion)):
        raise ValueError("`sde` (the drift) and `diffusion` must be callables (t, y, args) -> array.")
    return sde, diffusion


def _noise_kind(sde, diffusion, noise, layout: StateLayout, x0, t, args):
    """The noise layout and the number of Brownian motions: ``("diagonal", n)`` (the
    diffusion is shaped like the state, one Brownian motion per coordinate), ``("scalar", 1)``
    (shaped like the state, one Brownian motion for all) or ``("general", m)`` (an ``(n, m)``
    matrix). Taken from ``noise`` if given, else from ``sde.noise_type()`` if the object has
    one (``reducedflow.AbstractSDESystem``), else from the diffusion's shape."""
    if noise is None and hasattr(sde, "noise_type") and callable(sde.noise_type):
        noise = sde.noise_type()
    if noise is not None and noise not in ("diagonal", "scalar", "general"):
        raise ValueError(f"`noise` must be 'diagonal', 'scalar', 'general' or None; got {noise!r}.")
    out = jax.eval_shape(lambda x: diffusion(t, layout.unravel(x), args), x0)
    like_state = False
    try:
        leaves = layout.treedef.flatten_up_to(out)
        like_state = all(tuple(l.shape) == s for l, s in zip(leaves, layout.shapes))
    except (TypeError, ValueError):
        pass
    is_matrix = isinstance(out, jax.ShapeDtypeStruct) and out.ndim == 2 and out.shape[0] == layout.size
    if like_state and noise in (None, "diagonal", "scalar"):
        return (noise or "diagonal"), (1 if noise == "scalar" else layout.size)
    if is_matrix and noise in (None, "general"):
        return "general", out.shape[1]
    raise ValueError(
        "`diffusion` must return a PyTree shaped like the state (diagonal or scalar noise) or an "
        f"({layout.size}, m) matrix acting on m Brownian motions (general noise); got {out} "
        f"with noise = {noise!r}."
    )


def sde_lyapunov_exponent(
    sde,
    diffusion=None,
    *,
    y0,
    t1: float = 100.0,
    dt: float = 1e-3,
    key=0,
    n_paths: int = 64,
    transient: float = 0.0,
    t: float = 0.0,
    args=None,
    like=None,
    noise: str | None = None,
) -> SDEGrowthRate:
    r"""The almost-sure growth rate of the linearisation of the Itô SDE
    $dX = b(t, X)\,dt + \sigma(t, X)\,dW$ along sample paths (module docstring).

    Each of ``n_paths`` independent paths runs Euler–Maruyama with step ``dt`` for
    ``transient`` (discarded) and then ``t1``, pushing a unit tangent vector by the derivative
    of the step map and accumulating $\ln$ of its norm; the estimate is the mean over paths of
    $\frac{1}{t_1}\sum\ln|V_{k+1}|/|V_k|$, biased by $O(\text{dt})$ (weak order 1) with a
    statistical error ``standard_error``.

    **Arguments:**

    - ``sde``: an object with ``vector_field(t, y, args)`` (drift) and
      ``diffusion(t, y, args)`` methods (an SDE system), or the drift as a callable with
      ``diffusion`` the second callable (``reducedflow.AbstractSDESystem`` fits). The
      diffusion returns either a PyTree shaped like the state (diagonal noise, each
      coordinate with its own Brownian motion; or scalar noise, one Brownian motion for all)
      or an ``(n, m)`` matrix acting on ``m`` Brownian motions (general noise).
    - ``noise``: ``"diagonal"``, ``"scalar"`` or ``"general"``; default: ``sde.noise_type()``
      when the object has it, else diagonal for a state-shaped diffusion and general for a
      matrix.
    - ``y0``: initial state (PyTree; or flat vector with ``like``).
    - ``t1``: averaging time (> 0); ``dt``: step (> 0); ``transient``: discarded time (>= 0).
    - ``key``: a ``jax.random`` key or integer seed; ``n_paths``: number of paths (>= 2).
    - ``t``: start time; ``args``: passed to drift and diffusion.
    - ``like``: an example state when ``sde`` has no ``state_shapes()`` and ``y0`` is flat.

    **Returns:** an ``SDEGrowthRate``.
    """
    start = time.perf_counter()
    drift, diffusion = _sde_parts(sde, diffusion)
    if like is None:
        like = y0
    layout = StateLayout.of(jax.tree_util.tree_map(lambda x: np.zeros(np.shape(x)), like))
    x0 = jnp.asarray(as_flat(layout, y0, "y0"))
    check_finite("y0", np.asarray(x0))
    check_positive("t1", t1)
    check_positive("dt", dt)
    check_positive("transient", transient, allow_zero=True)
    n_paths = check_integer("n_paths", n_paths, minimum=2)
    key = as_key(key)
    t = jnp.float64(check_real("t", t))
    kind, dw_size = _noise_kind(sde, diffusion, noise, layout, x0, t, args)
    steps = max(1, int(round(t1 / dt)))
    transient_steps = int(round(transient / dt))
    v0 = jnp.ones(layout.size) / np.sqrt(layout.size)
    log_growth = np.asarray(
        _sde_paths(drift, diffusion, layout, kind, dw_size, x0, v0, t, args, jnp.float64(dt), jr.split(key, n_paths),
                   transient_steps, steps)
    )
    if not np.all(np.isfinite(log_growth)):
        raise ValueError(
            f"the linearisation became non-finite on {int(np.sum(~np.isfinite(log_growth)))} of {n_paths} paths: "
            f"the SDE diverges from `y0` or `dt` = {dt:g} is too large for Euler–Maruyama."
        )
    per_path = log_growth / (steps * float(dt))
    return SDEGrowthRate(float(per_path.mean()), float(per_path.std(ddof=1) / np.sqrt(n_paths)), per_path,
                         steps * float(dt), float(dt), transient_steps * float(dt), time.perf_counter() - start)


@eqx.filter_jit
def _sde_paths(drift, diffusion, layout, kind, dw_size, x0, v0, t, args, dt, keys, transient_steps, steps):
    def em_step(x, dw, s):
        b = layout.ravel(drift(s, layout.unravel(x), args))
        g = diffusion(s, layout.unravel(x), args)
        if kind == "general":
            noise = jnp.asarray(g) @ dw
        else:  # diagonal: g_i dW_i; scalar: g dW with one Brownian motion (dw has size 1)
            noise = layout.ravel(g) * dw
        return x + b * dt + noise

    def increment(key, i):
        return jr.normal(jr.fold_in(key, i), (dw_size,)) * jnp.sqrt(dt)

    def one_path(key):
        k_transient, k_main = jr.split(key)

        def transient_body(carry, i):
            x, s = carry
            return (em_step(x, increment(k_transient, i), s), s + dt), None

        (x, s), _ = jax.lax.scan(transient_body, (x0, t), jnp.arange(transient_steps))

        def body(carry, i):
            x, v, s, log_growth = carry
            dw = increment(k_main, i)
            x_new, v_new = jax.jvp(lambda y: em_step(y, dw, s), (x,), (v,))
            norm = jnp.linalg.norm(v_new)
            return (x_new, v_new / norm, s + dt, log_growth + jnp.log(norm)), None

        (_, _, _, log_growth), _ = jax.lax.scan(body, (x, v0, s, jnp.float64(0.0)), jnp.arange(steps))
        return log_growth

    return jax.vmap(one_path)(keys)
