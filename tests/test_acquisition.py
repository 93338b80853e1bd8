"""Acquisition through real Snakemake runs against the misbehaving loopback server.

The library tests (test_download.py) call fetch_source directly; these run `snakemake` on small
metadata files so that what only the workflow does is exercised: Snakemake's retries after a
transient failure, tombstones flowing into qc/ and the tables, clean second runs, the
`downloads` resource capping parallel downloads, retrying dead sources on purpose, hostile
metadata, and the cookies file staying out of every output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT, decoded_frames
from signpose import tables, tombstone
from signpose.sites import source_id

sys.path.insert(0, str(Path(__file__).parent))
from httpserver import Media, MisbehavingServer, request_target  # noqa: E402

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
DEMO_VIDEO = ROOT / "resources" / "demo" / "videos" / "demo00001.mp4"
TABLES = ["results/tables/instances.csv", "results/tables/failures.csv"]


def snakemake(
    workdir: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Snakemake on the repository's workflow, with `workdir` as its working directory.

    Targets must come first in `args`: --configfile takes every word after it.
    """
    configs = [str(ROOT / "config" / "config.yaml"), str(workdir / "overlay.yaml")]
    command = [SNAKEMAKE, *args, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--configfile", *configs]  # fmt: skip
    proc = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False,
                          env=env)  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def record(video_id: str, url: str, gloss: str = "sign", frames: tuple[int, int] = (1, -1)) -> dict:
    start, end = frames
    return {"gloss": gloss, "instances": [{"bbox": None, "fps": 25, "frame_start": start,
            "frame_end": end, "split": "train", "url": url, "video_id": video_id}]}  # fmt: skip


