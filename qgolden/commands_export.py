"""CLI commands for export (registered on qgolden.cli.app when cli is imported)."""
from .cli import app  # noqa: F401
