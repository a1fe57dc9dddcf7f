"""The torch trainer of the Burer-Monteiro factorization (docs/trainer.md).

    >>> trainer = bmdsl.load("models/mlp.bm").derive().bind(data).to_torch()
    >>> result = trainer.fit()                    # TrainResult
    >>> result.objective, result.certificate.gap_bound
    >>> net = trainer.network()                   # torch.nn.Module
    >>> source = emit_torch(derivation)           # a stand-alone trainer module

Modules: trainer.py (Trainer, TrainResult), fitloop.py (the loop, checkpoints, Ctrl-C),
methods.py (the runtime's table of methods: adam, sgd, lbfgs, als, precgd, newton, and
the order `auto` tries, runtime/policy.py), certificate.py, network.py
(the nn.Module export), emit.py (emit_torch), spec.py (the model as plain literals) and
runtime/ (the numerics in torch + numpy only, shared with the emitted module).
"""
from .errors import TrainerError, TrainingInterrupted
from .methods import METHODS
from .trainer import Trainer, TrainResult

__all__ = ["Trainer", "TrainResult", "TrainerError", "TrainingInterrupted", "METHODS",
           "emit_torch"]


def emit_torch(derivation, methods: str = "auto") -> str:
    """Source of a stand-alone trainer module for this model (see emit.py); `methods`:
    auto, all or NAME,NAME (emitmethods.py)."""
    from .emit import emit_torch as _emit
    return _emit(derivation, methods)
