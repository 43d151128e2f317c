"""The conformance kit: each agency's contract suite, run against any server of its proto."""
