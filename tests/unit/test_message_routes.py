"""Routes agree with the generated contracts, and the outbox takes only a route's own message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pool
from sqlalchemy import select

from scfed.cjis_iafis.v1 import cjis_iafis_pb2
from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2
from scfed.ident.v1 import ident_pb2
from scfed.lesc.v1 import lesc_pb2
from scfed.sib.v1 import sib_pb2
from services.federation import Agency
from services.runtime import message_routes
from services.runtime.db import Database
from services.runtime.delivery import Outbox, RetryPolicy
from services.runtime.message_routes import Route, route
from services.runtime.models import OutboxMessage, RuntimeBase


@pytest.mark.parametrize("r", message_routes.ROUTES, ids=lambda r: r.path)
def test_every_route_is_a_method_of_its_peer_that_takes_its_message(r: Route[Any]) -> None:
    service, _, method = r.path.removeprefix("/").partition("/")
    found = descriptor_pool.Default().FindMethodByName(f"{service}.{method}")
    assert found.containing_service.file.package == f"scfed.{r.peer}.v1"
    assert found.input_type is r.request.DESCRIPTOR


def test_routes_cover_every_method_that_carries_an_envelope() -> None:
    """Each RPC whose request starts with the envelope is a store-and-forward delivery."""
    enveloped = {
        f"/{service.full_name}/{method.name}"
        for module in (sib_pb2, cjis_iafis_pb2, ident_pb2, lesc_pb2, ice_field_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
        if "envelope" in method.input_type.fields_by_name
    }
    assert enveloped <= {r.path for r in message_routes.ROUTES}


def test_a_route_whose_message_is_not_the_methods_input_fails_when_built() -> None:
    cjis = cjis_iafis_pb2.DESCRIPTOR.services_by_name["CjisIafis"]
    with pytest.raises(TypeError, match=r"SubmitCar takes scfed\.cjis_iafis\.v1\.Car"):
        route(cjis, "SubmitCar", cjis_iafis_pb2.Cpi, sender=Agency.SIB)
    with pytest.raises(ValueError, match=r"served by scfed\.cjis_iafis\.v1, not by lesc"):
        Route(
            Agency.LESC, "/scfed.cjis_iafis.v1.CjisIafis/SubmitCar", cjis_iafis_pb2.Car, Agency.SIB
        )
    with pytest.raises(ValueError, match="no gRPC method"):
        Route(
            Agency.SIB,
            "/scfed.sib.v1.StateIdentificationBureau/Nothing",
            sib_pb2.SreMessage,
            Agency.CJIS_IAFIS,
        )


async def test_the_outbox_refuses_a_message_the_route_does_not_take(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    await db.connect([RuntimeBase.metadata])
    outbox = Outbox(db, service=Agency.SIB, peers={}, policy=RetryPolicy())
    cpi = cjis_iafis_pb2.Cpi(envelope=common_pb2.Envelope(message_id="m-1", tot="CPI"))
    car = message_routes.CJIS_SUBMIT_CAR
    try:
        async with db.session() as session:
            with pytest.raises(TypeError, match="SubmitCar takes Car, not Cpi"):
                # mypy refuses the call too: were it accepted, this ignore would be unused,
                # which `mypy --strict` reports as an error.
                outbox.add(session, route=car, message=cpi)  # type: ignore[misc]
            outbox.add(session, route=message_routes.CJIS_SUBMIT_CPI, message=cpi)
        async with db.session() as session:
            methods = (await session.scalars(select(OutboxMessage.method))).all()
            assert methods == [message_routes.CJIS_SUBMIT_CPI.path]
    finally:
        await db.dispose()


async def test_the_outbox_refuses_a_route_another_agency_sends(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    await db.connect([RuntimeBase.metadata])
    outbox = Outbox(db, service=Agency.IDENT, peers={}, policy=RetryPolicy())
    cpi = cjis_iafis_pb2.Cpi(envelope=common_pb2.Envelope(message_id="m-1", tot="CPI"))
    try:
        async with db.session() as session:
            with pytest.raises(TypeError, match="SubmitCpi is sent by sib, not by ident"):
                outbox.add(session, route=message_routes.CJIS_SUBMIT_CPI, message=cpi)
    finally:
        await db.dispose()
