"""The field office's detainer decision (MOA section V): by removability and level, with the
office's discretion at Levels 2 and 3, and blind to descriptors."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from scfed.common.v1 import common_pb2
from scfed.ice_field.v1 import ice_field_pb2
from services.ice_field.decision import Decision, DiscretionPolicy, decide
from services.lesc.determination import default_status_rules, determine
from services.lesc.domain import offense_level
from services.lesc.offense_levels import load_table

NONE = 0
DEFAULT = DiscretionPolicy()
LENIENT = DiscretionPolicy(level_2="decline", level_3="decline")
STRICT = DiscretionPolicy(level_2="detain", level_3="detain")
INVERTED = DiscretionPolicy(level_2="decline", level_3="detain")
POLICIES = [DEFAULT, LENIENT, STRICT, INVERTED]

_LEVELS = {
    NONE: common_pb2.OFFENSE_LEVEL_NONE,
    1: common_pb2.OFFENSE_LEVEL_1,
    2: common_pb2.OFFENSE_LEVEL_2,
    3: common_pb2.OFFENSE_LEVEL_3,
}


def _iar(removable: bool, current: int = NONE, prior: int = NONE) -> common_pb2.Iar:
    return common_pb2.Iar(
        case_id="LESC0000000001",
        fin="FIN0001",
        status=common_pb2.IMMIGRATION_STATUS_VISA_OVERSTAY,
        removable=removable,
        current_charge_level=_LEVELS[current],
        prior_conviction_level=_LEVELS[prior],
        offense_table="moa",
    )


def _outcome(decision: Decision) -> tuple[str, int, str]:
    return (
        decision.action,
        decision.level,
        common_pb2.DetainerBasis.Name(decision.basis).removeprefix("DETAINER_BASIS_"),
    )


# --- not removable ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "prior", "level"),
    [(NONE, NONE, 0), (3, NONE, 3), (NONE, 2, 2), (1, 3, 1), (3, 1, 1), (1, 1, 1)],
)
@pytest.mark.parametrize("policy", POLICIES)
def test_a_person_who_is_not_removable_gets_no_action_whatever_their_levels(
    current: int, prior: int, level: int, policy: DiscretionPolicy
) -> None:
    decision = decide(_iar(False, current, prior), policy)
    assert _outcome(decision) == ("no_action", level, "UNSPECIFIED")


# --- Level 1 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("current", [NONE, 1, 2, 3])
@pytest.mark.parametrize("policy", POLICIES)
def test_a_prior_level_1_conviction_brings_a_detainer_on_that_basis(
    current: int, policy: DiscretionPolicy
) -> None:
    decision = decide(_iar(True, current, prior=1), policy)
    assert _outcome(decision) == ("detainer", 1, "PRIOR_LEVEL_1")


@pytest.mark.parametrize("prior", [NONE, 2, 3])
@pytest.mark.parametrize("policy", POLICIES)
def test_a_current_level_1_charge_brings_a_level_1_detainer(
    prior: int, policy: DiscretionPolicy
) -> None:
    decision = decide(_iar(True, current=1, prior=prior), policy)
    assert _outcome(decision) == ("detainer", 1, "LEVEL_1")


# --- Levels 2 and 3: the office's discretion --------------------------------------------------


def test_by_default_level_2_is_detained_and_level_3_declined() -> None:
    assert (DEFAULT.level_2, DEFAULT.level_3) == ("detain", "decline")
    assert _outcome(decide(_iar(True, current=2), DEFAULT)) == ("detainer", 2, "DISCRETION")
    assert _outcome(decide(_iar(True, current=3), DEFAULT)) == ("declined", 3, "UNSPECIFIED")


@pytest.mark.parametrize(("current", "prior"), [(2, NONE), (NONE, 2), (2, 3), (3, 2), (2, 2)])
@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (DiscretionPolicy(level_2="detain"), ("detainer", 2, "DISCRETION")),
        (DiscretionPolicy(level_2="decline"), ("declined", 2, "UNSPECIFIED")),
    ],
)
def test_the_most_serious_level_2_follows_the_level_2_policy(
    current: int, prior: int, policy: DiscretionPolicy, expected: tuple[str, int, str]
) -> None:
    assert _outcome(decide(_iar(True, current, prior), policy)) == expected


@pytest.mark.parametrize(("current", "prior"), [(3, NONE), (NONE, 3), (3, 3), (NONE, NONE)])
@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (DiscretionPolicy(level_3="detain"), ("detainer", 3, "DISCRETION")),
        (DiscretionPolicy(level_3="decline"), ("declined", 3, "UNSPECIFIED")),
    ],
)
def test_level_3_and_no_level_at_all_follow_the_level_3_policy(
    current: int, prior: int, policy: DiscretionPolicy, expected: tuple[str, int, str]
) -> None:
    assert _outcome(decide(_iar(True, current, prior), policy)) == expected


def test_an_unspecified_level_counts_as_no_level() -> None:
    iar = _iar(True)
    iar.current_charge_level = common_pb2.OFFENSE_LEVEL_UNSPECIFIED
    iar.prior_conviction_level = common_pb2.OFFENSE_LEVEL_UNSPECIFIED
    assert _outcome(decide(iar, DEFAULT)) == ("declined", 3, "UNSPECIFIED")


def test_changing_the_policy_changes_the_outcome_for_the_same_iar() -> None:
    level_2, level_3 = _iar(True, current=2, prior=3), _iar(True, current=3)
    assert decide(level_2, DEFAULT).action == "detainer"
    assert decide(level_2, INVERTED).action == "declined"
    assert decide(level_3, DEFAULT).action == "declined"
    assert decide(level_3, INVERTED).action == "detainer"
    level_1 = _iar(True, current=1)
    assert decide(level_1, DEFAULT) == decide(level_1, INVERTED) == decide(level_1, LENIENT)


# --- from LESC's determination to the field's decision ----------------------------------------


@pytest.mark.parametrize(
    ("status", "current", "priors", "expected"),
    [
        ("NATURALIZED_CITIZEN", ["1201"], [("0901", 9_000)], ("no_action", 1, "UNSPECIFIED")),
        (
            "LAWFUL_PERMANENT_RESIDENT",
            ["2299"],
            [("1201", 2_000)],
            ("detainer", 1, "PRIOR_LEVEL_1"),
        ),
        ("ENTRY_WITHOUT_INSPECTION", ["0150"], [], ("detainer", 1, "LEVEL_1")),
        ("VISA_OVERSTAY", ["3562"], [], ("detainer", 2, "DISCRETION")),
        ("VISA_OVERSTAY", ["3999"], [], ("declined", 3, "UNSPECIFIED")),
        ("LAWFUL_PERMANENT_RESIDENT", ["1201"], [("3999", 30)], ("no_action", 1, "UNSPECIFIED")),
    ],
)
def test_an_iar_built_from_lescs_determination_gets_the_moa_decision(
    status: str, current: list[str], priors: list[tuple[str, int]], expected: tuple[str, int, str]
) -> None:
    found = determine(
        encounters=[
            common_pb2.Encounter(
                encounter_id="E1",
                status=common_pb2.ImmigrationStatus.Value("IMMIGRATION_STATUS_" + status),
                encountered_at=Timestamp(seconds=1_000),
            )
        ],
        current_charges=[common_pb2.Charge(ncic_code=code) for code in current],
        history=[
            common_pb2.ArrestCycle(
                charges=[
                    common_pb2.Charge(
                        ncic_code=code,
                        disposition=common_pb2.DISPOSITION_CONVICTED,
                        sentence_days=days,
                    )
                    for code, days in priors
                ]
            )
        ],
        table=load_table("moa"),
        rules=default_status_rules(),
    )
    iar = common_pb2.Iar(
        removable=found.removable,
        current_charge_level=offense_level(found.current_charge_level),
        prior_conviction_level=offense_level(found.prior_conviction_level),
        priority=found.priority,
    )
    assert _outcome(decide(iar, DEFAULT)) == expected


# --- no profiling ----------------------------------------------------------------------------


def test_the_decision_reads_only_the_iar_and_the_policy() -> None:
    assert list(inspect.signature(decide).parameters) == ["iar", "policy"]
    assert {f.name for f in dataclasses.fields(DiscretionPolicy)} == {"level_2", "level_3"}


def test_an_iar_carries_no_descriptors() -> None:
    descriptor_fields = {f.name for f in common_pb2.Descriptors.DESCRIPTOR.fields}
    iar_fields = common_pb2.Iar.DESCRIPTOR.fields
    assert not descriptor_fields & {f.name for f in iar_fields}
    assert not [
        f.name
        for f in iar_fields
        if f.message_type is not None and f.message_type.full_name.endswith("Descriptors")
    ]


@pytest.mark.parametrize(("current", "prior"), [(1, NONE), (NONE, 1), (2, 3), (3, NONE)])
@pytest.mark.parametrize("policy", POLICIES)
def test_iar_copies_differing_only_in_the_name_get_the_same_decision(
    current: int, prior: int, policy: DiscretionPolicy
) -> None:
    iar = _iar(True, current, prior)
    copies = [
        ice_field_pb2.IarCopy(iar=iar, booking_number="B-1", nam=nam)
        for nam in ("GARCIA,MARIA", "SMITH,JOHN", "NGUYEN,AN", "")
    ]
    decisions = {decide(copy.iar, policy) for copy in copies}
    assert len(decisions) == 1
