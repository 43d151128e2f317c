"""State Identification Bureau: the LEAs' edge, state records, CAR/CPI, relay of responses."""
