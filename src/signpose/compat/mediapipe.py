"""mediapipe==0.10.21 internals: a lean import of the legacy solutions, and the wheel's models.

`import mediapipe` loads every solution and task, matplotlib (for a drawing helper) and, when it
is installed, TensorFlow (3 s and 700 MB per process, only to reach a docs helper and an optional
file opener). A pose job's fixed cost is paid 20,000 times in a WLASL run, so here only the
framework bindings and the legacy solutions load, and TensorFlow is blocked while they do.
Relied on (tests/test_compat_mediapipe.py): the package layout below and the list of solutions
that `mediapipe/python/solutions/__init__.py` imports; the face mesh's connection tables, from
which tests/test_layout.py derives signpose.layout's face mirror map.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

PIN = "mediapipe==0.10.21"
# Holistic's pose landmark model per model_complexity; only "full" ships in the wheel.
POSE_MODELS = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite",
               2: "pose_landmark_heavy.tflite"}  # fmt: skip
# mediapipe/python/solutions/__init__.py of mediapipe 0.10.21, minus drawing_styles and
# drawing_utils (matplotlib).
SOLUTIONS = ("face_detection", "face_mesh", "face_mesh_connections", "hands", "hands_connections",
             "holistic", "objectron", "pose", "selfie_segmentation")  # fmt: skip


class _BlockTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):  # noqa: ARG002 - MetaPathFinder protocol
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None


@contextlib.contextmanager
def tensorflow_blocked() -> Iterator[None]:
    """While active, `import tensorflow` fails; mediapipe then falls back without it.

    Only mediapipe's own import needs it, so the block is lifted afterwards and a process that
    trains later (a test run, a notebook) can still import TensorFlow.
    """
    finder = _BlockTensorFlow()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def import_mediapipe():
    """The mediapipe package with its legacy solutions loaded, and nothing more.

    The `__init__` of `mediapipe` and of `mediapipe.python.solutions` import the tasks API,
    the drawing helpers and through them matplotlib: 0.7 s of a pose job's start. Both
    packages are registered without running them and the solutions are imported one by one,
    all but the drawing helpers: Holistic's graph needs the calculator options that the other
    solutions register (face_mesh's landmark refinement, pose's smoothing), so the graph and
    its results are exactly those of a plain `import mediapipe`. Anything else can still be
    imported by name. A mediapipe imported earlier is used as it is.
    """
    if "mediapipe" in sys.modules:
        return sys.modules["mediapipe"]
    with tensorflow_blocked():
        mediapipe = _unexecuted_package("mediapipe")
        mediapipe.solutions = _unexecuted_package("mediapipe.python.solutions")
        mediapipe.python.solutions = mediapipe.solutions
        for name in SOLUTIONS:
            importlib.import_module(f"mediapipe.python.solutions.{name}")
    return mediapipe


def _unexecuted_package(name: str):
    """Package `name` in sys.modules without its `__init__` having run."""
    module = importlib.util.module_from_spec(importlib.util.find_spec(name))
    sys.modules[name] = module
    return module


def pose_model_path(model_complexity: int) -> Path | None:
    """Where the installed wheel keeps Holistic's pose model; None without mediapipe."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "modules" / "pose_landmark" / POSE_MODELS[model_complexity]


FACE_MESH_CONNECTIONS = Path("python") / "solutions" / "face_mesh_connections.py"


def face_mesh_connections():
    """mediapipe's face_mesh_connections module (FACEMESH_LIPS, FACEMESH_TESSELATION, ...).

    A plain data file inside the legacy solutions: loaded from its path, without running the
    package's `__init__` (the framework bindings are not needed for a table of edges).
    """
    root = Path(importlib.util.find_spec("mediapipe").origin).parent
    spec = importlib.util.spec_from_file_location(
        "mediapipe_face_mesh_connections", root / FACE_MESH_CONNECTIONS
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
