"""The worker process type (factor VIII): Celery, one queue per kind of job."""
