"""The package's layers run one way: read every module's imports (AST, function-level ones included) and
check each against what its family may import.

A family is a top-level module (``errors``, ``times`` …) or subpackage (``dump``, ``machines`` …). A new
family must be added to :data:`ALLOWED` with the families it stands on.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, Set, Tuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "starcompactor"

#: The shared ground every feature family may stand on.
BASE = {"errors", "times", "registry", "events", "_version", "config", "mask", "parallel"}

#: family -> families it may import (besides itself).
ALLOWED: Dict[str, Set[str]] = {
    "errors": set(),
    "_version": set(),
    "events": set(),
    "times": {"errors"},
    "registry": {"errors"},
    "config": {"errors", "times"},
    "mask": {"errors", "events"},
    "parallel": {"errors", "registry"},
    "dump": {"errors", "times", "registry"},
    "server": {"errors", "times"},
    "traces": {"events", "errors", "times", "registry", "_version"},
    "audit": BASE | {"dump", "server"},
    "machines": BASE | {"dump", "server", "audit", "traces"},
    "instances": BASE | {"dump", "server", "audit", "traces"},
    "report": BASE | {"traces"},
    "cli": BASE | {"dump", "server", "audit", "traces", "machines", "instances", "report"},
    # the package itself, ``python -m starcompactor`` and the original tool's entry points
    "__init__": {"_version", "dump", "errors"},
    "__main__": {"cli"},
    "machine_event_dump": {"cli"},
    "instance_event_db_dump": {"cli"},
    "instance_event_api_dump": {"cli"},
    "instances_db": {"instances"},
}

#: Third-party modules only the command line may import.
CLI_ONLY = {"tqdm"}


def family(module: str) -> str:
    """``starcompactor.dump.reader`` → ``dump``; ``starcompactor`` → ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[Tuple[str, int]]:
    """Absolute names of every module ``path`` imports (with the line), relative imports resolved."""
    return imports_of(path.read_text(), module_name(path), is_package=path.name == "__init__.py")


def imports_of(source: str, name: str, *, is_package: bool = False) -> Iterator[Tuple[str, int]]:
    package = name if is_package else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:  # from . import x: x may be a module
                    for alias in node.names:
                        yield f"{target}.{alias.name}", node.lineno
                    continue
                yield target, node.lineno
            else:
                yield node.module or "", node.lineno


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_family_is_known():
    unknown = {family(module_name(path)) for path in MODULES} - set(ALLOWED)
    assert not unknown, f"add these families to ALLOWED with the layers they stand on: {sorted(unknown)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_follow_the_layers(path):
    own = family(module_name(path))
    wrong = []
    for target, line in imports(path):
        top = target.split(".")[0]
        if top == "starcompactor":
            other = family(target)
            if other != own and other not in ALLOWED.get(own, set()):
                wrong.append(f"line {line}: {own} imports {target}")
        elif top in CLI_ONLY and own != "cli":
            wrong.append(f"line {line}: {own} imports {target}, which only the command line may use")
    assert not wrong, "\n".join(wrong)


def test_machines_and_instances_never_import_each_other():
    assert "instances" not in ALLOWED["machines"] and "machines" not in ALLOWED["instances"]


def test_the_checker_sees_a_wrong_import():
    """The AST reading catches function-level and relative imports (so the rules above can fail)."""
    source = "def f():\n    from ..machines import trace\n    from . import values\n    import tqdm\n"
    found = {target for target, _ in imports_of(source, "starcompactor.dump.probe")}
    assert found == {"starcompactor.machines", "starcompactor.dump.values", "tqdm"}
