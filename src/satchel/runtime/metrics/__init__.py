"""Prometheus metrics: what is measured (``instruments``), where processes keep it (``directory``), how it is
served (``exposition``).

Nothing is imported here: ``directory`` must name the multiprocess directory before anything imports
prometheus_client, which decides once, on its first import, whether samples go to files.
"""
