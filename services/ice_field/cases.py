"""The removal case from detainer to removal, as a state machine whose transitions are data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from services.runtime.errors import FailedPrecondition

DETAINER_ISSUED: Final = "detainer_issued"
RELEASE_NOTICED: Final = "release_noticed"
IN_CUSTODY: Final = "in_custody"
ATD: Final = "alternatives_to_detention"
IN_PROCEEDINGS: Final = "in_proceedings"
FINAL_ORDER: Final = "final_order"
TRAVEL_DOCUMENT: Final = "travel_document"
REMOVED: Final = "removed"
LAPSED: Final = "lapsed"
RELIEF_GRANTED: Final = "relief_granted"

# Which state may follow which. A stipulated order goes straight from custody (or ATD) to a
# final order, where no relief is available; a detainer the hold runs out on is lapsed.
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    DETAINER_ISSUED: frozenset({RELEASE_NOTICED, LAPSED}),
    RELEASE_NOTICED: frozenset({IN_CUSTODY, ATD, LAPSED}),
    IN_CUSTODY: frozenset({IN_PROCEEDINGS, FINAL_ORDER}),
    ATD: frozenset({IN_PROCEEDINGS, FINAL_ORDER}),
    IN_PROCEEDINGS: frozenset({FINAL_ORDER, RELIEF_GRANTED}),
    FINAL_ORDER: frozenset({TRAVEL_DOCUMENT}),
    TRAVEL_DOCUMENT: frozenset({REMOVED}),
    REMOVED: frozenset(),
    LAPSED: frozenset(),
    RELIEF_GRANTED: frozenset(),
}
TERMINAL: Final = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


class IllegalTransition(FailedPrecondition):
    """A case was asked to move to a state that may not follow its current one."""


@dataclass(frozen=True)
class Transition:
    """One step of a case, with its time and why."""

    from_state: str
    to_state: str
    at: datetime
    reason: str = ""


@dataclass
class CaseFile:
    """A removal case's current state and every transition it took."""

    case_id: str
    state: str = DETAINER_ISSUED
    history: list[Transition] = field(default_factory=list)

    def move(self, to_state: str, at: datetime, reason: str = "") -> Transition:
        """Moves the case on, or refuses an illegal transition with the reason."""
        check_transition(self.case_id, self.state, to_state)
        if self.history and at < self.history[-1].at:
            raise IllegalTransition(
                f"case {self.case_id}: a transition at {at.isoformat()} is earlier than the "
                f"last one ({self.history[-1].at.isoformat()})"
            )
        step = Transition(self.state, to_state, at, reason)
        self.history.append(step)
        self.state = to_state
        return step


def check_transition(case_id: str, from_state: str, to_state: str) -> None:
    """Refuses a transition the state machine does not allow."""
    if to_state not in TRANSITIONS:
        raise IllegalTransition(f"case {case_id}: unknown state {to_state!r}")
    allowed = TRANSITIONS.get(from_state, frozenset())
    if to_state not in allowed:
        options = ", ".join(sorted(allowed)) or "none: the case is closed"
        raise IllegalTransition(
            f"case {case_id} is {from_state}; it cannot become {to_state} (allowed: {options})"
        )
