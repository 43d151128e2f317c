"""`python -m services.cjis_iafis` runs the CJIS/IAFIS service alone."""

from services.cjis_iafis.config import CjisSettings
from services.cjis_iafis.provider import CjisProvider
from services.runtime.server import run_service

if __name__ == "__main__":
    run_service(CjisProvider, CjisSettings)
