"""``gemkit compose`` and ``gemkit components``."""

from __future__ import annotations

from cli.main import app  # noqa: F401
