"""Errors of the projects app."""


class ProjectError(Exception):
    """Base of the projects app's errors."""


class ProjectNameInvalid(ProjectError):
    """The name is not a valid project name."""


class ProjectExists(ProjectError):
    """A project with this name exists already."""


class ProjectNotFound(ProjectError):
    """No project with this name."""


class QuotaInvalid(ProjectError):
    """A quota must be a non-negative number of bytes (or none)."""


class ProjectNotEmpty(ProjectError):
    """A project that still holds repositories cannot be deleted."""