def setup_run(
    workdir: Path, records: list[dict], dataset: dict | None = None,
    train: dict | None = None, **download: object,
) -> None:  # fmt: skip
    """Metadata and a config overlay (a file: --config would turn numbers into strings)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "meta.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    options = {"allow_private_hosts": True, "timeout_s": 2, "retries": 2, "backoff_s": 0}
    overlay = {"dataset": {"name": "acq", "metadata": "meta.json", **(dataset or {})},
               "results_dir": "results", "download": {**options, **download},
               "train": train or {}}  # fmt: skip
    (workdir / "overlay.yaml").write_text(json.dumps(overlay))


def source(workdir: Path, url: str) -> Path:
    return workdir / "results" / "sources" / f"{source_id(url)}.mp4"


def processes_in(folder: Path) -> list[str]:
    """Command lines of the live processes that work in `folder` or name it."""
    mark = os.fsencode(folder)
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cwd = os.fsencode(os.readlink(proc / "cwd"))
            args = (proc / "cmdline").read_bytes()
        except OSError:
            continue  # not a process, gone, or a zombie
        if cwd.startswith(mark) or mark in args:
            found.append(args.replace(b"\0", b" ").decode(errors="replace"))
    return found


def tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def server() -> Iterator[MisbehavingServer]:
    with MisbehavingServer(Media(mp4=DEMO_VIDEO.read_bytes(), slow_s=1.0)) as srv:
        yield srv


# ---------------------------------------------------------------------------------------------
# one run with every kind of source, hostile metadata and a cookies file


GOOD = {"v429": "/flaky429.mp4", "v503": "/flaky503.mp4", "vdrop": "/drop-then-ok.mp4"}
DEAD = {"v404": ("/gone404.mp4", "http_404"), "v410": ("/gone410.mp4", "http_410"),
        "vhtml": ("/page.mp4", "not_video")}  # fmt: skip
GLOSSES = {"v429": "../../etc", "v503": "ünïcödé 手話 \"quoted\" 'single'", "vdrop": "$(id)"}
COOKIE_VALUE = "sp-cookie-value-7f3a9"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, server: MisbehavingServer) -> dict:
    """Snakemake up to the tables: three flaky sources, three dead, one hostile URL, cookies."""
    top = tmp_path_factory.mktemp("acquisition")
    canary = top / "canary"  # where the hostile URL's shell commands would write
    canary.mkdir()
    jar = top / "SECRET-jar" / "cookies.txt"
    jar.parent.mkdir()
    jar.write_text(f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t2147483647\t"
                   f"sp_test\t{COOKIE_VALUE}\n")  # fmt: skip
    hostile = (f"/x;rm -rf {canary};touch {canary}/semicolon'\"$(touch {canary}/dollar)"
               f"`touch {canary}/backtick`.mp4")  # fmt: skip
    urls = {vid: server.unique(path) for vid, path in GOOD.items()}
    urls |= {vid: server.unique(path) for vid, (path, _) in DEAD.items()}
    urls["vshell"] = server.url(hostile)
    records = [record(vid, url, GLOSSES.get(vid, "sign")) for vid, url in urls.items()]
    workdir = top / "work"
    setup_run(workdir, records, cookies_file=str(jar))
    before = tree(top)
    snakemake(workdir, *TABLES, "--cores", "2")
    return {"workdir": workdir, "top": top, "canary": canary, "jar": jar, "urls": urls,
            "before": before}  # fmt: skip


@pytest.mark.slow
def test_transient_failures_succeed_on_a_snakemake_retry(run, server):
    for vid in GOOD:
        url = run["urls"][vid]
        target = source(run["workdir"], url)
        assert tombstone.read(target) is None
        assert target.read_bytes() == server.media.mp4  # an h264 mp4 is kept as it came
        assert decoded_frames(target) > 10
        log = (run["workdir"] / "results" / "logs" / "download" / f"{target.stem}.log").read_text()
        assert "attempt 2" in log  # the log of the attempt that succeeded
    hits = server.media.hits
    # one request per attempt for a direct file: the refused or broken one, then the download
    for vid, expected in (("v429", 2), ("v503", 2), ("vdrop", 2)):
        assert hits[request_target(run["urls"][vid])] == expected, vid


@pytest.mark.slow
def test_dead_sources_are_tombstones_asked_once(run, server):
    for vid, (_, reason) in DEAD.items():
        url = run["urls"][vid]
        tomb = tombstone.read(source(run["workdir"], url))
        assert (tomb.stage, tomb.reason) == ("download", reason)
        assert server.media.hits[request_target(url)] == 1  # a dead link is not retried


@pytest.mark.slow
def test_qc_and_tables_carry_the_reason(run):
    results = run["workdir"] / "results"
    instances = tables.read_instances(results / "tables" / "instances.csv").set_index("video_id")
    failures = tables.read_instances(results / "tables" / "failures.csv").set_index("video_id")
    dead = {vid: reason for vid, (_, reason) in DEAD.items()} | {"vshell": "http_404"}
    shards = sorted((results / "qc" / "shards").glob("*.jsonl"))
    records = {r["video_id"]: r for path in shards for r in tables.qc_records(path)}
    for vid, reason in dead.items():
        qc = records[vid]
        assert (qc["status"], qc["stage"], qc["reason"]) == ("dead", "download", reason)
        row = instances.loc[vid]
        assert (row["status"], row["reason"], bool(row["downloaded"])) == ("dead", reason, False)
        assert failures.loc[vid, "reason"] == reason
    for vid in GOOD:
        assert bool(instances.loc[vid, "downloaded"])
        assert instances.loc[vid, "stage"] != "download"
    # hostile glosses come back exactly as written, as data
    for vid, gloss in GLOSSES.items():
        assert instances.loc[vid, "gloss"] == gloss
    assert instances.loc["vshell", "url"] == run["urls"]["vshell"]


@pytest.mark.slow
def test_second_run_has_nothing_to_do(run, server):
    requests = sum(server.media.hits.values())
    proc = snakemake(run["workdir"], *TABLES, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert sum(server.media.hits.values()) == requests


@pytest.mark.slow
def test_hostile_metadata_writes_only_inside_the_results(run, server):
    # the URL reached the server as one literal request, not as shell commands
    assert request_target(run["urls"]["vshell"]) in server.media.hits
    assert not any(run["canary"].iterdir())
    workdir = run["workdir"]
    new = tree(run["top"]) - run["before"]
    inside = (workdir / "results", workdir / ".snakemake")
    assert all(p.is_relative_to(inside[0]) or p.is_relative_to(inside[1]) for p in new)
    # glosses never become file names: every name under results is an id or a fixed name
    names = {p.name for p in (workdir / "results").rglob("*")}
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+(\.[a-z0-9]+)?", name) for name in names), names
    # nothing keeps running but the fork server that ran the pose and features jobs (and its
    # idle worker), which leaves by itself
    left = processes_in(run["top"])
    assert all("-m signpose.forkserver " in args for args in left), left


@pytest.mark.slow
def test_cookies_are_used_but_never_recorded(run, server):
    sent = [h.get("Cookie", "") for target, h in server.media.seen if "flaky" in target]
    assert any(COOKIE_VALUE in c for c in sent)  # the jar was really used
    secrets = [str(run["jar"]), "SECRET-jar", COOKIE_VALUE]
    for path in tree(run["workdir"] / "results") | tree(run["workdir"] / ".snakemake"):
        data = path.read_bytes()
        assert not any(s.encode() in data for s in secrets), path


def test_a_broken_cookies_file_stops_the_run_before_any_download(tmp_path, server):
    """yt-dlp would find out in every job: each source retried and given up, and the bad line,
    cookie value included, written to each job's log."""
    jar = tmp_path / "SECRET-jar" / "cookies.txt"
    jar.parent.mkdir()
    jar.write_text(f"# Netscape HTTP Cookie File\n127.0.0.1 FALSE / {COOKIE_VALUE}\n")
    workdir = tmp_path / "work"
    setup_run(workdir, [record("v1", server.unique("/video.mp4"))], cookies_file=str(jar))
    proc = snakemake(workdir, *TABLES, "--cores", "1", check=False)
    assert proc.returncode != 0 and not (workdir / "results").exists()
    line = "download.cookies_file: line 2 has 1 tab-separated fields, a cookie has 7"
    assert line in proc.stderr, proc.stderr[-2000:]
    assert "SECRET" not in proc.stderr + proc.stdout and COOKIE_VALUE not in proc.stderr
    assert not any("/video.mp4" in target for target, _ in server.media.seen)


