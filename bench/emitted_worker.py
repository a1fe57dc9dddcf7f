"""Running an emitted module as its user would, for bench/check_emitted.py: in a worker
process started with `python -I` (no PYTHONPATH, no user site, not the current directory)
in which `import bmdsl` fails, one `python MODULE ARGS` after the other (the imports of
torch and cvxpy paid once); and reading what the module printed.
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys

# The worker: runs each job's module as `python MODULE ARGS` would, bmdsl unimportable;
# one job (JSON) a line on stdin, one result a line on stdout
WORKER = r"""
import contextlib, io, json, os, runpy, sys, traceback
sys.modules['bmdsl'] = None            # `import bmdsl` (and bmdsl.x) raises ImportError
import torch; torch.set_num_threads(1)
out = sys.stdout
for line in sys.stdin:
    job = json.loads(line)
    os.chdir(job['cwd']); sys.argv = [job['path'], *job['argv']]
    so, se, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
        try:
            runpy.run_path(job['path'], run_name='__main__')
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            code, _ = 'crash', traceback.print_exc()
    out.write(json.dumps(dict(id=job['id'], code=code, stdout=so.getvalue(),
                              stderr=se.getvalue())) + chr(10))
    out.flush()
"""


class Worker:
    """One `python -I` process without bmdsl that runs the jobs it is sent, in turn."""

    def __init__(self, tmp):
        self.tmp, self.p = tmp, None

    def run(self, jobs):
        """{job id: {code, stdout, stderr}}; a worker that dies is started again."""
        done = {}
        for job in jobs:
            if self.p is None or self.p.poll() is not None:
                env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
                self.p = subprocess.Popen([sys.executable, "-I", "-c", WORKER], text=True,
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          env=dict(env, OMP_NUM_THREADS="1"), cwd=self.tmp)
            self.p.stdin.write(json.dumps(job) + "\n")
            self.p.stdin.flush()
            line = self.p.stdout.readline()
            done[job["id"]] = json.loads(line) if line else dict(
                code="worker died", stdout="", stderr=f"exit {self.p.wait()}")
        return done


def value(text, key):
    m = re.search(rf"{key}:? ([-+0-9.e]+|nan|inf)", text)
    return None if m is None else float(m.group(1))


def imports_bmdsl(source):
    return any((isinstance(n, ast.Import) and any(a.name.split(".")[0] == "bmdsl" for a in n.names))
               or (isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").split(".")[0]
                                                      == "bmdsl")) for n in ast.walk(ast.parse(source)))
