"""A team's tests against scfed, written with the pytest plugin's `scfed` fixture only.

`pip install scfed` brings the plugin; `pytest` then starts the federation once per session
and hands each test a federation emptied and seeded with the same small world.
"""

from __future__ import annotations

import httpx
import pytest
from scfed.services.testing.client import ScfedFederation

from scfed.ident.v1 import ident_pb2


def kinds(view: dict[str, object]) -> list[str]:
    """The kinds of a booking's responses, in the order they came."""
    responses = view["responses"]
    assert isinstance(responses, list)
    return [str(r["kind"]) for r in responses]


def test_a_person_without_an_ident_record_gets_an_sre_and_no_detainer(
    scfed: ScfedFederation,
) -> None:
    booking = scfed.pick(in_ident=False)
    view = scfed.book(booking)

    assert view["status"] == "answered"
    assert "SRE" in kinds(view) and "IDR/IAR" not in kinds(view)
    scfed.quiet()
    assert scfed.inbox(booking.ori, kind="I-247", tcn=view["tcn"]) == []
    services = {entry["service"] for entry in scfed.journal(view["tcn"])}
    assert "lesc" not in services


def test_a_removable_person_on_a_level_1_charge_gets_an_i247_in_the_lea_inbox(
    scfed: ScfedFederation,
) -> None:
    booking = scfed.pick(in_ident=True, removable=True, charge_level=1)
    view = scfed.book(booking)

    assert "IDR/IAR" in kinds(view)
    detainers = scfed.wait_inbox(booking.ori, kind="I-247", tcn=view["tcn"])
    assert len(detainers) == 1
    assert detainers[0]["body"]["detainer"]["detainer_id"]


def test_every_test_starts_from_the_same_clean_world(scfed: ScfedFederation) -> None:
    summary = httpx.get(f"{scfed.sib_url}/v1/bookings-summary").json()
    assert summary["bookings"] == 0
    assert world_is_clean(scfed)
    info = scfed.stub("ident").Info(ident_pb2.InfoRequest())
    assert scfed.world is not None
    assert info.gallery_size == len(scfed.world.ident_population())


@pytest.mark.scfed_world(seed=7, size=30)
def test_a_test_may_ask_for_a_world_of_its_own(scfed: ScfedFederation) -> None:
    assert scfed.world is not None
    assert (scfed.world.seed, len(scfed.world.bookings)) == (7, 30)


def world_is_clean(scfed: ScfedFederation) -> bool:
    """No LEA of the world holds a message."""
    assert scfed.world is not None
    return all(scfed.inbox(agency.ori) == [] for agency in scfed.world.agencies)
