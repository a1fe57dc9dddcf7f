"""One pasted file with the model's facts applied: an `if` or `x if t else y` on a fact
keeps only the branch taken (a fact's call elsewhere is its literal, an `and`/`or` loses the
operands the facts make neutral, `x == fact` is x or not x), a `for` over a sequence the
model leaves empty goes, code after an always-taken `return` goes, expressions the model
makes None are written as that literal, table entries the model never uses are dropped
(by name, or by key in a keyed table), and docstrings are cut to their first sentence
(paste.py reads files through this)."""
import ast
import io
import tokenize


def _offsets(text):
    starts, pos = [], 0
    for line in text.splitlines(keepends=True):
        starts.append(pos)
        pos += len(line.encode())
    return starts + [pos]


def _summary(doc, docs="summary"):
    """The first sentence of a docstring, on one line; None if `docs` is "none"."""
    para = " ".join(doc.strip().split("\n\n")[0].split())
    # a sentence ends at ". " before a capital (not at "eq. (14)" or "et al. 2024")
    ends = [i for i in range(len(para) - 2) if para[i:i + 2] == ". " and para[i + 2].isupper()]
    line = para[:ends[0] + 1] if ends else para
    if docs == "none":
        return None
    return line if len(line) <= 90 else line[:87].rsplit(" ", 1)[0] + " ..."


def is_doc(stmt):
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and \
        isinstance(stmt.value.value, str)


def drop_comment_lines(text):
    lines = text.splitlines()
    drop = set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT and not lines[tok.start[0] - 1][:tok.start[1]].strip():
            drop.add(tok.start[0] - 1)
    return "\n".join(ln for i, ln in enumerate(lines) if i not in drop)


