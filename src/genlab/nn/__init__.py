"""Shared layers used by more than one model."""
