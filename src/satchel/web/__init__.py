"""The HTTP edge: parse requests, call services, render responses."""
