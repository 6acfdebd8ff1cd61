"""Interventions service for building-safety registers."""

__version__ = "0.1.0"