class File:
    """One file's text with byte offsets, and the rewriting of one node's source."""

    def __init__(self, label, text, facts, excluded, nones=(), keyed=None, docs="summary"):
        """keyed: name of a module-level dict literal -> the keys this model uses; docs:
        which docstrings stay, cut to their first sentence (_summary; a body that is only
        its docstring keeps it)."""
        self.label, self.text, self.facts, self.excluded = label, text, facts, excluded
        self.docs = docs
        # nones: expressions the model makes None, or {expression: the name it is}
        self.nones = dict(nones) if isinstance(nones, dict) else dict.fromkeys(nones, "None")
        self.keyed = dict(keyed or {})
        self.raw = text.encode()
        self.starts = _offsets(text)

    def pos(self, line, col):
        return self.starts[line - 1] + col

    def span(self, node):
        return self.pos(node.lineno, node.col_offset), self.pos(node.end_lineno, node.end_col_offset)

    def known(self, test):
        """The model's value of an `if` test, or None when it depends on the data."""
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            value = self.known(test.operand)
            return None if value is None else not value
        if isinstance(test, ast.BoolOp):
            values = [self.known(v) for v in test.values]
            stop = isinstance(test.op, ast.Or)      # the value that decides an or / an and
            if stop in values:
                return stop
            return None if None in values else not stop
        text = ast.unparse(test)
        return bool(self.facts[text]) if text in self.facts else None

    def render(self, start, end, node):
        """Bytes start..end of the file with the rewrites of the nodes inside `node`."""
        out, at = [], start
        for a, b, text in sorted(self.edits(node)):
            if a < start or b > end:
                continue
            out += [self.raw[at:a].decode(), text]
            at = b
        return "".join(out) + self.raw[at:end].decode()

    def block(self, stmts, indent):
        """Full lines of `stmts`, rewritten and re-indented to column `indent`."""
        if not stmts:
            return ""
        start = self.starts[stmts[0].lineno - 1]
        end = self.starts[stmts[-1].end_lineno]
        text = self.render(start, end, Block(stmts))
        shift = stmts[0].col_offset - indent
        return "".join(ln[shift:] if ln.strip() else ln for ln in text.splitlines(True))

    def edits(self, node):
        """Non-overlapping (start, end, text) rewrites inside `node`."""
        out = []
        bodies = [getattr(node, f) for f in ("body", "orelse", "finalbody")
                  if isinstance(getattr(node, f, None), list)]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and \
                node.body and is_doc(node.body[0]):
            doc = node.body[0]
            a, b = self.span(doc)
            line = _summary(doc.value.value, self.docs if len(node.body) > 1 else "summary")
            plain = line is not None and '"' not in line and "\\" not in line
            if line is None:
                out.append((self.starts[doc.lineno - 1], self.starts[doc.end_lineno], ""))
            else:
                out.append((a, b, f'"""{line}"""' if plain else repr(line)))
        dead = set()        # statements after an `if` the model always takes that returns
        for body in bodies:
            for i, stmt in enumerate(body):
                if isinstance(stmt, ast.If) and self.known(stmt.test) is not None:
                    taken = stmt.body if self.known(stmt.test) else stmt.orelse
                    if taken and isinstance(taken[-1], (ast.Return, ast.Raise)):
                        dead.update(map(id, body[i + 1:]))
                        break
        for child in ast.iter_child_nodes(node):
            if id(child) in dead or (isinstance(child, ast.For) and not child.orelse and
                                     self.known(child.iter) is False):
                out.append((self.starts[child.lineno - 1], self.starts[child.end_lineno], ""))
            elif self._keyed(child):
                a, b = self.span(child.value)
                out.append((a, b, self._with_keys(child.value, self.keyed[child.targets[0].id])))
            elif isinstance(child, ast.If) and self.known(child.test) is not None:
                chosen = child.body if self.known(child.test) else child.orelse
                a = self.starts[child.lineno - 1]
                b = self.starts[child.end_lineno]
                text = self.block(chosen, child.col_offset)
                if text.lstrip().startswith("elif"):         # the `elif` becomes an `if`
                    text = text.replace("elif", "if", 1)
                siblings = next((b for b in bodies if child in b), [])
                if not text and len(siblings) == 1:
                    text = " " * child.col_offset + "pass\n"
                out.append((a, b, text))
            elif isinstance(child, ast.IfExp) and self.known(child.test) is not None:
                chosen = child.body if self.known(child.test) else child.orelse
                a, b = self.span(child)
                text = self.render(*self.span(chosen), chosen)
                atom = isinstance(chosen, (ast.Name, ast.Constant, ast.Attribute, ast.Call,
                                           ast.Subscript))     # (primaries: no parentheses)
                out.append((a, b, text if atom else "(" + text + ")"))
            elif self._boolean(child) and self.known(child) is not None:
                a, b = self.span(child)          # a fact's call, or decided by one: a literal
                out.append((a, b, repr(self.known(child))))
            elif isinstance(child, ast.BoolOp) and self.known(child) is None and \
                    any(self.known(v) is not None for v in child.values):
                out += self._bool_edits(child)
            elif self._fact_compared(child):     # `x == fact`: x, or not x
                (side,) = [v for v in (child.left, child.comparators[0]) if self.known(v) is None]
                a, b = self.span(child)
                same = isinstance(child.ops[0], ast.Eq) == any(
                    self.known(v) for v in (child.left, child.comparators[0]))
                text = self.render(*self.span(side), side)
                flip = {"is None": "is not None", "is not None": "is None"}
                tail = next((t for t in flip if text.endswith(" " + t)), None)
                out.append((a, b, text if same else text[:-len(tail)] + flip[tail] if tail
                            else "not " + text))
            elif isinstance(child, ast.expr) and self._constant(child):
                a, b = self.span(child)
                out.append((a, b, self.nones[ast.unparse(child)]))
            elif isinstance(child, (ast.Tuple, ast.List, ast.Set, ast.Dict)) and \
                    self._lists_excluded(child):
                a, b = self.span(child)
                out.append((a, b, ast.unparse(self._without_excluded(child))))
            else:
                out += self.edits(child)
        return out

    def _bool_edits(self, node):
        """`a and b` without its operands the model makes true (`or`: false), kept ones
        rewritten; the text between two kept operands stays (their line breaks)."""
        values = node.values
        kept = [i for i, v in enumerate(values) if self.known(v) is None]
        out = [e for i in kept for e in self.edits(Block([values[i]]))]
        if kept[0] > 0:
            out.append((self._outer(values[0])[0], self._outer(values[kept[0]])[0], ""))
        for a, b in zip(kept, kept[1:] + [len(values)]):
            if b - a > 1:
                out.append((self._outer(values[a])[1], self._outer(values[b - 1])[1], ""))
        return out

    def _outer(self, node):
        """The span of `node` with the parentheses around it."""
        a, b = self.span(node)
        while True:
            left, right = self.raw[:a].rstrip(), self.raw[b:].lstrip()
            if not (left.endswith(b"(") and right.startswith(b")")):
                return a, b
            a, b = len(left) - 1, len(self.raw) - len(right) + 1

    def _boolean(self, node):
        """A fact's call, or an and/or whose value is its truth value (every operand a
        comparison, a `not`, a fact's call): `cones or []` is no literal."""
        if isinstance(node, ast.BoolOp):
            return all(self._boolean(v) or isinstance(v, (ast.Compare, ast.UnaryOp))
                       for v in node.values)
        return isinstance(node, ast.Call) and self.known(node) is not None

    def _fact_compared(self, node):
        """`x == fact` or `x != fact` (a fact's call) with x unknown."""
        return isinstance(node, ast.Compare) and len(node.ops) == 1 and \
            isinstance(node.ops[0], (ast.Eq, ast.NotEq)) and \
            [self.known(v) is None for v in (node.left, node.comparators[0])].count(True) == 1 \
            and all(isinstance(v, ast.Call) or self.known(v) is None
                    for v in (node.left, node.comparators[0]))

    def _constant(self, node):
        """An expression the model fixes to None or to a name (written as that)."""
        if isinstance(node, (ast.Name, ast.Constant)) or \
                isinstance(getattr(node, "ctx", None), (ast.Store, ast.Del)):
            return False
        return ast.unparse(node) in self.nones

    def _keyed(self, node):
        """A top-level `NAME = {...}` table with keys this model never uses."""
        return isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and \
            len(node.targets) == 1 and getattr(node.targets[0], "id", None) in self.keyed and \
            node.col_offset == 0

    def _with_keys(self, node, keys):
        """The dict literal's source with only the entries of `keys`, one entry a line."""
        kept = [(k, v) for k, v in zip(node.keys, node.values)
                if not isinstance(k, ast.Constant) or k.value in keys]
        if any(k is None for k, _ in kept):
            return self.render(*self.span(node), node)
        parts = [self.raw[self.span(k)[0]:self.span(v)[1]].decode() for k, v in kept]
        return "{" + "".join(f"\n    {part}," for part in parts) + ("\n}" if parts else "}")

    def _lists_excluded(self, node):
        elts = node.values if isinstance(node, ast.Dict) else node.elts
        return any(isinstance(e, ast.Name) and e.id in self.excluded for e in elts)

    def _without_excluded(self, node):
        keep = lambda e: not (isinstance(e, ast.Name) and e.id in self.excluded)  # noqa: E731
        if isinstance(node, ast.Dict):
            pairs = [(k, v) for k, v in zip(node.keys, node.values) if keep(v)]
            return ast.Dict([k for k, _ in pairs], [v for _, v in pairs])
        elts = [e for e in node.elts if keep(e)]
        if isinstance(node, ast.Tuple):
            return ast.Tuple(elts, ast.Load())
        return type(node)(elts, ast.Load()) if isinstance(node, ast.List) else ast.Set(elts)


class Block(ast.AST):
    """A statement list as one node (for `File.edits`)."""
    _fields = ("body",)

    def __init__(self, body):
        super().__init__()
        self.body = body
