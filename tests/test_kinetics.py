"""Growth kinetics (tumgr-style selection) and Ferte's TGR; Choi criteria."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from metevo.response import choi_response, fit_growth_kinetics, growth_kinetics, tumour_growth_rate

T = np.array([0.0, 42, 98, 154, 210, 266])


def stein(t, d, g, d0=60.0):
    return d0 * (np.exp(-d * t) + np.exp(g * t) - 1)


@pytest.mark.parametrize(
    ("d", "g", "model"),
    [(0.012, 0.003, "gd"), (0.008, 0.0, "dx"), (0.0, 0.004, "gx")],
)
def test_recovers_planted_model_and_rates(d, g, model):
    rng = np.random.default_rng(0)
    y = stein(T, d, g) * (1 + rng.normal(0, 0.01, T.size))
    fit = fit_growth_kinetics(T, y)
    assert fit.status == "fit" and fit.model == model
    if g:
        assert fit.g_per_day == pytest.approx(g, rel=0.15)
    if d:
        assert fit.d_per_day == pytest.approx(d, rel=0.15)


def test_outcomes_excluded_and_not_fit():
    assert fit_growth_kinetics([0, 56], [30.0, 25.0]).status == "excluded"
    assert fit_growth_kinetics([0, 56, 112], [0.0, 5.0, 6.0]).status == "excluded"
    rng = np.random.default_rng(1)
    flat = 50 * (1 + rng.normal(0, 0.05, T.size))
    fit = fit_growth_kinetics(T, flat)
    assert fit.status == "not fit" and fit.model is None and math.isnan(fit.g_per_day)
    assert set(fit.candidates["model"]) == {"gd", "dx", "gx"}
    with pytest.raises(ValueError, match="unknown growth model"):
        fit_growth_kinetics(T, flat, models=("exp",))
    with pytest.raises(ValueError, match="same length"):
        fit_growth_kinetics(T, flat[:3])


def test_gdphi_and_table_api():
    y = 40 * (0.3 * np.exp(0.006 * T) + 0.7 * np.exp(-0.02 * T))
    fit = fit_growth_kinetics(T, y, models=("gdphi",))
    assert fit.model == "gdphi" and fit.phi == pytest.approx(0.3, abs=0.01)
    table = pd.DataFrame(
        {
            "patient_id": ["a"] * T.size + ["b"] * 2,
            "days": list(T) + [0, 56],
            "target_sum_mm": list(stein(T, 0.01, 0.002)) + [10.0, 12.0],
        }
    )
    out = growth_kinetics(table)
    assert out["tgk_status"].tolist() == ["fit", "excluded"]
    with pytest.raises(ValueError, match="lacks column"):
        growth_kinetics(table, size="volume_ml")


def test_tgr_hand_values():
    # D_t / D_0 = 1.2 over 2 months: TG = 3 ln 1.2 / 2 = 0.2735; TGR = 31.45 %/month
    assert tumour_growth_rate(50.0, 60.0, 2 * 30.4375) == pytest.approx(100 * (1.2**1.5 - 1))
    assert tumour_growth_rate(50.0, 50.0, 30.0) == 0.0
    assert tumour_growth_rate(50.0, 0.0, 30.0) == -100.0
    assert math.isnan(tumour_growth_rate(0.0, 10.0, 30.0))


def test_choi_all_categories():
    assert choi_response(50.0, 0.0, 80.0, math.nan) == "CR"
    assert choi_response(50.0, 44.0, 80.0, 79.0) == "PR"  # size -12 %
    assert choi_response(50.0, 52.0, 80.0, 66.0) == "PR"  # density -17.5 %
    assert choi_response(50.0, 56.0, 80.0, 79.0) == "PD"  # size +12 %, no density PR
    assert choi_response(50.0, 56.0, 80.0, 60.0) == "PR"  # size +12 % but density -25 %
    assert choi_response(50.0, 48.0, 80.0, 78.0, new_lesions=True) == "PD"
    assert choi_response(50.0, 52.0, 80.0, 75.0) == "SD"
    assert choi_response(50.0, 52.0, 80.0, 60.0, same_phase=False) == "NE"
    assert choi_response(50.0, 44.0, 80.0, 90.0, same_phase=False) == "PR"
    assert choi_response(math.nan, 44.0) is None
