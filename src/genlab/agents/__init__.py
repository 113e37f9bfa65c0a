"""Agents that learn from reward: return estimators shared by every learner (A2C, RL², IMPALA)."""
