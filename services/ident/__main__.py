"""`python -m services.ident` runs the IDENT service alone."""

from ..runtime.server import run_service
from .config import IdentSettings
from .provider import IdentProvider

if __name__ == "__main__":
    run_service(IdentProvider, IdentSettings)
