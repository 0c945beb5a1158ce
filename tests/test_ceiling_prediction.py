import pandas as pd
import pytest

from rlscale.analysis.ceiling_prediction import base_prediction, check_prediction, ordering_steps
from rlscale.errors import InputError


def _points(rows):
    return pd.DataFrame(rows, columns=["run_id", "step", "metric", "value"])


def test_base_prediction_reads_step_zero():
    pts = _points([("a", 4, "eval/pass@8", 0.9), ("a", 0, "eval/pass@8", 0.3),
                   ("b", 0, "eval/pass@8", 0.5), ("b", 0, "eval/mean@8", 0.1)])
    pred = base_prediction(pts)
    assert pred.to_dict() == {"a": 0.3, "b": 0.5}


def test_base_prediction_refuses_runs_without_step_zero():
    with pytest.raises(InputError, match="step 0"):
        base_prediction(_points([("a", 4, "eval/pass@8", 0.9)]))
    with pytest.raises(InputError, match="no points"):
        base_prediction(_points([("a", 0, "eval/mean@8", 0.9)]))


def test_check_prediction_ranks_and_errors():
    out = check_prediction([0.1, 0.2, 0.4], [0.2, 0.3, 0.35])
    assert out["spearman"] == pytest.approx(1.0)
    assert out["mae"] == pytest.approx((0.1 + 0.1 + 0.05) / 3)
    assert out["bias"] == pytest.approx(-0.05)
    assert check_prediction([0.1, 0.2, 0.4], [0.3, 0.2, 0.1])["spearman"] == pytest.approx(-1.0)
    with pytest.raises(InputError):
        check_prediction([0.1, 0.2], [0.1, 0.2])


def test_ordering_steps_uses_the_seed_spread():
    runs = pd.DataFrame({"tokens": [1] * 6 + [2] * 6,
                         "cov": [2, 2, 3, 3, 4, 4] * 2,
                         "A": [0.10, 0.12, 0.50, 0.52, 0.51, 0.53,   # 2->3 clear, 3->4 within noise
                               0.10, 0.30, 0.05, 0.35, 0.90, 0.92]})  # 2->3 noisy, 3->4 clear
    steps = ordering_steps(runs, along="cov", within="tokens")
    assert steps["up"].tolist() == [True, False, False, True]
    assert not steps["down"].any()