# ---------------------------------------------------------------------------------------------
# parallel downloads and retrying dead sources on purpose


@pytest.fixture(scope="module")
def sources_run(tmp_path_factory: pytest.TempPathFactory, server: MisbehavingServer) -> dict:
    """Four slow good sources and two dead ones, -j 8, download.max_parallel 2, no --resources."""
    workdir = tmp_path_factory.mktemp("sources")
    server.media.max_active = 0
    urls = {f"slow{i}": server.unique("/slow.mp4") for i in range(4)}
    urls |= {"forbidden": server.unique("/forbidden.mp4"), "gone": server.unique("/gone404.mp4")}
    setup_run(workdir, [record(vid, url) for vid, url in urls.items()], max_parallel=2)
    targets = [str(source(workdir, url).relative_to(workdir)) for url in urls.values()]
    snakemake(workdir, *targets, "--cores", "8")
    return {"workdir": workdir, "urls": urls, "targets": targets,
            "max_active": server.media.max_active}  # fmt: skip


@pytest.mark.slow
def test_max_parallel_caps_downloads_whatever_j_says(sources_run):
    # 8 cores and 6 jobs whose requests take a second each: only the cap keeps this at 2
    assert sources_run["max_active"] == 2


@pytest.mark.slow
def test_retry_dead_removes_only_the_chosen_reason(sources_run, server):
    workdir, urls = sources_run["workdir"], sources_run["urls"]
    good = source(workdir, urls["slow0"])
    kept = {}
    for name in ("slow0", "gone"):
        path = source(workdir, urls[name])
        kept[name] = (path.stat().st_mtime_ns, path.read_bytes())
    assert tombstone.read(source(workdir, urls["forbidden"])).reason == "http_403"
    snakemake(workdir, "retry_dead", "--cores", "1", "--config",
              "download={'retry_reasons': ['http_403']}")  # fmt: skip
    assert not source(workdir, urls["forbidden"]).exists()
    for name, (mtime, data) in kept.items():
        path = source(workdir, urls[name])
        assert (path.stat().st_mtime_ns, path.read_bytes()) == (mtime, data)
    assert tombstone.read(good) is None
    plan = snakemake(workdir, *sources_run["targets"], "-n")
    assert re.search(r"^download\s+1$", plan.stdout, re.M), plan.stdout
    assert source_id(urls["forbidden"]) in plan.stdout


@pytest.mark.slow
def test_retry_dead_without_reasons_says_so(sources_run):
    proc = snakemake(sources_run["workdir"], "retry_dead", "--cores", "1", check=False)
    assert proc.returncode != 0
    log = sources_run["workdir"] / "results" / "logs" / "download" / "retry_dead.log"
    assert "download.retry_reasons is empty" in log.read_text()


# ---------------------------------------------------------------------------------------------
# unusable video ids stop the run before anything is written


