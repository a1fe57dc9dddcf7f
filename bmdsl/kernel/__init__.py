"""The bmdsl-free kernel: one source for every formula that bmdsl and the emitted modules
share (einsum contractions, image patches and pooling matrices, activation masks and gate
sampling, the .npz reader, the golden-section dual-ray search, the vector norms and the norm-pair
table with their numpy and CVXPY forms, the D-norm brackets of the hard pairs in CVXPY,
the losses) and the source paster that builds the emitted modules.

Rule: a kernel module imports only the standard library, numpy, torch and cvxpy, and
other kernel modules as `from .name import ...` on one line; never bmdsl. The emitters
(bmdsl/cvx/emit.py, bmdsl/trainer/emit.py) paste the kernel definitions a model reaches
(paste.py); bmdsl imports the same definitions from here.
"""
# pasting order for the emitters: a module's definitions may use those of earlier ones
MODULES = ("einsum.py", "layout.py", "masks.py", "npz.py", "search.py", "brackets.py",
           "norms.py", "pairforms.py", "lossprox.py", "losskernel.py", "lossclasses.py",
           "lossforms.py")
