from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
WLASL_300 = SHARED / "wlasl" / "WLASL_v0.3_first300.json"
WLASL_2000 = SHARED / "wlasl" / "WLASL_v0.3_reconstructed2000.json"
DEMO_JSON = ROOT / "resources" / "demo" / "WLASL_demo.json"
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
# Real signing videos (MIT, sign-language-processing/pose), shipped with the repository:
# 540x720, 58 frames at 29.92 fps, one signer (the demo's copy), and 1280x720, 9 frames.
VIDEO = ROOT / "resources" / "demo" / "videos" / "signing_sample.mp4"
SAMPLE = ROOT / "tests" / "data" / "pose_sample_video.mp4"


def needs(path: Path):
    """Mark a test that reads `path` (the WLASL metadata is not shipped: its licence is not
    the project's): skipped where it is missing, a failure under CI=true."""
    return pytest.mark.needs(path)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


def missing(reason: str) -> None:
    """Skip for a missing input or tool; under CI=true nothing skips silently: it fails."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing input is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "needs(path): reads a file that is not in the repository")


def pytest_runtest_setup(item) -> None:
    for mark in item.iter_markers("needs"):
        if not mark.args[0].exists():
            missing(f"{mark.args[0]} not present")


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    """The whole demo, run once per test session by Snakemake into a temporary results root:
    the workflow's tests and those of `signpose recognise` (which reruns its chain) read it."""
    results = tmp_path_factory.mktemp("demo")
    proc = subprocess.run([SNAKEMAKE, "--nolock", "--cores", "2", "--config",
                           f"results_dir={results}"], cwd=ROOT, capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results


@pytest.fixture
def write_json(tmp_path):
    def write(data, name="meta.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return path

    return write


def decoded_frames(path: Path) -> int:
    """Frames OpenCV can decode from `path`: the count a user's own reader would see."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def wait_for(condition, proc: subprocess.Popen | None, timeout_s: float = 300) -> None:
    """Poll `condition` until it holds, failing if `proc` (when given) ends or time runs out
    first."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert proc is None or proc.poll() is None, "the process ended before the awaited moment"
        assert time.monotonic() < deadline, f"not reached within {timeout_s} s"
        time.sleep(0.05)
