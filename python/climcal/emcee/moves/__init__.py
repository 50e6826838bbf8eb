"""Proposal moves of ``climcal.emcee``: emcee's built-in moves and DIME, run in
Rust, and the base classes for moves written in Python."""

from .base import MHMove, Move, RedBlueMove
from .builtin import DEMove, DESnookerMove, DIMEMove, GaussianMove, KDEMove, StretchMove, WalkMove

__all__ = [
    "Move",
    "MHMove",
    "RedBlueMove",
    "StretchMove",
    "WalkMove",
    "DEMove",
    "DESnookerMove",
    "KDEMove",
    "GaussianMove",
    "DIMEMove",
]
