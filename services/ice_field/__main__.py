"""`python -m services.ice_field` runs the ICE field office service alone."""

from services.ice_field.config import IceFieldSettings
from services.ice_field.provider import IceFieldProvider
from services.runtime.server import run_service

if __name__ == "__main__":
    run_service(IceFieldProvider, IceFieldSettings)
