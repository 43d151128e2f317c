"""Service settings: per-service variables over federation-wide ones, and validators that refuse
what a service cannot run with."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from services.runtime.config import ServiceSettings
from services.sib.config import SibSettings


class RelaySettings(ServiceSettings):
    """A service of the tests' own, to prove what the base class gives every subclass."""

    model_config = SettingsConfigDict(env_prefix="SCFED_RELAY_", extra="ignore")
    service_name: ClassVar[str] = "relay"

    ident_addr: str = "127.0.0.1:50053"
    lesc_addr: str = ""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No SCFED_* variable from the shell that runs the tests leaks into them."""
    for name in list(os.environ):
        if name.upper().startswith("SCFED_"):
            monkeypatch.delenv(name)
    yield


def test_without_variables_a_service_takes_its_own_defaults() -> None:
    settings = SibSettings()
    assert (settings.grpc_port, settings.http_port) == (50051, 8081)
    assert settings.clock == "real"
    assert settings.database_url is None and settings.db_schema is None
    assert settings.data_dir == Path(".scfed-data")


def test_a_federation_wide_variable_applies_when_the_service_has_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCFED_GRPC_PORT", "60000")
    monkeypatch.setenv("SCFED_LOG_LEVEL", "DEBUG")
    settings = SibSettings()
    assert settings.grpc_port == 60000
    assert settings.log_level == "DEBUG"


def test_the_per_service_variable_wins_over_the_federation_wide_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SCFED_GRPC_PORT", "60000")
    monkeypatch.setenv("SCFED_SIB_GRPC_PORT", "60001")
    monkeypatch.setenv("SCFED_DATA_DIR", str(tmp_path / "federation"))
    monkeypatch.setenv("SCFED_SIB_DATA_DIR", str(tmp_path / "sib"))
    monkeypatch.setenv("SCFED_OUTBOX_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("SCFED_SIB_OUTBOX_MAX_ATTEMPTS", "7")
    settings = SibSettings()
    assert settings.grpc_port == 60001
    assert settings.data_dir == tmp_path / "sib"
    assert settings.outbox_max_attempts == 7


def test_one_services_variable_does_not_reach_another_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCFED_SIB_GRPC_PORT", "60001")
    monkeypatch.setenv("SCFED_SIB_CLOCK", "manual")
    relay = RelaySettings()
    assert relay.grpc_port == 0
    assert relay.clock == "real"


def test_arguments_given_in_code_win_over_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCFED_GRPC_PORT", "60000")
    monkeypatch.setenv("SCFED_SIB_GRPC_PORT", "60001")
    assert SibSettings(grpc_port=60002).grpc_port == 60002


def test_an_invalid_variable_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCFED_SIB_GRPC_PORT", "70000")
    with pytest.raises(ValidationError, match="grpc_port"):
        SibSettings()


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("postgresql://scfed:pw@db:5432/scfed", "postgresql+asyncpg://scfed:pw@db:5432/scfed"),
        ("postgresql+asyncpg://scfed@db/scfed", "postgresql+asyncpg://scfed@db/scfed"),
        ("sqlite+aiosqlite:///tmp/sib.db", "sqlite+aiosqlite:///tmp/sib.db"),
        ("", None),
    ],
)
def test_supported_database_urls_are_kept_with_the_async_driver(
    given: str, kept: str | None
) -> None:
    assert SibSettings(database_url=given).database_url == kept


def test_a_postgresql_url_from_the_environment_gets_the_async_driver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCFED_DATABASE_URL", "postgresql://scfed@db/scfed")
    settings = SibSettings()
    assert settings.database_url == "postgresql+asyncpg://scfed@db/scfed"
    assert settings.resolved_database_url() == "postgresql+asyncpg://scfed@db/scfed"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://scfed@db/scfed",
        "postgres://scfed@db/scfed",
        "postgresql+psycopg://scfed@db/scfed",
        "sqlite:///tmp/sib.db",
        "scfed.db",
    ],
)
def test_an_unsupported_database_url_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="database_url must be"):
        SibSettings(database_url=url)


def test_without_a_database_url_a_service_uses_its_own_sqlite_file(tmp_path: Path) -> None:
    sib = SibSettings(data_dir=tmp_path)
    relay = RelaySettings(data_dir=tmp_path)
    assert sib.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path / 'sib.db'}"
    assert relay.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"


def test_the_federation_wide_data_dir_holds_each_services_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SCFED_DATA_DIR", str(tmp_path))
    assert SibSettings().resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path / 'sib.db'}"
    relay = RelaySettings().resolved_database_url()
    assert relay == f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"


def test_only_postgresql_gives_a_service_its_own_schema() -> None:
    assert SibSettings().resolved_schema() is None
    sqlite = SibSettings(database_url="sqlite+aiosqlite:///tmp/x.db", db_schema="custom")
    assert sqlite.resolved_schema() is None
    assert SibSettings(database_url="postgresql://h/db").resolved_schema() == "scfed_sib"
    assert RelaySettings(database_url="postgresql://h/db").resolved_schema() == "scfed_relay"
    chosen = SibSettings(database_url="postgresql://h/db", db_schema="custom")
    assert chosen.resolved_schema() == "custom"


@pytest.mark.parametrize("schema", ["scfed_sib", "_private", "s2", "a" * 63])
def test_a_lower_case_identifier_is_a_valid_schema(schema: str) -> None:
    assert SibSettings(db_schema=schema).db_schema == schema


@pytest.mark.parametrize(
    "schema", ["", "Scfed", "2fast", "scfed-sib", "a" * 64, "x; DROP SCHEMA public", 'a"b']
)
def test_a_schema_that_is_not_an_identifier_is_refused(schema: str) -> None:
    with pytest.raises(ValidationError, match="db_schema must be a lower-case SQL identifier"):
        SibSettings(db_schema=schema)


@pytest.mark.parametrize("spec", ["real", "accelerated:3600", "manual", "manual:2009-10-27"])
def test_a_valid_clock_spec_is_accepted(spec: str) -> None:
    assert SibSettings(clock=spec).clock == spec


def test_a_bad_clock_spec_is_refused_wherever_it_comes_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValidationError, match="bad clock spec"):
        SibSettings(clock="warp:9")
    monkeypatch.setenv("SCFED_SIB_CLOCK", "accelerated:0")
    with pytest.raises(ValidationError, match="clock"):
        SibSettings()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("grpc_port", -1),
        ("http_port", 65536),
        ("outbox_max_attempts", 0),
        ("outbox_base_delay_s", 0.0),
        ("outbox_max_delay_s", -1.0),
        ("outbox_batch", 0),
        ("shutdown_grace_s", -0.1),
    ],
)
def test_numbers_outside_their_range_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        SibSettings(**{field: value})  # type: ignore[arg-type]


def test_peer_addresses_come_from_the_addr_settings() -> None:
    assert SibSettings().peer_addresses() == {
        "cjis_iafis": "127.0.0.1:50052",
        "ice_field": "127.0.0.1:50055",
    }


def test_a_peer_without_an_address_is_left_out() -> None:
    assert RelaySettings().peer_addresses() == {"ident": "127.0.0.1:50053"}
    both = RelaySettings(lesc_addr="lesc:50054")
    assert both.peer_addresses() == {"ident": "127.0.0.1:50053", "lesc": "lesc:50054"}


def test_peer_addresses_follow_federation_wide_and_per_service_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCFED_CJIS_IAFIS_ADDR", "cjis:50052")
    monkeypatch.setenv("SCFED_ICE_FIELD_ADDR", "ice:50055")
    monkeypatch.setenv("SCFED_SIB_ICE_FIELD_ADDR", "ice-west:50055")
    assert SibSettings().peer_addresses() == {
        "cjis_iafis": "cjis:50052",
        "ice_field": "ice-west:50055",
    }
