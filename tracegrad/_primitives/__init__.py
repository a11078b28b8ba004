"""Every primitive, registered by importing its module (see ``registry``)."""
from . import cat, elementwise, linalg_index, movement, reduce, trig  # noqa: F401  (registration)
from .registry import PRIMITIVES, Primitive, ShapeError

__all__ = ["PRIMITIVES", "Primitive", "ShapeError"]
