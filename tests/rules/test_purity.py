"""The rules engine is pure: no database, no web framework, no I/O."""

import ast
import subprocess
import sys
from pathlib import Path

import app.rules

RULES_DIR = Path(app.rules.__file__).parent
ROOT = RULES_DIR.parents[1]
FORBIDDEN = ("app.db", "app.models", "sqlalchemy", "fastapi", "starlette", "httpx", "alembic")
# what app/rules may import: the standard library's pure parts, the protocol schema and the measures
ALLOWED_APP_MODULES = (
    "app.rules",
    "app.protocols.schema",
    "app.clinical.measures",
)
ALLOWED_STDLIB = {"collections", "dataclasses", "datetime", "enum", "math", "re", "types", "typing"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports"
            assert node.module is not None
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_rules_modules_import_only_pure_modules() -> None:
    for path in sorted(RULES_DIR.glob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "app":
                assert name.startswith(ALLOWED_APP_MODULES) or name == "app.rules", (
                    path.name,
                    name,
                )
            else:
                assert top in ALLOWED_STDLIB, (path.name, name)


def test_importing_the_engine_loads_no_database_or_web_module() -> None:
    code = "import sys, app.rules, app.rules.engine; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offending = [m for m in loaded if m.startswith(FORBIDDEN)]
    assert offending == []
    assert "app.rules.engine" in loaded
