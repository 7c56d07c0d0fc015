"""Registering gymnasium-robotics quietly (its own module, so that gemkit's environments can use
it without importing :mod:`gemkit.envs`)."""

from __future__ import annotations

import contextlib
import io

import gymnasium as gym

__all__ = ["register_robotics"]


def register_robotics() -> bool:
    """Register gymnasium-robotics' environments (PointMaze, AntMaze, ...); ``False`` if absent.

    Its import prints a notice about Adroit reward versions (on stderr in the installed
    versions, on stdout in older ones); both streams are kept quiet while it imports, so the
    notice never reaches gemkit's output.
    """
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import gymnasium_robotics
    except ImportError:  # pragma: no cover - a dependency, absent only in broken installs
        return False
    gym.register_envs(gymnasium_robotics)
    return True
