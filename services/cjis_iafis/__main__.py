"""`python -m services.cjis_iafis` runs the CJIS/IAFIS service alone."""

from ..runtime.server import run_service
from .config import CjisSettings
from .provider import CjisProvider

if __name__ == "__main__":
    run_service(CjisProvider, CjisSettings)
