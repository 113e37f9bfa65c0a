"""genlab: generative models, generative agents and tools that learn.

Start reading at `genlab.interfaces` (the few protocols everything implements), then
`genlab.train.loop` (the one training loop) and `genlab.models.vae` (the first model).
"""

__version__ = "0.1.0"
