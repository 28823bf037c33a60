"""The core: aggregates, value objects and invariants, in plain Python.

Nothing here imports a framework or any other layer of Satchel. Bounded contexts:
accounts (users, quota, API tokens), files (stored
files and their checksums) and sharing (links, expiry, download limits,
passwords). Notifications join with the job tier.
"""
