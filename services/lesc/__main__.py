"""`python -m services.lesc` runs the LESC service alone."""

from services.lesc.config import LescSettings
from services.lesc.provider import LescProvider
from services.runtime.server import run_service

if __name__ == "__main__":
    run_service(LescProvider, LescSettings)
