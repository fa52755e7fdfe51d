"""The layout is the architecture: the generic core imports nothing of the X-ray application,
and data/ has no import circle (every import counted, also those inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "latentlapse"
LAYERS = ("core", "integrations")  # the generic part: any classifier; xray/ is the application on top


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ``latentlapse`` module ``path`` imports (``from latentlapse.x import y`` counts y
    when it is a module of the package)."""
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                   for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("latentlapse")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("latentlapse"):
            found.add(node.module)
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if (PACKAGE.parent / Path(*candidate.split("."))).with_suffix(".py").exists():
                    found.add(candidate)
    return found


def _core_files() -> list[Path]:
    return sorted(path for layer in LAYERS for path in PACKAGE.joinpath(layer).rglob("*.py"))


def test_the_core_imports_nothing_of_the_xray_application():
    files = _core_files()
    assert len(files) > 30 and PACKAGE / "core" / "timelapse" / "live.py" in files  # the walk found the core
    outside = {f"{_module(path)} -> {name}" for path in files for name in _imports(path)
               if name != "latentlapse" and not name.startswith(("latentlapse.core", "latentlapse.integrations"))}
    assert not outside, sorted(outside)


def test_the_application_and_the_core_are_the_only_folders():
    """Every module sits in one of the two layers (or is the package's own front door)."""
    loose = sorted(p.name for p in PACKAGE.iterdir() if p.name not in {"__init__.py", "__main__.py", "__pycache__", "core", "xray", "integrations"})
    assert not loose, loose


def test_data_has_no_import_circle():
    """readers.py dispatches to the formats, tables.py to the catalogue; what they share sits below."""
    data = {_module(p): {n for n in _imports(p) if n.startswith("latentlapse.xray.data.")} for p in PACKAGE.joinpath("xray", "data").glob("*.py")}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for name in data.get(start, ()):
            if name == target or (name not in seen and reaches(name, target, seen | {name})):
                return True
        return False

    circles = sorted(name for name in data if reaches(name, name, {name}))
    assert not circles, circles
