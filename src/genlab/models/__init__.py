"""Generative models, one file each. `genlab.models.registry` maps CLI names to them."""
