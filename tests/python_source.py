"""Our own modules read as syntax trees, for the structural tests."""

import ast
from pathlib import Path

ATTEMPTS = 3


def syntax_tree(path: Path) -> ast.Module:
    """The module at `path`, parsed.

    Python 3.11 before 3.11.8 may raise SystemError ("AST constructor recursion depth mismatch",
    CPython gh-106905) when another thread uses the ast module at the same moment, as 3.11 does
    to print any traceback (a fake server's thread logging a dropped connection): parse again.
    """
    source = path.read_text()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return ast.parse(source)
        except SystemError:
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")
