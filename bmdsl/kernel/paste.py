"""The source paster of the emitters: the top-level definitions of bmdsl-free files, only
those a model reaches, each with a one-line docstring and no comment lines.

`Paster(files, facts)` reads the files in order (imports: only `allowed` modules, relative
imports dropped since the names are pasted too). `facts` maps expressions of the pasted
code to values fixed by the model (e.g. {"problem.cone": False}): an `if` or `x if t else
y` on them keeps only the branch taken; `nones` are expressions the model makes None
(written as that literal). A table entry declaring `NEEDS = {fact: value}`
(a class attribute, or for functions a module-level NEEDS = {name: {fact: value}}, never
pasted) that the model's facts contradict is dropped from the tables (tuple, list, set or
dict literals) that list it. `source(roots)` is then the text of every definition reached
from `roots` (names), transitively, in file order, with the imports they use. With
`members=True` a reached class keeps only the methods and class attributes whose names
the reached code uses as attributes (or keywords, or strings), and the dunders: the CVXPY
module pastes a loss class for its `cvxpy` form without its numpy and torch parts. A
class's own look-ups (`self.x`, `cls.x`) keep members of its family only (the classes
joined to it by inheritance), and the selection repeats until nothing more goes (a store
left out may have been all that reached a function and the members it looks up). A
function that only returns a parameter or a literal is inlined at its calls
(pasteinline.py).
"""
import ast

from .prune import Block as _Block, File as _File, is_doc as _is_doc
from .prune import drop_comment_lines as _drop_comment_lines
from .pastemembers import attributes as _attributes, families as _families
from .pasteinline import inline_passes
from .pastemembers import members as _members
from .pastemembers import unread_stores as _unread_stores, without as _without


class PasteError(RuntimeError):
    """A pasted file breaks the rules of emitted code (a bmdsl bug, never the user's)."""


def _names(text):
    """Every identifier the code loads (names, and the heads of attribute chains), except a
    function's own parameters inside it (a parameter named like a module is not a use)."""
    found = set()

    def visit(node, params):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            params = params | {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs} | \
                {x.arg for x in (a.vararg, a.kwarg) if x is not None}
        if isinstance(node, ast.Name) and node.id not in params:
            found.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child, params)
    visit(ast.parse(text), frozenset())
    return found


def _parses(text):
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True


def _constant(text):
    """One line binding a name (not a def or class)."""
    return not text.startswith(("def ", "class ", "@", "async "))


def _bound(node):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _needs(node):
    """The literal NEEDS = {fact: value} of a class, or {}."""
    for stmt in getattr(node, "body", []):
        if isinstance(stmt, ast.Assign) and [getattr(t, "id", "") for t in stmt.targets] == \
                ["NEEDS"]:
            return ast.literal_eval(stmt.value)
    return {}


