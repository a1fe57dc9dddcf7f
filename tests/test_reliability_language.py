"""The language front end never throws a traceback: every limit of docs/language.md
("Limits") is checked at its span with a BmdslError, on both sides of the bound, and the CLI
turns anything else into a short internal error (exit 70)."""
from __future__ import annotations

from pathlib import Path

import pytest

import bmdsl
from bmdsl.core import limits
from bmdsl.cli import main
from bmdsl.core.errors import BmdslError, BmdslSyntaxError, SemanticError

ROOT = Path(__file__).resolve().parent.parent
MLP = (ROOT / "models" / "mlp.bm").read_text()
LAYER = "layer   A[n] = X[n, i] * W1[i]"


def position(text: str, needle: str) -> tuple[int, int]:
    """(line, column) of the value after `needle`'s '= ' (or of `needle` without one)."""
    at = text.index(needle) + (needle.index("= ") + 2 if "= " in needle else 0)
    return text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)


def layer(rhs: str) -> str:
    return MLP.replace(LAYER, "layer   A[n] = " + rhs)


def rejects(text: str, cls=BmdslError, *fragments: str, where=None) -> BmdslError:
    with pytest.raises(cls) as info:
        bmdsl.parse(text, path="case.bm")
    err = info.value
    rendered = err.render()
    for fragment in fragments:
        assert fragment in err.message, rendered
    if where is not None:
        assert (err.line, err.column) == where, rendered
    assert len(rendered) < 2000 and "Traceback" not in rendered
    return err


# -- depth and length: once RecursionError at 489 unary minuses or 490 terms -----------------
@pytest.mark.parametrize("depth", [489, 3000])
def test_deep_unary_minus_parses(depth):
    model = bmdsl.parse(layer("-" * depth + "X[n, i] * W1[i]"))
    assert [t.coef for t in model.layer.terms] == [(-1.0) ** depth]


def test_512_terms_parse_and_513_are_refused():
    model = bmdsl.parse(layer(" + ".join(["X[n, i] * W1[i]"] * 512)))
    assert len(model.layer.terms) == 512
    rejects(layer(" + ".join(["X[n, i] * W1[i]"] * 513)), SemanticError, "512 terms",
            where=(8, 16))


def test_deep_parentheses_parse():
    model = bmdsl.parse(layer("(" * 2000 + "X[n, i] * W1[i]" + ")" * 2000))
    assert len(model.layer.terms) == 1


# -- numbers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("edit", [
    ("m = 5", "m = " + "9" * 4400),                             # units
    ("seed = 0", "seed = " + "1" * 5000),                        # a SIGNED_NUMBER: range
    (LAYER, "layer   A[n] = (X[n, i] * W1[i])^" + "7" * 4400),   # exponent
])
def test_huge_integers_are_clear_errors(edit):
    err = rejects(MLP.replace(*edit))
    assert len(err.message) < 300


def test_whole_number_digit_limit_names_the_token():
    err = rejects(MLP.replace("m = 5", "m = " + "9" * 19), BmdslSyntaxError, "19 digits",
                  "at most 18", where=(6, 13))
    assert err.span.end_column - err.span.column == 19


@pytest.mark.parametrize("rhs, fragment, col", [
    ("2^100000 * X[n, i] * W1[i]", "too large for a float", 16),
    ("2^1024 * X[n, i] * W1[i]", "too large for a float", 16),   # math.pow raises here
    ("(-10)^309 * X[n, i] * W1[i]", "too large for a float", 16),
    ("0.5^10000 * X[n, i] * W1[i]", "too small for a float", 16),
    ("X[n, i] * 1e-200^2 * W1[i]", "too small for a float", 26),
    ("X[n, i] * (1e308 + 1e308) * W1[i]", "too large for a float", 27),
    ("1e-200 * X[n, i] * 1e-200 * W1[i]", "the coefficient", 16),
    ("5e-324 * X[n, i] * W1[i]", "too small for a float", 16),
])
def test_coefficients_outside_float64_are_refused_at_their_span(rhs, fragment, col):
    rejects(layer(rhs), SemanticError, fragment, where=(8, col))


