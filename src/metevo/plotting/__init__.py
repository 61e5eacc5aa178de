"""Figures of metevo (matplotlib/seaborn): compute elsewhere, draw here.

Every function takes a table or a fitted model, accepts ``ax=None`` (or ``axes=None`` for
multi-panel figures), returns the Axes (or Figure) and never calls ``plt.show()``. Submodules are
imported lazily so that ``import metevo`` does not import matplotlib.
"""
