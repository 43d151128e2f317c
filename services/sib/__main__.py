"""`python -m services.sib` runs the SIB service alone."""

from services.runtime.server import run_service
from services.sib.config import SibSettings
from services.sib.provider import SibProvider

if __name__ == "__main__":
    run_service(SibProvider, SibSettings)
