"""The federation's web console: the five services' health, a booking's path, dead letters
and the Strategic Plan's measures, read from their HTTP edges."""
