"""Formats real systems speak, beside the federation's own protobuf and JSON."""
