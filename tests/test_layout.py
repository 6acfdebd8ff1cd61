"""The suite's own layout (issue 10, item 7): ``tests/`` mirrors ``src/interventions/``, and no
test file imports from another — shared helpers live in ``tests/helpers.py``, data in
``tests/factories.py``."""

from __future__ import annotations

import ast
from pathlib import Path

import interventions

TESTS = Path(__file__).resolve().parent
SRC = Path(interventions.__file__).resolve().parent
MODULES = sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)
TEST_FILES = [p for p in MODULES if p.name.startswith("test_")]
PACKAGES = sorted({p.parent for p in TEST_FILES} - {TESTS})


def _name(path: Path) -> str:
    return path.relative_to(TESTS).as_posix()


def _dotted(path: Path) -> str:
    """The module's name as the suite imports it: ``tests.auth.test_login``."""
    parts = path.relative_to(TESTS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved, and, for ``from x import y``,
    ``x.y`` as well (``y`` may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _dotted(path).rpartition(".")[0] if path.name != "__init__.py" else _dotted(path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_layout_finds_the_suite() -> None:
    assert TESTS / "test_layout.py" in TEST_FILES
    assert len(TEST_FILES) > 20
    assert PACKAGES, "no test package: the tree mirrors nothing"


def test_no_module_imports_a_test_file_or_the_conftest() -> None:
    """What another file needs goes to ``tests/helpers.py``: a test file is imported by
    pytest alone, and ``conftest.py`` is pytest's, not a library."""
    forbidden = {_dotted(p) for p in TEST_FILES} | {"tests.conftest"}
    wrong = {
        _name(path): sorted(imported & forbidden)
        for path in MODULES
        if (imported := _imported(path)) & forbidden
    }
    assert not wrong, f"move what these need to tests/helpers.py: {wrong}"


def test_every_test_directory_is_a_package() -> None:
    """The tests import their support modules as ``tests.…``, and two test files of the same
    name in two directories must not collide."""
    missing = set()
    for directory in PACKAGES:
        while directory != TESTS.parent:
            if not (directory / "__init__.py").is_file():
                missing.add(f"tests/{_name(directory)}/")
            directory = directory.parent
    assert not missing, f"no __init__.py in {sorted(missing)}"


def test_every_test_directory_mirrors_a_source_package() -> None:
    """``tests/auth/`` holds the tests of ``src/interventions/auth/``, and so on down."""
    unmatched = [
        f"tests/{_name(d)}/"
        for d in PACKAGES
        if not (SRC / d.relative_to(TESTS) / "__init__.py").is_file()
    ]
    assert not unmatched, f"{unmatched} mirror no package of src/interventions/"


def test_no_test_file_of_a_source_package_sits_outside_its_directory() -> None:
    """``tests/test_storage.py`` belongs in ``tests/storage/``: a file named after a source
    package sits in that package's directory (at any depth)."""
    misplaced = [
        _name(p)
        for p in TEST_FILES
        if (
            SRC / p.parent.relative_to(TESTS) / p.stem.removeprefix("test_") / "__init__.py"
        ).is_file()
    ]
    assert not misplaced, f"{misplaced}: move each into the directory of its package"


def test_support_modules_are_the_known_few() -> None:
    """Besides test files, package markers and ``conftest.py``: the helpers, the factories
    and the servers (SMTP, the live app, a webhook receiver), at the top. Another helpers
    module would split what is shared."""
    support = {
        _name(p)
        for p in MODULES
        if not p.name.startswith("test_") and p.name not in {"__init__.py", "conftest.py"}
    }
    assert support == {
        "helpers.py",
        "factories.py",
        "smtp_server.py",
        "live_server.py",
        "webhook_receiver.py",
    }
