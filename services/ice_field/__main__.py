"""`python -m services.ice_field` runs the ICE field office service alone."""

from ..runtime.server import run_service
from .config import IceFieldSettings
from .provider import IceFieldProvider

if __name__ == "__main__":
    run_service(IceFieldProvider, IceFieldSettings)
