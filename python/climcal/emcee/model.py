"""What a move's ``propose(model, state)`` gets (emcee's ``Model``)."""

from collections import namedtuple

__all__ = ["Model"]

#: ``log_prob_fn`` (one point), ``compute_log_prob_fn`` (a batch: returns
#: ``(log_prob, blobs)``), ``map_fn`` and ``random`` (a numpy ``RandomState``).
Model = namedtuple("Model", ("log_prob_fn", "compute_log_prob_fn", "map_fn", "random"))
