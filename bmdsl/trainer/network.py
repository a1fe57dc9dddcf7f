"""The trained BM factors as an ordinary torch.nn.Module (design.md sec. 2, last lines).

    net = trainer.network();  Yhat = net(X)          # inputs by name or in declared order

It holds only what does not depend on the data: first-layer weights W1 [P m, *w1], second
[P m, *w2], the gates h_k [P, *w1] for gated ReLU (masks 1[A(h_k)(x) >= 0] recomputed on
new inputs) and fixed maps such as pooling matrices; image patches are recomputed from
the images. Units: ReLU units relu(A(u)) -- equal to D_k * A(u) exactly when the cones
(19) hold, which fit() ensures --, gated units D_k * A(u), linear units A(u). The forward
pass is the derivation's einsum specs batched over the P m units.
"""
from __future__ import annotations

import torch

from .runtime.data import patches
from .runtime.einsum import run_terms

UNIT = ("u_",)


class BMNetwork(torch.nn.Module):
    def __init__(self, spec, W1, W2, gates=None, fixed=None):
        super().__init__()
        self.spec = spec
        self.inputs = [name for name, _ in spec["inputs"]]
        self.register_buffer("W1", W1)
        self.register_buffer("W2", W2)
        self.register_buffer("gates", gates)
        self.fixed = list(fixed or {})
        for name, value in (fixed or {}).items():
            self.register_buffer(f"fixed_{name}", value)
        self.units_per_pattern = W1.shape[0] // (1 if gates is None else gates.shape[0])

    @classmethod
    def from_trainer(cls, trainer):
        pb = trainer.problem
        P, m = pb.P, trainer.m
        W1 = trainer.U.detach().reshape((P * m,) + pb.w1_shape).clone()
        W2 = trainer.V.detach().reshape((P * m,) + pb.w2_shape).clone()
        gates = None
        if pb.spec["activation"] == "gated_relu":
            gates = pb.gates.clone()
        fixed = {p["tensor"]: pb.arrays[p["tensor"]] for p in pb.spec["pools"]}
        return cls(pb.spec, W1, W2, gates, fixed)

    def _arrays(self, args, kwargs):
        if len(args) > len(self.inputs):
            raise TypeError(f"the network takes {len(self.inputs)} input(s): {self.inputs}")
        arrays = dict(zip(self.inputs, args), **kwargs)
        missing = [n for n in self.inputs if n not in arrays]
        if missing:
            raise TypeError(f"missing input(s) {missing}; the network takes {self.inputs}")
        arrays = {k: torch.as_tensor(v, dtype=self.W1.dtype, device=self.W1.device)
                  for k, v in arrays.items()}
        for p in self.spec["patches"]:
            arrays[p["tensor"]] = patches(arrays[p["images"]], p["kernel"], p["stride"],
                                          p["padding"])
        for name in self.fixed:
            arrays[name] = getattr(self, f"fixed_{name}")
        return arrays

    def forward(self, *args, **kwargs):
        arrays = self._arrays(args, kwargs)
        A = run_terms(self.spec["layer"], dict(arrays, W1=self.W1), {"W1": UNIT}, UNIT)
        act = self.spec["activation"]
        if act == "relu":
            H = torch.relu(A)
        elif act == "gated_relu":
            G = run_terms(self.spec["layer"], dict(arrays, W1=self.gates), {"W1": ("k_",)},
                          ("k_",))
            H = (G >= 0).to(A.dtype).repeat_interleave(self.units_per_pattern, 0) * A
        else:
            H = A
        return run_terms(self.spec["output"], dict(arrays, H=H, W2=self.W2),
                         {"H": UNIT, "W2": UNIT}, ())
