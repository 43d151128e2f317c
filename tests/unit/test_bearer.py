"""`Authorization: Bearer <token>` as the operator's routes and the SIB's LEA routes read it."""

from __future__ import annotations

import pytest

from services.runtime.bearer import NotBearer, bearer_token, unauthenticated


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER  abc  ", "abc"),
        (" Bearer abc", "abc"),
        (None, None),
        ("", None),
        ("   ", None),
    ],
)
def test_the_token_is_read_whatever_the_schemes_case_and_spaces(
    header: str | None, token: str | None
) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "abc", "Token x"])
def test_another_scheme_or_no_token_is_not_bearer(header: str) -> None:
    with pytest.raises(NotBearer):
        bearer_token(header)


def test_the_refusal_asks_for_a_bearer_token() -> None:
    refused = unauthenticated("no credential")
    assert refused.status_code == 401 and refused.headers == {"WWW-Authenticate": "Bearer"}
    assert refused.detail == "no credential"
