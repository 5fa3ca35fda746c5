"""Short training under a documented protocol per space: the second fidelity beside the training-free
metrics (see trainfree.train.protocol for the protocols, trainfree.train.loop for the loop)."""
from trainfree.train.loop import Record, TrainResult, train_arch
from trainfree.train.protocol import PROTOCOLS, UNITS, Budget, Protocol, protocol_for, register_protocol

__all__ = ["PROTOCOLS", "UNITS", "Budget", "Protocol", "Record", "TrainResult", "protocol_for", "register_protocol",
           "train_arch"]
