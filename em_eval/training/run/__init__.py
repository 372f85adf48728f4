"""How a run proceeds: rollouts, the update loop, checkpoints, logs and held-out entropy."""
