"""Pose-stage throughput (issue #4): the workflow's pose jobs against the two alternatives.

    .venv/bin/python benchmarks/poses.py [--jobs 2] [--rounds 3] [--json FILE] [--keep DIR]

Builds 24 clips of WLASL size from real media in a temporary directory, then, one after another:
  (a) bare   OpenCV decode + Holistic.process, one process per core, a fresh graph per clip;
  (b) cli    pose-format's `videos_to_poses --num-workers N` over the same clips;
  (c) stage  `snakemake -j N` making the pose targets of a copy of this workflow whose metadata
             lists the clips as local files; the download jobs run first, untimed. The pose
             job also cuts its clip (one fused rule), so (c) includes that; "stage-clip" is (c)
             with the clip part's seconds (from the jobs' logs, over N slots) taken out.
Each round runs all three (in rotating order); the figures are medians over the rounds.
Frames per second = frames posed / wall time; frames per CPU second as a view that other load
on the machine barely moves ((c) counts the fork server and the jobs it forked). Also the fixed
cost of one pose process, part by part, the wall time of one features job started cold and
forked warm, and the peak RSS of the pose jobs (from their own logs). Prints a table, writes
JSON; about 5 minutes for 3 rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from provenance import save

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "data" / "media"
PYTHON = sys.executable
BIN = Path(PYTHON).parent

# (name, source, ffmpeg filter chain): flips, scales, crops, sub-ranges and reversals of real
# signing video, 256-720 px and 40-60 frames like WLASL's clips (median 57 frames).
TEST, SAMPLE = MEDIA / "pose_test_video.mp4", MEDIA / "pose_sample_video.mp4"
# The 9-frame sample played forwards and backwards three times: 54 frames.
PINGPONG = "split[f][b];[b]reverse[r];[f][r]concat=n=2,loop=loop=2:size=18,setpts=N/24/TB"
VARIANTS = [
    ("t540x720", TEST, "null"),
    ("tflip", TEST, "hflip"),
    ("t360x480", TEST, "scale=360:480"),
    ("t270x360", TEST, "scale=270:360"),
    ("tflip450", TEST, "hflip,scale=450:600"),
    ("tcrop540", TEST, "crop=540:540:0:60"),
    ("tcrop384", TEST, "crop=480:640:30:40,scale=288:384"),
    ("trev", TEST, "reverse"),
    ("trevflip", TEST, "reverse,hflip,scale=384:512"),
    ("thead", TEST, "trim=end_frame=44,setpts=PTS-STARTPTS"),
    ("ttail", TEST, "trim=start_frame=12,setpts=PTS-STARTPTS,scale=432:576"),
    ("tsquare", TEST, "crop=540:640:0:0,scale=256:304"),
    ("s720", SAMPLE, f"{PINGPONG},scale=720:404"),
    ("s512", SAMPLE, f"{PINGPONG},scale=512:288"),
    ("sflip", SAMPLE, f"{PINGPONG},hflip,scale=640:360"),
    ("scrop", SAMPLE, f"{PINGPONG},crop=720:720:280:0,scale=480:480"),
]
DEMO_VIDEOS = [f"demo{n:05d}.mp4" for n in (1, 3, 4, 14, 20, 25, 30, 34)]

# The bare loop of (a): what a user's own script does, and nothing else.
BARE_LOOP = """
import sys, cv2
from signpose.compat.mediapipe import tensorflow_blocked
with tensorflow_blocked():
    import mediapipe as mp
for path in sys.argv[1:]:
    cap = cv2.VideoCapture(path)
    with mp.solutions.holistic.Holistic(model_complexity=1) as holistic:
        while (frame := cap.read())[0]:
            holistic.process(cv2.cvtColor(frame[1], cv2.COLOR_BGR2RGB))
    cap.release()
"""


def make_clips(folder: Path) -> dict[str, int]:
    """The benchmark's clips as {path: decodable frames}."""
    from signpose.video import ffmpeg_exe, probe

    folder.mkdir(parents=True)
    for name, src, chain in VARIANTS:
        args = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(src)]
        args += ["-filter_complex", f"[0:v]{chain}[v]", "-map", "[v]", "-an", "-c:v", "libx264"]
        args += ["-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"]
        subprocess.run([*args, str(folder / f"{name}.mp4")], check=True)
    for name in DEMO_VIDEOS:
        shutil.copy(ROOT / "resources" / "demo" / "videos" / name, folder / name)
    return {str(p): probe(p).frames for p in sorted(folder.glob("*.mp4"))}


