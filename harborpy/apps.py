from django.apps import AppConfig


class HarborpyConfig(AppConfig):
    name = "harborpy"
    verbose_name = "harborpy"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
