"""The npm packages as users install them: ``npm pack`` of npm/ (npm/pack.mjs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.procs import ROOT


def npm_pack(out: Path) -> list[Path]:
    """Packs @threadline/client and @threadline/react into ``out``; their tarballs, in that order."""
    packed = subprocess.run(["node", str(ROOT / "npm" / "pack.mjs"), str(out)], capture_output=True, text=True,
                            timeout=120)
    assert packed.returncode == 0, packed.stderr
    return [Path(line) for line in packed.stdout.split()]
