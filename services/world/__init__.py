"""A deterministic synthetic world: agencies, people, tenprints and bookings from a seed."""
