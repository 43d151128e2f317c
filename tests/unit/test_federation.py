"""The registry of agencies: each agency once, and everything that names it agrees with it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from services.federation import PROFILES, Agency, parse_agency


def test_every_agency_has_exactly_one_profile() -> None:
    assert list(PROFILES) == list(Agency)
    assert all(profile.agency is agency for agency, profile in PROFILES.items())


def test_ports_and_addresses_are_each_agencys_own() -> None:
    ports = [(p.grpc_port, p.http_port) for p in PROFILES.values()]
    assert len({port for pair in ports for port in pair}) == 2 * len(ports)
    assert Agency.LESC.profile.default_address == "127.0.0.1:50054"
    assert Agency.CJIS_IAFIS.profile.address_variable == "SCFED_CJIS_IAFIS_ADDR"


@pytest.mark.parametrize("agency", list(Agency))
def test_settings_read_prefix_ports_and_name_from_the_registry(agency: Agency) -> None:
    profile = agency.profile
    settings_cls = profile.settings_class()
    settings = settings_cls()
    assert settings_cls.model_config.get("env_prefix") == profile.env_prefix
    assert settings_cls.service_name == agency
    assert (settings.grpc_port, settings.http_port) == (profile.grpc_port, profile.http_port)
    for peer, address in settings.peer_addresses().items():
        assert address == Agency(peer).profile.default_address


@pytest.mark.parametrize("agency", list(Agency))
def test_provider_and_entry_point_are_the_agencys(agency: Agency) -> None:
    provider = agency.profile.provider_class()(agency.profile.settings_class()())
    assert provider.name == agency
    assert importlib.util.find_spec(f"{agency.profile.module}.__main__") is not None


def test_national_agencies_have_an_ori_and_the_others_one_per_state_or_office() -> None:
    assert Agency.LESC.ori == "VTICE0900"
    assert {Agency.CJIS_IAFIS.ori, Agency.IDENT.ori} == {"WVFBI0000", "DCDHS0000"}
    for agency in (Agency.SIB, Agency.ICE_FIELD):
        with pytest.raises(LookupError):
            _ = agency.ori


def test_names_are_read_as_people_type_them() -> None:
    assert parse_agency(" cjis-iafis") is Agency.CJIS_IAFIS
    assert parse_agency("ice_field") is Agency.ICE_FIELD
    with pytest.raises(ValueError, match="one of sib, cjis_iafis, ident, lesc, ice_field"):
        parse_agency("fbi")


def test_importing_the_registry_imports_no_service() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, services.federation; "
            "print(sorted(m for m in sys.modules if m.startswith(('services.', 'pydantic'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "['services.federation']"
