"""The small protocols through which services reach the outside world.

Services depend on these, never on an adapter; ``bootstrap`` decides which adapter stands behind each one,
from the URL in the settings (factor IV). One module per kind of outside: ``persistence`` (repositories and
the unit of work), ``jobs`` (the outbox and the worker's side of it), ``storage`` (file bytes), ``mail``,
``security`` (passwords, sessions, rate limits), ``content`` (scanning, thumbnails) and ``health``.
"""
