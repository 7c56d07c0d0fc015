"""gemkit: candidate-based action selection for offline RL (GEM)."""
