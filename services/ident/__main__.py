"""`python -m services.ident` runs the IDENT service alone."""

from services.ident.config import IdentSettings
from services.ident.provider import IdentProvider
from services.runtime.server import run_service

if __name__ == "__main__":
    run_service(IdentProvider, IdentSettings)
