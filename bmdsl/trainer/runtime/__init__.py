"""Numerics of the BM trainer in torch + numpy only (no bmdsl import).

The trainer (`bmdsl.trainer`) runs these modules on a `Bound`; `emit_torch` pastes them,
in the order of `MODULES`, into a stand-alone trainer module, so the emitted code and the
trainer share one implementation. Within this package a module may import another only as
`from .name import ...` on one line (emit drops those lines when pasting).
"""
# ../../lossforms.py: the loss kernel (bmdsl-free), pasted before the forms that use it
MODULES = ("einsum.py", "../../lossforms.py", "forms.py", "gram.py", "dprox.py", "lifted.py", "ridged.py",
           "interior.py", "proxgrad.py", "warm.py", "fused.py", "offset.py", "problem.py",
           "cones.py", "activeset.py", "escape.py", "newton.py", "steps.py", "curvature.py",
           "policy.py", "data.py", "fit.py")
