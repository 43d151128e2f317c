"""`python -m services.sib` runs the SIB service alone."""

from ..runtime.server import run_service
from .config import SibSettings
from .provider import SibProvider

if __name__ == "__main__":
    run_service(SibProvider, SibSettings)
