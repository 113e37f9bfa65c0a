"""The one training loop (`loop.fit`), its config, checkpoints, metrics logger and distributed set-up."""
