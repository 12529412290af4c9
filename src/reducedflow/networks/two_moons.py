r"""The two-moons data set of the gradient-starvation experiments, generated in-library (no
download, no scikit-learn), and helpers to draw and score decision boundaries.

Recipe (the authors' ``two_moons_dataset(seed, margin)`` in ``Figure_1/2/3`` of
github.com/mohammadpz/Gradient_Starvation, as transcribed in ``shared/theory/gradient_starvation.md``
§10): two interleaved half circles with Gaussian noise (the ``make_moons`` construction), labels
$y\in\{\pm1\}$; then shift by $(0.5, 0.3y)$, centre the second coordinate, reflect it so that it
equals $-y|x_2|$, shift it by $-y\Delta$ and swap the two coordinates. Class +1 then lies at
$x_1 \le -\Delta$ and class -1 at $x_1 \ge \Delta$: for $\Delta > 0$ the data are **linearly separable
by the first coordinate** (the strong feature, a gap of $2\Delta$), while the second coordinate
carries the moon shapes (a weaker feature that also separates the classes, but only with a curved
boundary). For $\Delta < 0$ the classes overlap in $|x_1| \le |\Delta|$ and a curved boundary is needed.
The random numbers are ours (NumPy, seeded), not scikit-learn's, so the points differ from the
authors' for the same seed.

Reference: Pezeshki et al., "Gradient Starvation", NeurIPS 2021, arXiv:2011.09468 (setup from their code).
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_integer, check_positive, check_real
from .._random import generator

__all__ = ["two_moons", "decision_grid", "starved_boundary_fraction", "plot_decision_boundary"]


def two_moons(n_samples: int = 300, noise: float = 0.1, margin: float = 0.1, rotation: float = 0.0, key=0):
    r"""The two-moons data of the gradient-starvation experiments (recipe in the module docstring).

    **Arguments:**

    - ``n_samples``: number of points (>= 2; half per class, the odd one to class -1).
    - ``noise``: standard deviation of the Gaussian noise added to the half circles (>= 0).
    - ``margin``: $\Delta$; > 0 makes the data linearly separable along $x_1$ with a gap of $2\Delta$.
    - ``rotation``: rotate the data by this angle in degrees (the authors' 45-degree panel).
    - ``key``: an integer seed or a ``jax.random`` key.

    **Returns:** ``(inputs, labels)``: a float64 array ``(n_samples, 2)`` and labels in {-1, +1}.
    """
    n = check_integer("n_samples", n_samples, minimum=2)
    check_positive("noise", noise, allow_zero=True)
    margin = check_real("margin", margin)
    angle = math.radians(check_real("rotation", rotation))
    rng = generator(key)
    n_outer = n // 2
    n_inner = n - n_outer
    outer = np.stack([np.cos(np.linspace(0, np.pi, n_outer)), np.sin(np.linspace(0, np.pi, n_outer))], axis=1)
    inner = np.stack([1 - np.cos(np.linspace(0, np.pi, n_inner)), 1 - np.sin(np.linspace(0, np.pi, n_inner)) - 0.5], axis=1)
    x = np.concatenate([outer, inner])
    y = np.concatenate([np.zeros(n_outer), np.ones(n_inner)])
    order = rng.permutation(n)
    x, y = x[order], y[order]
    x = x + noise * rng.standard_normal(x.shape)
    labels = 2.0 * y - 1.0
    x[:, 0] -= 0.5
    x[:, 1] -= 0.3 * labels
    x[:, 1] -= x[:, 1].mean()
    x[:, 1] = -labels * np.abs(x[:, 1])
    x[:, 1] -= labels * margin
    x = x[:, ::-1].copy()
    if angle:
        x = x @ np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return x, labels


def decision_grid(extent: float = 2.0, points: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A square grid over ``[-extent, extent]^2``: ``(x1, x2, inputs)`` with ``inputs`` of shape
    ``(points**2, 2)`` (row-major, matching ``x1``/``x2`` of shape ``(points, points)``)."""
    check_positive("extent", extent)
    points = check_integer("points", points, minimum=2)
    axis = np.linspace(-extent, extent, points)
    x1, x2 = np.meshgrid(axis, axis)
    return x1, x2, np.stack([x1.ravel(), x2.ravel()], axis=1)


def starved_boundary_fraction(logits, grid_inputs) -> float:
    r"""The fraction of grid points whose predicted class differs from that of the linear rule
    $\mathrm{sign}(-x_1)$ (the strong feature alone): 0 for a boundary that uses only $x_1$ (the
    second feature starved), larger for a boundary that also follows the moons."""
    logits = np.asarray(logits, float).ravel()
    grid_inputs = np.asarray(grid_inputs, float)
    if grid_inputs.ndim != 2 or grid_inputs.shape != (logits.size, 2):
        raise ValueError(f"`grid_inputs` must have shape ({logits.size}, 2); got {grid_inputs.shape}.")
    return float(np.mean(np.sign(logits) != np.sign(-grid_inputs[:, 0])))


def plot_decision_boundary(ax, logits, x1, x2, inputs=None, labels=None, title=None):
    """Draw the logit field (filled contours) and its zero level on ``ax``, with the training
    points if given. ``logits`` has the shape of ``x1``/``x2`` (or their size)."""
    z = np.asarray(logits, float).reshape(np.shape(x1))
    bound = float(np.max(np.abs(z))) or 1.0
    ax.contourf(x1, x2, z, levels=np.linspace(-bound, bound, 11), cmap="RdBu", alpha=0.7)
    ax.contour(x1, x2, z, levels=[0.0], colors="k", linewidths=1.5)
    if inputs is not None and labels is not None:
        inputs, labels = np.asarray(inputs), np.asarray(labels)
        ax.scatter(inputs[labels > 0, 0], inputs[labels > 0, 1], s=8, c="navy", label="y = +1")
        ax.scatter(inputs[labels < 0, 0], inputs[labels < 0, 1], s=8, c="darkred", label="y = -1")
    ax.set_xlabel("x1 (strong feature)")
    ax.set_ylabel("x2 (moon shapes)")
    if title:
        ax.set_title(title, fontsize="small")
    return ax
