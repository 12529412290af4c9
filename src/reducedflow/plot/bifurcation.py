"""Bifurcation diagrams: a continued branch of fixed points drawn against its parameter,
solid where stable and dashed where unstable, with folds and Hopf points marked."""

from __future__ import annotations

import numpy as np

#: Marker per bifurcation kind: (marker, colour).
BIFURCATION_STYLE = {"fold": ("s", "tab:red"), "hopf": ("*", "tab:purple"), "branch point": ("D", "tab:orange")}


def bifurcation_diagram(branch, variable=None, ax=None, color="black", label=None):
    """Draw ``branch`` (a ``reducedflow.analysis.continuation.Branch``, or a list of them):
    ``variable`` (a coordinate name or index; default the first coordinate) against the
    continued parameter, stable parts solid, unstable parts dashed, bifurcation points marked.

    **Arguments:** ``branch``; ``variable``; ``ax`` (default: a new figure); ``color``,
    ``label`` of the branch.

    **Returns:** the matplotlib axes.
    """
    import matplotlib.pyplot as plt

    branches = branch if isinstance(branch, (list, tuple)) else [branch]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    seen = set()
    for k, br in enumerate(branches):
        name = br.names[0] if variable is None else br.names[br.layout.index(variable, "variable")]
        values = br.coordinate(name)
        stable = np.asarray(br.stable, bool)
        # Break the line where stability changes, sharing the boundary point so it is continuous.
        for flag, style in ((True, "-"), (False, "--")):
            keep = stable == flag
            if flag:  # extend stable runs by one point so the two styles meet
                keep = keep | np.concatenate([[False], keep[:-1]]) | np.concatenate([keep[1:], [False]])
            masked = np.where(keep, values, np.nan)
            lab = None
            if k == 0 and (flag or not stable.all()):
                lab = f"{label + ': ' if label else ''}{'stable' if flag else 'unstable'}"
            ax.plot(br.parameter, masked, style, color=color, lw=1.6, label=lab)
        for b in br.bifurcations:
            marker, c = BIFURCATION_STYLE[b.kind]
            ax.plot(b.parameter, b.coordinates[br.layout.index(name, "variable")], marker, color=c, markersize=9,
                    zorder=5, label=b.kind if b.kind not in seen else None)
            seen.add(b.kind)
        ax.set_xlabel(br.parameter_name)
        ax.set_ylabel(name)
    ax.legend(fontsize=8, loc="best")
    return ax
