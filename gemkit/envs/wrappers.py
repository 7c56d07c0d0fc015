"""Test-time dynamics perturbations."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from gemkit.errors import GemkitError

__all__ = ["MassScale", "find_mujoco_model"]


def find_mujoco_model(env: gym.Env[Any, Any]) -> Any:
    """The ``mujoco.MjModel`` behind ``env`` (also inside PointMaze/AntMaze), or ``None``."""
    inner = env.unwrapped
    for holder in (inner, getattr(inner, "point_env", None), getattr(inner, "ant_env", None)):
        model = getattr(holder, "model", None)
        if model is not None and hasattr(model, "body_mass"):
            return model
    return None


class MassScale(gym.Wrapper[Any, Any, Any, Any]):
    """Scale every MuJoCo body mass by ``factor`` (robustness tests, no retraining).

    Masses and rotational inertias (same shapes, denser material) are multiplied once, at
    construction, from the model's own values, then MuJoCo's derived constants are recomputed
    (``mj_setConst`` on a scratch ``MjData``, so the live state is untouched). Wrapping the same
    env twice compounds the factors; ``factor=1`` leaves the dynamics unchanged.

    Args:
        env: a MuJoCo-based gymnasium env (``env.unwrapped.model.body_mass``, or the inner
            ``point_env``/``ant_env`` of the maze envs).
        factor: the mass multiplier, > 0.

    Raises:
        GemkitError: ``factor <= 0`` or ``env`` is not a MuJoCo env.
    """

    def __init__(self, env: gym.Env[Any, Any], factor: float) -> None:
        super().__init__(env)
        if not factor > 0:
            raise GemkitError(f"mass scale factor must be > 0, got {factor}.")
        model = find_mujoco_model(env)
        if model is None:
            spec_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
            raise GemkitError(
                f"MassScale needs a MuJoCo environment (with model.body_mass); {spec_id} is not."
            )
        self.factor = float(factor)
        import mujoco

        self.original_mass = np.array(model.body_mass, copy=True)
        self.original_inertia = np.array(model.body_inertia, copy=True)
        # Assign whole arrays: some mujoco versions hand out copies of model fields.
        model.body_mass = self.original_mass * self.factor
        model.body_inertia = self.original_inertia * self.factor
        mujoco.mj_setConst(model, mujoco.MjData(model))
