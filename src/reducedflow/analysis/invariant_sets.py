r"""Invariant sets of SGD in a network's parameter space (sign-invariant: a vanishing unit;
permutation-invariant: identical units) as linear subspaces, checks that per-sample gradients
are tangent to them, and their detection in trained weights.

An affine set $A$ is invariant for every learning rate and batch sequence iff every per-sample
gradient is tangent to it on it, $\nabla\ell_i(\theta) \in \mathrm{dir}(A)$ for $\theta \in A$: then SGD,
label-noise SGD and the stochastic gradient flow started in $A$ stay in $A$. For a hidden unit $p$
with incoming weights (bias included) $w_{in}^{(p)}$ and outgoing weights $w_{out}^{(p)}$:

- sign-invariant set $\{w_{in}^{(p)} = 0, w_{out}^{(p)} = 0\}$, invariant when $\sigma(0) = 0$;
- permutation-invariant set $\{w_{in}^{(p)} = w_{in}^{(q)}, w_{out}^{(p)} = w_{out}^{(q)}\}$, the fixed
  space of the swap $p \leftrightarrow q$, invariant for every activation.

Intersections of such sets are simpler subnetworks; the number of distinct surviving units is the
effective width.

Reference: F. Chen, D. Kunin, A. Yamamura, S. Ganguli, "Stochastic Collapse", NeurIPS 2023,
arXiv:2306.04251 (detection thresholds as in the authors' notebooks, theory note §14); effective
rank: O. Roy, M. Vetterli, "The effective rank: a measure of effective dimensionality", EUSIPCO 2007.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import scipy.linalg
from scipy.sparse import csgraph

from .._checks import check_in, check_positive


# ----------------------------------------------------------------------------------------------
# invariant subspaces


@dataclasses.dataclass(frozen=True)
class InvariantSubspace:
    r"""A linear subspace $A \subset \mathbb{R}^n$ of parameters, stored by an orthonormal basis
    of its normal space: $d(\theta, A) = \|N^\top\theta\|$.

    **Attributes:** ``normal_basis`` ``(n, n - dim A)`` with orthonormal columns, ``size`` $n$,
    ``description``. ``basis`` (an orthonormal basis of $A$, ``(n, dim A)``) and ``projector``
    (onto $A$) are computed on demand.
    """

    normal_basis: np.ndarray
    size: int
    description: str = ""

    @property
    def dimension(self) -> int:
        return self.size - self.normal_basis.shape[1]

    @property
    def codimension(self) -> int:
        return self.normal_basis.shape[1]

    @property
    def basis(self) -> np.ndarray:
        """Orthonormal basis of the subspace, shape ``(n, dim A)``."""
        if self.codimension == 0:
            return np.eye(self.size)
        return scipy.linalg.null_space(self.normal_basis.T)

    @property
    def projector(self) -> np.ndarray:
        """$I - NN^\\top$, the orthogonal projector onto the subspace."""
        return np.eye(self.size) - self.normal_basis @ self.normal_basis.T

    def project(self, theta) -> np.ndarray:
        """The nearest point of the subspace, $\\theta - NN^\\top\\theta$ (batched over leading axes)."""
        theta = np.asarray(theta, dtype=np.float64)
        return theta - (theta @ self.normal_basis) @ self.normal_basis.T

    def normal_coordinates(self, theta) -> np.ndarray:
        """$N^\\top\\theta$, shape ``(..., codim)``: exactly zero on the set for the sets built here."""
        return np.asarray(theta, dtype=np.float64) @ self.normal_basis

    def distance(self, theta) -> np.ndarray:
        """$d(\\theta, A) = \\|N^\\top\\theta\\|$ (batched over leading axes)."""
        return np.linalg.norm(self.normal_coordinates(theta), axis=-1)

    def __and__(self, other: "InvariantSubspace") -> "InvariantSubspace":
        return intersect_subspaces(self, other)


def _check_layout(params_layout):
    if not (hasattr(params_layout, "unit_indices") and hasattr(params_layout, "size")):
        raise ValueError(
            "`params_layout` must have `size` and `unit_indices(unit) -> (incoming, outgoing)` flat indices, "
            f"e.g. reducedflow.networks.two_layer_mlp.TwoLayerLayout; got {type(params_layout).__name__}."
        )
    return int(params_layout.size)


def _unit_index_array(params_layout, unit):
    incoming, outgoing = params_layout.unit_indices(unit)
    return np.concatenate([np.asarray(incoming, dtype=np.int64), np.asarray(outgoing, dtype=np.int64)])


def sign_invariant_subspace(params_layout, unit) -> InvariantSubspace:
    r"""The sign-invariant (vanishing-unit) set $\{w_{in}^{(p)} = 0,\ w_{out}^{(p)} = 0\}$ for one unit
    or several (their intersection). Invariant under SGD when the activation has $\sigma(0) = 0$.

    **Arguments:** ``params_layout`` (an object with ``size`` and ``unit_indices(p)``, e.g.
    ``TwoLayerLayout``), ``unit`` (an index or a sequence of indices).

    **Returns:** an ``InvariantSubspace`` whose normal basis is the coordinate vectors of the
    units' parameters (so the distance is computed from those entries alone, exactly).
    """
    n = _check_layout(params_layout)
    units = np.atleast_1d(np.asarray(unit, dtype=np.int64))
    index = np.unique(np.concatenate([_unit_index_array(params_layout, int(p)) for p in units]))
    normal = np.zeros((n, index.size))
    normal[index, np.arange(index.size)] = 1.0
    return InvariantSubspace(normal, n, f"vanishing unit(s) {units.tolist()}")


def permutation_invariant_subspace(params_layout, p: int, q: int) -> InvariantSubspace:
    r"""The permutation-invariant (identical-units) set
    $\{w_{in}^{(p)} = w_{in}^{(q)},\ w_{out}^{(p)} = w_{out}^{(q)}\}$, the fixed space of swapping units
    $p$ and $q$; invariant under SGD for every activation.

    **Arguments:** ``params_layout`` (as in ``sign_invariant_subspace``), ``p``, ``q`` (two
    distinct units).

    **Returns:** an ``InvariantSubspace`` with normal basis $(e_a - e_b)/\sqrt2$ over the paired
    indices $a$ of $p$ and $b$ of $q$.
    """
    n = _check_layout(params_layout)
    if int(p) == int(q):
        raise ValueError(f"`p` and `q` must be different units; got {p} and {q}.")
    a, b = _unit_index_array(params_layout, int(p)), _unit_index_array(params_layout, int(q))
    if a.size != b.size:
        raise ValueError(f"units {p} and {q} have different numbers of parameters ({a.size}, {b.size}).")
    normal = np.zeros((n, a.size))
    normal[a, np.arange(a.size)] = 1.0 / np.sqrt(2.0)
    normal[b, np.arange(a.size)] = -1.0 / np.sqrt(2.0)
    return InvariantSubspace(normal, n, f"identical units {int(p)} = {int(q)}")


def intersect_subspaces(*subspaces: InvariantSubspace) -> InvariantSubspace:
    """The intersection of linear subspaces: its normal space is the sum of theirs. Normal
    bases that are already mutually orthonormal (disjoint supports) are kept as they are."""
    if not subspaces or not all(isinstance(s, InvariantSubspace) for s in subspaces):
        raise ValueError("`subspaces` must be one or more InvariantSubspace objects.")
    sizes = {s.size for s in subspaces}
    if len(sizes) != 1:
        raise ValueError(f"`subspaces` must live in the same parameter space; got sizes {sorted(sizes)}.")
    stacked = np.concatenate([s.normal_basis for s in subspaces], axis=1)
    if not np.allclose(stacked.T @ stacked, np.eye(stacked.shape[1]), atol=1e-12):
        stacked = scipy.linalg.orth(stacked)
    return InvariantSubspace(stacked, sizes.pop(), " and ".join(s.description for s in subspaces))


def distance_to_subspace(theta, subspace) -> np.ndarray:
    r"""$d(\theta, A)$ for an ``InvariantSubspace`` (exact from its normal basis) or for an
    orthonormal basis matrix ``(n, d)`` of $A$ ($\|\theta - BB^\top\theta\|$). Batched over the
    leading axes of ``theta``."""
    if isinstance(subspace, InvariantSubspace):
        return subspace.distance(theta)
    basis = np.asarray(subspace, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    if basis.ndim != 2 or basis.shape[0] != theta.shape[-1]:
        raise ValueError(f"`subspace` must be an InvariantSubspace or an (n, d) basis with n = {theta.shape[-1]}; "
                         f"got shape {basis.shape}.")
    return np.linalg.norm(theta - (theta @ basis) @ basis.T, axis=-1)


@dataclasses.dataclass(frozen=True)
class InvarianceCheck:
    """Result of ``check_invariance``: the largest normal component of any per-sample gradient,
    the largest gradient norm (for scale), and whether the ratio is below ``rtol``."""

    max_normal_gradient: float
    max_gradient: float
    invariant: bool


def check_invariance(per_sample_grad_fn: Callable, subspace: InvariantSubspace, samples, *,
                     rtol: float = 1e-12) -> InvarianceCheck:
    r"""Test the working criterion of invariance: per-sample gradients at points of $A$ lie in
    $\mathrm{dir}(A)$, $\max_i\|N^\top\nabla\ell_i(\theta)\| \le \mathrm{rtol}\cdot\max_i\|\nabla\ell_i(\theta)\|$.

    **Arguments:**

    - ``per_sample_grad_fn``: ``theta -> (N, n)`` per-sample gradients (e.g.
      ``StochasticGradientFlow.per_sample_gradients``).
    - ``subspace``: an ``InvariantSubspace``.
    - ``samples``: points ``(m, n)``; they are projected onto the subspace first.
    - ``rtol``: relative tolerance (default 1e-12).

    **Returns:** an ``InvarianceCheck``.
    """
    check_positive("rtol", rtol)
    points = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    if points.shape[-1] != subspace.size:
        raise ValueError(f"`samples` must have last axis {subspace.size}; got shape {points.shape}.")
    points = subspace.project(points)
    worst_normal, worst = 0.0, 0.0
    for theta in points:
        grads = np.asarray(per_sample_grad_fn(theta), dtype=np.float64)
        worst_normal = max(worst_normal, float(np.max(np.linalg.norm(grads @ subspace.normal_basis, axis=-1))))
        worst = max(worst, float(np.max(np.linalg.norm(grads, axis=-1))))
    return InvarianceCheck(worst_normal, worst, worst_normal <= rtol * max(worst, np.finfo(float).tiny))


# ----------------------------------------------------------------------------------------------
# detection in trained weights


def unit_vectors(w_in, w_out) -> np.ndarray:
    r"""$w_p = [w_{in}^{(p)}, w_{out}^{(p)}]$, one row per hidden unit: ``w_in`` ``(h, d_in)`` (bias
    included as a column if any), ``w_out`` ``(h,)`` or ``(h, c)`` (the unit's outgoing weights
    as a row; pass the transpose of a ``(c, h)`` readout)."""
    w_in = np.asarray(w_in, dtype=np.float64)
    w_out = np.asarray(w_out, dtype=np.float64)
    if w_in.ndim == 1:
        w_in = w_in[:, None]
    if w_out.ndim == 1:
        w_out = w_out[:, None]
    if w_in.ndim != 2 or w_out.ndim != 2 or w_in.shape[0] != w_out.shape[0]:
        raise ValueError(f"`w_in` (h, d) and `w_out` (h,) or (h, c) must share h; got {w_in.shape}, {w_out.shape}.")
    return np.concatenate([w_in, w_out], axis=1)


def vanishing_units(w_in, w_out, tol: float = 0.1) -> np.ndarray:
    r"""Indices of units with $\|w_p\| / \max_q\|w_q\| < \mathrm{tol}$ (the authors' criterion,
    tol = 0.1), $w_p$ from ``unit_vectors``."""
    check_positive("tol", tol)
    norms = np.linalg.norm(unit_vectors(w_in, w_out), axis=1)
    top = norms.max()
    if top == 0.0:
        return np.arange(norms.size)
    return np.flatnonzero(norms / top < tol)


def unit_distance_matrix(w_in, w_out) -> np.ndarray:
    r"""Pairwise relative squared distances $D_{pq} = 2\|w_p - w_q\|^2 / (\|w_p\|^2 + \|w_q\|^2)$
    (0 for identical units, about 2 for unrelated ones, 4 for opposite ones; 0 when both vanish
    exactly)."""
    w = unit_vectors(w_in, w_out)
    sq = np.sum(w**2, axis=1)
    diff = np.sum((w[:, None, :] - w[None, :, :]) ** 2, axis=-1)
    denom = sq[:, None] + sq[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(denom > 0, 2.0 * diff / np.where(denom > 0, denom, 1.0), 0.0)
    return d


def identical_unit_groups(w_in, w_out, tol: float = 0.1, units=None) -> list[np.ndarray]:
    r"""Groups of identical units: the connected components of the graph with an edge between
    $p$ and $q$ when $D_{pq} < \mathrm{tol}$ (``unit_distance_matrix``; tol = 0.1 as in the
    authors' analysis). Transitive closure, so a chain of near-identical units is one group.

    **Arguments:** ``w_in``, ``w_out`` (as in ``unit_vectors``), ``tol``, ``units`` (optional
    subset of unit indices to group, e.g. the surviving ones).

    **Returns:** a list of index arrays (original unit indices), sorted by their first member.
    """
    check_positive("tol", tol)
    d = unit_distance_matrix(w_in, w_out)
    units = np.arange(d.shape[0]) if units is None else np.asarray(units, dtype=np.int64)
    if units.size == 0:
        return []
    sub = d[np.ix_(units, units)] < tol
    n_groups, labels = csgraph.connected_components(sub, directed=False)
    groups = [units[labels == g] for g in range(n_groups)]
    return sorted(groups, key=lambda g: int(g[0]))


def effective_rank(matrix, method: str = "entropy") -> float:
    r"""Effective rank of a matrix from its singular values $s_i$.

    - ``"entropy"`` (Roy & Vetterli 2007): $\exp(-\sum_i p_i\log p_i)$, $p_i = s_i/\sum_j s_j$;
    - ``"participation"``: $(\sum_i s_i^2)^2 / \sum_i s_i^4$, the participation ratio of the
      eigenvalues $s_i^2$ of $M^\top M$.

    Both equal $r$ for a rank-$r$ matrix with equal non-zero singular values, and lie in $[1, r]$
    for any rank-$r$ matrix. 0 for the zero matrix.
    """
    check_in("method", method, ("entropy", "participation"))
    s = np.linalg.svd(np.atleast_2d(np.asarray(matrix, dtype=np.float64)), compute_uv=False)
    if s.sum() == 0.0:
        return 0.0
    if method == "participation":
        lam = s**2
        return float(lam.sum() ** 2 / np.sum(lam**2))
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


@dataclasses.dataclass(frozen=True)
class CollapseReport:
    """Summary of the simpler subnetwork that trained weights sit near.

    **Attributes:** ``n_units``; ``vanishing`` (indices of vanishing units); ``groups`` (index
    arrays of identical surviving units); ``effective_width`` (number of groups among surviving
    units); ``independent_fraction`` (effective width / n_units); ``distance_matrix``
    (``unit_distance_matrix``); ``relative_norms`` ($\\|w_p\\|/\\max_q\\|w_q\\|$);
    ``effective_rank`` (entropy effective rank of the incoming weight matrix).
    """

    n_units: int
    vanishing: np.ndarray
    groups: list
    effective_width: int
    independent_fraction: float
    distance_matrix: np.ndarray = dataclasses.field(repr=False)
    relative_norms: np.ndarray = dataclasses.field(repr=False)
    effective_rank: float


def collapse_report(w_in, w_out, *, vanishing_tol: float = 0.1, identical_tol: float = 0.1) -> CollapseReport:
    """Detect vanishing units (``vanishing_units``) and groups of identical surviving units
    (``identical_unit_groups``) in trained weights and summarise them in a ``CollapseReport``."""
    w = unit_vectors(w_in, w_out)
    norms = np.linalg.norm(w, axis=1)
    relative = norms / norms.max() if norms.max() > 0 else np.zeros_like(norms)
    vanishing = vanishing_units(w_in, w_out, vanishing_tol)
    surviving = np.setdiff1d(np.arange(w.shape[0]), vanishing)
    groups = identical_unit_groups(w_in, w_out, identical_tol, units=surviving)
    return CollapseReport(
        n_units=int(w.shape[0]), vanishing=vanishing, groups=groups, effective_width=len(groups),
        independent_fraction=len(groups) / w.shape[0], distance_matrix=unit_distance_matrix(w_in, w_out),
        relative_norms=relative, effective_rank=effective_rank(np.atleast_2d(np.asarray(w_in, dtype=np.float64))),
    )