@pytest.mark.parametrize("video_id", ["a/b", "..", "a\x00b"])
def test_unsafe_video_ids_stop_the_run_at_start(tmp_path, server, video_id):
    url = server.unique("/video.mp4")
    setup_run(tmp_path, [record("fine", server.unique("/video.mp4")), record(video_id, url)])
    before = tree(tmp_path)
    proc = snakemake(tmp_path, *TABLES, "--cores", "1", check=False)
    assert proc.returncode != 0
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "meta.json" in line]
    assert any("entry 1" in line and "field 'video_id'" in line for line in lines), lines
    assert not (tmp_path / "results").exists()
    assert {p for p in tree(tmp_path) - before if ".snakemake" not in p.parts} == set()
    assert request_target(url) not in server.media.hits


# ---------------------------------------------------------------------------------------------
# YouTube without a network, sources that never work, and videos the user already has


@pytest.mark.slow
def test_offline_youtube_names_the_runtime_and_fails_the_machine_in_one_line(tmp_path):
    # no venv directory on PATH: the runtime is found by path, not by PATH
    path = ":".join(p for p in os.environ["PATH"].split(":") if ".venv" not in p and p)
    url = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    setup_run(tmp_path, [record("yt", url)], retries=0, allow_private_hosts=False)
    proc = snakemake(tmp_path, "--until", "download", "--cores", "1", check=False,
                     env={**os.environ, "PATH": path})  # fmt: skip
    assert proc.returncode != 0  # this machine has no DNS: the job fails, nothing is buried
    log = (tmp_path / "results" / "logs" / "download" / "dQw4w9WgXcQ.log").read_text()
    assert re.search(r"JavaScript runtime: deno 2\.9\.8 \(/\S+/deno\)", log), log
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "transient failure of this machine" in errors[0], log
    assert not source(tmp_path, url).exists()


@pytest.mark.slow
def test_sources_that_never_work_end_as_tombstones_and_the_run_builds_its_tables(tmp_path, server):
    """One good source, one that always sends a short body, one that trickles a byte every
    second past a 5 s deadline: no --keep-going, exit 0, every aggregate built."""
    server.media.trickle_s = 1.0
    urls = {"good": server.unique("/video.mp4"), "short": server.unique("/truncated.mp4"),
            "trickle": server.unique("/trickle.mp4")}  # fmt: skip
    setup_run(tmp_path, [record(vid, url) for vid, url in urls.items()], retries=1,
              deadline_s=5)  # fmt: skip
    aggregates = [*TABLES, "results/report/dataset.html",
                  *(f"results/lexicon/{s}/index.csv" for s in ("train", "all"))]  # fmt: skip
    start = time.monotonic()
    snakemake(tmp_path, *aggregates, "--cores", "2")
    assert time.monotonic() - start < 120
    assert server.media.hits[request_target(urls["good"])] == 1
    for vid in ("short", "trickle"):
        tomb = tombstone.read(source(tmp_path, urls[vid]))
        assert (tomb.stage, tomb.reason) == ("download", "gave_up")
        assert tomb.detail.startswith("after 2 attempts"), tomb.detail
        assert server.media.hits[request_target(urls[vid])] == 2
    assert "deadline_s" in tombstone.read(source(tmp_path, urls["trickle"])).detail
    table = tables.read_instances(tmp_path / "results" / "tables" / "instances.csv")
    reasons = dict(zip(table["video_id"], table["reason"], strict=True))
    assert reasons["short"] == reasons["trickle"] == "gave_up"
    for path in aggregates:
        assert (tmp_path / path).stat().st_size > 0


def _mirror_run(workdir: Path, server, layout: str) -> dict:
    """Three instances whose URLs would 404 (one of them YouTube), all in a mirror."""
    mirror = workdir / ("videos" if layout == "instances" else "raw_videos")
    mirror.mkdir(parents=True)
    demo = ROOT / "resources" / "demo" / "videos"
    youtube = "https://www.youtube.com/watch?v=abcdefghijk"
    urls = {"m1": server.unique("/gone404.mp4"), "m2": server.unique("/gone404.mp4"),
            "m3": youtube}  # fmt: skip
    names = {"m1": "m1", "m2": "m2", "m3": "m3" if layout == "instances" else "abcdefghijk"}
    for i, name in enumerate(names.values(), start=1):
        (mirror / f"{name}.mp4").write_bytes((demo / f"demo0000{i}.mp4").read_bytes())
    records = [record(vid, url, frames=(5, 20)) for vid, url in urls.items()]
    setup_run(workdir, records, dataset={"mirror": {"dir": mirror.name, "layout": layout,
                                                    "fallback": "none"}})  # fmt: skip
    before = {p.name: p.read_bytes() for p in mirror.iterdir()}
    clips = [f"results/clips/{vid}.mp4" for vid in urls]
    snakemake(workdir, *clips, *TABLES, "--cores", "2")
    after = {p.name: p.read_bytes() for p in mirror.iterdir()}
    assert after == before  # read, never moved or changed
    assert not any(request_target(u) in server.media.hits for u in urls.values() if "127" in u)
    return {"mirror": mirror, "names": names, "clips": clips}


