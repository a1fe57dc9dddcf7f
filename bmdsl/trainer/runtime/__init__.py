"""Numerics of the BM trainer in torch + numpy only (no bmdsl import).

The trainer (`bmdsl.trainer`) runs these modules on a `BoundModel`; `emit_torch` pastes the
definitions a model reaches (with the kernel's, bmdsl/kernel) into a stand-alone trainer
module, so the emitted code and the trainer share one implementation. Within this package
a module imports another only as `from .name import ...` (emit drops those lines).
"""
MODULES = ("forms.py", "threads.py", "blocktree.py", "freeoutputs.py", "gram.py", "blocksum.py",
           "liftedops.py", "dprox.py", "lifted.py", "anderson.py", "ridged.py", "rowsums.py",
           "smoothloss.py",
           "conesystem.py", "damping.py", "coneops.py", "interior.py", "proxgrad.py",
           "hessian.py", "pnewton.py", "proxadmm.py", "kronops.py", "majorize.py",
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


def _order_two(spec):
    """Whether the norms C, R are both p = 2 (True), neither (False), or one (None)."""
    two = {float(f["order"]) == 2.0 for f in spec["norms"].values()}
    return None if len(two) > 1 else two.pop()


# Facts a model fixes when its module is emitted: name -> (its value for a SPEC, the
# expressions of this package whose truth value it is). The emitter keeps only the branch taken
# on them (bmdsl/kernel/paste.py); a class that lists methods or warm starts may declare
# NEEDS = {fact: value} to be left out of a model's tables where it never applies.
FACTS = {
    "fused": (lambda spec: _fused(spec), ("self.fused is not None",)),
    "cone": (lambda spec: bool(spec["cone"]), ("problem.cone", "self.cone", "spec['cone']",
                                               "cones", "cone is not None")),
    "no_cone": (lambda spec: not spec["cone"], ("cone is None",)),
    "masked": (lambda spec: bool(spec["masked"]), ("spec['masked']", "net.spec['masked']")),
    "gated": (lambda spec: bool(spec["masked"]) and not spec["cone"],
              ("uses_gates(spec)", "uses_gates(net.spec)", "uses_gates(self.spec)",
               "gates is not None", "self.gates is not None")),   # (NetworkModule's: checked)
    "patches": (lambda spec: bool(spec["patches"]), ("spec['patches']",
                                                     "self.spec['patches']")),
    "pools": (lambda spec: bool(spec["pools"]), ("spec['pools']", "self.spec['pools']")),
    "output_bias": (_output_bias, ("has_output_bias(spec)", "has_output_bias(self.spec)",
                                    "has_output_bias(SPEC)")),
    "no_output_bias": (lambda spec: not _output_bias(spec), ("self.b2 is None",)),
    "hidden_bias": (lambda spec: bool((spec.get("bias") or {}).get("hidden")),
                    ("has_hidden_bias(spec)",)),
    "gates_input": (lambda spec: bool(spec["gates"]), ("spec['gates']",)),
    "exact_patterns": (lambda spec: spec["patterns"] == "exact",
                       ("spec['patterns'] == 'exact'",)),
    "sampled_patterns": (lambda spec: spec["patterns"] not in (None, "exact"),
                         ("spec['patterns'] not in (None, 'exact')",)),
    "sharded": (lambda spec: False, ("problem.sharded",)),   # one process: no shards
    "full_batch": (lambda spec: True, ("full_batch",)),      # no mini-batches either
    "numpy_cap": (lambda spec: True, ("factor is None",)),   # einsum's plans: numpy's cap
    "plain_squared": (lambda spec: _plain_squared(spec),
                      ("plain_squared(spec)", "plain_squared(self.spec)",
                       "plain_squared(problem.spec)")),
}
# facts known only one way (None: depends on the run): without cones there is no augmented
# Lagrangian
ONE_WAY = {"penalty": (lambda spec: False if not spec["cone"] else None,
                       ("self.al is not None", "run.al is not None")),
           "no_penalty": (lambda spec: True if not spec["cone"] else None,
                          ("self.al is None", "run.al is None")),
           # without pools the network has no fixed maps; without an output bias, no bias
           "no_fixed": (lambda spec: False if not spec["pools"] else None, ("self.fixed",)),
           "no_bias": (lambda spec: True if not _output_bias(spec) else None, ("bias is None",)),
           # p = 2 for C and R, or for neither (forms.norm_sq, forms.euclidean); for one of
           # them it depends on the form a call is given
           "squared_norms": (_order_two, ("float(form['order']) == 2.0",)),
           # no method that never applies to the model (the SPEC's list, emitmethods.py):
           # no name is in it; otherwise it depends on the name
           "never": (lambda spec: False if not spec.get("methods", {}).get("never") else None,
                     ("name in SPEC['methods']['never']",))}
# constants computed at import (module -> names): the emitted module holds their values
CONSTANTS = {"gram": ("GRAM_MAX_N",)}
# module-level tables keyed by a SPEC value: the entries of other keys are left out
KEYED = {"PAIRS": lambda spec: {spec["prox"]},
         "VECTOR_PROX": lambda spec: {spec["C"], spec["R"]},
         "POOL_MATRICES": lambda spec: {p["builder"] for p in spec["pools"]}}
# expressions that are None when the fact is false
NONE_UNLESS = {"fused": ("fused_plan(spec, shapes)",)}
