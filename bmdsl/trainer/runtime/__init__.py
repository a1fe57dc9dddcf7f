"""Numerics of the BM trainer in torch + numpy only (no bmdsl import).

The trainer (`bmdsl.trainer`) runs these modules on a `BoundModel`; `emit_torch` pastes the
definitions a model reaches (with the kernel's, bmdsl/kernel) into a stand-alone trainer
module, so the emitted code and the trainer share one implementation. Within this package
a module imports another only as `from .name import ...` (emit drops those lines).
"""
MODULES = ("forms.py", "gram.py", "dprox.py", "lifted.py", "ridged.py", "smoothloss.py",
           "conesystem.py", "damping.py", "interior.py", "proxgrad.py", "proxadmm.py",
           "warm.py", "fused.py", "offset.py", "problem.py", "cones.py",
           "activeset.py", "escape.py", "newton.py", "steps.py", "curvature.py", "policy.py",
           "data.py", "fit.py")


def _output_bias(spec):
    return bool((spec.get("bias") or {}).get("output"))


def _plain_squared(spec):
    from .forms import plain_squared  # the loss entry's `quadratic`, no output bias
    return plain_squared(spec)


def _fused(spec):
    from .fused import fused_plan  # its plan depends on the specs only, not on sizes
    return fused_plan(spec, {"w1": (1,), "w2": (1,), "a": (1,)}) is not None


# Facts a model fixes when its module is emitted: name -> (its value for a SPEC, the
# expressions of this package whose truth value it is). The emitter keeps only the branch taken
# on them (bmdsl/kernel/paste.py); a class that lists methods or warm starts may declare
# NEEDS = {fact: value} to be left out of a model's tables where it never applies.
FACTS = {
    "fused": (lambda spec: _fused(spec), ("self.fused is not None",)),
    "cone": (lambda spec: bool(spec["cone"]), ("problem.cone", "self.cone", "spec['cone']")),
    "masked": (lambda spec: bool(spec["masked"]), ("spec['masked']",)),
    "pools": (lambda spec: bool(spec["pools"]), ("spec['pools']",)),
    "output_bias": (_output_bias, ("has_output_bias(spec)", "has_output_bias(self.spec)")),
    "plain_squared": (lambda spec: _plain_squared(spec),
                      ("plain_squared(spec)", "plain_squared(self.spec)",
                       "plain_squared(problem.spec)")),
}
# expressions that are None when the fact is false
NONE_UNLESS = {"fused": ("fused_plan(spec, shapes)",)}
