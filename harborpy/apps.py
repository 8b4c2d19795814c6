from django.apps import AppConfig


class HarborpyConfig(AppConfig):
    name = "harborpy"
    verbose_name = "harborpy"

    def ready(self) -> None:
        from . import celery, checks  # noqa: F401  (the Celery app every process enqueues on; checks)
