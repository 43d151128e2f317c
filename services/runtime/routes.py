"""Names of the federation's services and the gRPC methods their messages travel by."""

from __future__ import annotations

from typing import Final

SIB: Final = "sib"
CJIS_IAFIS: Final = "cjis_iafis"
IDENT: Final = "ident"
LESC: Final = "lesc"
ICE_FIELD: Final = "ice_field"
SERVICES: Final = (SIB, CJIS_IAFIS, IDENT, LESC, ICE_FIELD)

# Agency identifiers used as DAI/ORI in envelopes (synthetic, except LESC's published ORI).
CJIS_ORI: Final = "WVFBI0000"
IDENT_ORI: Final = "DCDHS0000"
LESC_ORI: Final = "VTICE0900"

_SIB = "/scfed.sib.v1.StateIdentificationBureau/"
_CJIS = "/scfed.cjis_iafis.v1.CjisIafis/"
_IDENT = "/scfed.ident.v1.Ident/"
_LESC = "/scfed.lesc.v1.Lesc/"
_ICE = "/scfed.ice_field.v1.IceField/"

SIB_DELIVER_SRE: Final = _SIB + "DeliverSre"
SIB_DELIVER_ERRT: Final = _SIB + "DeliverErrt"
SIB_DELIVER_RESPONSE: Final = _SIB + "DeliverInteroperabilityResponse"
SIB_DELIVER_DETAINER: Final = _SIB + "DeliverDetainer"
CJIS_SUBMIT_CAR: Final = _CJIS + "SubmitCar"
CJIS_SUBMIT_CPI: Final = _CJIS + "SubmitCpi"
CJIS_DELIVER_IDR: Final = _CJIS + "DeliverIdr"
CJIS_ACKNOWLEDGE_IAQ: Final = _CJIS + "AcknowledgeIaq"
CJIS_DELIVER_IAR: Final = _CJIS + "DeliverIar"
IDENT_SEARCH: Final = _IDENT + "Search"
LESC_SUBMIT_IAQ: Final = _LESC + "SubmitIaq"
ICE_DELIVER_IAR: Final = _ICE + "DeliverIar"
ICE_NOTIFY_RELEASE: Final = _ICE + "NotifyRelease"
