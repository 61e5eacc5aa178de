"""Response: lesion measurements in, RECIST 1.1 and outcomes out.

In: per-visit lesion measurements (from the lesion graph, or an SDTM TR/TU table). Out: the
``recist`` table (target/non-target sums, overall response per visit), patient outcomes (best
overall response, PFS, depth and duration of response), tumour growth kinetics, Choi response
and SDTM export; the ``recist`` stage of the pipeline.
"""

from metevo.response._choi import choi_response
from metevo.response._kinetics import fit_growth_kinetics, growth_kinetics, tumour_growth_rate
from metevo.response._local_therapy import RESECTION_POINT_TOLERANCE_MM
from metevo.response._outcomes import (
    best_overall_response,
    confirmed_response,
    depth_of_response,
    early_tumour_shrinkage,
    imaging_pfs,
    time_to_nadir,
)
from metevo.response._recist import recist_from_measurements, select_targets
from metevo.response._recist_graph import graph_measurements
from metevo.response._recist_rules import RESPONSES, RecistOptions, overall_response
from metevo.response._recist_stage import assess_patient, recist_stage
from metevo.response._sdtm import export_sdtm, recist_from_sdtm, to_sdtm

__all__ = [
    "RESECTION_POINT_TOLERANCE_MM",
    "RESPONSES",
    "RecistOptions",
    "assess_patient",
    "best_overall_response",
    "choi_response",
    "confirmed_response",
    "depth_of_response",
    "early_tumour_shrinkage",
    "export_sdtm",
    "fit_growth_kinetics",
    "graph_measurements",
    "growth_kinetics",
    "imaging_pfs",
    "overall_response",
    "recist_from_measurements",
    "recist_from_sdtm",
    "recist_stage",
    "select_targets",
    "time_to_nadir",
    "to_sdtm",
    "tumour_growth_rate",
]
