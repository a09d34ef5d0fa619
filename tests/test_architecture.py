"""The house's shape (ARCHITECTURE.md), checked on the source: which layer may import which, no
import cycles, and no module much over 300 lines without the reason written at its top."""

import ast
import itertools
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
DOMAINS = {"garages", "vehicles", "timeline", "reminders", "images", "me", "ops"}
COMPOSITION = {"main", "cli", "routers", "__main__", "__init__"}  # wire the layers together
# Who may import whom: the core imports no other layer; web and database build on the core only;
# a domain on the core, web and itself.
ALLOWED = {
    "core": {"core"},
    "web": {"core", "web"},
    "database": {"core", "database"},
}
LONG = 320
LONG_REASON = "Longer than 300 lines because"


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    top = module.split(".")[1] if "." in module else "__init__"
    if top in ALLOWED:
        return top
    if top in DOMAINS:
        return f"domain:{top}"
    assert top in COMPOSITION, f"{module}: which layer is it in? (ARCHITECTURE.md)"
    return "composition"


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("app."))
    modules = {module_name(p) for p in APP.rglob("*.py")}
    return {m for m in found if m in modules}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in APP.rglob("*.py")}


def test_no_layer_imports_upwards() -> None:
    wrong = []
    for module, imported in graph().items():
        mine = layer(module)
        for other in imported:
            theirs = layer(other)
            if mine == "composition" or theirs == mine:
                continue
            allowed = ALLOWED.get(mine, {"core", "web"})
            # A domain may use another's SQL (vehicles record a reading on the timeline), never
            # its HTTP side.
            across = mine.startswith("domain:") and theirs.startswith("domain:")
            if across and other.endswith(".queries"):
                continue
            if theirs not in allowed:
                wrong.append(f"{module} ({mine}) imports {other} ({theirs})")
    assert wrong == []


def test_no_import_cycles() -> None:
    edges = graph()
    # Packages import their own modules (re-exports): not a cycle of the design.
    edges = {m: {o for o in out if not o.startswith(m + ".")} for m, out in edges.items()}
    seen: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, stack: list[str]) -> None:
        seen[module] = 1
        for other in sorted(edges.get(module, ())):
            if seen.get(other) == 1:
                cycles.append([*stack[stack.index(other) :], other])
            elif other not in seen:
                visit(other, [*stack, other])
        seen[module] = 2

    for module in sorted(edges):
        if module not in seen:
            visit(module, [module])
    assert cycles == []


def test_long_modules_say_why() -> None:
    unexplained = []
    for path in APP.rglob("*.py"):
        source = path.read_text()
        if source.count("\n") > LONG and LONG_REASON not in (
            ast.get_docstring(ast.parse(source)) or ""
        ):
            unexplained.append(str(path.relative_to(APP.parent)))
    assert unexplained == []


def test_the_checks_see_a_violation() -> None:
    """Not vacuous: a core module importing a domain is caught by the rule the test applies."""
    assert layer("app.core.db") == "core"
    assert layer("app.timeline.router") == "domain:timeline"
    assert "domain:timeline" not in ALLOWED["core"]
    assert list(itertools.islice(graph(), 1))
