"""The trained two-layer network as an ordinary torch.nn.Module, without bmdsl.

    net = NetworkModule(spec, W1, W2, gates, pattern);  Yhat = net(X)   # inputs by name too

Sahiner et al. 2024, eq. (14)/(18): the BM factors U [P, m, *w1], V [P, m, *w2] are P m
units; unit j of pattern k has first-layer weight u_kj and second-layer weight v_kj, and
the network is Yhat = sum_units B(act(A(u)), v). Units: ReLU relu(A(u)) -- the ordinary
ReLU network, equal to D_k * A(u) exactly when the cones (19) hold --, gated ReLU
1[A(h_k) >= 0] * A(u) with the unit's stored gate h_k (masks recomputed on new inputs),
linear A(u). The weights W1 [N, *w1], W2 [N, *w2] are nn.Parameters (fine-tune with
torch.optim); gates, each unit's pattern index and fixed maps (pooling) are buffers;
image patches are recomputed from the images. `save(path)` writes one file of tensors and
plain literals (torch.save), `load(path)` reads it with weights_only=True (no pickled
objects). Bad inputs raise ValueError naming the input, the size and what is accepted.
"""
import numpy as np
import torch

from ...kernel.layout import unfold_patches
from ...kernel.npz import numeric
from .data import append_feature
from ...kernel.einsum import run_terms

UNIT = ("u_",)
NETWORK_FORMAT = "bmdsl-network"
NETWORK_VERSION = 1


def uses_gates(spec):
    """The units carry fixed gates h_k: the activation's declared units rule (the SPEC's
    `masked`, `cone`) has patterns multiply the units without cones, so the masks come from
    stored gates, not from the unit's own sign (gated ReLU, Sahiner et al. 2024, eq. (5),
    (18)); with cones the masks are the unit's own signs, D_k * A = relu(A) (eq. (19))."""
    return bool(spec["masked"]) and not spec["cone"]


def unit_outputs(net, A, arrays):
    """The units' outputs act(A) [N, *a] from their pre-activations A by the units rule:
    1[A(h_k) >= 0] * A with the stored gates, relu(A) under cones, A unmasked (linear)."""
    if uses_gates(net.spec):
        G = run_terms(net.spec["layer"], dict(arrays, W1=net.gates), {"W1": ("k_",)}, ("k_",))
        return (G >= 0).to(A.dtype).index_select(0, net.pattern) * A
    return torch.relu(A) if net.spec["masked"] else A


