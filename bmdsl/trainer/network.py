"""The trained BM factors as an ordinary torch.nn.Module (Sahiner et al. 2024, eq. (14)/(18)).

    net = trainer.network()                  # zero units pruned; prune=False keeps all P m
    Yhat = net(X)                            # inputs by name or in declared order
    net.save("mlp.pt"); net = bmdsl.load_network("mlp.pt")

The module itself is runtime/network.py (`NetworkModule`, torch only), so the emitted
stand-alone module holds the same class; this file adds the constructors that need bmdsl
(from a trainer, from saved factors) and turns a bad file into a `DataError`.
"""
from __future__ import annotations

from ..core.errors import DataError
from .runtime.network import NetworkModule, uses_gates


class NetworkFileError(DataError, ValueError):
    """A file that is not a network saved by `net.save()`."""


class BMNetwork(NetworkModule):
    @classmethod
    def from_trainer(cls, trainer, prune=True):
        pb = trainer.problem
        fixed = {p["tensor"]: pb.arrays[p["tensor"]] for p in pb.spec["pools"]}
        gates = pb.gates if uses_gates(pb.spec) else None
        return cls.from_factors(pb.spec, trainer.U, trainer.V, gates, fixed, prune=prune,
                                model_text=trainer.bound.model.source.text,
                                bias=trainer.output_bias())

    @classmethod
    def from_factors(cls, spec, U, V, gates=None, fixed=None, *, prune=True, model_text="",
                     bias=None):
        """U [P, m, *w1], V [P, m, *w2] -> P m units (pattern k's units use gate h_k), plus
        the output bias b [c] of a model with a free output offset (`bias output`).
        prune=True drops exactly-zero units (||u|| ||v|| = 0): predictions are unchanged."""
        import torch
        U, V = _tensor(U), _tensor(V)
        P, m = U.shape[:2]
        pattern = torch.arange(P).repeat_interleave(m) if gates is not None else None
        net = cls(spec, U.reshape((P * m,) + tuple(U.shape[2:])),
                  V.reshape((P * m,) + tuple(V.shape[2:])),
                  None if gates is None else _tensor(gates), pattern, fixed, model_text,
                  None if bias is None else _tensor(bias))
        return net.pruned() if prune else net

    @classmethod
    def load(cls, path, map_location="cpu"):
        try:
            return super().load(path, map_location)
        except ValueError as exc:
            raise NetworkFileError(str(exc), hint="save a network with net.save(path), e.g. "
                                   "trainer.network().save('net.pt')") from None


def _tensor(x):
    """A tensor of its own (numpy arrays from np.load are read-only: copied)."""
    import numpy as np
    import torch
    return x.detach() if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x))


def load_network(path, map_location="cpu") -> BMNetwork:
    """A network saved with `net.save(path)`: weights, gates and the model's spec and text."""
    return BMNetwork.load(path, map_location)
