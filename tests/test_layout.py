"""The package's layout, checked from the source: stages as packages, imports one way, no cycle."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tests.helpers import REPO

PACKAGE = REPO / "mnist_keras"
TESTS = REPO / "tests"
SHARED = {"cli", "errors", "files"}  # what every package may import from the top level
COMMANDS = {"train", "evaluate", "export", "verify", "web_export", "no_digit", "predict", "serve", "report"}
# Which packages each package may import (besides SHARED): the stages run one way.
ALLOWED = {
    "data": set(),
    "training": {"data"},
    "inference": {"data", "training"},
    "exporting": {"data", "training", "inference"},
    "serving": {"data", "training", "inference", "exporting"},
    "reporting": {"data", "training", "inference"},
}
MAX_MODULES = 12


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """Every mnist_keras module the file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mnist_keras":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "mnist_keras")
    return found & modules


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports(path, set(files)) - {name} for name, path in files.items()}


def where(module: str) -> str:
    """The package a module belongs to, or its own name for a top-level module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else "mnist_keras"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_modules():
    assert cycles(import_graph()) == []


def test_no_import_cycle_is_missed():
    """The cycle finder itself: a made-up circle of three is found."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_packages_import_only_the_stages_before_them():
    wrong = []
    for module, deps in import_graph().items():
        package = where(module)
        if package not in ALLOWED:
            continue
        for dep in deps:
            target = where(dep)
            top_level = dep.split(".")[-1] if target == "mnist_keras" else None
            if target == package or top_level in SHARED or dep == "mnist_keras":
                continue
            if target not in ALLOWED[package]:
                wrong.append(f"{module} imports {dep}")
    assert wrong == []


def test_the_top_level_holds_only_commands_and_shared_pieces():
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert top <= COMMANDS | SHARED, sorted(top - COMMANDS - SHARED)
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages == set(ALLOWED)


def test_shared_pieces_import_no_package():
    graph = import_graph()
    for name in SHARED:
        assert all(where(dep) == "mnist_keras" for dep in graph[f"mnist_keras.{name}"]), name


def test_each_package_is_small_and_says_what_it_holds():
    for package in ALLOWED:
        folder = PACKAGE / package
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        assert 0 < len(modules) <= MAX_MODULES, (package, len(modules))
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        assert doc and "import" in doc.lower(), f"{package}/__init__.py: say what it holds and what it may import"


def test_every_console_script_is_a_command_module():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for target in scripts.values():
        module, function = target.split(":")
        assert module.split(".")[-1] in COMMANDS and module.count(".") == 1, target
        tree = ast.parse((PACKAGE / f"{module.split('.')[-1]}.py").read_text())
        assert function in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, target


def test_commands_stay_thin():
    """A command defines flags and calls the library; the work lives in the packages."""
    for name in COMMANDS:
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        lines = sum(n.end_lineno - n.lineno + 1 for n in functions)
        assert "cli_main" in {f.name for f in functions}, name
        assert lines <= 80, f"{name}.py: {lines} lines of functions; move the work into a package"


def imported_test_modules(tree: ast.Module, package: str) -> set[str]:
    """The test modules (tests/**/test_*.py, conftest.py) a test file's source imports; package: its own."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.update(f"{module}.{a.name}" for a in node.names)  # `from tests.x import test_y`
            found.add(module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.split(".")[0] == "tests" and m.split(".")[-1].startswith(("test_", "conftest"))}


def test_no_test_module_imports_another():
    """Shared helpers live in tests/helpers.py, fixtures in conftest.py: a test module imports neither
    another test module nor a conftest, so that each can be read, moved or run alone."""
    wrong = []
    for path in sorted(TESTS.rglob("*.py")):
        package = module_name(path).rpartition(".")[0] if path.name != "__init__.py" else module_name(path)
        for module in sorted(imported_test_modules(ast.parse(path.read_text(), str(path)), package)):
            wrong.append(f"{path.relative_to(REPO)} imports {module}")
    assert wrong == []


def test_an_import_of_a_test_module_is_found():
    """The check itself, on made-up sources: each way of importing a test module is caught."""
    cases = {"from tests.serving.test_serve import start_server": {"tests.serving.test_serve"},
             "from tests.serving import test_serve": {"tests.serving.test_serve"},
             "import tests.conftest": {"tests.conftest"},
             "from .test_web_page import Offline": {"tests.exporting.test_web_page"},
             "from ..conftest import REPO": {"tests.conftest"},
             "from tests.helpers import start_server": set()}
    for source, expected in cases.items():
        assert imported_test_modules(ast.parse(source), "tests.exporting") == expected, source


MAX_LINES, MAX_PARAMETERS = 60, 6  # a function fits on a screen and takes few arguments (a config record)


def oversized(source: str) -> list[str]:
    """The functions in `source` longer than MAX_LINES or with more than MAX_PARAMETERS (self aside)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        a = node.args
        names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
        count = len(names) + (a.vararg is not None) + (a.kwarg is not None) - (names[:1] in (["self"], ["cls"]))
        lines = node.end_lineno - node.lineno + 1
        if lines > MAX_LINES or count > MAX_PARAMETERS:
            found.append(f"{node.name}: {lines} lines, {count} parameters")
    return found


def test_no_function_is_too_long_or_takes_too_many_arguments():
    found = {str(p.relative_to(REPO)): oversized(p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))}
    assert {path: f for path, f in found.items() if f} == {}


def test_an_oversized_function_is_found():
    wide = "def f(self, a, b, c, d, e, g):\n    pass\n"
    long = "def g():\n" + "    x = 1\n" * 60
    assert oversized(wide) == [] and oversized(wide.replace("self", "h")) == ["f: 2 lines, 7 parameters"]
    assert oversized(long) == ["g: 61 lines, 0 parameters"]
