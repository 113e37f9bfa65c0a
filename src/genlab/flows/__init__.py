"""Normalizing flows (data -> noise is `forward`): transforms, composition, flow models."""
