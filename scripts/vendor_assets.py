"""Vendor the web client's third-party JavaScript and CSS from their published npm packages.

`app/web/static/vendor/assets.json` is the one place their versions are pinned: for each package,
its version, the registry's tarball and its Subresource Integrity hash, its licence, and which
files of the tarball to keep (licence file included). This script downloads each tarball, refuses
one whose hash differs from the pinned one, and writes the files under
`app/web/static/vendor/<package>/`, with `SHA256SUMS` that the tests check the committed files
against. Run it after changing a pin: `.venv/bin/python scripts/vendor_assets.py`. Nothing runs
it at build or start: the files are committed, so `make run` needs no network and no build step.
"""

import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "app" / "web" / "static" / "vendor"


def _checked(tarball: bytes, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if digest != expected:
        sys.exit(f"integrity mismatch: expected {integrity}, got {algorithm}-{digest}")


def vendor(name: str, pin: dict) -> None:
    with urllib.request.urlopen(pin["tarball"], timeout=60) as answer:  # noqa: S310 - https pin
        tarball = answer.read()
    _checked(tarball, pin["integrity"])
    target = VENDOR / name
    target.mkdir(parents=True, exist_ok=True)
    sums = []
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        for member, kept_as in pin["files"].items():
            content = archive.extractfile(member)
            if content is None:
                sys.exit(f"{name}: {member} is not a file in the tarball")
            data = content.read()
            (target / kept_as).write_bytes(data)
            sums.append(f"{hashlib.sha256(data).hexdigest()}  {kept_as}\n")
    (target / "SHA256SUMS").write_text("".join(sums))
    print(f"{name} {pin['version']} ({pin['licence']}): {', '.join(pin['files'].values())}")


def main() -> None:
    pins = json.loads((VENDOR / "assets.json").read_text())
    for name, pin in pins.items():
        vendor(name, pin)


if __name__ == "__main__":
    main()
