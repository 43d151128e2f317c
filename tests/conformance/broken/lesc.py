"""lesc, broken: (variants to come)."""

from __future__ import annotations

from tests.conformance.harness import Broken

VARIANTS: list[Broken] = []