def test_literal_that_rounds_to_zero_is_a_syntax_error():
    rejects(MLP.replace("beta = 1e-3", "beta = 1e-400"), BmdslSyntaxError, "round to 0",
            where=(12, 19))


def test_cancellation_is_not_underflow():
    model = bmdsl.parse(layer("X[n, i] * W1[i] + (2 - 2) * X[n, i] * W1[i] + 0.5^3 * X[n, j] * "
                              "W1[j]"))
    assert sorted(t.coef for t in model.layer.terms) == [0.125, 1.0]


# -- numeric parameters: both sides of every range ------------------------------------------
R = limits.RANGES


@pytest.mark.parametrize("old, template, name", [
    ("beta = 1e-3", "beta = {}", "beta"),
    ("m = 5", "m = {}", "units"),
    ("patterns = 100", "patterns = {}", "patterns"),
    ("seed = 0", "seed = {}", "seed"),
])
def test_parameter_ranges(old, template, name):
    rng = R[name]
    for ok in (rng.low, rng.high):
        bmdsl.parse(MLP.replace(old, template.format(ok if isinstance(ok, int) else repr(ok))))
    below = rng.low / 10 if isinstance(rng.low, float) else rng.low - 1
    above = rng.high * 10 if isinstance(rng.high, float) else rng.high + 1
    for bad in (below, above):
        err = rejects(MLP.replace(old, template.format(bad)), SemanticError)
        shown = [f"{x:g}".replace("e+", "e") if isinstance(x, float) else str(x)
                 for x in (rng.low, rng.high)]
        assert all(x in err.render() for x in shown), err.render()


@pytest.mark.parametrize("beta", ["1e300", "1e-300", "5e-324"])
def test_the_probe_betas_are_refused(beta):
    rejects(MLP.replace("beta = 1e-3", f"beta = {beta}"), SemanticError, "1e-12 <= beta <= 1e12",
            where=(12, 19))


CNN = (ROOT / "models" / "cnn.bm").read_text()


@pytest.mark.parametrize("old", ["kernel = 3", "stride = 1", "padding = 1"])
def test_patch_parameters_have_ranges(old):
    key = old.split()[0]
    assert old in CNN
    bmdsl.parse(CNN.replace(old, f"{key} = 10000"))  # accepted by the language (not by memory)
    rejects(CNN.replace(old, f"{key} = 10001"), SemanticError, f"<= {key} <= 10000",
            where=position(CNN, old))


def test_window_and_size_ranges():
    assert "average(2x2)" in CNN
    rejects(CNN.replace("average(2x2)", "average(10001x2)"), SemanticError, "'window'")
    sized = MLP.replace("input   X[n, d]", "size d = {}\ninput   X[n, d]")
    bmdsl.parse(sized.format(10 ** 9))
    rejects(sized.format(10 ** 9 + 1), SemanticError, "too large")


def test_variants_share_the_ranges():
    model = bmdsl.parse(MLP)
    with pytest.raises(SemanticError, match="seed"):
        model.with_activation("relu", seed=2 ** 32)
    with pytest.raises(SemanticError, match="units"):
        model.with_units(10 ** 6 + 1)
    assert model.with_activation("relu", 10 ** 6, 2 ** 32 - 1).activation.seed == 2 ** 32 - 1


# -- many axes: check refuses what einsum cannot run ------------------------------------------
def wide(k: int) -> str:
    ds, idx = ", ".join(f"d{i}" for i in range(k)), ", ".join(f"i{i}" for i in range(k))
    return (f"model wide\ninput X[n, {ds}]\ntarget Y[n, c]\nunits m = 2\nweights W1[{ds}], W2[c]\n"
            f"layer A[n] = X[n, {idx}] * W1[{idx}]\noutput Yhat[n, o] = act(A)[n] * W2[o]\n"
            f"activation gated_relu(patterns = 2)\nloss squared\nregularize beta = 0.1\n")


def test_einsum_index_budget():
    bmdsl.parse(wide(46))  # its lifted network has 48 indices: solved and trained in review
    rejects(wide(47), SemanticError, "49 distinct indices", "at most 48", where=(7, 1))
    rejects(wide(59), SemanticError, "the layer equation needs 60", where=(6, 1))


