"""The emitters' source paster (bmdsl/kernel/paste.py): only what the roots reach, the
branch the model's facts take, the members the reached code looks up, pass-through
functions inlined."""
from bmdsl.kernel.paste import Paster


def test_paster_keeps_only_the_members_the_reached_code_looks_up():
    text = '''
class Base:
    name = ""

    def __init__(self, x=1.0):
        self.x = x

    def unused(self):
        return helper()


class Loss(Base):
    name = "loss"
    flag = True

    def form(self, e):
        return self.scale(e) * self.x

    def scale(self, e):
        return 2 * e

    def other(self, e):
        return self.unused()


def helper():
    return 0


def run(e):
    return Loss().form(e)
'''
    body = Paster([("t.py", text)], members=True).source(["run"])[1]
    assert "def other" not in body and "def unused" not in body and "flag" not in body
    assert "def helper" not in body            # reached only from a member that went
    assert "def scale" in body and "__init__" in body and 'name = "loss"' not in body
    ns = {}
    exec(compile(body, "t.py", "exec"), ns)                # noqa: S102 (our own text)
    assert ns["run"](3.0) == 6.0


def test_paster_names_entries_drops_docstrings_and_members_on_request():
    text = '''
TABLE = {"a": 1}


class Error(ValueError):
    """Only a docstring: it stays."""


class Form:
    def value(self):
        return 0

    def form(self):
        return 2


FORM = Form()


def run(problem):
    """Run it."""
    for x in problem.items:
        return x
    return problem.value + TABLE[problem.key].form()
'''
    paster = Paster([("t.py", text)], {"problem.items": False}, members=True, docs="none",
                    nones={"TABLE[problem.key]": "FORM"}, drop_members=("value",))
    body = paster.source(["run", "Error"], gap=1)[1]
    assert "TABLE" not in body and "FORM.form()" in body        # the entry by its name
    assert '"""Run it."""' not in body and "Only a docstring" in body
    assert "def value" not in body and "def form" in body       # .value was the problem's
    assert "\n\n\n" not in body and "\n\n" in body                 # one blank line apart
    ns = {}
    exec(compile(body, "t.py", "exec"), ns)                # noqa: S102 (our own text)
    assert ns["run"](type("P", (), {"items": (), "value": 1})) == 3


def test_paster_keeps_only_what_the_roots_reach_and_the_branch_taken():
    text = '''"""Module docstring: a diary."""
import numpy as np


class Cone:
    """Only for cones.

    A long narrative."""
    NEEDS = {"cone": True}


class Plain:
    pass


TABLE = (Cone, Plain)


def run(problem):
    """Run it. More."""
    # why: a comment line
    if problem.cone:
        return Cone()
    return helper() if not problem.cone else np.zeros(1)


def helper():
    return TABLE


def unused():
    return np.ones(1)
'''
    paster = Paster([("t.py", text)], {"problem.cone": False}, {"cone": False}, {"numpy"})
    imports, body = paster.source(["run"])
    assert imports == []                                   # numpy was only in dropped code
    assert "class Cone" not in body and "TABLE = (Plain,)" in body
    assert "unused" not in body and "diary" not in body and "comment" not in body
    # the branch taken; a call is a primary: no parentheses around it
    assert '"""Run it."""' in body and "    return helper()\n" in body
    compile(body, "t.py", "exec")
    ns = {}
    exec(compile(body, "t.py", "exec"), ns)                # noqa: S102 (our own text)
    assert ns["run"](type("P", (), {"cone": False})) == (ns["Plain"],)


def test_paster_inlines_pass_through_functions():
    text = '''
def same(spec, x):
    return x


def nothing(spec):
    return {}


def through(spec, x):
    return same(spec, x)


def run(spec, x):
    x = through(spec, x)
    return nothing(spec), x + 1, same(spec, x * 2)
'''
    body = Paster([("t.py", text)]).source(["run"])[1]
    assert "def same" not in body and "def nothing" not in body and "def through" not in body
    assert "x = x" not in body and "return {}, x + 1, x * 2" in body
    ns = {}
    exec(compile(body, "t.py", "exec"), ns)                # noqa: S102 (our own text)
    assert ns["run"](None, 3) == ({}, 4, 6)


def test_paster_writes_constants_computed_at_import_as_their_values():
    """A constant computed at import (`constants`) is its value; what only its computation
    reached (the function, the constants it read) goes, and a table look-up the model
    fixes (`nones` as a dict) is the entry's name, so the table goes too."""
    text = '''
SECONDS = 10.0


def largest(seconds=SECONDS):
    return int(seconds ** 2)


LIMIT = largest()
TABLE = {"a": int}


def run(name, n):
    return TABLE[name](n) <= LIMIT
'''
    body = Paster([("t.py", text)], constants={"LIMIT": 100},
                  nones={"TABLE[name]": "int"}).source(["run"])[1]
    assert "LIMIT = 100   # bmdsl's largest()" in body and "return int(n) <= LIMIT" in body
    assert "def largest" not in body and "SECONDS" not in body and "TABLE" not in body
    ns = {}
    exec(compile(body, "t.py", "exec"), ns)                # noqa: S102 (our own text)
    assert ns["run"]("a", 100) and not ns["run"]("a", 101)


def test_paster_scopes_self_attributes_to_the_class_family():
    """`self.b` in one class keeps no member `b` of an unrelated class; a base's member read
    on `self` in a subclass stays; a store that nothing reads goes with what only it
    reaches, and then the members only that reached (again until nothing goes)."""
    text = '''
class Stats:
    @property
    def b(self):
        return 1

    def special(self):
        return 2

    def total(self):
        return 3


class Base:
    step = 2


def helper():
    return Stats().special()


class Solver(Base):
    def __init__(self, stats):
        self.b = stats.total()
        self.unread = helper()

    def run(self):
        return self.b + self.step


def main():
    return Solver(Stats()).run()
'''
    body = Paster([("t.py", text)], members=True).source(["main"])[1]
    assert "def b" not in body and "def special" not in body and "def helper" not in body
    assert "def total" in body and "step = 2" in body and "self.unread" not in body
    ns = {}
    exec(compile(body, "t.py", "exec"), ns)                # noqa: S102 (our own text)
    assert ns["main"]() == 5


def test_paster_writes_facts_inside_boolean_expressions_and_comparisons():
    """A fact's call used as a value is its literal, an and/or loses the operands the
    facts make neutral (parentheses stay balanced) or, where every operand is a truth
    value, is the literal one decides, `x == fact` is x or its negation."""
    text = '''
def gated(spec):
    return spec["g"]


def check(spec, gates, fast, small):
    if (gates is None) == gated(spec):
        raise ValueError("gates")
    if small and (gated(spec) or fast) and (not gated(spec) and fast or small):
        return "small"
    return gated(spec) and fast                 # (fast: any value, not only a bool)
'''
    for value in (True, False):
        body = Paster([("t.py", text)], facts={"gated(spec)": value}).source(["check"])[1]
        assert "def gated" not in body and "gated(" not in body
        ns = {}
        exec(compile(body, "t.py", "exec"), ns)            # noqa: S102 (our own text)
        check = ns["check"]
        for fast in (True, False):
            for small in (True, False):
                want = "small" if small and (value or fast) and (
                    not value and fast or small) else value and fast
                assert check({}, None if not value else 1, fast, small) == want
        if value:       # the first or decided, the and in the second one dropped
            assert "if gates is None:" in body and "return fast" in body
            assert "if small and (small):" in body
        else:
            assert "if gates is not None:" in body and "return False and fast" in body
            assert "if small and (fast) and (fast or small):" in body
