from django.apps import AppConfig


class HarborpyConfig(AppConfig):
    name = "harborpy"
    verbose_name = "harborpy"

    def ready(self) -> None:
        # Every kind of run registers with jobs/recovery.py: a process checking one kind's
        # pending runs must see whether runs of the others keep the workers busy.
        import audit.rotation  # noqa: F401
        import distribution.gc
        import distribution.retention  # noqa: F401
        import replication.services.executions  # noqa: F401

        from . import celery, checks  # noqa: F401  (the Celery app every process enqueues on; checks)
