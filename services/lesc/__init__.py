"""ICE Law Enforcement Support Center: status determination, offense levels, the IAR."""
