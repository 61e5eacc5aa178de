"""The one-patient entry points of ``runner._patient`` (``metevo.recist``, ``metevo.trajectories``)."""

from __future__ import annotations

import warnings

import pytest

import metevo


def test_a_failing_stage_is_named_with_the_patient(mini_cohort):
    cohort = metevo.open_cohort(mini_cohort["manifest"], clinical=mini_cohort["clinical"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # registration/graph warnings are the graph tests' business
        with pytest.raises(
            RuntimeError,
            match=r"^patient 'P002': stage 'trajectories' failed with ValueError: unknown "
            r"radiomic feature\(s\) \['no_such_feature'\]",
        ):
            metevo.trajectories(cohort["P002"], features=["no_such_feature"])
        with pytest.raises(
            RuntimeError,
            match=r"^patient 'P002': stage 'recist' failed with ValueError: rules must be one of "
            r"\['fda2018', 'ema'\]; got 'no_such_rules'",
        ):
            metevo.recist(cohort["P002"], pfs_rules="no_such_rules")
