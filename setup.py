"""Packaging that pyproject.toml cannot say: the folder ``cli/`` installs as ``gemkit.cli``.

Every package under ``gemkit/`` is found as usual; ``cli/`` is mapped into gemkit's namespace so
that an install adds one top-level name, ``gemkit``, and no ``cli`` that could collide with other
distributions.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["gemkit", "gemkit.*"]), "gemkit.cli"],
    package_dir={"gemkit.cli": "cli"},
)
