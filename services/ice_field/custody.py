"""Custody or Alternatives to Detention, as a policy of data rather than scattered ifs.

The Strategic Plan (goal 3.2) counts "eligible detainees in Alternatives to Detention": people
who need not hold a bed. Here a person is eligible when they are a non-criminal alien (no prior
conviction: current charges alone are not a conviction), are not charged with a Level 1
offense, and are a low flight risk. Flight risk is high for a person removed before and booked
again, and for removal grounds that show a prior order was not obeyed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import FlightRisk


@dataclass(frozen=True)
class CustodyPolicy:
    """Who is a high flight risk, and who may go to ATD instead of a bed."""

    high_risk_grounds: frozenset[str] = frozenset({"FINAL-ORDER", "REINSTATEMENT"})
    # Current-charge levels that still allow ATD for a non-criminal, low-risk person.
    atd_charge_levels: frozenset[int] = frozenset({0, 2, 3})

    def flight_risk(self, removal_ground: str, *, reentry_after_removal: bool) -> FlightRisk:
        """High after a removal or a disobeyed order; low otherwise."""
        if reentry_after_removal or removal_ground in self.high_risk_grounds:
            return FlightRisk.HIGH
        return FlightRisk.LOW

    def atd_eligible(
        self, *, prior_conviction_level: int, current_charge_level: int, flight_risk: FlightRisk
    ) -> bool:
        """Non-criminal, not charged at Level 1 (by default), and a low flight risk."""
        return (
            prior_conviction_level == 0
            and current_charge_level in self.atd_charge_levels
            and flight_risk == FlightRisk.LOW
        )
