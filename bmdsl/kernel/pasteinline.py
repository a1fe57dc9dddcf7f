"""The paster's inlining of pass-through functions: a reached function that, with the model's
facts applied, only returns one of its parameters or a literal (`derived(spec, arrays)` of a
model without patches, pools or a hidden bias returns `arrays`) is written at its calls as
that argument or literal, and goes; an assignment `x = x` left by it goes too
(kernel/paste.py, `Paster.source`)."""
import ast


def _passes(text):
    """(name, what) if `text` is a function whose body is `return PARAM` (what: the
    parameter's position) or `return LITERAL` (what: its source), else None."""
    node = ast.parse(text).body[0]
    if not isinstance(node, ast.FunctionDef) or node.decorator_list or len(node.body) != 1 \
            or not isinstance(node.body[0], ast.Return) or node.body[0].value is None:
        return None
    value, params = node.body[0].value, [a.arg for a in node.args.args]
    if isinstance(value, ast.Name) and value.id in params and not node.args.vararg:
        return node.name, params.index(value.id)
    literal = isinstance(value, ast.Constant) or (
        isinstance(value, (ast.Dict, ast.List, ast.Tuple)) and not ast.unparse(value)[1:-1])
    return (node.name, ast.unparse(value)) if literal else None


def _plain(arg):
    """An argument whose evaluation has no effect (dropping it changes nothing)."""
    return all(isinstance(n, (ast.Name, ast.Constant, ast.Attribute, ast.Load, ast.Subscript))
               for n in ast.walk(arg))


def _rewrite(text, passes):
    """`text` with the calls of `passes` ({name: what}) replaced, and `x = x` dropped."""
    tree, lines = ast.parse(text), text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line.encode()))
    raw = text.encode()
    at = lambda line, col: starts[line - 1] + col                       # noqa: E731
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in passes and not node.keywords and \
                not any(isinstance(a, ast.Starred) for a in node.args):
            what = passes[node.func.id]
            if isinstance(what, int) and what < len(node.args) and \
                    all(_plain(a) for i, a in enumerate(node.args) if i != what):
                arg = node.args[what]
                new = raw[at(arg.lineno, arg.col_offset):at(arg.end_lineno,
                                                             arg.end_col_offset)].decode()
            elif isinstance(what, str) and all(_plain(a) for a in node.args):
                new = what
            else:
                continue
            edits.append((at(node.lineno, node.col_offset),
                          at(node.end_lineno, node.end_col_offset), new))
    inner = [e for e in edits if not any(o[0] <= e[0] and e[1] <= o[1] and o != e
                                         for o in edits)]       # outermost calls only
    for a, b, new in sorted(inner, reverse=True):
        raw = raw[:a] + new.encode() + raw[b:]
    text = raw.decode()
    same = [n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Assign) and
            len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) and
            isinstance(n.value, ast.Name) and n.targets[0].id == n.value.id]
    gone = {i for n in same for i in range(n.lineno - 1, n.end_lineno)}
    return "".join(ln for i, ln in enumerate(text.splitlines(keepends=True)) if i not in gone)


def inline_passes(defs, names, keep=()):
    """`defs` ((names, text, used names, label) in order) with pass-through functions
    inlined at their calls, until none is left (inlining may make another one); names:
    text -> the names it uses (the paster's rule); keep: never inlined (the roots)."""
    while True:
        passes = dict(p for d in defs if not set(d[0]) & set(keep)
                      for p in [_passes(d[1])] if p is not None)
        called = {n for d in defs for n in d[2]} & set(passes)
        if not called:
            return defs
        out = []
        for d in defs:
            if set(d[2]) & called and not set(d[0]) & called:
                text = _rewrite(d[1], {n: passes[n] for n in called})
                d = (d[0], text, d[2] if text == d[1] else names(text), d[3])
            out.append(d)
        if [d[1] for d in out] == [d[1] for d in defs]:
            return defs
        defs = out

