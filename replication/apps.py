from django.apps import AppConfig


class ReplicationConfig(AppConfig):
    name = "replication"
    verbose_name = "Replication"

    def ready(self) -> None:
        # The registry below announces pushes and deletes; event-based policies react.
        from distribution.signals import artifact_pushed, artifacts_deleted, referrer_pushed

        from .services import on_artifact_pushed, on_artifacts_deleted, on_referrer_pushed

        artifact_pushed.connect(on_artifact_pushed, dispatch_uid="replication.pushed")
        referrer_pushed.connect(on_referrer_pushed, dispatch_uid="replication.referrer")
        artifacts_deleted.connect(on_artifacts_deleted, dispatch_uid="replication.deleted")
