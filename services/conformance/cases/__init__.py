"""Each agency's cases; importing this package registers them all in `kit.SUITES`."""

from . import cjis_iafis, ice_field, ident, lesc, sib

__all__ = ["cjis_iafis", "ice_field", "ident", "lesc", "sib"]
