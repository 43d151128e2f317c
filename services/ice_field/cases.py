"""The removal case from detainer to removal, as a state machine whose transitions are data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from ..runtime.errors import FailedPrecondition, shown
from .models import CaseState

# Which state may follow which. A stipulated order goes straight from custody (or ATD) to a
# final order, where no relief is available; a detainer the hold runs out on is lapsed.
TRANSITIONS: Final[dict[CaseState, frozenset[CaseState]]] = {
    CaseState.DETAINER_ISSUED: frozenset({CaseState.RELEASE_NOTICED, CaseState.LAPSED}),
    # A new booking of the subject before pickup lodges the detainer again with that booking's
    # LEA: back to detainer_issued, waiting for that LEA's release notice.
    CaseState.RELEASE_NOTICED: frozenset(
        {CaseState.IN_CUSTODY, CaseState.ATD, CaseState.LAPSED, CaseState.DETAINER_ISSUED}
    ),
    CaseState.IN_CUSTODY: frozenset({CaseState.IN_PROCEEDINGS, CaseState.FINAL_ORDER}),
    CaseState.ATD: frozenset({CaseState.IN_PROCEEDINGS, CaseState.FINAL_ORDER}),
    CaseState.IN_PROCEEDINGS: frozenset({CaseState.FINAL_ORDER, CaseState.RELIEF_GRANTED}),
    CaseState.FINAL_ORDER: frozenset({CaseState.TRAVEL_DOCUMENT}),
    CaseState.TRAVEL_DOCUMENT: frozenset({CaseState.REMOVED}),
    CaseState.REMOVED: frozenset(),
    CaseState.LAPSED: frozenset(),
    CaseState.RELIEF_GRANTED: frozenset(),
}
TERMINAL: Final = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


class IllegalTransition(FailedPrecondition):
    """A case was asked to move to a state that may not follow its current one."""


@dataclass(frozen=True)
class Transition:
    """One step of a case, with its time and why."""

    from_state: CaseState
    to_state: CaseState
    at: datetime
    reason: str = ""


@dataclass
class CaseFile:
    """A removal case's current state and every transition it took."""

    case_id: str
    state: CaseState = CaseState.DETAINER_ISSUED
    history: list[Transition] = field(default_factory=list)

    def move(self, to_state: str, at: datetime, reason: str = "") -> Transition:
        """Moves the case on, or refuses an illegal transition with the reason."""
        target = check_transition(self.case_id, self.state, to_state)
        if self.history and at < self.history[-1].at:
            raise IllegalTransition(
                f"case {self.case_id}: a transition at {at.isoformat()} is earlier than the "
                f"last one ({self.history[-1].at.isoformat()})"
            )
        step = Transition(self.state, target, at, reason)
        self.history.append(step)
        self.state = target
        return step


def check_transition(case_id: str, from_state: CaseState, to_state: str) -> CaseState:
    """Refuses a transition the state machine does not allow; returns the state moved to."""
    if to_state not in set(CaseState):
        raise IllegalTransition(f"case {case_id}: unknown state {shown(to_state)}")
    target = CaseState(to_state)
    allowed = TRANSITIONS.get(from_state, frozenset())
    if target not in allowed:
        options = ", ".join(sorted(allowed)) or "none: the case is closed"
        raise IllegalTransition(
            f"case {case_id} is {from_state}; it cannot become {target} (allowed: {options})"
        )
    return target
