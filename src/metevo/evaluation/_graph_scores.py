"""Scoring a lesion graph against the synthetic cohort's ground truth: map predicted lesions to
reference lesions, then precision/recall of the edges and agreement of the change classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from metevo.columns import LesionEdges as E
from metevo.columns import Lesions as L
from metevo.exceptions import GeometryError
from metevo.tracking import change_classes, edge_pairs

if TYPE_CHECKING:  # pragma: no cover
    pass

__all__ = ["map_to_reference", "pooled_scores", "score_graph", "score_synthetic"]


# --------------------------------------------------------------------------------------------
# accuracy against a reference graph
# --------------------------------------------------------------------------------------------
def map_to_reference(
    instances: Mapping[str, sitk.Image],
    reference: Mapping[str, sitk.Image],
    *,
    min_fraction: float = 0.5,
) -> pd.DataFrame:
    """Map predicted lesions to reference lesions of the same visit by voxel overlap.

    Each predicted ``lesion_id`` maps to the reference label holding most of its voxels, when that
    label holds at least ``min_fraction`` of them.

    Returns
    -------
    pandas.DataFrame
        ``timepoint``, ``lesion_id``, ``reference_id`` (0 when unmatched), ``fraction``.
    """
    rows = []
    for tp, pred in instances.items():
        if tp not in reference:
            raise KeyError(
                f"timepoint {tp!r} has no reference instance image; found {sorted(reference)}."
            )
        ref = reference[tp]
        if pred.GetSize() != ref.GetSize():
            raise GeometryError(
                f"timepoint {tp}: predicted lesions (size {pred.GetSize()}) and reference (size "
                f"{ref.GetSize()}) are not on the same grid; resample the reference onto the scan."
            )
        p = sitk.GetArrayViewFromImage(pred).ravel()
        r = sitk.GetArrayViewFromImage(ref).ravel()
        idx = np.flatnonzero(p)
        if idx.size == 0:
            continue
        pairs = pd.DataFrame({"p": p[idx].astype(np.int64), "r": r[idx].astype(np.int64)})
        counts = pairs.value_counts().rename("n").reset_index()
        totals = counts.groupby("p")["n"].sum()
        hit = (
            counts[counts["r"] != 0]
            .sort_values(["p", "n"], ascending=[True, False])
            .drop_duplicates("p")
        )
        hit = hit.set_index("p")
        for pid, total in totals.items():
            n_best = int(hit.loc[pid, "n"]) if pid in hit.index else 0
            frac = n_best / total
            ref_id = int(hit.loc[pid, "r"]) if pid in hit.index and frac >= min_fraction else 0
            rows.append(
                {L.TIMEPOINT: tp, L.LESION_ID: int(pid), "reference_id": ref_id, "fraction": frac}
            )
    return pd.DataFrame(rows, columns=[L.TIMEPOINT, L.LESION_ID, "reference_id", "fraction"])


def score_graph(
    edges: pd.DataFrame,
    reference_edges: pd.DataFrame,
    mapping: pd.DataFrame,
    *,
    timepoints: Sequence[str],
    reference_nodes: pd.DataFrame | None = None,
) -> dict[str, float]:
    """Edge precision/recall/F1 and change-class accuracy against a reference graph.

    Predicted edges are translated to reference lesions with ``mapping`` (from
    :func:`map_to_reference`); an edge whose end does not map, or maps to no reference edge,
    counts as a false positive. Change classes of the reference are derived from the reference
    edges with :func:`change_classes` (the same degree rules), and compared on the reference
    lesions that exactly one predicted lesion maps to.

    Parameters
    ----------
    edges
        Predicted edges (``timepoint_from``, ``lesion_id_from``, ``timepoint_to``,
        ``lesion_id_to``).
    reference_edges
        Reference edges with the same four columns, in reference ids.
    mapping
        ``timepoint``, ``lesion_id``, ``reference_id``.
    timepoints
        The visits in order.
    reference_nodes
        ``timepoint``, ``lesion_id`` of every reference lesion (default: those in the mapping
        and in the reference edges).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1``, ``n_edges``, ``n_reference_edges``,
        ``change_accuracy``, ``n_scored_lesions``.
    """
    key = dict(
        zip(
            zip(mapping[L.TIMEPOINT], mapping[L.LESION_ID].astype(int), strict=True),
            mapping["reference_id"].astype(int),
            strict=True,
        )
    )


    ref_pairs = set(edge_pairs(reference_edges))
    pred_mapped = set()
    n_false = 0
    for u, v in edge_pairs(edges):
        mu, mv = key.get(u, 0), key.get(v, 0)
        if mu and mv and ((u[0], mu), (v[0], mv)) in ref_pairs:
            pred_mapped.add(((u[0], mu), (v[0], mv)))
        else:
            n_false += 1
    tp = len(pred_mapped)
    precision = tp / (tp + n_false) if tp + n_false else 1.0
    recall = tp / len(ref_pairs) if ref_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    if reference_nodes is not None:
        ref_nodes = set(
            zip(reference_nodes[L.TIMEPOINT], reference_nodes[L.LESION_ID].astype(int), strict=True)
        )
    else:
        ref_nodes = {(tp_, r) for (tp_, _), r in key.items() if r}
    for u, v in ref_pairs:
        ref_nodes.update([u, v])
    ref_class = change_classes(sorted(ref_nodes), sorted(ref_pairs), timepoints)
    pred_nodes = sorted(key)
    pred_class = change_classes(pred_nodes, edge_pairs(edges), timepoints)
    inverse: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for node, r in key.items():
        if r:
            inverse.setdefault((node[0], r), []).append(node)
    scored = [(n, inverse[n][0]) for n in ref_class if len(inverse.get(n, [])) == 1]
    correct = sum(ref_class[r] == pred_class[p] for r, p in scored)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_edges": tp + n_false,
        "n_reference_edges": len(ref_pairs),
        "change_accuracy": correct / len(scored) if scored else float("nan"),
        "n_scored_lesions": len(scored),
    }


def score_synthetic(
    ground_truth: str | Any,
    patient_id: str,
    edges: pd.DataFrame,
    instances: Mapping[str, sitk.Image],
    *,
    timepoints: Sequence[str] | None = None,
) -> dict[str, float]:
    """Score one patient's lesion graph against a synthetic cohort's ground truth.

    Reads ``scans.parquet`` (instance masks: the 26-connected components of the written lesion
    masks) and ``edges.parquet`` (the true graph on those components) from ``ground_truth`` (the
    folder written by :func:`metevo.datasets.make_synthetic_cohort`), maps the predicted lesions
    to components by voxel overlap (:func:`map_to_reference`) and returns :func:`score_graph`'s
    figures on the visits in ``instances`` (true edges to other visits are left out), plus
    ``n_unmapped`` (predicted lesions mapping to no component) and ``n_missed_components``
    (components no predicted lesion maps to).

    Parameters
    ----------
    ground_truth
        The ``ground_truth/`` folder.
    patient_id
        The patient to score.
    edges
        The patient's predicted ``lesion_edges`` rows.
    instances
        ``{timepoint: SimpleITK.Image}`` predicted lesion labels (``LesionGraph.instances``, or
        :func:`metevo.tracking.label_lesions` of each scan with the options of the analysis).
    timepoints
        Visit order (default: the ground truth's order for this patient).

    Examples
    --------
    >>> g = metevo.lesion_graph(patient)                                   # doctest: +SKIP
    >>> score_synthetic(cohort_gt, g.patient_id, g.edges, g.instances)     # doctest: +SKIP
    {'precision': 1.0, 'recall': 1.0, 'f1': 1.0, ...}
    """
    from pathlib import Path

    gt = Path(ground_truth)
    scans = pd.read_parquet(gt / "scans.parquet")
    scans = scans[scans[L.PATIENT_ID] == patient_id]
    if scans.empty:
        raise KeyError(f"patient {patient_id!r} is not in {gt / 'scans.parquet'}.")
    if timepoints is None:
        timepoints = scans.sort_values(L.DAYS)[L.TIMEPOINT].tolist()
    reference = {
        tp: sitk.ReadImage(str(gt / path))
        for tp, path in zip(scans[L.TIMEPOINT], scans["instance_mask"], strict=True)
        if tp in instances
    }
    ref_nodes = pd.DataFrame(
        [
            (tp, int(lab))
            for tp, img in reference.items()
            for lab in np.unique(sitk.GetArrayFromImage(img))
            if lab != 0
        ],
        columns=[L.TIMEPOINT, L.LESION_ID],
    )
    true_edges = pd.read_parquet(gt / "edges.parquet")
    true_edges = true_edges[
        (true_edges[E.PATIENT_ID] == patient_id)
        & true_edges[E.TIMEPOINT_FROM].isin(list(instances))
        & true_edges[E.TIMEPOINT_TO].isin(list(instances))
    ].rename(columns={"component_from": E.LESION_ID_FROM, "component_to": E.LESION_ID_TO})
    mapping = map_to_reference(instances, reference)
    scores = score_graph(
        edges, true_edges, mapping, timepoints=timepoints, reference_nodes=ref_nodes
    )
    mapped = set(zip(mapping[L.TIMEPOINT], mapping["reference_id"], strict=True))
    scores["n_unmapped"] = int((mapping["reference_id"] == 0).sum())
    scores["n_missed_components"] = sum(
        (tp, lab) not in mapped
        for tp, lab in zip(ref_nodes[L.TIMEPOINT], ref_nodes[L.LESION_ID], strict=True)
    )
    return scores


def pooled_scores(scores: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Micro-averaged precision, recall, F1 and change accuracy over several patients' scores."""
    tp = sum(s["precision"] * s["n_edges"] for s in scores)
    n_pred = sum(s["n_edges"] for s in scores)
    n_ref = sum(s["n_reference_edges"] for s in scores)
    precision = tp / n_pred if n_pred else 1.0
    recall = tp / n_ref if n_ref else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n_scored = sum(s["n_scored_lesions"] for s in scores)
    correct = sum(
        s["change_accuracy"] * s["n_scored_lesions"] for s in scores if s["n_scored_lesions"]
    )
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "change_accuracy": correct / n_scored if n_scored else float("nan"),
        "n_edges": n_pred,
        "n_reference_edges": n_ref,
        "n_scored_lesions": n_scored,
    }
