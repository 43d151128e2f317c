"""Loads a synthetic world into a running federation through the services' own APIs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from scfed.cjis_iafis.v1 import cjis_iafis_pb2, cjis_iafis_pb2_grpc
from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2, ice_field_pb2_grpc
from scfed.ident.v1 import ident_pb2, ident_pb2_grpc
from scfed.sib.v1 import sib_pb2, sib_pb2_grpc

from ..federation import Agency
from ..runtime.tls import ChannelFactory, insecure_channels
from ..sib.lea_client import issue_lea_keys
from .world import AgencySpec, ChargeSpec, Person, StateSpec, World

BATCH = 100
T = TypeVar("T")


@dataclass(frozen=True)
class SeedCounts:
    """What was loaded where."""

    states: int
    agencies: int
    field_offices: int
    criminal_records: int
    ident_encounters: int
    # Agencies that did not implement their seeding RPC (NAME -> the status), left unseeded.
    not_seeded: dict[str, str] = field(default_factory=dict)
    # Each registered LEA's API key at the SIB's agency edge (ORI -> key), issued fresh.
    lea_keys: dict[str, str] = field(default_factory=dict, repr=False)

    def counts(self) -> dict[str, int]:
        """What was loaded, by kind."""
        return {
            "states": self.states,
            "agencies": self.agencies,
            "field_offices": self.field_offices,
            "criminal_records": self.criminal_records,
            "ident_encounters": self.ident_encounters,
        }


def _batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def charge_proto(charge: ChargeSpec) -> common_pb2.Charge:
    """The wire form of a synthetic charge."""
    return common_pb2.Charge(
        ncic_code=charge.ncic_code,
        literal=charge.literal,
        disposition=common_pb2.Disposition.Value("DISPOSITION_" + charge.disposition),
        sentence_days=charge.sentence_days,
    )


def _descriptors(person: Person) -> common_pb2.Descriptors:
    return common_pb2.Descriptors(nam=person.nam, dob=person.dob, sex=person.sex, pob=person.pob)


def _timestamp(yyyymmdd: str) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.strptime(yyyymmdd, "%Y%m%d").replace(tzinfo=UTC))
    return stamp


def criminal_records(world: World) -> list[cjis_iafis_pb2.CriminalRecord]:
    """The IAFIS master file of the world: prints and prior arrest cycles."""
    return [
        cjis_iafis_pb2.CriminalRecord(
            descriptors=_descriptors(person),
            tenprint=world.enrollment_capture(person),
            cycles=[
                common_pb2.ArrestCycle(
                    ori=arrest.ori,
                    doa=arrest.doa,
                    charges=[charge_proto(c) for c in arrest.charges],
                )
                for arrest in person.history
            ],
        )
        for person in world.iafis_population()
    ]


def ident_encounters(world: World) -> list[ident_pb2.NewEncounter]:
    """IDENT's encounters of the world, one capture per person, each encounter enrolled."""
    encounters: list[ident_pb2.NewEncounter] = []
    for person in world.ident_population():
        assert person.immigration is not None
        capture = world.enrollment_capture(person)
        status = common_pb2.ImmigrationStatus.Value(
            "IMMIGRATION_STATUS_" + person.immigration.status
        )
        for i, (kind, when) in enumerate(person.immigration.encounters):
            encounters.append(
                ident_pb2.NewEncounter(
                    descriptors=_descriptors(person),
                    tenprint=capture,
                    a_number=person.immigration.a_number,
                    encounter=common_pb2.Encounter(
                        encounter_id=f"ENC-{world.seed}-{person.person_id}-{i}",
                        encounter_type=kind,
                        encountered_at=_timestamp(when),
                        status=status,
                    ),
                )
            )
    return encounters


async def register_jurisdictions(
    sib: sib_pb2_grpc.StateIdentificationBureauStub,
    states: Iterable[StateSpec],
    agencies: Iterable[AgencySpec],
) -> None:
    """Registers the states, then the booking agencies, at the SIB behind `sib`."""
    for state in states:
        await sib.RegisterState(
            sib_pb2.State(
                code=state.code,
                name=state.name,
                nff=state.nff,
                relay_capable=state.relay_capable,
                moa_status=sib_pb2.MoaStatus.Value("MOA_STATUS_" + state.moa_status),
                sib_ori=state.sib_ori,
            )
        )
    for agency in agencies:
        await sib.RegisterAgency(
            sib_pb2.Agency(
                ori=agency.ori,
                name=agency.name,
                activated=agency.activated,
                activated_on=agency.activated_on,
                rollout_phase=agency.rollout_phase,
                criminal_alien_share=agency.criminal_alien_share,
            )
        )