# -- text: size, tokens, encoding, excerpts -------------------------------------------------
def test_text_size_and_token_limits():
    rejects(MLP + "#" * limits.MAX_TEXT_BYTES, BmdslSyntaxError, "at most 1.0 MB")
    bmdsl.parse(MLP + "#" * (limits.MAX_TEXT_BYTES - len(MLP) - 1))  # comments are free
    err = rejects(MLP + "\nsize " + ", ".join(f"s{i}" for i in range(11000)), BmdslSyntaxError,
                  "more than 20000 tokens")
    assert err.line == 14


def test_long_lines_are_quoted_in_a_bounded_excerpt():
    err = rejects(MLP.replace("model mlp", "model " + "a" * 300_000 + " $"), BmdslSyntaxError,
                  "unexpected character '$'")
    rendered = err.render()
    source_line, caret = rendered.splitlines()[1:3]
    assert len(source_line) <= limits.MAX_EXCERPT + 10
    assert source_line[caret.index("^")] == "$"
    err = rejects(MLP.replace("beta = 1e-3", "beta = 1e-3 " + "9" * 500_000 + "x"))
    assert len(err.render()) < 1500


def test_files_too_large_binary_or_not_utf8(tmp_path):
    big = tmp_path / "big.bm"
    big.write_bytes(b"#" * (limits.MAX_TEXT_BYTES + 10))
    with pytest.raises(BmdslSyntaxError, match="at most 1.0 MB"):
        bmdsl.load(big)
    latin = tmp_path / "latin.bm"
    latin.write_bytes(MLP.replace("# n samples", "# n \xe9chantillons").encode("latin-1"))
    with pytest.raises(BmdslSyntaxError, match="not UTF-8 text: byte 0xe9") as info:
        bmdsl.load(latin)
    assert (info.value.line, info.value.column) == position(MLP, "samples")
    nul = tmp_path / "nul.bm"
    nul.write_bytes(b"model x\ninput X[n]\x00\xff")
    with pytest.raises(BmdslSyntaxError, match="NUL") as info:
        bmdsl.load(nul)
    assert (info.value.line, info.value.column) == (2, 11)
    bom = tmp_path / "bom.bm"
    bom.write_bytes(b"\xef\xbb\xbf" + MLP.replace("\n", "\r\n").encode())
    assert bmdsl.load(bom).name == "mlp"


def test_nul_in_text_is_located():
    text = MLP.replace("loss       squared", "loss \x00 squared")
    rejects(text, BmdslSyntaxError, "NUL", where=position(text, "\x00"))


def test_unprintable_characters_render():
    err = rejects(MLP.replace("squared", "squared \udcff"), BmdslSyntaxError)
    err.render().encode("utf-8")  # a lone surrogate would make printing fail


# -- the CLI's last line of defence ---------------------------------------------------------
def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_unexpected_exceptions_are_internal_errors(capsys, monkeypatch):
    def broken(path, **kw):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr("bmdsl.commands.registry.load", broken)
    monkeypatch.delenv("BMDSL_DEBUG", raising=False)
    code, out, err = run_cli(capsys, "check", "models/mlp.bm")
    assert code == 70 and "Traceback" not in err
    assert err.startswith("bmdsl: internal error: ZeroDivisionError: a bug")
    assert "BMDSL_DEBUG=1" in err and len(err.splitlines()) == 2
    monkeypatch.setenv("BMDSL_DEBUG", "1")
    code, _, err = run_cli(capsys, "check", "models/mlp.bm")
    assert code == 70 and "Traceback" in err and "ZeroDivisionError" in err


def test_interrupt_keeps_its_exit_code(capsys, monkeypatch):
    def interrupted(path, **kw):
        raise KeyboardInterrupt
    monkeypatch.setattr("bmdsl.commands.registry.load", interrupted)
    assert run_cli(capsys, "check", "models/mlp.bm")[0] == 130


def test_cli_check_refuses_a_wide_model(tmp_path, capsys):
    path = tmp_path / "wide.bm"
    path.write_text(wide(59))
    code, out, err = run_cli(capsys, "check", str(path))
    assert code == 1 and out == "" and f"{path}:6:1: semantic error" in err
