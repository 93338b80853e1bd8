"""The README tables that quote a committed raw result, made from that result.

    .venv/bin/python benchmarks/tables.py            # rewrite every traced table in place
    .venv/bin/python benchmarks/tables.py --check    # list the tables that differ, exit 1

A traced table is the Markdown table right after a comment line

    <!-- table: NAME results/<file>.json [results/<file>.json ...] -->

in README.md or benchmarks/README.md. NAME is a key of RENDER, whose function makes the table
from the `figures` of the named files (committed under benchmarks/results/). After rerunning a
benchmark, commit its result, point the comment at it and run this script;
tests/test_benchmark_figures.py fails while a table is not its rendering.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = (ROOT / "README.md", ROOT / "benchmarks" / "README.md")
MARKER = re.compile(r"^<!-- table: (\S+)((?: results/[\w.-]+\.json)+) -->$", re.M)


def load(name: str) -> dict:
    """The figures of a committed result file."""
    return json.loads((RESULTS / name).read_text())["figures"]


def markdown(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(share: float) -> str:
    return f"{100 * share:.1f}%"


ROUTES = {
    "/files/*.mp4": "a demo video",
    "/flaky429.mp4": "HTTP 429 once, then the video",
    "/flaky503.mp4": "HTTP 503 once, then the video",
    "/drop-then-ok.mp4": "the connection dropped mid-file once, then the video",
    "/gone404.mp4": "HTTP 404",
    "/gone410.mp4": "HTTP 410",
    "/page.mp4": "an HTML page with status 200",
    "/noise.mp4": "undecodable bytes",
    "/truncated.mp4": "a body 100 kB shorter than its Content-Length, every time",
}


def ends(counts: dict[str, int]) -> str:
    return ", ".join(f"{end} × {n}" for end, n in counts.items())


def acquisition(f: dict) -> str:
    routes = sorted(f["by_route"].items(), key=lambda kv: list(ROUTES).index(kv[0]))
    rows = [[ROUTES[route], sum(c.values()), ends(c)] for route, c in routes]
    rows.append(["**total**", f"**{f['sources']}**", ends(f["ended"])])
    return markdown(["what the server sends", "sources", "how they ended"], rows)


def acquisition_runs(f: dict) -> str:
    clips = f"{f['clips'].get('video', 0)} videos, {f['clips'].get('tombstone', 0)} tombstones"
    by_count = ", ".join(f"{k}: {n}" for k, n in f["requests_per_source"].items())
    nothing = "yes" if f["second_run_nothing_to_do"] else "**no**"
    rows = [["first", f"{f['first_run_s']:.1f}", f["first_run_requests"], clips, by_count, ""],
            ["second (the same command)", f"{f['second_run_s']:.1f}", f["second_run_requests"],
             "", "", nothing]]  # fmt: skip
    header = ["run", "wall s", "requests to the server", "clips", "requests each: sources",
              '"Nothing to be done"']  # fmt: skip
    return markdown(header, rows)


POSE_RUNS = {
    "bare": "(a) bare: OpenCV + `Holistic.process`, 2 processes",
    "cli": "(b) `videos_to_poses --num-workers 2`",
    "stage": "(c) `snakemake -j 2`, clip + pose, fork server",
}


def poses(f: dict) -> str:
    rows = [[label, r["frames"], f"{r['wall_s']:.1f}", f"**{r['fps']:.1f}**", f"{r['cpu_s']:.1f}",
             f"{r['frames_per_cpu_s']:.1f}", f"{r['peak_rss_mb']:.0f}"]
            for key, label in POSE_RUNS.items() for r in [f[key]]]  # fmt: skip
    estimate = f["stage-clip"]
    rows.append(["(c) without the clip part: **an estimate**, not a run (wall − the jobs' "
                 "logged clip seconds / 2 slots)", estimate["frames"],
                 f"{estimate['wall_s']:.1f}", f"{estimate['fps']:.1f}", "", "", ""])  # fmt: skip
    header = ["run (medians of the rounds)", "frames", "wall s", "fps", "CPU s", "frames / CPU s",
              "peak RSS MB per process"]  # fmt: skip
    return markdown(header, rows)


def pose_ratios(f: dict) -> str:
    r = f["ratios"]
    rows = [[f"(c)/({'a' if base == 'bare' else 'b'}), wall", goal, f"**{r[f'stage/{base}']:.2f}**",
             f"{r[f'stage/{base} (cpu)']:.2f}", f"{r[f'stage-clip/{base}']:.2f}"]
            for base, goal in (("bare", "≥ 0.85"), ("cli", "≥ 1.0"))]  # fmt: skip
    return markdown(["ratio", "goal", "wall", "CPU", "without the clip part (estimate)"], rows)


POSE_FIXED = {
    "interpreter_s": "Python interpreter start",
    "import_signpose_cv2_s": "import numpy, OpenCV and signpose",
    "import_mediapipe_s": "import mediapipe (lean import)",
    "graph_s": "build the Holistic graph",
    "first_frame_extra_s": "first frame, beyond a steady one",
    "steady_frame_s": "a steady frame",
    "features_job_cold_s": "one features job (a shard of one), cold process",
    "features_job_warm_s": "one features job (a shard of one), forked worker",
}


def pose_fixed(f: dict) -> str:
    fixed = f["fixed_cost"]
    return markdown(["fixed cost", "ms"], [[label, f"{1000 * fixed[k]:.0f}"]
                                          for k, label in POSE_FIXED.items()])  # fmt: skip


def warm_jobs(f: dict) -> str:
    fixed = f["fixed_cost"]
    cold, warm = fixed["features_job_cold_s"], fixed["features_job_warm_s"]
    rows = [["one features job (a shard of one), wall", f"{cold:.2f} s", f"**{warm:.2f} s**"]]
    return markdown(["(`benchmarks/poses.py`)", "cold process", "fork server"], rows)


def training_input(*runs: dict) -> str:
    """One row per model, batch and pipeline; each figure as run 1 / run 2 / ..."""
    keyed = [{(r["model"], r["batch_size"], r["pipeline"]): r for r in f["rows"]} for f in runs]

    def both(key: tuple, field: str, fmt: Callable[[float], str]) -> str:
        return " / ".join(fmt(k[key][field]) for k in keyed)

    rows, spread = [], {"data_share": 0.0, "stall_share": 0.0}
    for key in keyed[0]:
        for field in spread:
            values = [k[key][field] for k in keyed]
            spread[field] = max(spread[field], max(values) - min(values))
        rows.append([*key, both(key, "input_steps_per_s", "{:.1f}".format),
                     both(key, "model_steps_per_s", "{:.2f}".format),
                     both(key, "train_steps_per_s", "{:.2f}".format),
                     both(key, "data_share", pct), both(key, "stall_share", pct)])  # fmt: skip
    rows.append(["**largest difference between the runs**", "", "", "", "", "",
                 f"**{100 * spread['data_share']:.1f} points**",
                 f"**{100 * spread['stall_share']:.1f} points**"])  # fmt: skip
    header = ["model", "batch", "pipeline", "input steps/s", "model steps/s", "train steps/s",
              "data share", "stall share"]  # fmt: skip
    return markdown(header, rows)


def rgb_input(f: dict) -> str:
    shape = f"{f['frames']} x {f['size']} x {f['size']} x 3 uint8"
    model_s = f["train_s_per_step_model_only"]
    rows = [
        ["per clip: decode and sample / np.load", f"{1000 * f['decode_s_per_clip']:.0f} ms",
         f"{1000 * f['load_s_per_clip']:.2f} ms"],
        [f"disk per 1,000 clips ({shape})", "0 (the clips exist already)",
         f"{f['npy_gb_per_1000_clips']:.3f} GB"],
        [f"input side alone, per batch of {f['batch']}",
         f"{f['input_s_per_batch_decode_in_pipeline']:.3f} s",
         f"{f['input_s_per_batch_frames_target']:.3f} s"],
        [f"training step (the model alone, on one ready batch: {model_s:.2f} s)",
         f"{f['train_s_per_step_decode_in_pipeline']:.2f} s",
         f"{f['train_s_per_step_frames_target']:.2f} s"],
    ]  # fmt: skip
    return markdown(["figure", "decode in the pipeline", "frames target"], rows)


def overhead(f: list[dict]) -> str:
    rows = []
    for r in f:
        walls = sorted(run["wall_s"] for run in r["runs"])
        used = r["workflow"] == "signpose" and r["setting"] == "greedy"
        setting = f"**{r['setting']}** (`profiles/default`)" if used else r["setting"]
        rows.append([r["workflow"], setting, f"{r['jobs']:,}", f"{walls[len(walls) // 2]:.1f} s",
                     f"{r['plan']['wall_s']:.1f} s", f"{r['per_job_ms']:.1f} ms"])  # fmt: skip
    return markdown(["workflow", "setting", "jobs", "wall", "planning", "per job"], rows)


BUNDLING_MODES = {
    "group": "job groups (the profile)",
    "array": "array jobs (`--slurm-array-jobs`), `--jobs`/`downloads` raised",
    "array-capped": "array jobs under the profile's limits",
    "single": "one SLURM job per Snakemake job",
}


def slurm_bundling(f: dict) -> str:
    rows = [[BUNDLING_MODES[r["mode"]], r["result"], r["snakemake_jobs"], r["sbatch"],
             r["slurm_jobs"], f"{r['wall_s']:.0f}"] for r in f["demo"]]  # fmt: skip
    header = ["mode", "result", "Snakemake jobs", "sbatch calls", "SLURM job records", "wall s"]
    return markdown(header, rows)


def slurm_wlasl2000(f: dict) -> str:
    p = f["wlasl2000"]
    rows = [[BUNDLING_MODES[mode], f"{p['sbatch'][mode]:,}", f"{p['slurm_jobs'][mode]:,}"]
            for mode in p["sbatch"]]  # fmt: skip
    parts = ", ".join(f"{n:,} {what}" for what, n in p["group_parts"].items())
    rows[0][0] += f" ({parts})"
    rows[1][1] += " (at most 1,000 tasks per sbatch call)"
    title = (f"WLASL2000: {p['instances']:,} instances, {p['sources']:,} sources, "
             f"{p['snakemake_jobs']:,} Snakemake jobs")  # fmt: skip
    return markdown([title, "sbatch calls", "SLURM job records"], rows)


def recognise(f: dict) -> str:
    rows = []
    for name, label in (("keras", "Keras"), ("tflite", "`--tflite` (LiteRT, no TensorFlow)")):
        r = f[name]
        per_video = " and ".join(f"{s:.2f}" for s in r["per_video_s"])
        rows.append([label, per_video, f"{r['wall_s']:.1f} s", f"{r['cpu_s']:.1f} s",
                     f"{r['peak_rss_mb'] / 1024:.2f} GB"])  # fmt: skip
    header = ["the same video twice in one call", "seconds per video", "whole call, wall", "CPU",
              "peak RSS"]  # fmt: skip
    return markdown(header, rows)


RENDER: dict[str, Callable[..., str]] = {
    "acquisition": acquisition,
    "acquisition-runs": acquisition_runs,
    "poses": poses,
    "pose-ratios": pose_ratios,
    "pose-fixed-cost": pose_fixed,
    "warm-jobs": warm_jobs,
    "training-input": training_input,
    "rgb-input": rgb_input,
    "overhead": overhead,
    "slurm-bundling": slurm_bundling,
    "slurm-wlasl2000": slurm_wlasl2000,
    "recognise": recognise,
}


def traced(text: str) -> Iterator[tuple[str, list[str], str, str, tuple[int, int]]]:
    """Per marker: its name, its result files, the table as written (the lines right after the
    marker that start with "|"), the table made from the files, and the written table's span."""
    for m in MARKER.finditer(text):
        files = [f.removeprefix("results/") for f in m[2].split()]
        start = m.end() + 1
        lines = list(itertools.takewhile(lambda line: line.startswith("|"),
                                         text[start:].splitlines(keepends=True)))  # fmt: skip
        written = "".join(lines).rstrip("\n")
        made = RENDER[m[1]](*(load(f) for f in files))
        yield m[1], files, written, made, (start, start + len(written))


def rewrite(text: str) -> str:
    """`text` with every traced table replaced by (or, after a bare marker, given) its making."""
    out, pos = [], 0
    for _, _, written, made, (start, end) in traced(text):
        out += [text[pos:start], made, "" if written else "\n"]
        pos = end
    return "".join(out) + text[pos:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on a diff")
    args = parser.parse_args()
    stale = []
    for doc in DOCS:
        text = doc.read_text()
        stale += [f"{doc.relative_to(ROOT)}: {name}" for name, _, written, made, _ in traced(text)
                  if written != made]  # fmt: skip
        if not args.check:
            doc.write_text(rewrite(text))
    print("\n".join(stale) or "every traced table is its result")
    sys.exit(1 if stale and args.check else 0)


if __name__ == "__main__":
    main()
