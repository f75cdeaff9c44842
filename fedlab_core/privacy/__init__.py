"""Privacy: differential privacy mechanisms, their accounting, and the attacks that audit them.

- ``accounting``: ε from the dp-accounting library (RDP each round, PLD for
  the final figure), noise calibration, default δ.
- ``mechanisms``: client-level DP-FedAvg (fixed and adaptive clipping) and
  local DP on updates.
- ``dpsgd``: sample-level DP-SGD inside every hospital, vectorised.
- ``membership``, ``inversion``: membership inference and gradient inversion.
"""
