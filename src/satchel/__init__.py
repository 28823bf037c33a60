"""Satchel: self-hosted file sharing, built as a reference twelve-factor app."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("satchel")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
