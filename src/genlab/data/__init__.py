"""Datasets: MNIST, Omniglot, FSDD. One resolver (`resolve`), one decoded cache (`cache`).

from genlab.data import mnist
x, y = mnist.load("train")        # (60000, 1, 28, 28) uint8, (60000,) int64
"""
