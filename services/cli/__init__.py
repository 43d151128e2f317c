"""The `scfed` command: run the federation, drive the demo, trace bookings, classify codes."""
