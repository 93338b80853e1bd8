"""The acquisition figure: 40 sources, 25% dead, 10% flaky, 5% never working, through
Snakemake, twice.

    .venv/bin/python benchmarks/acquisition.py [--cores 2] [--out /tmp/signpose-acquisition]

Starts the misbehaving loopback server of the tests, writes a 40-instance WLASL-shaped
metadata file (the demo's records, each with its own source URL on that server): 10 dead
sources (404, 410, an HTML page, undecodable bytes), 4 that fail once (429, 503, a connection
dropped mid-file), 2 that always send a short body (they end as `gave_up` tombstones after the
last retry) and 24 good demo videos. Runs Snakemake, without --keep-going, up to every source
and clip, counts how each source ended, the requests and the retries (from the files and the
server's request log: a direct file costs one request per attempt), then runs Snakemake again
and checks that the second run asks the server for nothing. Prints a table and writes
acquisition.json beside the run.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from provenance import save  # noqa: E402

from httpserver import Media, MisbehavingServer, request_target  # noqa: E402
from signpose import tombstone  # noqa: E402
from signpose.sites import source_id  # noqa: E402

DEMO = ROOT / "resources" / "demo"
# route on the loopback server -> how many of the 40 sources take it
DEAD = {"/gone404.mp4": 3, "/gone410.mp4": 3, "/page.mp4": 2, "/noise.mp4": 2}
FLAKY = {"/flaky429.mp4": 2, "/flaky503.mp4": 1, "/drop-then-ok.mp4": 1}
NEVER = {"/truncated.mp4": 2}  # Content-Length promises 100 kB more than is sent, every time
RETRIES = 3
N_SOURCES = 40


def demo_records() -> list[dict]:
    """The demo's instances, each with its gloss, in file order."""
    entries = json.loads((DEMO / "WLASL_demo.json").read_text())
    return [{**inst, "gloss": e["gloss"]} for e in entries for inst in e["instances"]
            if (DEMO / inst["url"]).is_file()]  # fmt: skip


def metadata(server: MisbehavingServer) -> tuple[list[dict], dict[str, str]]:
    """WLASL-shaped metadata for N_SOURCES instances, and the URL of each source id."""
    records = demo_records()[:N_SOURCES]
    routes = [path for path, n in {**DEAD, **FLAKY, **NEVER}.items() for _ in range(n)]
    routes += [f"/files/{Path(r['url']).name}" for r in records[len(routes) :]]
    by_gloss: dict[str, list[dict]] = collections.defaultdict(list)
    urls = {}
    for rec, route in zip(records, routes, strict=True):
        url = server.unique(route)
        urls[source_id(url)] = url
        by_gloss[rec.pop("gloss")].append({**rec, "url": url})
    return [{"gloss": g, "instances": insts} for g, insts in by_gloss.items()], urls


def snakemake(workdir: Path, targets: list[str], cores: int) -> tuple[float, str]:
    configs = [str(ROOT / "config" / "config.yaml"), str(workdir / "overlay.yaml")]
    command = [str(Path(sys.executable).parent / "snakemake"), *targets, "--cores", str(cores),
               "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--configfile", *configs]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"snakemake failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, proc.stdout + proc.stderr


def outcome(path: Path, hits: int) -> str:
    """How one source ended: ok, ok after a retry, or dead with its reason."""
    tomb = tombstone.read(path)
    if tomb is not None:
        return f"dead: {tomb.reason}"
    # a direct file costs one request per attempt: more means an earlier attempt failed
    return "ok after a retry" if hits > 1 else "ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/signpose-acquisition"))
    args = parser.parse_args()
    workdir = args.out.resolve()
    if workdir.exists() and any(workdir.iterdir()):
        sys.exit(f"{workdir} is not empty: pass an empty or new --out")
    workdir.mkdir(parents=True, exist_ok=True)
    files = {p.name: p.read_bytes() for p in (DEMO / "videos").glob("*.mp4")}
    media = Media(mp4=files["demo00001.mp4"], noise=bytes(range(256)) * 80, files=files)
    with MisbehavingServer(media) as server:
        meta, urls = metadata(server)
        (workdir / "meta.json").write_text(json.dumps(meta))
        download = {"allow_private_hosts": True, "timeout_s": 5, "retries": RETRIES,
                    "backoff_s": 1}  # fmt: skip
        overlay = {"dataset": {"name": "bench", "metadata": "meta.json"},
                   "results_dir": "results", "download": download}  # fmt: skip
        (workdir / "overlay.yaml").write_text(json.dumps(overlay))
        vids = [inst["video_id"] for entry in meta for inst in entry["instances"]]
        targets = [f"results/sources/{sid}.mp4" for sid in urls]
        targets += [f"results/clips/{vid}.mp4" for vid in vids]

        first_s, _ = snakemake(workdir, targets, args.cores)
        requests_first = sum(media.hits.values())
        clips = collections.Counter(
            "tombstone" if tombstone.read(workdir / "results" / "clips" / f"{vid}.mp4") else "video"
            for vid in vids
        )
        hits = {sid: media.hits[request_target(url)] for sid, url in urls.items()}
        ends = {sid: outcome(workdir / "results" / "sources" / f"{sid}.mp4", hits[sid])
                for sid in urls}  # fmt: skip
        second_s, second_log = snakemake(workdir, targets, args.cores)
        requests_second = sum(media.hits.values()) - requests_first

    counts = collections.Counter(ends.values())
    by_route = collections.defaultdict(collections.Counter)
    for sid, url in urls.items():
        route = request_target(url).split("?")[0]
        by_route["/files/*.mp4" if route.startswith("/files/") else route][ends[sid]] += 1
    result = {
        "sources": len(urls),
        "planned": {
            "dead": sum(DEAD.values()),
            "flaky": sum(FLAKY.values()),
            "never_working": sum(NEVER.values()),
            "good": len(urls) - sum(DEAD.values()) - sum(FLAKY.values()) - sum(NEVER.values()),
        },
        "retries_allowed": RETRIES,
        # one request per attempt: every request after a source's first is a retry
        "retries": sum(n - 1 for n in hits.values() if n > 1),
        "requests_per_source": dict(sorted(collections.Counter(hits.values()).items())),
        "ended": dict(sorted(counts.items())),
        "by_route": {route: dict(c) for route, c in sorted(by_route.items())},
        "first_run_s": round(first_s, 1),
        "first_run_requests": requests_first,
        "clips": dict(sorted(clips.items())),
        "second_run_s": round(second_s, 1),
        "second_run_requests": requests_second,
        "second_run_nothing_to_do": "Nothing to be done" in second_log,
        "cores": args.cores,
    }
    save(workdir / "acquisition.json", "acquisition", result)
    print(f"{'how the source ended':<28}{'sources':>8}")
    for end, n in sorted(counts.items()):
        print(f"{end:<28}{n:>8}")
    print(f"{'total':<28}{sum(counts.values()):>8}")
    print(f"retries: {result['retries']}; requests per source -> sources: "
          f"{result['requests_per_source']}")  # fmt: skip
    print(f"clips: {clips['video']} videos, {clips['tombstone']} tombstones")
    print(f"first run: {first_s:.1f} s, {requests_first} requests to the server")
    print(f"second run: {second_s:.1f} s, {requests_second} requests, "
          f"nothing to be done: {result['second_run_nothing_to_do']}")  # fmt: skip
    print(f"written: {workdir / 'acquisition.json'}")


if __name__ == "__main__":
    main()
