from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
WLASL_300 = SHARED / "wlasl" / "WLASL_v0.3_first300.json"
WLASL_2000 = SHARED / "wlasl" / "WLASL_v0.3_reconstructed2000.json"
DEMO_JSON = ROOT / "resources" / "demo" / "WLASL_demo.json"


def needs(path: Path):
    """Skip where the shared WLASL data is not next to the checkout (it is in CI)."""
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not present")


@pytest.fixture
def write_json(tmp_path):
    def write(data, name="meta.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return path

    return write
