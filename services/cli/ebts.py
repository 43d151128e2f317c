"""`scfed ebts`: write the example CAR file of a synthetic booking, and read any EBTS file."""

from __future__ import annotations

from pathlib import Path

from ..formats import ebts
from ..sib.api import BookingIn
from ..sib.transactions import car_file
from ..world.world import booking_payload, build_world


def example_car(seed: int, index: int) -> tuple[bytes, BookingIn]:
    """The CAR file of the world's `index`-th booking (from 0) for `seed`: the same bytes on
    every run (1.005 DAT is the date of arrest, 1.009 TCN the booking number)."""
    world = build_world(seed, index + 1)
    booking = world.bookings[index]
    body = BookingIn.model_validate(booking_payload(world, booking))
    dai = world.state_of(body.ori).sib_ori
    return car_file(body, tcn=body.booking_number, dai=dai, dat=booking.doa), body


def write_example(out: Path, seed: int, index: int) -> BookingIn:
    """Writes the example CAR file to `out`; the booking it holds."""
    data, body = example_car(seed, index)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return body


def read(path: Path) -> str:
    """An EBTS file as text (AnsiNistError when it does not decode)."""
    return ebts.describe(path.read_bytes())
