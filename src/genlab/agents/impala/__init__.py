"""IMPALA (Espeholt et al. 2018) and its on-policy special case A2C, in one harness.

Files, in reading order: `config` (options), `networks` (torsos, LSTM core, autoregressive action
heads), `acting` (an actor plays a batch of environments into trajectories), `learning` (the
V-trace and A2C losses), `backends` (how trajectories reach the learner: inline or local
processes), `evaluation` (returns and episode GIFs).
"""
