"""Detainer decisions by level (MOA section V), as a pure function of the IAR and the policy.

Removable and currently charged with, or previously convicted of, a Level 1 offense: a
detainer (custody after the sentence; with a prior Level 1 conviction, once the current charges
are adjudicated). Removable at Level 2 or 3: the field office's discretion policy. Not
removable: no action. The decision never reads descriptors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from scfed.common.v1 import common_pb2

from .models import DecisionAction

Discretion = Literal["detain", "decline"]


@dataclass(frozen=True)
class DiscretionPolicy:
    """What the field office does with removable Level 2 and Level 3 subjects."""

    level_2: Discretion = "detain"
    level_3: Discretion = "decline"


@dataclass(frozen=True)
class Decision:
    """The field office's answer to one IAR."""

    action: DecisionAction
    level: int  # 1..3, or 0 when no level applies
    basis: common_pb2.DetainerBasis.ValueType


def _level(value: common_pb2.OffenseLevel.ValueType) -> int | None:
    return int(value) if value in (1, 2, 3) else None


def decide(iar: common_pb2.Iar, policy: DiscretionPolicy) -> Decision:
    """Decides on a detainer from the IAR alone."""
    current = _level(iar.current_charge_level)
    prior = _level(iar.prior_conviction_level)
    levels = [x for x in (current, prior) if x is not None]
    level = min(levels, default=3)
    if not iar.removable:
        return Decision(
            DecisionAction.NO_ACTION, min(levels, default=0), common_pb2.DETAINER_BASIS_UNSPECIFIED
        )
    if prior == 1:
        return Decision(DecisionAction.DETAINER, 1, common_pb2.DETAINER_BASIS_PRIOR_LEVEL_1)
    if current == 1:
        return Decision(DecisionAction.DETAINER, 1, common_pb2.DETAINER_BASIS_LEVEL_1)
    choice = policy.level_2 if level == 2 else policy.level_3
    if choice == "detain":
        return Decision(DecisionAction.DETAINER, level, common_pb2.DETAINER_BASIS_DISCRETION)
    return Decision(DecisionAction.DECLINED, level, common_pb2.DETAINER_BASIS_UNSPECIFIED)
