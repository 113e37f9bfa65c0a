"""Learning to learn: few-shot classification (MAML, first-order MAML, Reptile) and meta-RL."""
