"""Testing support shipped with scfed: an in-process federation, waits on it, and the pytest
plugin (entry point ``scfed``) that hands a running federation to a team's own tests."""
