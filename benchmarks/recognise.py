"""What `signpose recognise` costs: seconds per video, and the whole call, with Keras and LiteRT.

    .venv/bin/python benchmarks/recognise.py --model results/demo/model
                     [--video resources/demo/videos/signing_sample.mp4] [--json FILE]

Runs `signpose recognise --verbose` on the same video twice in one call, once with Keras and
once with `--tflite`, each in a fresh process: the seconds per video it prints (clip, MediaPipe
Holistic, features, the model), the call's wall and CPU time (user + system) and its peak RSS
(the process and the children it waited for). Prints one JSON object and writes it, with the
run's date, commit and machine, to --json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import ROOT, save

SIGNPOSE = str(Path(sys.executable).parent / "signpose")
VIDEO = ROOT / "resources" / "demo" / "videos" / "signing_sample.mp4"


def recognise(model: Path, video: Path, tflite: bool) -> dict:
    command = [SIGNPOSE, "recognise", "--model", str(model), "--verbose", "--json"]
    command += ["--tflite"] * tflite + [str(video), str(video)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        # wait4: this call's own CPU time and peak RSS, not those of earlier children
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed:\n{stderr[-2000:]}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "per_video_s": [float(s) for s in re.findall(r": ([\d.]+) s$", stderr, re.M)],
        "top1": [json.loads(line)["predictions"][0]["gloss"] for line in stdout.splitlines()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a results/<dataset>/model")
    parser.add_argument("--video", type=Path, default=VIDEO)
    default_json = Path(tempfile.gettempdir()) / "signpose-recognise.json"
    parser.add_argument("--json", type=Path, default=default_json)
    args = parser.parse_args()
    figures = {
        "video": os.path.relpath(args.video, ROOT),
        "model": os.path.relpath(args.model, ROOT),
    }
    for name, tflite in (("keras", False), ("tflite", True)):
        figures[name] = recognise(args.model, args.video, tflite)
    print(json.dumps(figures, indent=1))
    save(args.json, "recognise", figures)


if __name__ == "__main__":
    main()
