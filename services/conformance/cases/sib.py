"""The SIB suite: the documented refusals (refusals.py), against a SIB that knows the LEA `CA`."""

from __future__ import annotations

from scfed.sib.v1 import sib_pb2 as sib

from ...federation import Agency
from ..kit import Probe, refusal_cases, setup
from ..messages import CA
from ..refusals import content_refusals, envelope_refusals


@setup(Agency.SIB)
async def register_california(probe: Probe) -> None:
    """California (MOA active, relay-capable, not NFF) and its activated LEA `CA`."""
    await probe.call(
        "RegisterState",
        sib.State(
            code=CA[:2],
            name="California",
            nff=False,
            relay_capable=True,
            moa_status=sib.MOA_STATUS_ACTIVE,
            sib_ori="CASIB0000",
        ),
    )
    await probe.call("RegisterAgency", sib.Agency(ori=CA, name="Sacramento", activated=True))


refusal_cases(Agency.SIB, envelope_refusals() + content_refusals())
