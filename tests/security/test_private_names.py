"""Lint: no module of app/ or bench/ uses a private name of a third-party package.

A dependency's `_names` (and its private modules) may change or vanish in any release, and code
built on them breaks silently, or worse, keeps running with a guard gone (issue 16: the old fast
path read `fastapi.routing._effective_route_context_var` and failed open without it). When the
framework is the bottleneck we change our design, not theirs (STYLE.md), and pin its minor version.

An AST check, itself tested on bad snippets below. It flags, for a third-party package (neither the
standard library nor this project's `app`, `bench`, `tests`):
- `import x._y`, `from x._y import z`, `from x import _y` (dunders like `__version__` are public);
- an attribute path from a name imported from it that passes a private attribute:
  `fastapi.routing._effective_route_context_var`, `APIRoute._private`, `jwt._x.y`;
- the same through `getattr`/`hasattr`/`setattr`/`delattr` with a constant name, and
  `importlib.import_module("x._y")`.
What it cannot see is a private attribute read off an object whose type the source does not say
(`request.scope[...]`'s values, a return value); undocumented non-underscore attributes (the old
fast path's `.original_route`) need a reviewer, and the FastAPI pin in pyproject.toml.
"""

import ast
import re
import sys
import tomllib
from pathlib import Path

import fastapi
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("app", "bench")
FIRST_PARTY = frozenset({"app", "bench", "tests"})
ATTRIBUTE_FUNCTIONS = frozenset({"getattr", "hasattr", "setattr", "delattr"})


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _third_party(module: str) -> bool:
    top = module.split(".", 1)[0]
    return top not in FIRST_PARTY and top not in sys.stdlib_module_names


def _private_module(module: str) -> bool:
    return any(_private(part) for part in module.split("."))


def _attribute_path(node: ast.expr) -> tuple[str, list[str]] | None:
    """`a.b.c` as ("a", ["b", "c"]); None unless it is rooted at a plain name."""
    attributes: list[str] = []
    while isinstance(node, ast.Attribute):
        attributes.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return node.id, attributes[::-1]


def private_name_violations(path: str, source: str) -> list[str]:
    tree = ast.parse(source)
    found: list[str] = []
    # Names bound by importing from a third-party package: module objects and the objects in them.
    foreign: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _third_party(alias.name):
                    continue
                if _private_module(alias.name):
                    found.append(f"{path}:{node.lineno}: imports private module {alias.name}")
                foreign.add(alias.asname or alias.name.split(".", 1)[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not _third_party(node.module):
                continue
            if _private_module(node.module):
                found.append(f"{path}:{node.lineno}: imports from private module {node.module}")
            for alias in node.names:
                if _private(alias.name):
                    found.append(
                        f"{path}:{node.lineno}: imports private name {alias.name} "
                        f"from {node.module}"
                    )
                foreign.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            walked = _attribute_path(node)
            if walked is None:
                continue
            root, attributes = walked
            # Report only at the private attribute itself (not again for every longer chain).
            if root in foreign and _private(attributes[-1]):
                dotted = ".".join([root, *attributes])
                found.append(f"{path}:{node.lineno}: reads private attribute {dotted}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr
            first = node.args[0] if node.args else None
            second = node.args[1] if len(node.args) > 1 else None
            if (
                name in ATTRIBUTE_FUNCTIONS
                and first is not None
                and isinstance(second, ast.Constant)
                and isinstance(second.value, str)
                and _private(second.value)
            ):
                walked = _attribute_path(first)
                if walked is not None and walked[0] in foreign:
                    found.append(
                        f"{path}:{node.lineno}: {name}() of private attribute {second.value}"
                    )
            if (
                name in ("import_module", "__import__")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and _third_party(first.value)
                and _private_module(first.value)
            ):
                found.append(f"{path}:{node.lineno}: imports private module {first.value}")
    return found


def _sources() -> list[Path]:
    return sorted(p for folder in SCANNED for p in (ROOT / folder).rglob("*.py"))


def test_no_private_names_of_dependencies() -> None:
    files = _sources()
    assert any(f.parts[-2:] == ("app", "main.py") for f in files)
    assert any(f.parts[-2:] == ("bench", "run.py") for f in files)
    violations = [
        v for f in files for v in private_name_violations(str(f.relative_to(ROOT)), f.read_text())
    ]
    assert violations == []


@pytest.mark.parametrize(
    "source",
    [
        "import fastapi._compat\n",
        "import starlette._utils as u\n",
        "import _pytest.fixtures\n",
        "from fastapi._compat import ModelField\n",
        "from fastapi.dependencies import _helpers\n",
        "from fastapi.routing import _effective_route_context_var\n",
        "from fastapi.routing import _effective_route_context_var as ctx\n",
        # The old fast path's read, in its three spellings.
        "import fastapi.routing\nx = fastapi.routing._effective_route_context_var\n",
        "import fastapi.routing\nx = getattr(fastapi.routing, '_effective_route_context_var')\n",
        "from fastapi import routing\nx = routing._effective_route_context_var.get()\n",
        "import fastapi as f\nf.routing._x\n",
        "from fastapi.routing import APIRoute\nAPIRoute._private(r)\n",
        "from asyncpg import pool\nhasattr(pool.Pool, '_holders')\n",
        "import starlette\nsetattr(starlette.routing, '_x', 1)\n",
        "import importlib\nimportlib.import_module('fastapi._compat')\n",
        "def f():\n    from pydantic import _internal\n",
    ],
)
def test_the_private_names_lint_catches(source: str) -> None:
    assert private_name_violations("app/example.py", source) != []


@pytest.mark.parametrize(
    "source",
    [
        # Public names, dunders, the standard library and our own private names are fine.
        "import fastapi.routing\nfrom fastapi import APIRouter, __version__\n",
        "import fastapi\nv = fastapi.__version__\n",
        "from urllib.parse import urlsplit\nurlsplit(u)._replace(path='/')\n",
        "import sys\nsys._getframe()\n",
        "from app.core.db import _transaction\nfrom app import auth\nauth._user_identity(c)\n",
        "from . import _helpers\n",
        "class C:\n    def f(self):\n        return self._cache\n",
        "from fastapi import APIRouter\nr = APIRouter()\nx = getattr(r, 'routes')\n",
        "import importlib\nimportlib.import_module('app._x')\n",
    ],
)
def test_the_private_names_lint_allows(source: str) -> None:
    assert private_name_violations("app/example.py", source) == []


def test_fastapi_is_pinned_to_the_minor_version_installed() -> None:
    """The pin the lint's promise rests on: one minor version, the one the suite runs on."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = [d for d in project["dependencies"] if re.match(r"fastapi\b(?!-)", d)]
    assert len(pins) == 1
    found = re.fullmatch(r"fastapi>=0\.(\d+)(?:\.\d+)?,<0\.(\d+)", pins[0])
    assert found, pins[0]
    low, high = int(found[1]), int(found[2])
    assert high == low + 1
    assert fastapi.__version__.split(".")[:2] == ["0", str(low)]
