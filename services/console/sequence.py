"""A booking's path as a sequence diagram: the five journals joined into arrows between lanes.

Each service journals the messages it sends (stamped when written to its outbox) and receives
(stamped when processed); both sides carry the envelope's message id. An arrow is one message
id: from its sender's lane to its receiver's, labelled with its TOT and the wait between the
two stamps. A message with no receipt yet (pending, or a dead letter) is a dashed arrow; a
booking from an LEA or a response relayed to one has the LEA's lane at its other end.

Pure: no I/O, so the pairing and the drawing are tested alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from xml.sax.saxutils import escape

from ..federation import Agency

LEA: Final = "lea"
# Lanes left to right: the LEA, then the agencies in the order a booking reaches them.
LANES: Final[tuple[str, ...]] = (
    LEA,
    Agency.SIB,
    Agency.CJIS_IAFIS,
    Agency.IDENT,
    Agency.LESC,
    Agency.ICE_FIELD,
)
LANE_TITLES: Final[dict[str, str]] = {
    LEA: "LEA",
    Agency.SIB: "SIB",
    Agency.CJIS_IAFIS: "CJIS/IAFIS",
    Agency.IDENT: "IDENT",
    Agency.LESC: "LESC",
    Agency.ICE_FIELD: "ICE field",
}
_RECEIPTS: Final = ("processed", "duplicate", "refused", "accepted")


def lane_of(name: str) -> str:
    """The lane of a journal's service or peer: an agency's own, else the LEA's (an ORI)."""
    return name if name in LANES else LEA


@dataclass(frozen=True)
class Arrow:
    """One message of the booking, from sender to receiver."""

    message_id: str
    tot: str
    sender: str
    receiver: str
    sent_at: datetime | None
    received_at: datetime | None
    # "delivered", "dead", "pending", "refused", "relayed", "not_relayed", "accepted", ...
    outcome: str
    faults: int = 0

    @property
    def wait_ms(self) -> float | None:
        """Milliseconds from the sender's stamp to the receiver's, when both are known."""
        if self.sent_at is None or self.received_at is None:
            return None
        return (self.received_at - self.sent_at).total_seconds() * 1000.0

    @property
    def at(self) -> datetime:
        """When the message first appears: sent, else received."""
        at = self.sent_at or self.received_at
        assert at is not None
        return at

    @property
    def label(self) -> str:
        """The arrow's text: the TOT and the wait (or what became of it)."""
        wait = self.wait_ms
        if wait is not None:
            return f"{self.tot} · {_duration(wait)}"
        if self.outcome in ("delivered", "processed", "accepted"):
            return self.tot
        return f"{self.tot} · {self.outcome}"


def _duration(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def _when(entry: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(entry["at"]))


def arrows(entries: Iterable[Mapping[str, Any]]) -> list[Arrow]:
    """The booking's messages in the order they appeared, from every service's journal entries
    (as `GET /v1/journal/{tcn}` serves them)."""
    by_id: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        by_id.setdefault(str(entry.get("message_id") or id(entry)), []).append(entry)
    result = [_arrow(message_id, group) for message_id, group in by_id.items()]
    return sorted(result, key=lambda a: (a.at, LANES.index(a.sender)))


def _arrow(message_id: str, group: list[Mapping[str, Any]]) -> Arrow:
    sent = [e for e in group if e["direction"] == "sent"]
    received = [e for e in group if e["direction"] == "received"]
    faults = sum(1 for e in group if e["outcome"] == "fault")
    settled = [e for e in sent if e["outcome"] != "fault"]
    receipt = next((e for e in received if e["outcome"] in _RECEIPTS), None)
    first = (settled or sent or received)[0]
    if sent:
        sender, receiver = lane_of(str(first["service"])), lane_of(str(first["peer"]))
    else:
        sender, receiver = lane_of(str(first["peer"])), lane_of(str(first["service"]))
    if receipt is not None:
        receiver = lane_of(str(receipt["service"]))
    if settled:
        outcome = str(settled[-1]["outcome"])
    elif sent:
        outcome = "pending"
    else:
        outcome = str(first["outcome"])
    if receipt is not None and receipt["outcome"] == "refused":
        outcome = "refused"
    return Arrow(
        message_id=message_id,
        tot=str(first["tot"]),
        sender=sender,
        receiver=receiver,
        sent_at=_when(sent[0]) if sent else None,
        received_at=_when(receipt) if receipt is not None else None,
        outcome=outcome,
        faults=faults,
    )


# The drawing's geometry, in SVG user units.
_LANE_W: Final = 150
_TOP: Final = 56
_ROW_H: Final = 34
_MARGIN: Final = 20


def _x(lane: str) -> int:
    return _MARGIN + _LANE_W // 2 + LANES.index(lane) * _LANE_W


def svg(items: list[Arrow], *, title: str) -> str:
    """The sequence diagram as one inline SVG element (no script, no external reference)."""
    width = 2 * _MARGIN + _LANE_W * len(LANES)
    height = _TOP + _ROW_H * (len(items) + 1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sequence" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker>'
        "</defs>",
    ]
    for lane in LANES:
        x = _x(lane)
        out.append(
            f'<g class="lane" data-lane="{lane}">'
            f'<rect x="{x - 60}" y="8" width="120" height="28" rx="4"/>'
            f'<text x="{x}" y="27" text-anchor="middle">{escape(LANE_TITLES[lane])}</text>'
            f'<line x1="{x}" y1="36" x2="{x}" y2="{height - 8}"/></g>'
        )
    for row, arrow in enumerate(items):
        y = _TOP + _ROW_H * row + _ROW_H // 2
        x1, x2 = _x(arrow.sender), _x(arrow.receiver)
        label = escape(arrow.label)
        classes = f"message {escape(arrow.outcome)}"
        if arrow.faults:
            classes += " faulted"
        fault_note = f" ({arrow.faults} fault(s) injected)" if arrow.faults else ""
        hint = escape(
            f"{arrow.tot} {LANE_TITLES[arrow.sender]} -> {LANE_TITLES[arrow.receiver]}: "
            f"{arrow.outcome}{fault_note}; message {arrow.message_id}"
        )
        out.append(
            f'<g class="{classes}" data-tot="{escape(arrow.tot)}" data-from="{arrow.sender}" '
            f'data-to="{arrow.receiver}"><title>{hint}</title>'
        )
        if x1 == x2:
            # A message a service sends itself (none today): a small loop.
            out.append(
                f'<path d="M{x1},{y - 6} h40 v12 h-40" fill="none" marker-end="url(#head)"/>'
            )
            out.append(f'<text x="{x1 + 46}" y="{y + 4}">{label}</text></g>')
            continue
        out.append(
            f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" marker-end="url(#head)"/>'
            f'<text x="{(x1 + x2) // 2}" y="{y - 5}" text-anchor="middle">{label}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)