class Paster:
    def __init__(self, files, facts=None, values=None, allowed=(), skip=(), nones=(), exclude=(),
                 members=False, keyed=None, keep_members=(), drop_members=(), docs="summary",
                 constants=None):
        """files: (label, text) in pasting order; facts: expression text -> its truth value;
        nones: expressions that are None for this model (or a dict: expression -> the
        name it is for this model, e.g. a table lookup -> the entry's name); values:
        fact name -> the model's value (for NEEDS); skip: names never pasted (the emitter
        writes its own, e.g. SPEC); exclude: names the emitter knows this model never uses
        (dropped like a contradicted NEEDS); members: prune the members of reached classes
        that no reached code looks up (module docstring), except `keep_members` (names that
        code outside the module calls, e.g. a torch Module's `forward`) and the members of
        the roots; drop_members: member names that no reached attribute means (an attribute
        `.value` of a cvxpy Problem does not keep a loss's numpy `value`); keyed: name of a
        module-level dict literal -> the keys the model uses; docs: "summary" (docstrings cut
        to their first sentence) or "none" (dropped, but where a body is only that);
        constants: name -> the value of a module-level constant computed at import, written
        as that literal (what only its computation reached goes)."""
        self.members, self.keep_members = members, set(keep_members)
        self.drop_members = set(drop_members)
        self.defs, self.imports, self.other = [], [], []
        parsed = [(label, text, ast.parse(text)) for label, text in files]
        values = values or {}
        needs = {node.name: _needs(node) for _, _, tree in parsed for node in tree.body
                 if isinstance(node, ast.ClassDef)}
        for _, _, tree in parsed:                    # module-level NEEDS = {name: {...}}
            for node in tree.body:
                if _bound(node) == ["NEEDS"] if isinstance(node, ast.Assign) else False:
                    needs.update(ast.literal_eval(node.value))
        excluded = {name for name, need in needs.items()
                    if any(values.get(k, v) != v for k, v in need.items())} | set(exclude)
        self.excluded = excluded
        for label, text, tree in parsed:
            f = _File(label, text, dict(facts or {}), excluded, nones, keyed, docs)
            summary = _File(label, text, dict(facts or {}), excluded, nones, keyed)
            for i, node in enumerate(tree.body):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    self._import(label, text, node)
                elif i == 0 and _is_doc(node):
                    continue                                 # the module docstring
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                       ast.Assign, ast.AnnAssign)):
                    names = _bound(node)
                    if set(names) & (set(skip) | {"NEEDS"}):
                        continue
                    first = node.decorator_list[0].lineno if getattr(
                        node, "decorator_list", None) else node.lineno
                    start, end = f.starts[first - 1], f.starts[node.end_lineno]
                    text_ = _drop_comment_lines(f.render(start, end, _Block([node])))
                    if names[0] in (constants or {}) and isinstance(node, ast.Assign):
                        text_ = f"{names[0]} = {constants[names[0]]!r}   # bmdsl's " \
                            f"{ast.unparse(node.value)}"
                    if docs != "summary" and not _parses(text_):   # the docstring was all
                        text_ = _drop_comment_lines(summary.render(start, end, _Block([node])))
                    self.defs.append((names, text_, _names(text_), label))
                else:
                    raise PasteError(f"{label}: a top-level statement that is not a definition")
        seen = {}
        for names, _, _, label in self.defs:
            for n in names:
                if n in seen:
                    raise PasteError(f"{n} is defined in {seen[n]} and in {label}")
                seen[n] = label
        self.allowed = set(allowed)

    def _import(self, label, text, node):
        if isinstance(node, ast.ImportFrom) and node.level:
            return                                      # pasted names: no import needed
        mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
        self.imports.append((ast.get_source_segment(text, node), mods,
                             {(a.asname or a.name).split(".")[0] for a in node.names}, label))

    def reached(self, roots, defs=None):
        """Names of the definitions reachable from `roots`."""
        where = {n: d for d in (defs or self.defs) for n in d[0]}
        todo, done = [r for r in roots if r in where], set()
        while todo:
            name = todo.pop()
            if name in done:
                continue
            done.add(name)
            todo += [u for u in where[name][2] if u in where and u not in done]
        return done

    def _select_members(self, roots, defs):
        """The definitions with each class cut to the members the reached code looks up:
        grown from the roots, a member joins when a kept part uses its name."""
        where = {n: d for d in defs for n in d[0]}
        cut = {id(d): [m for m in _members(d[1]) if not set(m[0]) & self.keep_members]
               if not set(d[0]) & set(roots) else [] for d in defs}   # roots: whole
        kept, attrs, names, done = set(), set(), [r for r in roots if r in where], set()
        family, own = _families(d[1] for d in defs), {}   # own: family -> its self.x

        def look_ups(d, text):         # a class's self.x keeps members of its family only
            mine = own.setdefault(family[d[0][0]], set()) if d[0][0] in family else None
            attrs.update(_attributes(text, own=mine))
        while True:
            for name in names:
                d = where[name]
                if id(d) in done:
                    continue
                done.add(id(d))
                part = _without(d[1], cut[id(d)]) if cut[id(d)] else d[1]
                look_ups(d, part)
                names += [u for u in _names(part) if u in where]
            grow = [(d, m) for d in defs if id(d) in done for m in cut[id(d)]
                    if (id(d), m) not in kept and set(m[0]) & (
                        (attrs | own.get(family.get(d[0][0]), set())) - self.drop_members)]
            if not grow:
                break
            for d, m in grow:
                kept.add((id(d), m))
                lines = d[1].splitlines(keepends=True)[m[1]:m[2]]
                indent = len(lines[0]) - len(lines[0].lstrip())
                body = "".join(ln[indent:] if ln.strip() else ln for ln in lines)
                look_ups(d, body)
                names += [u for u in _names(body) if u in where]
        out = []
        for d in defs:
            drop = [m for m in cut[id(d)] if (id(d), m) not in kept]
            text = _without(d[1], drop) if drop else d[1]
            out.append((d[0], text, _names(text) if drop else d[2], d[3]))
        return self._without_unread(out, roots)

    def _without_unread(self, defs, roots):
        """A reached class's `__init__` without its stores `self.x = ...` of attributes no
        reached code looks up (and so without what only those stores reach)."""
        reached = self.reached(roots, defs)
        family, read, own = _families(d[1] for d in defs), set(), {}
        for d in defs:
            if set(d[0]) & reached:
                mine = own.setdefault(family[d[0][0]], set()) if d[0][0] in family else None
                read |= _attributes(d[1], stores=False, own=mine)
        out = []
        for d in defs:
            gone = [] if set(d[0]) & set(roots) or not set(d[0]) & reached else \
                _unread_stores(d[1], read | own.get(family.get(d[0][0]), set()))
            text = _without(d[1], gone) if gone else d[1]
            out.append((d[0], text, _names(text) if gone else d[2], d[3]))
        return out

    def source(self, roots, extra_names=(), gap=2):
        """(import lines, definitions text) of what `roots` reach, `gap` blank lines apart."""
        defs = inline_passes(self.defs, _names, roots)
        while self.members:      # again until nothing goes: a dropped store may be all
            cut = self._select_members(roots, defs)   # that reached a member's user
            if [d[1] for d in cut] == [d[1] for d in defs]:
                break
            defs = cut
        reached = self.reached(roots, defs)
        kept = [(text, label) for names, text, _, label in defs if set(names) & reached]
        parts = []               # consecutive one-line constants of one file stay together
        for i, (text, label) in enumerate(kept):
            if parts and "\n" not in text and _constant(text) and kept[i - 1][1] == label \
                    and "\n" not in kept[i - 1][0] and _constant(kept[i - 1][0]):
                parts[-1] += "\n" + text
            else:
                parts.append(text)
        used = set(extra_names).union(*(d[2] for d in defs if set(d[0]) & reached))
        imports = []
        for line, mods, bound, label in self.imports:
            if bound & used and line not in imports:
                if not all(m.split(".")[0] in self.allowed for m in mods):
                    raise PasteError(f"{label} imports {mods}: not allowed in emitted code")
                imports.append(line)
        # a function's own `import torch` (the kernel imports torch lazily) where the module
        # imports it at the top
        parts = ["\n".join(ln for ln in part.split("\n") if not (
            ln.startswith(" ") and ln.strip() in imports)) for part in parts]
        return imports, ("\n" * (gap + 1)).join(parts)


def import_block(lines) -> str:
    """Import lines: the standard library first, then numpy, torch and cvxpy (as isort)."""
    third = ("numpy", "torch", "cvxpy")
    std = sorted(ln for ln in lines if ln.split()[1].split(".")[0] not in third)
    other = sorted(ln for ln in lines if ln.split()[1].split(".")[0] in third)
    return "\n".join(std + ([""] if std and other else []) + other)
