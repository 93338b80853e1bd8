"""What signpose.compat.mediapipe relies on in mediapipe==0.10.21; an upgrade fails here."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

from signpose.compat import mediapipe as mp_compat

PIN = mp_compat.PIN


def package_dir() -> Path:
    return Path(importlib.util.find_spec("mediapipe").origin).parent


def test_the_installed_version_is_the_pin():
    version = importlib.metadata.version("mediapipe")
    assert f"mediapipe=={version}" == PIN, f"{PIN} is pinned, {version} is installed"


def test_the_lean_import_loads_every_solution_but_the_drawing_helpers():
    init = package_dir() / "python" / "solutions" / "__init__.py"
    imported = {
        alias.name.rsplit(".", 1)[-1]
        for node in ast.walk(ast.parse(init.read_text()))
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    wanted = imported - {"drawing_styles", "drawing_utils"}
    assert set(mp_compat.SOLUTIONS) == wanted, (
        f"{PIN} changed the solutions mediapipe.python.solutions imports: {sorted(imported)}"
    )


def test_the_lean_import_runs_holistic_without_tensorflow_or_matplotlib():
    code = (
        "import sys\nfrom signpose.compat.mediapipe import import_mediapipe\n"
        "mp = import_mediapipe()\nh = mp.solutions.holistic.Holistic(model_complexity=1)\n"
        "h.close()\nprint(sorted({'tensorflow', 'matplotlib', 'mediapipe.tasks'} & "
        "set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout  # fmt: skip
    assert out.strip().splitlines()[-1] == "[]", f"{PIN}: the lean import pulled in {out}"


def test_the_wheel_keeps_holistics_pose_model_where_it_is_looked_for():
    path = mp_compat.pose_model_path(1)
    assert path is not None and path.exists(), f"{PIN} no longer ships {path}"


def test_the_face_mesh_connection_tables_load_from_their_path():
    module = mp_compat.face_mesh_connections()
    for name in ("TESSELATION", "LIPS", "LEFT_EYE", "RIGHT_EYE", "LEFT_EYEBROW",
                 "RIGHT_EYEBROW", "NOSE", "FACE_OVAL"):  # fmt: skip
        table = getattr(module, f"FACEMESH_{name}", None)
        assert isinstance(table, frozenset) and all(
            len(edge) == 2 and all(0 <= p < 468 for p in edge) for edge in table
        ), f"{PIN} changed FACEMESH_{name} of {mp_compat.FACE_MESH_CONNECTIONS}"
