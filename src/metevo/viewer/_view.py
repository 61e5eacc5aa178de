"""A JupyterLab viewer for one patient: CT + lesions coloured by track, a visit selector, the
lesions table and the lesion graph, on ipyniivue (NiiVue in an anywidget) and a plotly
``FigureWidget`` (also an anywidget).

The image widget shows two volumes per visit: the CT (grey, window -150/250 HU) and a label overlay
whose value is the lesion's **track** (so one lesion keeps its colour across visits; colours from
:func:`metevo.tracking.track_color`, the same as the figures and the report). Picking a row of the lesions table, clicking a node of the lesion graph,
or calling :meth:`PatientViewer.select` moves the crosshair to the lesion's centroid and highlights
its node; a node of another visit switches the visit first. The visit selector swaps the volumes.

Everything the browser draws is widget state (``viewer.niivue.volumes``, ``.scene.crosshair_pos``,
``viewer.visit.value``, ``viewer.table.value``, ``viewer.graph.data[-1].marker``), so it can be
checked without a browser; a click is the message the browser sends
(``viewer.graph._js2py_pointsCallback``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from metevo.cohort import Patient
from metevo.columns import Lesions as L
from metevo.exceptions import MissingDependencyError

__all__ = ["PatientViewer", "track_colours", "view"]

WINDOW_HU = (-150.0, 250.0)
TRACK_COLORMAP = "metevo_tracks"


def track_colours(track_ids) -> dict[int, tuple[int, int, int]]:
    """RGB (0-255) per track id: :func:`metevo.tracking.track_color`, as in every metevo figure."""
    from metevo.tracking import track_color

    return {
        int(t): tuple(int(round(255 * c)) for c in track_color(t))
        for t in sorted({int(t) for t in track_ids})
    }


def _require_widgets():
    try:
        import ipyniivue
        import ipywidgets
        import plotly  # noqa: F401  (the lesion graph widget)
    except ImportError as exc:
        raise MissingDependencyError(
            "metevo.view needs the viewer extra: pip install 'metevo[viewer]' (ipyniivue, ipywidgets, "
            f"plotly); missing: {exc.name}."
        ) from exc
    return ipyniivue, ipywidgets


class PatientViewer:
    """A patient's CTs with lesion overlays coloured by track (see :func:`view`).

    Attributes
    ----------
    niivue : ipyniivue.NiiVue
        The image widget (volumes: CT, track overlay).
    visit : ipywidgets.Dropdown
        Visit selector (timepoints).
    table : ipywidgets.Select
        The visit's lesions (value: ``lesion_id``).
    graph : plotly.graph_objects.FigureWidget
        The lesion graph; its last trace holds one node per lesion and visit (``node_keys``).
    node_keys : list[tuple[str, int]]
        ``(timepoint, lesion_id)`` of each node of the graph.
    lesions : pandas.DataFrame
        The patient's lesions table.
    selected : tuple[str, int] | None
        (timepoint, lesion_id) the crosshair is centred on (its node is highlighted).
    """

    def __init__(self, patient: Patient, lesions: pd.DataFrame, edges: pd.DataFrame | None = None, *,
                 timepoint: str | None = None, workdir: str | Path | None = None) -> None:
        ipyniivue, widgets = _require_widgets()
        from metevo.viewer._graph import graph_figure

        self.patient = patient
        self.lesions = lesions[lesions[L.PATIENT_ID].astype(str) == patient.patient_id].copy()
        if edges is not None and L.PATIENT_ID in edges:
            edges = edges[edges[L.PATIENT_ID].astype(str) == patient.patient_id]
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="metevo_view_")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.colours = track_colours(self.lesions[L.TRACK_ID]) if len(self.lesions) else {}
        self.selected: tuple[str, int] | None = None
        self.niivue = ipyniivue.NiiVue(height=480)
        self.niivue.add_colormap(TRACK_COLORMAP, self._colormap())
        timepoints = patient.timepoints
        self.visit = widgets.Dropdown(options=timepoints, value=timepoint or timepoints[0], description="visit")
        self.table = widgets.Select(options=[], rows=8, description="lesion")
        self.visit.observe(lambda change: self.show(change["new"]), names="value")
        self.table.observe(self._on_row, names="value")
        self.graph, self.node_keys = graph_figure(self.lesions, edges, self.colours)
        self.graph.data[-1].on_click(self._on_node)
        self.show(self.visit.value)

    # ---------------------------------------------------------------- state changes
    def show(self, timepoint: str) -> None:
        """Load ``timepoint``'s CT and track overlay, and list its lesions."""
        if timepoint not in self.patient.timepoints:
            raise ValueError(
                f"patient {self.patient.patient_id}: no visit {timepoint!r}; visits: "
                f"{', '.join(self.patient.timepoints)}."
            )
        if self.visit.value != timepoint:
            self.visit.value = timepoint  # observer calls show again
            return
        ct_path, overlay_path = self._write_visit(timepoint)
        self.niivue.load_volumes([
            {"path": str(ct_path), "colormap": "gray", "cal_min": WINDOW_HU[0], "cal_max": WINDOW_HU[1]},
            {"path": str(overlay_path), "colormap": TRACK_COLORMAP, "opacity": 0.6,
             "cal_min": 0, "cal_max": 255},
        ])
        rows = self._rows(timepoint)
        self.selected = None
        with self.table.hold_trait_notifications():
            self.table.unobserve(self._on_row, names="value")
            self.table.options = [
                (f"lesion {int(r[L.LESION_ID])} · track {int(r[L.TRACK_ID])} · LD {r[L.AXIAL_LD_MM]:.1f} mm",
                 int(r[L.LESION_ID]))
                for _, r in rows.iterrows()
            ]
            self.table.value = None  # no row picked: nothing selected until the reader picks one
        self.table.observe(self._on_row, names="value")
        self._highlight()

    def select(self, lesion_id: int) -> None:
        """Centre the crosshair on ``lesion_id`` of the shown visit."""
        rows = self._rows(self.visit.value)
        hit = rows[rows[L.LESION_ID] == int(lesion_id)]
        if hit.empty:
            raise ValueError(
                f"patient {self.patient.patient_id} visit {self.visit.value}: no lesion {lesion_id}; "
                f"lesions: {sorted(int(v) for v in rows[L.LESION_ID])}."
            )
        r = hit.iloc[0]
        lps = np.array([r[L.CENTROID_X_MM], r[L.CENTROID_Y_MM], r[L.CENTROID_Z_MM]], float)
        self.niivue.scene.crosshair_pos = self._fraction(lps)
        self.selected = (self.visit.value, int(lesion_id))
        self._highlight()
        if self.table.value != int(lesion_id):
            self.table.value = int(lesion_id)

    def _on_row(self, change) -> None:
        if change["new"] is not None and self.selected != (self.visit.value, change["new"]):
            self.select(change["new"])

    def _on_node(self, trace, points, state) -> None:
        """A click on the graph: show that node's visit and centre on its lesion."""
        if not points.point_inds:
            return
        timepoint, lesion_id = self.node_keys[points.point_inds[0]]
        if self.visit.value != timepoint:
            self.show(timepoint)
        self.select(lesion_id)

    def _highlight(self) -> None:
        from metevo.viewer._graph import highlight

        if hasattr(self, "graph"):
            highlight(self.graph, self.node_keys, self.selected)

    # ---------------------------------------------------------------- helpers
    def _rows(self, timepoint: str) -> pd.DataFrame:
        return self.lesions[self.lesions[L.TIMEPOINT] == timepoint].sort_values(L.LESION_ID)

    def _colormap(self) -> dict:
        # overlay value = track id + 1 (0 = background, transparent); 256-entry lookup table
        r, g, b, a = [0] * 256, [0] * 256, [0] * 256, [0] * 256
        for t, (cr, cg, cb) in self.colours.items():
            v = min(255, t + 1)
            r[v], g[v], b[v], a[v] = cr, cg, cb, 255
        return {"R": r, "G": g, "B": b, "A": a, "I": list(range(256))}

    def _write_visit(self, timepoint: str) -> tuple[Path, Path]:
        from metevo.tracking import label_lesions

        scan = self.patient[timepoint]
        ct_path = self.workdir / f"{timepoint}_ct.nii.gz"
        overlay_path = self.workdir / f"{timepoint}_tracks.nii.gz"
        if not overlay_path.exists():
            image = scan.image()
            self._geometry = image
            inst = label_lesions(scan.lesion_mask(), scan.liver_mask(), kind=scan.lesion_mask_kind,
                                 context=scan.context)
            labels = sitk.GetArrayFromImage(inst)
            lut = np.zeros(int(labels.max(initial=0)) + 1, np.uint8)
            for _, row in self._rows(timepoint).iterrows():
                if int(row[L.LESION_ID]) < len(lut):
                    lut[int(row[L.LESION_ID])] = min(255, int(row[L.TRACK_ID]) + 1)
            overlay = sitk.GetImageFromArray(lut[labels])
            overlay.CopyInformation(inst)
            sitk.WriteImage(image, str(ct_path))
            sitk.WriteImage(overlay, str(overlay_path))
        self._geometry = sitk.ReadImage(str(overlay_path))
        return ct_path, overlay_path

    def _fraction(self, lps: np.ndarray) -> list[float]:
        """Physical point (LPS mm) -> NiiVue's fractional position in the RAS bounding box."""
        img = self._geometry
        size = np.asarray(img.GetSize())
        corners = np.array(
            [img.TransformContinuousIndexToPhysicalPoint([(s - 0.5) if c else -0.5 for s, c in zip(size, bits, strict=True)])
             for bits in np.ndindex(2, 2, 2)]
        ) * [-1, -1, 1]  # LPS -> RAS
        ras = lps * [-1, -1, 1]
        lo, hi = corners.min(0), corners.max(0)
        return [float(v) for v in (ras - lo) / (hi - lo)]

    # ---------------------------------------------------------------- display
    def widget(self):
        """The assembled widget: selector and table beside the image, the lesion graph below."""
        _, widgets = _require_widgets()
        return widgets.VBox([widgets.HBox([self.niivue, widgets.VBox([self.visit, self.table])]), self.graph])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget())

    def __repr__(self) -> str:
        return (
            f"PatientViewer(patient={self.patient.patient_id!r}, visit={self.visit.value!r}, "
            f"lesions={len(self._rows(self.visit.value))}, selected={self.selected})"
        )


