"""AI Workflow Engine: a self-hosted personal productivity backend."""

__version__ = "0.1.0"
