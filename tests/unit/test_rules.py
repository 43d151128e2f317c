"""LESC's determination and the field office's decision follow the MOA, from data, blind to
descriptors."""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from scfed.common.v1 import common_pb2 as common
from services.ice_field.decision import DiscretionPolicy, decide
from services.lesc.determination import default_status_rules, determine, parse_status_rules
from services.lesc.offense_levels import load_table

MOA = load_table("moa")


def _encounter(status: str, seconds: int = 0) -> common.Encounter:
    return common.Encounter(
        encounter_id=f"E{seconds}",
        status=common.ImmigrationStatus.Value("IMMIGRATION_STATUS_" + status),
        encountered_at=Timestamp(seconds=seconds),
    )


def _charge(code: str, disposition: str = "CHARGED", days: int = 0) -> common.Charge:
    return common.Charge(
        ncic_code=code,
        disposition=common.Disposition.Value("DISPOSITION_" + disposition),
        sentence_days=days,
    )


def _history(*charges: common.Charge) -> list[common.ArrestCycle]:
    return [common.ArrestCycle(ori="CA0190000", doa="20050101", charges=list(charges))]


def _determine(status: str, current: list[str], prior: list[common.Charge], **kw: object):  # type: ignore[no-untyped-def]
    return determine(
        encounters=[_encounter(status)],
        current_charges=[_charge(c) for c in current],
        history=_history(*prior),
        table=kw.get("table", MOA),  # type: ignore[arg-type]
        rules=kw.get("rules", default_status_rules()),  # type: ignore[arg-type]
    )


def test_citizens_are_never_removable_whatever_their_record() -> None:
    found = _determine("NATURALIZED_CITIZEN", ["0901"], [_charge("1201", "CONVICTED", 3000)])
    assert found.removable is False and found.priority == 0 and found.ground == ""
    assert found.prior_conviction_level == 1 and found.current_charge_level == 1


@pytest.mark.parametrize(
    "status", ["ENTRY_WITHOUT_INSPECTION", "VISA_OVERSTAY", "FINAL_ORDER_OF_REMOVAL"]
)
def test_some_statuses_are_removable_without_any_conviction(status: str) -> None:
    found = _determine(status, ["7399"], [])
    assert found.removable is True and found.priority == 3


def test_permanent_residents_are_removable_only_with_a_level_1_or_2_conviction() -> None:
    assert _determine("LAWFUL_PERMANENT_RESIDENT", ["2399"], []).removable is False
    level_3 = [_charge("3999", "CONVICTED", 30)]
    assert _determine("LAWFUL_PERMANENT_RESIDENT", ["2399"], level_3).removable is False
    level_2 = [_charge("2299", "CONVICTED", 300)]
    assert _determine("LAWFUL_PERMANENT_RESIDENT", ["2399"], level_2).removable is True


def test_only_convictions_count_as_priors() -> None:
    prior = [_charge("0901", "DISMISSED"), _charge("1201", "CHARGED"), _charge("1313", "ACQUITTED")]
    found = _determine("LAWFUL_PERMANENT_RESIDENT", ["2399"], prior)
    assert found.prior_convictions == () and found.removable is False


def test_drug_charges_are_level_2_until_sentenced_and_convictions_use_the_sentence() -> None:
    found = _determine("VISA_OVERSTAY", ["3562"], [_charge("3562", "CONVICTED", 400)])
    assert found.current_charge_level == 2 and found.prior_conviction_level == 1
    assert found.current_charges[0].classification.category == "Drugs (sentence unknown)"


def test_the_latest_encounter_decides_the_status() -> None:
    found = determine(
        encounters=[_encounter("NATURALIZED_CITIZEN", 200), _encounter("VISA_OVERSTAY", 100)],
        current_charges=[_charge("2399")],
        history=[],
        table=MOA,
        rules=default_status_rules(),
    )
    assert found.status == "NATURALIZED_CITIZEN" and found.removable is False


def test_status_rules_are_data() -> None:
    document = tomllib.loads(
        resources.files("services.lesc").joinpath("data/status_rules.toml").read_text()
    )
    document["status"]["VISA_OVERSTAY"]["removable"] = "never"
    rules = parse_status_rules(document)
    assert _determine("VISA_OVERSTAY", ["2399"], [], rules=rules).removable is False
    assert _determine("VISA_OVERSTAY", ["2399"], []).removable is True


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"NOT_A_STATUS": {"removable": "always"}}, "not an ImmigrationStatus"),
        ({"VISA_OVERSTAY": {"removable": "sometimes"}}, "removable"),
        ({"VISA_OVERSTAY": {"removable": "if_convicted", "max_level": 4}}, "max_level"),
    ],
)
def test_bad_status_rules_are_refused(change: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_status_rules({"status": change})


def test_the_appendix_a_table_is_chosen_per_deployment() -> None:
    moa = _determine("VISA_OVERSTAY", ["0150"], [])
    plan = _determine("VISA_OVERSTAY", ["0150"], [], table=load_table("strategic-plan"))
    assert (moa.current_charge_level, plan.current_charge_level) == (1, 3)


def _iar(removable: bool, current: int, prior: int) -> common.Iar:
    levels = {
        0: common.OFFENSE_LEVEL_NONE,
        1: common.OFFENSE_LEVEL_1,
        2: common.OFFENSE_LEVEL_2,
        3: common.OFFENSE_LEVEL_3,
    }
    return common.Iar(
        removable=removable,
        current_charge_level=levels[current],
        prior_conviction_level=levels[prior],
    )


def test_field_decisions_follow_moa_section_v() -> None:
    policy = DiscretionPolicy()
    assert decide(_iar(False, 1, 1), policy).action == "no_action"
    prior = decide(_iar(True, 3, 1), policy)
    assert (prior.action, prior.level, prior.basis) == (
        "detainer",
        1,
        common.DETAINER_BASIS_PRIOR_LEVEL_1,
    )
    current = decide(_iar(True, 1, 0), policy)
    assert (current.action, current.basis) == ("detainer", common.DETAINER_BASIS_LEVEL_1)
    assert decide(_iar(True, 2, 3), policy).action == "detainer"
    assert decide(_iar(True, 3, 0), policy).action == "declined"


def test_the_discretion_policy_changes_level_2_and_3_outcomes() -> None:
    strict = DiscretionPolicy(level_2="decline", level_3="detain")
    assert decide(_iar(True, 2, 0), strict).action == "declined"
    assert decide(_iar(True, 3, 0), strict).action == "detainer"
    assert decide(_iar(True, 1, 0), strict).action == "detainer"


def test_no_message_can_carry_race_or_ethnicity() -> None:
    fields = {f.name for f in common.Descriptors.DESCRIPTOR.fields}
    assert fields == {"nam", "dob", "sex", "pob"}


def test_decisions_take_no_descriptors() -> None:
    import inspect

    assert "descriptors" not in inspect.signature(determine).parameters
    assert [p for p in inspect.signature(decide).parameters] == ["iar", "policy"]
    assert not any(f.name.startswith("descript") for f in dataclasses.fields(DiscretionPolicy))