def view(patient: Patient, lesions=None, edges: pd.DataFrame | None = None, *, timepoint: str | None = None,
         workdir: str | Path | None = None) -> PatientViewer:
    """Show a patient's CTs with lesions coloured by track, a visit selector, the lesions table and
    the lesion graph (click a node to show that lesion).

    Parameters
    ----------
    patient
        A :class:`metevo.Patient`.
    lesions
        The ``lesions`` table of an analysis (``lesions.parquet``; other patients' rows ignored),
        or the patient's :class:`metevo.LesionGraph` (its nodes and edges). Default: the lesion
        graph built with :func:`metevo.lesion_graph` (registers the visits: seconds per visit).
    edges
        The ``lesion_edges`` table drawn in the graph (default: the graph's edges, or lines
        joining the visits of each track).
    timepoint
        Visit shown first (default: the first).
    workdir
        Folder for the NIfTI copies the widget loads (default: a temporary folder).

    Returns
    -------
    PatientViewer
        Displays itself in JupyterLab.

    Examples
    --------
    >>> import metevo                                              # doctest: +SKIP
    >>> v = metevo.view(cohort["SYN001"], pd.read_parquet("out/lesions.parquet"))  # doctest: +SKIP
    >>> v.select(2)                                                # doctest: +SKIP
    """
    _require_widgets()
    if lesions is None:
        from metevo.tracking import lesion_graph

        lesions = lesion_graph(patient)
    if hasattr(lesions, "nodes") and hasattr(lesions, "edges"):  # a LesionGraph
        lesions, edges = lesions.nodes, lesions.edges if edges is None else edges
    return PatientViewer(patient, lesions, edges, timepoint=timepoint, workdir=workdir)
