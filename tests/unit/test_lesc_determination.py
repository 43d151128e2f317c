"""LESC's status determination: removability by status from data, offense levels from the
deployment's Appendix A table, and nothing from descriptors."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import tomllib
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor
from google.protobuf.timestamp_pb2 import Timestamp

import scfed
from scfed.common.v1 import common_pb2
from scfed.lesc.v1 import lesc_pb2
from services.lesc.determination import (
    Determination,
    StatusRule,
    current_status,
    default_status_rules,
    determine,
    parse_status_rules,
    prior_convictions,
)
from services.lesc.offense_levels import InvalidNcicCode, OffenseTable, load_table

MOA = load_table("moa")
PLAN = load_table("strategic-plan")

# Codes whose level is the same in both Appendix A tables.
LEVEL_1 = "1201"  # Robbery
LEVEL_2 = "2299"  # Burglary
LEVEL_3 = "3999"  # Gambling
DRUGS = "3562"


def _encounter(status: str, seconds: int = 1_000, encounter_id: str = "") -> common_pb2.Encounter:
    return common_pb2.Encounter(
        encounter_id=encounter_id or f"E{seconds}",
        status=common_pb2.ImmigrationStatus.Value("IMMIGRATION_STATUS_" + status),
        encountered_at=Timestamp(seconds=seconds),
    )


def _charge(code: str, disposition: str = "CHARGED", days: int = 0) -> common_pb2.Charge:
    return common_pb2.Charge(
        ncic_code=code,
        literal=f"NCIC {code}",
        disposition=common_pb2.Disposition.Value("DISPOSITION_" + disposition),
        sentence_days=days,
    )


def _conviction(code: str, days: int = 180) -> common_pb2.Charge:
    return _charge(code, "CONVICTED", days)


def _cycle(*charges: common_pb2.Charge) -> common_pb2.ArrestCycle:
    return common_pb2.ArrestCycle(ori="CA0190000", doa="20050101", charges=list(charges))


def _determine(
    status: str | None,
    current: Sequence[str] = (),
    priors: Sequence[common_pb2.Charge] = (),
    *,
    table: OffenseTable = MOA,
    rules: Mapping[str, StatusRule] | None = None,
) -> Determination:
    return determine(
        encounters=[_encounter(status)] if status else [],
        current_charges=[_charge(code) for code in current],
        history=[_cycle(*priors)] if priors else [],
        table=table,
        rules=default_status_rules() if rules is None else rules,
    )


def _shipped_rules_document() -> dict[str, Any]:
    text = resources.files("services.lesc").joinpath("data/status_rules.toml").read_text()
    return tomllib.loads(text)


# --- removability by status --------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "priors"),
    [
        ((), ()),
        ((LEVEL_1, "0901"), ()),
        ((), (_conviction(LEVEL_1, 3_650), _conviction("0901", 9_000))),
        ((DRUGS,), (_conviction(DRUGS, 730),)),
        ((LEVEL_3,), (_conviction(LEVEL_2), _conviction(LEVEL_3))),
    ],
)
def test_a_citizen_is_never_removable_whatever_their_record(
    current: Sequence[str], priors: Sequence[common_pb2.Charge]
) -> None:
    found = _determine("NATURALIZED_CITIZEN", current, priors)
    assert found.status == "NATURALIZED_CITIZEN"
    assert found.removable is False
    assert found.ground == ""
    assert found.priority == 0


def test_a_citizen_is_not_removable_even_after_an_earlier_unlawful_entry() -> None:
    found = determine(
        encounters=[
            _encounter("ENTRY_WITHOUT_INSPECTION", 100),
            _encounter("NATURALIZED_CITIZEN", 900),
        ],
        current_charges=[_charge(LEVEL_1)],
        history=[_cycle(_conviction(LEVEL_1, 2_000))],
        table=MOA,
        rules=default_status_rules(),
    )
    assert (found.status, found.removable, found.priority) == ("NATURALIZED_CITIZEN", False, 0)


@pytest.mark.parametrize(
    ("status", "ground"),
    [
        ("ENTRY_WITHOUT_INSPECTION", "INADMISSIBLE-EWI"),
        ("VISA_OVERSTAY", "OVERSTAY"),
        ("FINAL_ORDER_OF_REMOVAL", "FINAL-ORDER"),
    ],
)
def test_unlawful_entry_overstay_and_final_orders_are_removable_without_any_record(
    status: str, ground: str
) -> None:
    found = _determine(status)
    assert found.removable is True
    assert found.ground == ground
    assert found.confidence == "high"
    assert found.current_charges == () and found.prior_convictions == ()
    assert found.priority == 3


@pytest.mark.parametrize(
    ("priors", "removable"),
    [
        ((), False),
        ((_conviction(LEVEL_3, 200),), False),
        ((_conviction(LEVEL_3), _conviction("7399")), False),
        ((_conviction(LEVEL_2, 300),), True),
        ((_conviction(LEVEL_1, 2_000),), True),
        ((_conviction(LEVEL_3), _conviction(LEVEL_2)), True),
        ((_conviction(DRUGS, 200),), True),
    ],
)
def test_a_permanent_resident_is_removable_only_with_a_level_1_or_2_conviction(
    priors: Sequence[common_pb2.Charge], removable: bool
) -> None:
    found = _determine("LAWFUL_PERMANENT_RESIDENT", [LEVEL_3], priors)
    assert found.removable is removable
    assert found.ground == ("CRIMINAL-DEPORTABLE" if removable else "")
    assert found.confidence == "medium"


def test_a_permanent_residents_current_level_1_charge_does_not_make_them_removable() -> None:
    found = _determine("LAWFUL_PERMANENT_RESIDENT", [LEVEL_1, "0901"])
    assert found.current_charge_level == 1
    assert found.removable is False and found.priority == 0


@pytest.mark.parametrize(
    ("conviction", "removable"),
    [(LEVEL_1, True), (LEVEL_2, False), (LEVEL_3, False)],
)
def test_a_refugee_is_removable_only_with_a_level_1_conviction(
    conviction: str, removable: bool
) -> None:
    found = _determine("REFUGEE_OR_ASYLEE", [], [_conviction(conviction, 2_000)])
    assert found.removable is removable
    assert found.ground == ("PARTICULARLY-SERIOUS-CRIME" if removable else "")


def test_a_visa_holder_is_removable_with_a_conviction_at_any_level() -> None:
    assert _determine("NONIMMIGRANT_VISA", [LEVEL_2]).removable is False
    assert _determine("NONIMMIGRANT_VISA", [], [_conviction(LEVEL_3)]).removable is True


def test_without_any_encounter_the_status_is_unspecified_and_nothing_is_done() -> None:
    found = _determine(None, [LEVEL_1], [_conviction(LEVEL_1, 2_000)])
    assert found.status == "UNSPECIFIED"
    assert found.removable is False and found.priority == 0
    assert found.confidence == "low"


# --- status from the latest encounter -----------------------------------------------------


def test_the_status_is_taken_from_the_latest_encounter_in_any_order() -> None:
    encounters = [
        _encounter("VISA_OVERSTAY", 500),
        _encounter("LAWFUL_PERMANENT_RESIDENT", 2_000),
        _encounter("NONIMMIGRANT_VISA", 100),
        _encounter("ENTRY_WITHOUT_INSPECTION", 1_500),
    ]
    assert current_status(encounters) == "LAWFUL_PERMANENT_RESIDENT"
    assert current_status(list(reversed(encounters))) == "LAWFUL_PERMANENT_RESIDENT"
    found = determine(
        encounters=encounters,
        current_charges=[],
        history=[],
        table=MOA,
        rules=default_status_rules(),
    )
    assert found.status == "LAWFUL_PERMANENT_RESIDENT" and found.removable is False


def test_encounters_in_the_same_second_are_ordered_by_nanoseconds() -> None:
    earlier = _encounter("VISA_OVERSTAY", 1_000, "Z")
    later = _encounter("NATURALIZED_CITIZEN", 1_000, "A")
    later.encountered_at.nanos = 1
    assert current_status([later, earlier]) == "NATURALIZED_CITIZEN"
    assert current_status([]) == "UNSPECIFIED"


# --- which charges count, and at which level -------------------------------------------------


def test_only_convicted_charges_count_as_prior_convictions() -> None:
    history = [
        _cycle(_charge(LEVEL_1, "DISMISSED"), _charge("0901", "CHARGED")),
        _cycle(_charge("1313", "ACQUITTED"), _charge(LEVEL_1, "UNSPECIFIED")),
        _cycle(_conviction(LEVEL_3, 30)),
    ]
    assert [c.ncic_code for c in prior_convictions(history)] == [LEVEL_3]
    found = determine(
        encounters=[_encounter("LAWFUL_PERMANENT_RESIDENT")],
        current_charges=[],
        history=history,
        table=MOA,
        rules=default_status_rules(),
    )
    assert [c.charge.ncic_code for c in found.prior_convictions] == [LEVEL_3]
    assert found.prior_conviction_level == 3
    assert found.removable is False


def test_convictions_from_every_arrest_cycle_count() -> None:
    history = [_cycle(_conviction(LEVEL_3)), _cycle(_conviction(LEVEL_2), _conviction(LEVEL_1))]
    assert [c.ncic_code for c in prior_convictions(history)] == [LEVEL_3, LEVEL_2, LEVEL_1]


def test_a_current_drug_charge_is_level_2_sentence_unknown_even_with_a_sentence_on_it() -> None:
    sentenced = _charge(DRUGS, "CHARGED", 900)
    found = determine(
        encounters=[_encounter("VISA_OVERSTAY")],
        current_charges=[sentenced],
        history=[],
        table=MOA,
        rules=default_status_rules(),
    )
    (charge,) = found.current_charges
    assert charge.charge == sentenced
    assert (charge.classification.level, charge.classification.category) == (
        2,
        "Drugs (sentence unknown)",
    )
    assert found.current_charge_level == 2


@pytest.mark.parametrize(
    ("days", "level", "category"),
    [
        (366, 1, "Drugs (sentence > 1 year)"),
        (3_650, 1, "Drugs (sentence > 1 year)"),
        (365, 2, "Drugs (sentence <= 1 year)"),
        (30, 2, "Drugs (sentence <= 1 year)"),
    ],
)
def test_a_drug_conviction_is_classified_by_its_sentence(
    days: int, level: int, category: str
) -> None:
    found = _determine("VISA_OVERSTAY", [], [_conviction(DRUGS, days)])
    (conviction,) = found.prior_convictions
    assert (conviction.classification.level, conviction.classification.category) == (
        level,
        category,
    )
    assert found.prior_conviction_level == level


def test_a_permanent_residents_drug_conviction_over_a_year_makes_them_removable_at_level_1() -> (
    None
):
    found = _determine("LAWFUL_PERMANENT_RESIDENT", [DRUGS], [_conviction(DRUGS, 400)])
    assert found.removable is True
    assert (found.current_charge_level, found.prior_conviction_level, found.priority) == (2, 1, 1)


def test_every_classification_names_the_table_that_made_it() -> None:
    found = _determine("VISA_OVERSTAY", [LEVEL_2], [_conviction(LEVEL_3)], table=PLAN)
    tables = {c.classification.table for c in found.current_charges + found.prior_convictions}
    assert tables == {"strategic-plan"}


def test_a_charge_with_a_malformed_ncic_code_is_refused() -> None:
    with pytest.raises(InvalidNcicCode, match="'12A4'"):
        _determine("VISA_OVERSTAY", ["12A4"])
    with pytest.raises(InvalidNcicCode):
        _determine("VISA_OVERSTAY", [], [_conviction("901")])


# --- priority --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "priors", "priority"),
    [
        ((), (), 3),
        ((LEVEL_3,), (), 3),
        ((LEVEL_3, LEVEL_2), (), 2),
        ((LEVEL_3,), (_conviction(LEVEL_2),), 2),
        ((LEVEL_1,), (_conviction(LEVEL_3),), 1),
        ((LEVEL_3,), (_conviction(LEVEL_1, 2_000),), 1),
        ((DRUGS,), (), 2),
    ],
)
def test_a_removable_persons_priority_is_their_most_serious_level(
    current: Sequence[str], priors: Sequence[common_pb2.Charge], priority: int
) -> None:
    assert _determine("ENTRY_WITHOUT_INSPECTION", current, priors).priority == priority


def test_a_person_who_is_not_removable_has_priority_0_whatever_their_levels() -> None:
    found = _determine("NATURALIZED_CITIZEN", [LEVEL_1], [_conviction(LEVEL_1, 2_000)])
    assert (found.current_charge_level, found.prior_conviction_level) == (1, 1)
    assert found.priority == 0


def test_without_charges_there_is_no_level() -> None:
    found = _determine("VISA_OVERSTAY")
    assert found.current_charge_level is None and found.prior_conviction_level is None


# --- the rules are data ----------------------------------------------------------------------


def test_the_shipped_rules_cover_every_immigration_status() -> None:
    statuses = {
        name.removeprefix("IMMIGRATION_STATUS_")
        for name in common_pb2.ImmigrationStatus.DESCRIPTOR.values_by_name
    }
    assert set(default_status_rules()) == statuses
    assert parse_status_rules(_shipped_rules_document()) == default_status_rules()


def test_changing_a_status_rule_in_the_document_changes_the_outcome() -> None:
    priors = [_conviction(LEVEL_3)]
    assert _determine("LAWFUL_PERMANENT_RESIDENT", [], priors).removable is False
    document = _shipped_rules_document()
    document["status"]["LAWFUL_PERMANENT_RESIDENT"]["max_level"] = 3
    document["status"]["LAWFUL_PERMANENT_RESIDENT"]["ground"] = "ANY-CONVICTION"
    document["status"]["ENTRY_WITHOUT_INSPECTION"]["removable"] = "never"
    rules = parse_status_rules(document)
    lpr = _determine("LAWFUL_PERMANENT_RESIDENT", [], priors, rules=rules)
    assert (lpr.removable, lpr.ground) == (True, "ANY-CONVICTION")
    ewi = _determine("ENTRY_WITHOUT_INSPECTION", [LEVEL_1], rules=rules)
    assert (ewi.removable, ewi.priority) == (False, 0)
    assert _determine("ENTRY_WITHOUT_INSPECTION", [LEVEL_1]).removable is True


def test_a_status_missing_from_the_rules_falls_back_to_the_unspecified_rule() -> None:
    document = _shipped_rules_document()
    del document["status"]["VISA_OVERSTAY"]
    found = _determine("VISA_OVERSTAY", [LEVEL_1], rules=parse_status_rules(document))
    assert found.status == "VISA_OVERSTAY"
    assert found.removable is False and found.confidence == "low"


def test_an_if_convicted_rule_defaults_to_any_level() -> None:
    rule = parse_status_rules(
        {
            "status": {
                "VISA_OVERSTAY": {"removable": "if_convicted"},
                "UNSPECIFIED": {"removable": "never"},
            }
        }
    )
    assert rule["VISA_OVERSTAY"].max_level == 3
    assert rule["VISA_OVERSTAY"].applies(3) and not rule["VISA_OVERSTAY"].applies(None)


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        ("ILLEGAL_ALIEN", {"removable": "always"}, "not an ImmigrationStatus"),
        ("visa_overstay", {"removable": "always"}, "not an ImmigrationStatus"),
        ("VISA_OVERSTAY", {"removable": "sometimes"}, "removable must be one of"),
        ("VISA_OVERSTAY", {"ground": "OVERSTAY"}, "removable must be one of"),
        ("VISA_OVERSTAY", {"removable": "if_convicted", "max_level": 4}, "max_level"),
        ("VISA_OVERSTAY", {"removable": "if_convicted", "max_level": 0}, "max_level"),
        ("VISA_OVERSTAY", {"removable": "if_convicted", "max_level": "2"}, "max_level"),
        ("VISA_OVERSTAY", "always", "must be a table"),
    ],
)
def test_a_bad_rules_document_is_refused(status: str, body: object, words: str) -> None:
    document = _shipped_rules_document()
    document["status"][status] = body
    with pytest.raises(ValueError, match=words):
        parse_status_rules(document)


@pytest.mark.parametrize("document", [{}, {"status": []}, {"status": "always"}])
def test_a_document_without_status_tables_is_refused(document: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"\[status\.<NAME>\]"):
        parse_status_rules(document)


def test_a_boolean_max_level_is_refused() -> None:
    document = _shipped_rules_document()
    document["status"]["LAWFUL_PERMANENT_RESIDENT"]["max_level"] = True
    with pytest.raises(ValueError, match="max_level"):
        parse_status_rules(document)


def test_rules_without_the_unspecified_fallback_are_refused() -> None:
    document = _shipped_rules_document()
    del document["status"]["UNSPECIFIED"]
    with pytest.raises(ValueError, match=r"\[status\.UNSPECIFIED\]"):
        parse_status_rules(document)


# --- the deployment's Appendix A table ------------------------------------------------------


def test_the_appendix_a_table_decides_the_level_of_a_current_0150_charge() -> None:
    moa = _determine("ENTRY_WITHOUT_INSPECTION", ["0150"], table=MOA)
    plan = _determine("ENTRY_WITHOUT_INSPECTION", ["0150"], table=PLAN)
    assert moa.current_charges[0].classification.category == "National Security"
    assert (moa.current_charge_level, moa.priority) == (1, 1)
    assert (plan.current_charge_level, plan.priority) == (3, 3)


def test_the_appendix_a_table_decides_whether_a_0150_conviction_makes_a_resident_removable() -> (
    None
):
    priors = [_conviction("0150", 1_000)]
    moa = _determine("LAWFUL_PERMANENT_RESIDENT", [], priors, table=MOA)
    plan = _determine("LAWFUL_PERMANENT_RESIDENT", [], priors, table=PLAN)
    assert (moa.prior_conviction_level, moa.removable, moa.priority) == (1, True, 1)
    assert (plan.prior_conviction_level, plan.removable, plan.priority) == (3, False, 0)


# --- no profiling ----------------------------------------------------------------------------


def test_a_determination_takes_no_descriptors() -> None:
    parameters = inspect.signature(determine).parameters
    assert list(parameters) == ["encounters", "current_charges", "history", "table", "rules"]
    assert not any("descript" in name for name in parameters)


def _iaq() -> lesc_pb2.Iaq:
    descriptors = common_pb2.Descriptors(nam="GARCIA,MARIA", dob="19800101", sex="F", pob="MX")
    return lesc_pb2.Iaq(
        pur="C",
        descriptors=descriptors,
        cus="Y",
        off=[_charge(LEVEL_2), _charge(DRUGS)],
        arn="A012345678",
        fbi="123456AB1",
        booking_number="B-1",
        idr=common_pb2.Idr(
            match=True,
            fin="FIN0001",
            a_number="A012345678",
            descriptors=descriptors,
            encounters=[
                _encounter("NONIMMIGRANT_VISA", 100),
                _encounter("LAWFUL_PERMANENT_RESIDENT", 900),
            ],
            score=0.91,
        ),
        history=common_pb2.CriminalHistory(
            fbi_number="123456AB1",
            cycles=[_cycle(_conviction(LEVEL_2, 300)), _cycle(_charge(LEVEL_1, "DISMISSED"))],
        ),
    )


def _with_descriptors(iaq: lesc_pb2.Iaq, descriptors: common_pb2.Descriptors) -> lesc_pb2.Iaq:
    """The same IAQ with other descriptors, in the booking and in the IDR."""
    other = lesc_pb2.Iaq()
    other.CopyFrom(iaq)
    other.descriptors.CopyFrom(descriptors)
    other.idr.descriptors.CopyFrom(descriptors)
    return other


def _determine_iaq(iaq: lesc_pb2.Iaq, table: OffenseTable) -> Determination:
    """The determination LESC makes from an IAQ (the inputs StatusDeterminationCenter passes)."""
    return determine(
        encounters=iaq.idr.encounters,
        current_charges=iaq.off,
        history=iaq.history.cycles,
        table=table,
        rules=default_status_rules(),
    )


@pytest.mark.parametrize("table", [MOA, PLAN], ids=lambda t: t.name)
def test_iaqs_differing_only_in_descriptors_get_the_same_determination(
    table: OffenseTable,
) -> None:
    first = _iaq()
    second = _with_descriptors(
        first, common_pb2.Descriptors(nam="SMITH,JOHN", dob="19550707", sex="M", pob="CA")
    )
    blank = _with_descriptors(first, common_pb2.Descriptors())
    assert first != second and first != blank
    outcomes = [_determine_iaq(iaq, table) for iaq in (first, second, blank)]
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert outcomes[0].status == "LAWFUL_PERMANENT_RESIDENT"
    assert outcomes[0].removable is True and outcomes[0].priority == 2


def test_descriptors_carry_no_race_or_ethnicity() -> None:
    fields = {f.name for f in common_pb2.Descriptors.DESCRIPTOR.fields}
    assert fields == {"nam", "dob", "sex", "pob"}
    assert not any(word in name for name in fields for word in ("race", "rac", "eth"))


def _messages(descriptor: Descriptor) -> list[Descriptor]:
    return [descriptor, *(m for nested in descriptor.nested_types for m in _messages(nested))]


def test_no_message_of_the_federation_has_a_race_or_ethnicity_field() -> None:
    modules = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(scfed.__path__, prefix="scfed.")
        if info.name.endswith("_pb2")
    ]
    assert len(modules) >= 6
    names = {
        f"{message.full_name}.{field.name}"
        for module in modules
        for top in module.DESCRIPTOR.message_types_by_name.values()
        for message in _messages(top)
        for field in message.fields
    }
    assert "scfed.common.v1.Descriptors.nam" in names
    # By the words of a field's name ("trace_id" is no race field).
    words = {name: re.split(r"[._]", name.lower()) for name in names}
    assert not [
        name
        for name, parts in words.items()
        if any(p == "race" or p.startswith("ethnic") for p in parts)
    ]


def _dated(kind: str, seconds: int, status: str) -> common_pb2.Encounter:
    return common_pb2.Encounter(
        encounter_id=f"E{seconds}",
        encounter_type=kind,
        encountered_at=Timestamp(seconds=seconds),
        status=common_pb2.ImmigrationStatus.Value("IMMIGRATION_STATUS_" + status),
    )


def test_a_removal_ident_holds_makes_the_booking_a_reentry_after_the_latest_removal() -> None:
    encounters = [
        _dated("BORDER-APPREHENSION", 100, "ENTRY_WITHOUT_INSPECTION"),
        _dated("REMOVAL", 200, "PREVIOUSLY_REMOVED"),
        _dated("BORDER-APPREHENSION", 300, "ENTRY_WITHOUT_INSPECTION"),
        _dated("REMOVAL", 400, "PREVIOUSLY_REMOVED"),
    ]
    found = determine(
        encounters=encounters,
        current_charges=[],
        history=[],
        table=MOA,
        rules=default_status_rules(),
    )
    assert found.reentry_after_removal
    assert found.removal is not None and found.removal.encountered_at.seconds == 400
    assert (found.status, found.removable, found.ground) == (
        "PREVIOUSLY_REMOVED",
        True,
        "REINSTATEMENT",
    )
    never = determine(
        encounters=encounters[:1],
        current_charges=[],
        history=[],
        table=MOA,
        rules=default_status_rules(),
    )
    assert not never.reentry_after_removal and never.removal is None
