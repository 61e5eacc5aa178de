"""JupyterLab viewer (optional extra ``metevo[viewer]``: ipyniivue).

In: a :class:`metevo.Patient` and its ``lesions`` table. Out: a :class:`PatientViewer` widget
(CT with lesion overlays coloured by track, a visit selector, the lesions table; picking a lesion
centres the view on it). ipyniivue is imported only when a viewer is made.
"""

from metevo.viewer._view import PatientViewer, track_colours, view

__all__ = ["PatientViewer", "track_colours", "view"]
