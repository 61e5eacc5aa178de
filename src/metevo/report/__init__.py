"""Results to look at and send back: figures and a static HTML report of an analysis folder.

In: the folder ``metevo analyze`` wrote (Parquet tables; optionally the cohort manifest for the
CT slices). Out: :func:`draw_figures` writes every figure the tables allow (PNG + PDF);
:func:`write_report` writes ``index.html`` for the cohort and one page per patient, with images
next to the pages, so the folder opens from disk in any browser and can be sent as it is.
"""

from metevo.report._figures import draw_figures, read_tables
from metevo.report._html import write_report

__all__ = ["draw_figures", "read_tables", "write_report"]
