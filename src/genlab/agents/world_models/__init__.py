"""World Models (Ha & Schmidhuber 2018): V (genlab's VAE), M (an MDN-RNN), C (a linear controller
optimised with CMA-ES), and a dream environment made of M."""
