"""The wheel must install everything under `mcpvisor` and never a generic top-level package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE_FOLDERS = ("runtime", "supervisors", "backends")


def test_wheel_installs_only_under_mcpvisor(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
    )
    (wheel,) = tmp_path.glob("mcpvisor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_levels = {n.split("/", 1)[0] for n in names}
    assert {t for t in top_levels if not t.endswith(".dist-info")} == {"mcpvisor"}
    for folder in CODE_FOLDERS:
        assert f"mcpvisor/{folder}/__init__.py" in names
        assert f"mcpvisor/{folder}/py.typed" in names
    # Every sub-package on disk must be listed in pyproject.toml, or the wheel silently drops it.
    for folder in CODE_FOLDERS:
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.relative_to(ROOT).as_posix()
            assert f"mcpvisor/{rel}" in names, f"{rel} is missing from the wheel"


def test_public_packages_import() -> None:
    import mcpvisor.backends
    import mcpvisor.runtime
    import mcpvisor.supervisors

    import mcpvisor

    assert mcpvisor.supervisors.ChildSpec is not None
    assert mcpvisor.__version__
