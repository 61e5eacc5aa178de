"""Evolution: lesion tables in, size and radiomic trajectories out.

In: the ``lesions`` table of the lesion graph (with positions), ``lesion_edges``, ``scans``,
``recist`` and ``radiomics``. Out: per-lesion-track (``trajectories``) and per-patient
(``patient_trajectories``) trajectories over time -- volume, diameters, counts and radiomic
features per visit -- written by the ``trajectories`` stage, and their Table Schemas. The
one-call entry point ``metevo.trajectories(patient)`` runs the pipeline, so it lives in
:mod:`metevo.runner`.
"""

from metevo.evolution._schemas import trajectory_schemas, write_schemas
from metevo.evolution._trajectories import (
    DEFAULT_FEATURES,
    TEXTURE_SUMMARY_FEATURES,
    lesion_trajectories,
    patient_trajectories,
    resolve_features,
    to_long,
    trajectories_stage,
)

__all__ = [
    "DEFAULT_FEATURES",
    "TEXTURE_SUMMARY_FEATURES",
    "lesion_trajectories",
    "patient_trajectories",
    "resolve_features",
    "to_long",
    "trajectories_stage",
    "trajectory_schemas",
    "write_schemas",
]
