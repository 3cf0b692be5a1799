"""The vendored third-party files are exactly what scripts/vendor_assets.py took from the pinned
npm packages (their SHA-256 sums), each with its licence, and every pin names its files."""

import hashlib
import json
from pathlib import Path

from app.web.templating import HERE

VENDOR = HERE / "static" / "vendor"
PINS = json.loads((VENDOR / "assets.json").read_text())


def _sums(folder: Path) -> dict[str, str]:
    lines = (folder / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines)}


def test_every_pinned_package_is_vendored_whole_with_its_licence():
    assert {"htmx.org", "uplot"} <= set(PINS)
    for name, pin in PINS.items():
        folder = VENDOR / name
        assert set(_sums(folder)) == set(pin["files"].values()), name
        assert "LICENSE" in pin["files"].values(), f"{name} is vendored without its licence"
        assert pin["integrity"].startswith("sha512-")


def test_the_vendored_files_are_unchanged():
    for name in PINS:
        folder = VENDOR / name
        for file, digest in _sums(folder).items():
            assert hashlib.sha256((folder / file).read_bytes()).hexdigest() == digest, (
                f"{name}/{file} differs from the published package; run scripts/vendor_assets.py"
            )
