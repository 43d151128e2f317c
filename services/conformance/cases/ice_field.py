"""The ice_field suite: the documented refusals (refusals.py)."""

from __future__ import annotations

from ...federation import Agency
from ..kit import refusal_cases
from ..refusals import content_refusals, envelope_refusals

refusal_cases(Agency.ICE_FIELD, envelope_refusals() + content_refusals())
