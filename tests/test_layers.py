"""Which layer may import which (README, "How it is built"), checked on every import statement,
including those inside functions."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "coherence_core": ROOT / "libs" / "coherence_core",
    "coherence_api": ROOT / "services" / "api" / "coherence_api",
    "coherence_scoring": ROOT / "services" / "scoring" / "coherence_scoring",
}


def modules() -> dict[str, set[str]]:
    """module name → every module it imports."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            imported = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    imported |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module:
                    imported |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            found[name] = imported
    return found


MODULES = modules()


def kind(name: str) -> str:
    last = name.rsplit(".", 1)[-1]
    if ".repository" in name or last == "repository":
        return "repository"
    return last if last in ("endpoints", "service") else "other"


def violations(allowed: Callable[[str, str], bool], where: Callable[[str], bool]) -> list[str]:
    return [
        f"{module} imports {target}"
        for module, imports in MODULES.items()
        if where(module)
        for target in imports
        if target.startswith(tuple(PACKAGES)) and not allowed(module, target)
    ]


def test_the_engine_imports_nothing_of_the_services() -> None:
    assert not violations(
        lambda m, t: t.startswith(("coherence_scoring.engine", "coherence_core.instruments")),
        lambda m: m.startswith("coherence_scoring.engine"),
    )


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [("repository", ("service", "endpoints")), ("service", ("endpoints",))],
)
def test_lower_layers_import_no_higher_one(layer: str, forbidden: tuple[str, ...]) -> None:
    assert not violations(lambda m, t: kind(t) not in forbidden, lambda m: kind(m) == layer)


def test_the_api_and_the_worker_share_only_libs() -> None:
    assert not violations(
        lambda m, t: not t.startswith("coherence_scoring"), lambda m: m.startswith("coherence_api")
    )
    assert not violations(
        lambda m, t: not t.startswith("coherence_api"), lambda m: m.startswith("coherence_scoring")
    )


def test_the_database_layer_imports_no_service() -> None:
    assert not violations(
        lambda m, t: t.startswith("coherence_core"), lambda m: m.startswith("coherence_core.db")
    )