def load_saved(path, map_location, error, what, accepted=""):
    """torch.load with weights_only=True; a missing file or one that is not a weights-only
    torch file (torch's zip or unpickling error) raises `error` saying so."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except Exception:    # torch's zip or weights-only unpickling error: not our format
        raise error(f"{path} is not a saved {what}: not a torch file, or one that holds "
                    f"objects other than tensors and plain values (refused unread)"
                    f"{accepted}") from None


class NetworkModule(torch.nn.Module):
    def __init__(self, spec, W1, W2, gates=None, pattern=None, fixed=None, model_text="",
                 bias=None):
        super().__init__()
        if not {"masked", "cone"} <= set(spec):
            raise ValueError(f"the network's spec lacks the units rule (masked, cone) of its "
                             f"activation {spec.get('activation')!r}")
        if (gates is None) == uses_gates(spec):
            raise ValueError("gated ReLU units need their gates; other units take none")
        self.spec, self.model_text = spec, model_text
        self.inputs = [name for name, _ in spec["inputs"]]
        self.W1, self.W2 = (torch.nn.Parameter(torch.as_tensor(W).detach().clone())
                            for W in (W1, W2))
        if self.W1.shape[0] != self.W2.shape[0]:
            raise ValueError(f"W1 has {self.W1.shape[0]} units, W2 {self.W2.shape[0]}")
        # the free output offset b [c] (a model with `bias output`; offset.py): a Parameter
        self.b2 = None if bias is None else torch.nn.Parameter(
            torch.as_tensor(bias).detach().clone().to(self.W1.dtype).reshape(-1))
        if pattern is None and gates is not None:     # units grouped by pattern, m each
            pattern = torch.arange(gates.shape[0]).repeat_interleave(self.units // gates.shape[0])
        for name, x, dtype in (("gates", gates, self.W1.dtype), ("pattern", pattern, torch.long)):
            self.register_buffer(name, None if x is None else torch.as_tensor(x).to(dtype))
        self.fixed = sorted(fixed or {})
        for name in self.fixed:
            self.register_buffer(f"fixed_{name}", torch.as_tensor(fixed[name]).to(self.W1.dtype))

    @property
    def units(self) -> int:
        return self.W1.shape[0]

    # -- inputs ------------------------------------------------------------------------------
    def known_sizes(self) -> dict:
        """Sizes fixed by the weights and the model (the sample count n is free)."""
        sizes = dict(self.spec["sizes"])
        sizes.pop(self.spec["target_dims"][0], None)
        for key, W in (("w1", self.W1), ("w2", self.W2)):
            sizes.update(zip(self.spec["dims"][key], W.shape[1:]))
        for p in self.spec["pools"]:
            sizes.update(zip(p["dims"], getattr(self, f"fixed_{p['tensor']}").shape))
        return sizes

    def _arrays(self, args, kwargs):
        arrays = dict(zip(self.inputs, args))
        bad = sorted(set(arrays) & set(kwargs)) or sorted(set(kwargs) - set(self.inputs))
        missing = [n for n in self.inputs if n not in arrays and n not in kwargs]
        for wrong, why in ((len(args) > len(self.inputs), f"{len(args)} inputs given"),
                           (bad, f"input(s) {bad} given twice or unknown"),
                           (missing, f"missing input(s) {missing}")):
            if wrong:
                raise TypeError(f"{why}; the network takes {self.inputs}")
        dims = dict(self.spec["inputs"])
        arrays = {k: self._tensor(k, v, dims[k]) for k, v in dict(arrays, **kwargs).items()}
        for p in self.spec["patches"]:
            self._check(p["images"], arrays[p["images"]], dims[p["images"]])
            arrays[p["tensor"]] = unfold_patches(arrays[p["images"]], p["kernel"],
                                                  p["stride"], p["padding"])
            dims[p["tensor"]] = p["dims"]
        arrays = append_feature(self.spec, arrays)       # (the hidden bias)
        sizes = self.known_sizes()
        for name, dim in dims.items():
            self._check(name, arrays[name], dim, sizes)
        return dict(arrays, **{name: getattr(self, f"fixed_{name}") for name in self.fixed})

    def _tensor(self, name, value, dims):
        if not isinstance(value, torch.Tensor):     # numpy, lists: checked as data (npz.py)
            value = torch.as_tensor(numeric({name: value}, name, dims, what="the inputs"))
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"input '{name}' contains NaN or inf (only finite numbers)")
        return value.to(self.W1)

    def _check(self, name, t, want, sizes=None):
        """`t` has the axes `want`, samples, and the sizes of `sizes` (the weights' sizes,
        the sample count set by the first input), else a ValueError naming the input."""
        n = self.spec["target_dims"][0]
        if t.dim() != len(want):
            raise ValueError(f"input '{name}' has {t.dim()} axes {tuple(t.shape)}; the network "
                             f"takes {len(want)}: [{', '.join(want)}]")
        if t.dim() and t.shape[0] == 0 and self.spec["sample_axes"].get(name) == 0:
            raise ValueError(f"input '{name}' has no samples")
        for axis, (dim, size) in enumerate(zip(want, t.shape) if sizes is not None else ()):
            known = sizes.setdefault(dim, size) if dim == n else sizes.get(dim, size)
            if known != size:
                raise ValueError(f"input '{name}' has {dim} = {size} on axis {axis}, but " + (
                    f"another input {known}: every input needs the same count" if dim == n
                    else f"the network was trained with {dim} = {known}"))

    # -- the network -------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        arrays = self._arrays(args, kwargs)
        A = run_terms(self.spec["layer"], dict(arrays, W1=self.W1), {"W1": UNIT}, UNIT)
        H = unit_outputs(self, A, arrays)
        Y = run_terms(self.spec["output"], dict(arrays, H=H, W2=self.W2),
                      {"H": UNIT, "W2": UNIT}, ())
        if self.b2 is None:
            return Y
        return (Y.reshape(-1, self.b2.shape[0]) + self.b2).reshape(Y.shape)

    def unit_norms(self):
        """||u_j|| ||v_j||: a unit's weight in the regularizer's sense; 0 for a dead unit."""
        with torch.no_grad():
            N = self.units          # reshape, not flatten(1): a scalar W2 is [N]
            return self.W1.reshape(N, -1).norm(dim=1) * self.W2.reshape(N, -1).norm(dim=1)

    def pruned(self, tol=0.0):
        """The same network without the units with ||u|| ||v|| <= tol * max (0: exactly zero
        units, whose output is exactly zero: predictions are unchanged), and without the
        gates no kept unit uses."""
        norms = self.unit_norms()
        keep = torch.nonzero(norms > tol * float(norms.max()) if norms.numel() else norms)[:, 0]
        keep = keep if keep.numel() else torch.zeros(1, dtype=torch.long, device=keep.device)
        # the gates the kept units use, renumbered
        used, pattern = torch.unique(self.pattern[keep], return_inverse=True) \
            if self.gates is not None else (None, None)
        fixed = {n: getattr(self, f"fixed_{n}") for n in self.fixed}
        return type(self)(self.spec, self.W1.detach()[keep], self.W2.detach()[keep],
                          self.gates[used] if self.gates is not None else None, pattern, fixed,
                          self.model_text, self.b2 if self.b2 is None else self.b2.detach())

    # -- one file ----------------------------------------------------------------------------
    def to_dict(self):
        """The network as tensors and plain literals (what `save` writes, `from_dict` reads)."""
        return {"spec": self.spec, "model_text": self.model_text, "fixed": list(self.fixed),
                "state": {k: v.detach().cpu() for k, v in self.state_dict().items()}}

    @classmethod
    def from_dict(cls, saved):
        state = saved["state"]
        fixed = {n: state[f"fixed_{n}"] for n in saved["fixed"]}
        return cls(saved["spec"], state["W1"], state["W2"], state.get("gates"),
                   state.get("pattern"), fixed, saved["model_text"], state.get("b2"))

    def save(self, path):
        """Tensors and plain literals only, so `load` reads it with weights_only=True."""
        torch.save(dict(self.to_dict(), format=NETWORK_FORMAT, version=NETWORK_VERSION), path)

    @classmethod
    def load(cls, path, map_location="cpu"):
        saved = load_saved(path, map_location, ValueError, "network",
                           "; accepted: a file written by net.save()")
        if not isinstance(saved, dict) or saved.get("format") != NETWORK_FORMAT:
            raise ValueError(f"{path} is not a network saved by net.save()")
        if saved.get("version") != NETWORK_VERSION:
            raise ValueError(f"{path} has network format version {saved.get('version')}; "
                             f"this code reads version {NETWORK_VERSION}")
        return cls.from_dict(saved)
