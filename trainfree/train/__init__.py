"""Short training under a documented protocol per space: the second fidelity beside the training-free
metrics (see trainfree.train.protocol for the protocols, trainfree.train.loop for the loop).
The loop (and torch) load on first use, so that the command line's help stays cheap."""
from trainfree.train.protocol import PROTOCOLS, UNITS, Budget, Protocol, protocol_for, register_protocol

__all__ = ["PROTOCOLS", "UNITS", "Budget", "Protocol", "Record", "TrainResult", "protocol_for", "register_protocol",
           "train_arch"]


def __getattr__(name):
    if name in ("Record", "TrainResult", "train_arch"):
        from trainfree.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'trainfree.train' has no attribute {name!r}")
