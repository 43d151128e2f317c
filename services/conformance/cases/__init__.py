"""Each agency's cases; importing this package registers them all in `kit.SUITES` (`trust`,
the authorization cases of every agency, last, so they run after the contract cases)."""

from . import cjis_iafis, ice_field, ident, lesc, sib, trust

__all__ = ["cjis_iafis", "ice_field", "ident", "lesc", "sib", "trust"]