def balanced(clips: dict[str, int], n: int) -> list[list[str]]:
    """Clips dealt to n workers, longest first to the least loaded (as a scheduler would)."""
    shares: list[list[str]] = [[] for _ in range(n)]
    load = [0] * n
    for path, frames in sorted(clips.items(), key=lambda kv: -kv[1]):
        i = load.index(min(load))
        shares[i].append(path)
        load[i] += frames
    return shares


def timed(commands: list[list[str]], cwd: Path | None = None, env=None) -> dict:
    """Run commands side by side: wall time, CPU time and the largest peak RSS of any process.

    CPU seconds (user + system, children included) barely move when other work shares the
    cores, so they give a second, load-insensitive view of the same run.
    """
    start = time.perf_counter()
    procs = [subprocess.Popen(c, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for c in commands]  # fmt: skip
    cpu, rss = 0.0, 0.0
    for p in procs:
        _, status, usage = os.wait4(p.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{commands[0][:3]} failed: {p.stderr.read().decode()[-3000:]}")
        cpu += usage.ru_utime + usage.ru_stime
        rss = max(rss, usage.ru_maxrss / 1024)
    return {"wall_s": time.perf_counter() - start, "cpu_s": cpu, "peak_rss_mb": rss}


def posed_frames(folder: Path) -> int:
    from pose_format import Pose

    return sum(Pose.read(p.read_bytes()).body.data.shape[0] for p in folder.rglob("*.pose"))


def run_bare(clips: dict[str, int], jobs: int) -> dict:
    run = timed([[PYTHON, "-c", BARE_LOOP, *share] for share in balanced(clips, jobs)])
    return {**run, "frames": sum(clips.values())}


def run_cli(clips: dict[str, int], jobs: int, work: Path) -> dict:
    folder = work / "cli"
    folder.mkdir(parents=True)
    for path in clips:
        shutil.copy(path, folder)
    cmd = [str(BIN / "videos_to_poses"), "--format", "mediapipe", "-d", str(folder),
           "--num-workers", str(jobs), "--additional-config", "model_complexity=1"]  # fmt: skip
    return {**timed([cmd]), "frames": posed_frames(folder)}


def workflow_copy(clips: dict[str, int], work: Path) -> tuple[Path, list[str]]:
    """A copy of the workflow whose dataset is the clips, and its pose targets."""
    wf = work / "wf"
    shutil.copytree(ROOT / "workflow", wf / "workflow")
    shutil.copytree(ROOT / "config", wf / "config")
    shutil.copytree(ROOT / "envs", wf / "envs")
    shutil.copy(ROOT / "Snakefile", wf / "Snakefile")
    (wf / "data").mkdir()
    instances = []
    for i, path in enumerate(clips):
        vid = Path(path).stem
        shutil.copy(path, wf / "data" / f"{vid}.mp4")
        instances.append({"bbox": None, "fps": 25, "frame_end": -1, "frame_start": 1,
                          "instance_id": i, "signer_id": i, "source": "bench",
                          "split": "train", "url": f"{vid}.mp4", "variation_id": 0,
                          "video_id": vid})  # fmt: skip
    (wf / "data" / "bench.json").write_text(json.dumps([{"gloss": "x", "instances": instances}]))
    overlay = {"dataset": {"name": "bench", "metadata": "data/bench.json", "subset": None,
                           "allow_local_files": True}, "clip": {"crop": "off"}}  # fmt: skip
    (wf / "bench.yaml").write_text(yaml.safe_dump(overlay))
    return wf, [f"results/bench/poses/{Path(p).stem}.pose" for p in clips]


def snakemake(wf: Path, jobs: int, targets: list[str], *extra: str, env=None) -> dict:
    cmd = [str(BIN / "snakemake"), *targets, "-j", str(jobs), "--configfile", "bench.yaml"]
    return timed([[*cmd, *extra]], cwd=wf, env=env)


def run_stage(clips: dict[str, int], jobs: int, work: Path) -> dict:
    """(c), with the fork server's CPU (it forks the jobs, so they are not Snakemake's children).

    A TMPDIR of its own gives the run a fresh fork server, started by its first job (that
    start is part of the timed run) and found afterwards through the log it writes.
    """
    wf, targets = workflow_copy(clips, work)
    env = {**os.environ, "TMPDIR": str(work / "tmp")}
    (work / "tmp").mkdir()
    snakemake(wf, jobs, targets, "--until", "download", env=env)
    run = snakemake(wf, jobs, targets, env=env)
    run["cpu_s"] += server_cpu_s(work / "tmp")
    results = wf / "results" / "bench"
    jobs_logs = [job_figures(p.read_text()) for p in (results / "logs" / "pose").glob("*.log")]
    return {
        **run,
        "frames": posed_frames(results / "poses"),
        "peak_rss_mb": max(j["peak_rss_mb"] for j in jobs_logs),
        "jobs": len(jobs_logs),
        "pose_part_s": sum(j["pose_s"] for j in jobs_logs),
        "clip_part_s": sum(j["clip_s"] for j in jobs_logs),
    }


def server_cpu_s(tmpdir: Path) -> float:
    """CPU seconds of the fork servers under `tmpdir`, their workers (alive at the end, so
    not yet in the server's children's time) and everything those ran and reaped (ffmpeg)."""
    pids = []
    for log in tmpdir.glob("signpose-*/*.log"):
        server = re.search(r"fork server (\d+) listening", log.read_text()).group(1)
        pids += [server, *Path(f"/proc/{server}/task/{server}/children").read_text().split()]
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def job_figures(log_text: str) -> dict:
    """A pose job's log: its clip part's seconds, its pose part's seconds and peak RSS."""
    clip = re.search(r"seconds: ([\d.]+)\n", log_text)
    pose = re.search(r"seconds: ([\d.]+) peak_rss_mb: ([\d.]+)", log_text)
    if clip is None or pose is None:
        raise RuntimeError(f"a pose job's log lacks its figures:\n{log_text[-1000:]}")
    return {"clip_s": float(clip.group(1)), "pose_s": float(pose.group(1)),
            "peak_rss_mb": float(pose.group(2))}  # fmt: skip


def probe(clip: str) -> dict:
    """One pose process's fixed cost, part by part (run in a fresh interpreter)."""
    t0 = time.perf_counter()
    from signpose import video
    from signpose.compat import mediapipe as mp_compat

    t1 = time.perf_counter()
    mp = mp_compat.import_mediapipe()
    t2 = time.perf_counter()
    graph = mp.solutions.holistic.Holistic(model_complexity=1)
    t3 = time.perf_counter()
    frames = video.rgb_frames(clip)
    graph.process(next(frames))
    t4 = time.perf_counter()
    per_frame = []
    for frame in frames:
        t = time.perf_counter()
        graph.process(frame)
        per_frame.append(time.perf_counter() - t)
    steady = statistics.median(per_frame)
    return {"import_signpose_cv2_s": t1 - t0, "import_mediapipe_s": t2 - t1,
            "graph_s": t3 - t2, "first_frame_extra_s": t4 - t3 - steady,
            "steady_frame_s": steady}  # fmt: skip


def fixed_costs(clip: str, repeats: int = 3) -> dict:
    """Medians over fresh processes: interpreter, imports, graph, first frame."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([PYTHON, "-c", "pass"], check=True)
        interpreter = time.perf_counter() - start
        out = subprocess.run([PYTHON, __file__, "--probe", clip], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        runs.append({"interpreter_s": interpreter, **json.loads(out.splitlines()[-1])})
    return medians(runs)


def job_start(pose: Path, work: Path, repeats: int = 5) -> dict:
    """Wall seconds of one features job over a shard of one instance, which is almost all
    start-up: cold and forked warm."""
    folder = work / "job-start"
    folder.mkdir()
    env = {**os.environ, "TMPDIR": str(folder)}
    script = ROOT / "workflow" / "scripts" / "instance.py"
    from signpose.config import with_defaults

    options = json.dumps(with_defaults({}, "features"))

    def once(i: int, server: str) -> float:
        files = {"pose": str(pose), "features": f"{i}.npy", "clean_pose": f"{i}.pose"}
        named = {"log": f"{i}.log", "video_ids": json.dumps(["x"]), "files": json.dumps(files),
                 "qc": f"{i}.jsonl", "options": options}  # fmt: skip
        args = ["features", *(a for k, v in named.items() for a in (f"--{k}", v))]
        start = time.perf_counter()
        subprocess.run([PYTHON, str(script), *args], cwd=folder, check=True,
                       env={**env, "SIGNPOSE_FORKSERVER": server})  # fmt: skip
        return time.perf_counter() - start

    once(0, "1")  # starts the server
    cold = statistics.median(once(i, "0") for i in range(repeats))
    warm = statistics.median(once(i, "1") for i in range(repeats))
    return {"features_job_cold_s": cold, "features_job_warm_s": warm}


RUNS = ("bare", "cli", "stage", "stage-clip")
RUNNERS = {"bare": lambda clips, jobs, _work: run_bare(clips, jobs), "cli": run_cli,
           "stage": run_stage}  # fmt: skip


def medians(runs) -> dict:
    """Each figure's median over the runs (dicts with the same keys)."""
    runs = list(runs)
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def summarise(results: dict) -> None:
    """Frames per wall and per CPU second, and the ratios the issue sets goals for."""
    stage = results["stage"]
    wall = stage["wall_s"] - stage["clip_part_s"] / results["jobs"]
    # The clip part's CPU is not logged apart, so stage-clip has wall figures only.
    results["stage-clip"] = {"frames": stage["frames"], "wall_s": wall, "cpu_s": None,
                             "peak_rss_mb": stage["peak_rss_mb"]}  # fmt: skip
    for r in (results[key] for key in RUNS):
        r["fps"] = r["frames"] / r["wall_s"]
        r["frames_per_cpu_s"] = r["frames"] / r["cpu_s"] if r["cpu_s"] else None
    ratios = results["ratios"] = {}
    for base in ("bare", "cli"):
        ratios[f"stage/{base}"] = stage["fps"] / results[base]["fps"]
        ratios[f"stage/{base} (cpu)"] = (
            stage["frames_per_cpu_s"] / results[base]["frames_per_cpu_s"]
        )
        ratios[f"stage-clip/{base}"] = results["stage-clip"]["fps"] / results[base]["fps"]


def table(results: dict) -> str:
    rows = [
        "| run | frames | wall s | fps | CPU s | frames/CPU s | peak RSS MB/process |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in RUNS:
        r = results[key]
        cpu = "- | -" if r["cpu_s"] is None else f"{r['cpu_s']:.1f} | {r['frames_per_cpu_s']:.1f}"
        rows.append(
            f"| {key} | {r['frames']} | {r['wall_s']:.1f} | {r['fps']:.1f} | {cpu} | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    rows.append("\ngoals: stage/bare >= 0.85, stage/cli >= 1.0")
    rows += [f"  {k:22s} {v:.2f}" for k, v in results["ratios"].items()]
    rows.append("\nfixed cost of one pose process (median of 3 fresh processes), and one")
    rows.append("features job started cold and forked by the warm server (median of 5):")
    rows += [f"  {k:24s} {v * 1000:7.0f} ms" for k, v in results["fixed_cost"].items()]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path(tempfile.gettempdir()) / "poses.json")
    parser.add_argument("--rounds", type=int, default=3, help="medians over this many")
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe)))
        return
    with tempfile.TemporaryDirectory(prefix="pose-bench-") as tmp:
        work = args.keep or Path(tmp)
        clips = make_clips(work / "clips")
        frames = sorted(clips.values())
        print(f"{len(clips)} clips, {sum(frames)} frames, median {statistics.median(frames)}")
        rounds = []
        for i in range(args.rounds):  # the order rotates, so slow drift hits every run alike
            order = [*RUNNERS][i % 3 :] + [*RUNNERS][: i % 3]
            done = {key: RUNNERS[key](clips, args.jobs, work / f"{key}{i}") for key in order}
            rounds.append(done)
            fps = ", ".join(f"{k} {r['frames'] / r['wall_s']:.1f} fps" for k, r in done.items())
            print(f"round {i + 1}: {fps}", flush=True)
        results = {"clips": {Path(p).name: n for p, n in clips.items()}, "jobs": args.jobs,
                   "rounds": rounds}  # fmt: skip
        results.update({key: medians(r[key] for r in rounds) for key in RUNNERS})
        summarise(results)
        results["fixed_cost"] = {
            **fixed_costs(str(work / "clips" / "t540x720.mp4")),
            **job_start(next((work / f"stage{args.rounds - 1}").rglob("poses/*.pose")), work),
        }
    save(args.json, "poses", results)
    print(table(results))
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
