"""Neural Programmer-Interpreters (Reed & de Freitas 2016): scratch pads with pointers, the
teacher programs that write execution traces, and the recursive network that learns them."""
