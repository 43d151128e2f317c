"""Deliberately broken variants of our agencies, one module per agency, each variant breaking one
rule that a named conformance case must catch. `VARIANTS` gathers them all."""

from __future__ import annotations

from tests.conformance.broken import cjis_iafis, ice_field, ident, lesc, sib
from tests.conformance.harness import Broken

VARIANTS: list[Broken] = [
    *sib.VARIANTS,
    *cjis_iafis.VARIANTS,
    *ident.VARIANTS,
    *lesc.VARIANTS,
    *ice_field.VARIANTS,
]
