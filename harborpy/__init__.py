"""harborpy: a self-hosted container registry platform."""

__version__ = "0.1.0"
