"""Tensor operations: the public functions and, attached in ``methods``, Tensor methods."""