async def _unless_unimplemented(
    agency: Agency, not_seeded: dict[str, str], load: Callable[[], Awaitable[int]]
) -> int:
    """Runs one agency's loading; an agency that does not implement it (an external
    implementation may leave out the seeding RPCs) is noted in `not_seeded` instead."""
    try:
        return await load()
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
            raise
        not_seeded[agency] = f"UNIMPLEMENTED: {exc.details() or 'no such method'}"
        return 0


async def seed_world(
    world: World, addresses: dict[str, str], *, channels: ChannelFactory = insecure_channels
) -> SeedCounts:
    """Registers states, agencies and field offices, issues each LEA's API key (the counts'
    `lea_keys`), and fills IAFIS and IDENT.

    `channels` opens each agency's channel: plaintext by default, or mutual TLS with the
    operator's certificate (`SecureChannels.of(directory, OPERATOR)`) when the services have TLS
    on. An agency that answers a seeding RPC with UNIMPLEMENTED is left unseeded and named in
    the counts' `not_seeded`; any other error stops the seeding.
    """
    not_seeded: dict[str, str] = {}
    async with (
        channels(Agency.SIB, addresses[Agency.SIB]) as sib_channel,
        channels(Agency.ICE_FIELD, addresses[Agency.ICE_FIELD]) as ice_channel,
        channels(Agency.CJIS_IAFIS, addresses[Agency.CJIS_IAFIS]) as cjis_channel,
        channels(Agency.IDENT, addresses[Agency.IDENT]) as ident_channel,
    ):
        sib = sib_pb2_grpc.StateIdentificationBureauStub(sib_channel)

        lea_keys: dict[str, str] = {}

        async def load_sib() -> int:
            await register_jurisdictions(sib, world.states, world.agencies)
            lea_keys.update(await issue_lea_keys(sib, (a.ori for a in world.agencies)))
            return len(world.states)

        ice = ice_field_pb2_grpc.IceFieldStub(ice_channel)

        async def load_ice_field() -> int:
            for office in world.field_offices:
                await ice.RegisterFieldOffice(
                    ice_field_pb2.FieldOffice(
                        ori=office.ori,
                        name=office.name,
                        states=list(office.states),
                        facilities=[
                            ice_field_pb2.Facility(
                                facility_id=f.facility_id, name=f.name, beds=f.beds
                            )
                            for f in office.facilities
                        ],
                        atd_slots=office.atd_slots,
                        us_attorney_office=office.us_attorney_office,
                    )
                )
            return len(world.field_offices)

        cjis = cjis_iafis_pb2_grpc.CjisIafisStub(cjis_channel)

        async def load_cjis() -> int:
            records = criminal_records(world)
            for batch in _batches(records, BATCH):
                await cjis.EnrollCriminalRecords(
                    cjis_iafis_pb2.EnrollCriminalRecordsRequest(records=batch), timeout=120
                )
            return len(records)

        ident = ident_pb2_grpc.IdentStub(ident_channel)

        async def load_ident() -> int:
            encounters = ident_encounters(world)
            for chunk in _batches(encounters, BATCH):
                await ident.EnrollEncounters(
                    ident_pb2.EnrollEncountersRequest(encounters=chunk), timeout=120
                )
            return len(encounters)

        states = await _unless_unimplemented(Agency.SIB, not_seeded, load_sib)
        offices = await _unless_unimplemented(Agency.ICE_FIELD, not_seeded, load_ice_field)
        records = await _unless_unimplemented(Agency.CJIS_IAFIS, not_seeded, load_cjis)
        encounters = await _unless_unimplemented(Agency.IDENT, not_seeded, load_ident)
    return SeedCounts(
        states=states,
        agencies=len(world.agencies) if states else 0,
        field_offices=offices,
        criminal_records=records,
        ident_encounters=encounters,
        not_seeded=not_seeded,
        lea_keys=lea_keys,
    )
