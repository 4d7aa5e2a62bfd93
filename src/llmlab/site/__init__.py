"""Publishing: the dashboard, concept, study and ladder pages, and the live server."""

from .build import build

__all__ = ["build"]
