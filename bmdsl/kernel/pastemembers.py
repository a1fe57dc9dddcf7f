"""The paster's member selection: a reached class keeps only the methods and class
attributes that the reached code may look up (kernel/paste.py, `members=True`)."""
import ast


def _keys(tree):
    """The string constants that are a subscript's key (`spec["adjoint"]`: no attribute)."""
    return {id(n.slice) for n in ast.walk(tree) if isinstance(n, ast.Subscript)
            and isinstance(n.slice, ast.Constant)}


def attributes(text, stores=True, own=None):
    """Names the code may look up on an object: attributes, keywords, identifier strings
    (but a subscript's key); stores=False: not the attributes only assigned (`self.x = ...`
    is no look-up); own: a set that takes the attributes of `self` and `cls` instead (the
    class's own: they keep members of its family only, `families`)."""
    tree = ast.parse(text)
    skip = _keys(tree) | ({id(e) for node in ast.walk(tree) if isinstance(node, ast.Assign)
                           for t in node.targets for e in [t] + getattr(t, "elts", [])}
                          if not stores else set())
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Attribute):
            mine = own is not None and isinstance(node.value, ast.Name) and \
                node.value.id in ("self", "cls")
            (own if mine else found).add(node.attr)
        elif isinstance(node, ast.keyword) and node.arg:
            found.add(node.arg)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                node.value.isidentifier():
            found.add(node.value)
    return found


def _member_names(stmt):
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [stmt.name]
    if isinstance(stmt, ast.Assign):
        return [n.id for t in stmt.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return []                    # fields (annotated), docstrings, nested classes: kept


def members(text):
    """(names, first line, end line) of the prunable members of the class in `text` (dunder
    methods are never pruned); [] for anything else."""
    cls = ast.parse(text).body[0]
    if not isinstance(cls, ast.ClassDef):
        return []
    out = []
    for stmt in cls.body:
        names = _member_names(stmt)
        if names and not any(n.startswith("__") and n.endswith("__") for n in names):
            first = stmt.decorator_list[0].lineno if getattr(stmt, "decorator_list", None) \
                else stmt.lineno
            out.append((tuple(names), first - 1, stmt.end_lineno))
    return out


def without(text, dropped):
    """`text` without the member line ranges `dropped` (a `pass` if the body empties)."""
    lines = text.splitlines(keepends=True)
    gone = {i for _, a, b in dropped for i in range(a, b)}
    kept = [ln for i, ln in enumerate(lines) if i not in gone]
    cls = ast.parse(text).body[0]
    if len(dropped) == len(cls.body):
        kept.insert(min(a for _, a, _ in dropped), " " * cls.body[0].col_offset + "pass\n")
    out = []       # one blank line between the members left, none after the class line
    for ln in kept:
        if not ln.strip() and (not out or not out[-1].strip() or len(out) == 1):
            continue
        out.append(ln)
    while out and not out[-1].strip():
        out.pop()
    return "".join(out).rstrip("\n")


def _self_stores(stmt):
    """The attributes x of `self.x = ...` (or `self.x, self.y = ...`), else None."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
        return None
    target = stmt.targets[0]
    parts = target.elts if isinstance(target, ast.Tuple) else [target]
    if all(isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and
           t.value.id == "self" for t in parts):
        return [t.attr for t in parts]
    return None


def unread_stores(text, read):
    """Line ranges of the statements `self.x = ...` (`self.x, self.y = ...`) in the
    `__init__` of the class in `text` whose attributes are none in `read` (nothing looks
    them up: the store goes)."""
    cls = ast.parse(text).body[0]
    init = [s for s in getattr(cls, "body", []) if isinstance(s, ast.FunctionDef)
            and s.name == "__init__"]
    return [(("",), s.lineno - 1, s.end_lineno) for s in (init[0].body if init else [])
            if _self_stores(s) is not None and not set(_self_stores(s)) & set(read)]


def families(texts):
    """Class name -> its family's name, for the classes among `texts` (top-level
    definitions): classes joined by inheritance share one family (what `self` may be)."""
    root, bases = {}, {}
    for text in texts:
        node = ast.parse(text).body[0]
        if isinstance(node, ast.ClassDef):
            root[node.name] = node.name
            bases[node.name] = [b.id for b in node.bases if isinstance(b, ast.Name)]

    def find(name):
        while root[name] != name:
            name = root[name]
        return name
    for name, parents in bases.items():
        for parent in parents:
            if parent in root:
                root[find(name)] = find(parent)
    return {name: find(name) for name in root}
