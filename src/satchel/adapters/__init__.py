"""Implementations of the ports, one module per backing service."""
