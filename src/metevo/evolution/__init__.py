"""Evolution: lesion tables in, size and radiomic trajectories out.

In: the ``lesions`` table of the lesion graph and the ``radiomics`` table. Out: per-lesion
(``trajectories``) and per-patient (``patient_trajectories``) trajectories over time: volume,
diameters, counts and radiomic features per visit; the ``trajectories`` stage.
"""

from metevo.evolution._trajectories import (
    lesion_trajectories,
    patient_trajectories,
    trajectories,
    trajectories_stage,
)

__all__ = ["lesion_trajectories", "patient_trajectories", "trajectories", "trajectories_stage"]
