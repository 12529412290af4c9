r"""Slow manifolds of singularly perturbed systems and the reduced slow flow on them.

A system that declares fast components (``AbstractSystem.fast_components``) splits its state
into slow $x$ and fast $z$,

$$\dot x = f(x, z), \qquad \varepsilon\,\dot z = g(x, z).$$

The **critical manifold** is $\{g(x, z) = 0\}$, here the graph $z = h_0(x)$ found by Newton's
method on the fast equations at fixed $x$ (the right-hand side of $\dot z$ is $g/\varepsilon$,
which has the same zeros). Where it is normally attracting (every eigenvalue of
$\partial g/\partial z$ has negative real part) Tikhonov's theorem says: after an initial
layer of duration $O(\varepsilon\ln(1/\varepsilon))$ the full solution follows the **reduced
slow flow**

$$\dot x = f(x, h_0(x)), \qquad z = h_0(x),$$

with an $O(\varepsilon)$ error on finite time intervals; Fenichel's theory gives an invariant
slow manifold $z = h_0(x) + O(\varepsilon)$ nearby (Fenichel 1979; Kuehn, *Multiple Time Scale
Dynamical Systems*, 2015, ch. 2–3). ``ReducedSlowFlow`` is an ``AbstractSystem`` on $x$ alone,
so ``reducedflow.solve`` integrates it, non-stiff, and ``slow_flow_gap`` measures the
$O(\varepsilon)$ gap to the full flow.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from .._checks import check_finite, check_positive
from .._system import AbstractSystem
from ._layout import StateLayout, flat_field, layout_of


def _fast_mask(system: AbstractSystem, layout: StateLayout, fast) -> np.ndarray:
    if fast is None:
        declared = system.fast_components()
        if declared is None:
            raise ValueError(
                f"`system`: {type(system).__name__} declares no fast components (fast_components() is "
                "None); pass `fast=` with the names of the fast coordinates."
            )
        try:
            leaves = layout.treedef.flatten_up_to(declared)
        except (TypeError, ValueError):
            raise ValueError(
                f"`system`: {type(system).__name__}.fast_components() must have the state's structure "
                f"{layout.treedef}; got {declared!r}."
            ) from None
        mask = np.concatenate([np.broadcast_to(np.asarray(l, bool), s).reshape(-1) for l, s in zip(leaves, layout.shapes)])
    else:
        names = [fast] if isinstance(fast, (str, int)) else list(fast)
        mask = np.zeros(layout.size, bool)
        for name in names:
            mask[layout.index(name, "fast")] = True
    if mask.all() or not mask.any():
        raise ValueError(
            "`fast` must mark some but not all coordinates as fast; got "
            f"{[n for n, m in zip(layout.names, mask) if m]} of {list(layout.names)}."
        )
    return mask


class SlowManifold(eqx.Module):
    r"""The critical manifold $g(x, z) = 0$ of a fast/slow system as a graph $z = h_0(x)$.

    Build it with ``critical_manifold``. Each evaluation solves the fast equations by Newton
    (``optimistix.Newton``) from the fixed ``guess``, so a manifold with several branches
    (folded manifolds) gives the branch whose basin contains ``guess``.

    **Attributes:** ``system``; ``layout`` (the flat state layout); ``fast_index`` /
    ``slow_index`` (flat positions); ``guess`` (flat fast start of Newton); ``tol``.
    """

    system: AbstractSystem
    layout: StateLayout
    fast_index: tuple[int, ...] = eqx.field(static=True)
    slow_index: tuple[int, ...] = eqx.field(static=True)
    guess: jax.Array
    tol: float = eqx.field(static=True, default=1e-12)

    @property
    def slow_names(self) -> tuple[str, ...]:
        return tuple(self.layout.names[i] for i in self.slow_index)

    @property
    def fast_names(self) -> tuple[str, ...]:
        return tuple(self.layout.names[i] for i in self.fast_index)

    def assemble(self, slow, fast) -> jax.Array:
        """The flat full state from its slow and fast parts."""
        out = jnp.zeros(jnp.shape(slow)[:-1] + (self.layout.size,), jnp.float64)
        out = out.at[..., jnp.array(self.slow_index)].set(slow)
        return out.at[..., jnp.array(self.fast_index)].set(fast)

    def fast_equations(self, slow, fast, t=0.0, args=None) -> jax.Array:
        """The fast components of $f$ at the flat state ``(slow, fast)``."""
        field = flat_field(self.system, self.layout, t, self.assemble(slow, fast), args)
        return field[jnp.array(self.fast_index)]

    def fast_part(self, slow, t=0.0, args=None) -> jax.Array:
        """$h_0(x)$: the fast coordinates on the critical manifold above the slow coordinates
        ``slow`` (shape ``(n_slow,)``); NaN where Newton did not converge. Differentiable
        (implicit function theorem)."""
        slow = jnp.asarray(slow, jnp.float64)
        solver = optx.Newton(rtol=self.tol, atol=self.tol)
        sol = optx.root_find(lambda z, _: self.fast_equations(slow, z, t, args), solver, self.guess,
                             max_steps=100, throw=False)
        return jnp.where(sol.result == optx.RESULTS.successful, sol.value, jnp.nan)

    def lift(self, slow, t=0.0, args=None):
        """The full state PyTree on the manifold above ``slow``."""
        slow = jnp.asarray(slow, jnp.float64)
        return self.layout.unravel(self.assemble(slow, self.fast_part(slow, t, args)))

    def fast_jacobian(self, slow, t=0.0, args=None) -> jax.Array:
        r"""$\partial \dot z/\partial z$ on the manifold; its eigenvalues (times
        $\varepsilon$) decide normal stability."""
        slow = jnp.asarray(slow, jnp.float64)
        fast = self.fast_part(slow, t, args)
        return jax.jacfwd(lambda z: self.fast_equations(slow, z, t, args))(fast)

    def attracting(self, slow, t=0.0, args=None) -> bool:
        """Whether the manifold is normally attracting above ``slow`` (all eigenvalues of
        ``fast_jacobian`` with negative real part)."""
        lam = np.linalg.eigvals(np.asarray(self.fast_jacobian(slow, t, args)))
        return bool(np.all(lam.real < 0))

    def curve(self, slow_values, t=0.0, args=None) -> np.ndarray:
        """$h_0$ at many slow points: ``slow_values`` shape ``(m, n_slow)`` (or ``(m,)`` for one
        slow coordinate) -> fast values ``(m, n_fast)``."""
        slow_values = np.asarray(slow_values, dtype=np.float64)
        if slow_values.ndim == 1 and len(self.slow_index) == 1:
            slow_values = slow_values[:, None]
        return np.asarray(_curve(self, jnp.asarray(slow_values), jnp.float64(t), args))


@eqx.filter_jit
def _curve(manifold, slow_values, t, args):
    return jax.vmap(lambda x: manifold.fast_part(x, t, args))(slow_values)


def critical_manifold(system: AbstractSystem, *, fast=None, guess=None, like=None, tol: float = 1e-12) -> SlowManifold:
    r"""The critical manifold $\{\dot z = 0\}$ of ``system``, solved for the fast coordinates.

    **Arguments:**

    - ``system``: an ``AbstractSystem`` that declares ``fast_components()``, or any system
      together with ``fast``.
    - ``fast``: names (or flat indices) of the fast coordinates, overriding the declaration.
    - ``guess``: Newton's start for the fast coordinates (flat, length ``n_fast``, or a
      scalar); default zeros. It selects the branch of a folded manifold.
    - ``like``: an example state, for systems without ``state_shapes()``.
    - ``tol``: Newton's tolerance (> 0).

    **Returns:** a ``SlowManifold``.
    """
    layout = layout_of(system, like)
    mask = _fast_mask(system, layout, fast)
    check_positive("tol", tol)
    n_fast = int(mask.sum())
    if guess is None:
        guess = np.zeros(n_fast)
    guess = np.broadcast_to(np.asarray(guess, dtype=np.float64), (n_fast,)) if np.size(guess) in (1, n_fast) else None
    if guess is None:
        raise ValueError(f"`guess` must be a scalar or hold one value per fast coordinate ({n_fast}).")
    check_finite("guess", guess)
    return SlowManifold(system, layout, tuple(np.flatnonzero(mask).tolist()), tuple(np.flatnonzero(~mask).tolist()),
                        jnp.asarray(guess), float(tol))


class ReducedSlowFlow(AbstractSystem):
    r"""The reduced slow flow $\dot x = f(x, h_0(x))$ on the critical manifold of a fast/slow
    system (module docstring): the $\varepsilon \to 0$ limit of its slow variables.

    Build it with ``reduced_slow_flow``. The state is the flat vector of slow coordinates,
    shape ``(n_slow,)``, ordered as ``slow_names``; ``lift`` maps it to the full state on the
    manifold and ``slow_part`` maps a full state (or a trajectory's states) to it. Observables
    are the full system's, evaluated on the lifted state. Not stiff (``timescale_ratio() = 1``).

    **Attributes:** ``manifold`` (the ``SlowManifold``).
    """

    manifold: SlowManifold

    @property
    def slow_names(self) -> tuple[str, ...]:
        return self.manifold.slow_names

    def vector_field(self, t, y, args):
        m = self.manifold
        full = m.assemble(y, m.fast_part(y, t, args))
        return flat_field(m.system, m.layout, t, full, args)[jnp.array(m.slow_index)]

    def state_shapes(self):
        return jax.ShapeDtypeStruct((len(self.manifold.slow_index),), jnp.float64)

    def observables(self, t, y):
        return self.manifold.system.observables(t, self.lift(y, t))

    def lift(self, y, t=0.0, args=None):
        """The full state PyTree on the manifold above the slow coordinates ``y``."""
        return self.manifold.lift(y, t, args)

    def slow_part(self, state) -> np.ndarray:
        """The slow coordinates of a full state PyTree (leaves may carry leading axes, e.g.
        ``Trajectory.ys``), shape ``(..., n_slow)``."""
        m = self.manifold
        leaves = m.layout.treedef.flatten_up_to(state)
        flat = []
        for leaf, shape in zip(leaves, m.layout.shapes):
            leaf = np.asarray(leaf, dtype=np.float64)
            lead = leaf.shape[: leaf.ndim - len(shape)]
            flat.append(leaf.reshape(lead + (-1,)))
        flat = np.concatenate(flat, axis=-1)
        return flat[..., list(m.slow_index)]


def reduced_slow_flow(system: AbstractSystem, *, fast=None, guess=None, like=None, tol: float = 1e-12) -> ReducedSlowFlow:
    """The ``ReducedSlowFlow`` of ``system`` (arguments as ``critical_manifold``)."""
    return ReducedSlowFlow(critical_manifold(system, fast=fast, guess=guess, like=like, tol=tol))


def slow_flow_gap(system: AbstractSystem, y0, t1: float, values, *, parameter: str = "epsilon", saveat=None,
                  rtol: float = 1e-10, atol: float = 1e-12, fast=None, guess=None):
    r"""How far the slow coordinates of the full flow are from the reduced slow flow, as the
    small parameter shrinks: for each value $\varepsilon$ of ``parameter``,
    $\max_{t,i} |x_i^\varepsilon(t) - x_i^0(t)|$ over the save times, where $x^\varepsilon$
    is the full solve from ``y0`` and $x^0$ the reduced flow from the slow part of ``y0``.
    Tikhonov: the gap is $O(\varepsilon)$, so the fitted order should be about 1.

    **Arguments:**

    - ``system``: a fast/slow system (its own ``parameter`` value is ignored).
    - ``y0``: full initial state (PyTree); ``t1``: horizon.
    - ``values``: the values of ``parameter`` (each > 0), e.g. ``[1e-1, 1e-2, 1e-3]``.
    - ``parameter``: the field holding $\varepsilon$.
    - ``saveat``, ``rtol``, ``atol``: passed to ``reducedflow.solve``.
    - ``fast``, ``guess``: as for ``critical_manifold``.

    **Returns:** an ``xarray.Dataset`` with ``gap`` on dimension ``parameter`` and the fitted
    ``order`` (slope of log gap against log parameter) as an attribute.
    """
    import xarray as xr

    from .._solve import solve
    from .continuation import parameter_accessor, with_parameter

    values = np.asarray(values, dtype=np.float64).reshape(-1)
    check_positive("values", values)
    where = parameter_accessor(system, parameter)
    reduced = reduced_slow_flow(system, fast=fast, guess=guess)
    y0 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), y0)
    x0 = reduced.slow_part(y0)
    slow_limit = solve(reduced, x0, t1, saveat=saveat, rtol=rtol, atol=atol)
    gaps = []
    for value in values:
        full = solve(with_parameter(system, where, value), y0, t1, saveat=saveat, rtol=rtol, atol=atol)
        gaps.append(float(np.max(np.abs(reduced.slow_part(full.ys) - slow_limit.ys))))
    gaps = np.array(gaps)
    order = float(np.polyfit(np.log(values), np.log(gaps), 1)[0]) if values.size > 1 else np.nan
    return xr.Dataset({"gap": (parameter, gaps)}, coords={parameter: values},
                      attrs=dict(order=order, system=type(system).__name__, t1=float(t1)))
