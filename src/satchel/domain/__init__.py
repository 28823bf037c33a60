"""The core: aggregates, value objects and invariants, in plain Python.

Nothing here imports a framework or any other layer of Satchel. Bounded contexts:
accounts, files, sharing and notifications.
"""