@pytest.mark.slow
def test_an_instances_mirror_gives_every_clip_uncut_without_a_request(tmp_path, server):
    run = _mirror_run(tmp_path, server, "instances")
    for vid, name in run["names"].items():
        clip = tmp_path / "results" / "clips" / f"{vid}.mp4"
        assert decoded_frames(clip) == decoded_frames(run["mirror"] / f"{name}.mp4") > 16
    assert not (tmp_path / "results" / "sources").exists()  # no source was ever needed
    table = tables.read_instances(tmp_path / "results" / "tables" / "instances.csv")
    assert table["from_mirror"].astype(bool).all()


@pytest.mark.slow
def test_a_sources_mirror_stands_in_for_downloads_and_is_cut(tmp_path, server):
    run = _mirror_run(tmp_path, server, "sources")
    for vid in run["names"]:
        clip = tmp_path / "results" / "clips" / f"{vid}.mp4"
        assert decoded_frames(clip) == 16  # frames 5..20 at the source's 25 fps
    table = tables.read_instances(tmp_path / "results" / "tables" / "instances.csv")
    assert table["from_mirror"].astype(bool).all()


@pytest.mark.slow
def test_the_readme_command_ends_with_every_aggregate_despite_sources_that_never_work(
    tmp_path, server
):
    """The demo, two of its training sources swapped for one that always sends a short body and
    one that trickles past the deadline: `snakemake --cores 2` (rule all, no --keep-going)."""
    server.media.trickle_s = 1.0
    entries = json.loads((ROOT / "resources" / "demo" / "WLASL_demo.json").read_text())
    bad = {}
    for entry in entries:
        for inst in entry["instances"]:
            inst["url"] = str(ROOT / "resources" / "demo" / inst["url"])
            if inst["split"] == "train" and len(bad) < 2:
                route = "/truncated.mp4" if not bad else "/trickle.mp4"
                inst["url"] = bad[inst["video_id"]] = server.unique(route)
    # a short training: what is checked is that the run gets there and past it
    setup_run(tmp_path, [], dataset={"allow_local_files": True}, train={"epochs": 3},
              retries=1, deadline_s=5)  # fmt: skip
    (tmp_path / "meta.json").write_text(json.dumps(entries))
    snakemake(tmp_path, "--cores", "2")
    results = tmp_path / "results"
    for vid, url in bad.items():
        tomb = tombstone.read(source(tmp_path, url))
        assert (tomb.stage, tomb.reason) == ("download", "gave_up"), vid
    table = tables.read_instances(results / "tables" / "instances.csv").set_index("video_id")
    assert all(table.loc[vid, "reason"] == "gave_up" for vid in bad)
    for path in ("tables/funnel.csv", "lexicon/all/index.csv", "report/dataset.html",
                 "model/metrics.json"):  # fmt: skip
        assert (results / path).stat().st_size > 0


@pytest.mark.slow
def test_the_per_host_pause_holds_under_snakemake_with_parallel_jobs(tmp_path, server):
    """Four sources on one host, -j 4 and max_parallel 4: only the pause spaces them out."""
    urls = {f"p{i}": server.unique("/video.mp4") for i in range(4)}
    setup_run(tmp_path, [record(vid, url) for vid, url in urls.items()], max_parallel=4,
              host_pause_s={"127.0.0.1": 1.0})  # fmt: skip
    targets = [str(source(tmp_path, url).relative_to(tmp_path)) for url in urls.values()]
    snakemake(tmp_path, *targets, "--cores", "4")
    wanted = {request_target(url) for url in urls.values()}
    starts = sorted(t for t, target in server.media.times if target in wanted)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(starts) == 4 and min(gaps) >= 1.0, gaps
