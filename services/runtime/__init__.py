"""The runtime every scfed service shares: settings, database, clock, delivery, journal, server."""
