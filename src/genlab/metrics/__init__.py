"""Honest, standard metrics shared by every model."""
