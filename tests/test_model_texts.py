"""The shared test model texts (tests/model_texts.py): every builder, with every registered
activation, parses and checks, and equals the shipped architecture of the same name."""
import pytest

import bmdsl
from bmdsl.atoms.activations import ACTIVATIONS
from model_texts import BUILDERS, TINY, regularize
from test_models import structure


def _tail(activation):
    return dict(activation=activation, loss="squared", regularize=regularize("1e-2"))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_builder_equals_the_shipped_architecture(arch, activation):
    """`architecture X` with units m = 3 is the builder's spelled-out text, in either layout."""
    text = BUILDERS[arch](name="m", m=3, **_tail(activation))
    model = bmdsl.parse(text)
    assert model.name == "m" and model.units.value == 3 and model.activation.name == activation
    shipped = bmdsl.parse(f"model m\narchitecture {arch}\nunits m = 3\nactivation {activation}\n"
                          "loss squared\nregularize beta = 1e-2, C = l2, R = l2\n")
    assert structure(model) == structure(shipped)
    aligned = BUILDERS[arch](name="m", m=3, align=8, **_tail(activation))
    assert aligned != text and structure(bmdsl.parse(aligned)) == structure(model)


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_extra_lines_follow_the_regularize_line(arch):
    text = BUILDERS[arch](extra_lines=["bias output"], **_tail("linear"))
    assert text.endswith("regularize beta = 1e-2, C = l2, R = l2\nbias output\n")
    assert bmdsl.parse(text).bias.output
    assert not bmdsl.parse(BUILDERS[arch](**_tail("linear"))).bias.output


def test_header_only_and_placeholders():
    """Without activation, loss and regularize the text is the header; "{x}" values stay
    str.format placeholders."""
    head = BUILDERS["mlp"](m="{m}")
    assert head.splitlines()[-1] == "output Yhat[n, o] = act(A)[n] * W2[o]"
    assert bmdsl.parse(head.format(m=2) + "activation linear\nloss squared\n"
                       "regularize beta = 1\n").units.value == 2
    assert regularize("0.1", R=None) == "beta = 0.1, C = l2"


def test_tiny():
    model = bmdsl.parse(TINY)
    assert model.name == "tiny" and model.units.value == 5 and model.loss.name == "squared"
