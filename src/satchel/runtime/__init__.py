"""Process concerns: logging, lifecycle, embedded development services."""
