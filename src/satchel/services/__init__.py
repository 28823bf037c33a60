"""Use cases. They reach the outside only through the protocols in ``satchel.ports``."""
