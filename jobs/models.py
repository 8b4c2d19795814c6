"""The fields every kind of run carries for jobs/recovery.py (an abstract model: no table)."""

from __future__ import annotations

from django.db import models


class Dispatched(models.Model):
    """A run handed to a worker by message: when it was last sent, how often, and when a
    check last found the workers busy with other runs while it waited (it may be queued
    behind them, so it is sent again, or failed as lost, only counting from there)."""

    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatches = models.IntegerField(default=0)
    held_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
