"""`python -m services.lesc` runs the LESC service alone."""

from ..runtime.server import run_service
from .config import LescSettings
from .provider import LescProvider

if __name__ == "__main__":
    run_service(LescProvider, LescSettings)
