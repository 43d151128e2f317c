"""Target FPIRs and the thresholds that give them."""

from __future__ import annotations

import numpy as np
import pytest

from services.biometrics.calibration import Calibration, threshold_for_fpir
from services.biometrics.params import DEFAULT_THRESHOLD


def test_the_threshold_for_a_target_fpir_lets_at_most_that_share_of_impostors_pass() -> None:
    scores = np.linspace(0.0, 0.5, 1000)
    calibration = Calibration.from_impostor_scores(scores)
    for fpir in (0.001, 0.01, 0.1):
        assert calibration.fpir_at(calibration.threshold_for(fpir)) <= fpir
    assert threshold_for_fpir(0.001) == pytest.approx(DEFAULT_THRESHOLD)
    assert threshold_for_fpir(0.01) < threshold_for_fpir(0.001) < threshold_for_fpir(0.0001)
    with pytest.raises(ValueError):
        calibration.threshold_for(0.0)
