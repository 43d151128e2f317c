"""Scenarios: a described world, its people and bookings, run on a federation and checked."""
