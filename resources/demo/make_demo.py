"""Build the embedded signpose demo dataset: short clips, a WLASL-shaped index and a licence trail.

Each gesture photo becomes one synthetic clip: a slow virtual camera (pan, zoom, small rotation)
moving over the still photo. The photos are real people making real hand shapes, so MediaPipe
Holistic finds their bodies and hands, and the classes stay learnable, while the motion gives the
pipeline real videos to decode, trim and track. One real signing clip is copied unchanged.

    python resources/demo/make_demo.py --shared /work/shared/data --out resources/demo
    python resources/demo/make_demo.py --shared /work/shared/data --out resources/demo --check

Everything is seeded: the same inputs, OpenCV and imageio-ffmpeg binary give byte-identical files.
``--check`` builds nothing; it runs MediaPipe Holistic (the only reason mediapipe is imported) over
the built clips and prints how often it finds the body, each hand and the face.
"""

import argparse
import importlib.abc
import itertools
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import numpy.typing as npt

SEED = 20240611
FPS = 25
FRAMES_MIN, FRAMES_MAX = 40, 60  # 1.6 s to 2.4 s at 25 fps
LONGEST_SIDES = (320, 336, 352, 368, 384)
ROTATION_MAX_DEG = 2.5
ZOOM_TRAVEL_MAX = 0.10  # on top of the zoom that rotation needs to keep the frame filled
PAN_MAX = 0.85  # fraction of the slack left around the zoomed window
SWAY_MAX = 0.12  # handheld-like sway, also as a fraction of that slack
BBOX_MARGIN = (0.02, 0.06)  # WLASL boxes frame the signer; ours frame the picture, a bit inside
SPLITS = ("train",) * 6 + ("val",) * 2 + ("test",) * 2  # by sorted photo file name
TRIMMED_PER_CLASS = 2  # clips per class that get a real frame range instead of 1..-1
CRF = 23
SIGNING_SOURCE = "media/pose_test_video.mp4"
SIGNING_NAME = "signing_sample.mp4"
SIGNING_GLOSS = "sign sample"
# 1-based inclusive ranges; the two overlap on purpose, and -1 means "to the end" as in WLASL.
SIGNING_RANGES = ((1, 30), (20, -1))
# Where the copied and derived media come from (see README.md and NOTICE next to this script).
PHOTO_ORIGIN = (
    "google-ai-edge/mediapipe@85c0cdc:"
    "mediapipe/model_maker/python/vision/gesture_recognizer/testdata/raw_data/{gloss}/{name}"
)
SIGNING_ORIGIN = "sign-language-processing/pose@7a36fcf:src/python/tests/data/test_video.mp4"
MISSING_URL = "videos/missing_on_purpose.mp4"
MISSING_GLOSS = "call"
MISSING_SIZE = (352, 264)  # the video the dead link would have pointed to, for a plausible bbox

Frame = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Motion:
    """A clip's camera path; pan values are fractions of the slack around the window."""

    zoom: tuple[float, float]
    rotation_deg: tuple[float, float]
    pan_start: tuple[float, float]
    pan_end: tuple[float, float]
    sway_amplitude: tuple[float, float]
    sway_hz: float
    sway_phase: float


@dataclass(frozen=True)
class Clip:
    gloss: str
    photo: Path
    split: str
    signer_id: int
    n_frames: int
    size: tuple[int, int]  # width, height
    motion: Motion
    frame_range: tuple[int, int]
    bbox: tuple[int, int, int, int]
    video_id: str = ""  # given by build_index, which owns the numbering


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--out", type=Path, required=True, help="the demo folder to write")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--check",
        action="store_true",
        help="build nothing; run MediaPipe Holistic over the built clips (needs mediapipe)",
    )
    return parser.parse_args(argv)


def even(value: float) -> int:
    # yuv420p halves chroma in both directions, so x264 needs even frame sides.
    return max(2, 2 * round(value / 2))


def output_size(photo_hw: tuple[int, int], longest: int) -> tuple[int, int]:
    height, width = photo_hw
    scale = longest / max(height, width)
    return even(width * scale), even(height * scale)


def min_zoom(size: tuple[int, int], rotation_deg: float) -> float:
    """Smallest zoom at which a window rotated by rotation_deg still lies inside the picture."""
    width, height = size
    cos, sin = abs(math.cos(math.radians(rotation_deg))), abs(math.sin(math.radians(rotation_deg)))
    return max(cos + sin * height / width, cos + sin * width / height)


def draw_pair(rng: np.random.Generator, low: float, high: float) -> tuple[float, float]:
    first, second = rng.uniform(low, high, size=2)
    return float(first), float(second)


def draw_motion(rng: np.random.Generator, size: tuple[int, int]) -> Motion:
    rotation = draw_pair(rng, -ROTATION_MAX_DEG, ROTATION_MAX_DEG)
    # A small extra margin keeps bilinear sampling clear of the border.
    base = min_zoom(size, max(abs(rotation[0]), abs(rotation[1]))) + 0.01
    zoom = draw_pair(rng, base, base + ZOOM_TRAVEL_MAX)
    return Motion(
        zoom=zoom,
        rotation_deg=rotation,
        pan_start=draw_pair(rng, -PAN_MAX, PAN_MAX),
        pan_end=draw_pair(rng, -PAN_MAX, PAN_MAX),
        sway_amplitude=draw_pair(rng, 0.0, SWAY_MAX),
        sway_hz=float(rng.uniform(0.4, 1.0)),
        sway_phase=float(rng.uniform(0.0, 2 * math.pi)),
    )


def draw_bbox(rng: np.random.Generator, size: tuple[int, int]) -> tuple[int, int, int, int]:
    width, height = size
    left, top, right, bottom = rng.uniform(*BBOX_MARGIN, size=4)
    return (
        round(width * left),
        round(height * top),
        round(width * (1 - right)) - 1,
        round(height * (1 - bottom)) - 1,
    )


def draw_frame_range(rng: np.random.Generator, n_frames: int) -> tuple[int, int]:
    # Always well inside the clip, so trimming is exercised but never runs off the end.
    start = int(rng.integers(2, 7))
    end = int(rng.integers(n_frames - 10, n_frames - 1))
    return start, end


def list_photos(shared: Path) -> dict[str, list[Path]]:
    gestures = shared / "gestures"
    classes = sorted(p.name for p in gestures.iterdir() if p.is_dir())
    photos = {name: sorted((gestures / name).glob("*.jpg")) for name in classes}
    for name, files in photos.items():
        if len(files) != len(SPLITS):
            raise SystemExit(
                f"expected {len(SPLITS)} photos in {gestures / name}, not {len(files)}"
            )
    return photos


def plan_clip(gloss: str, photo: Path, split: str, signer: int, trim: bool, seed: int) -> Clip:
    # Every clip has its own generator, so changing one clip never reshuffles the others.
    rng = np.random.default_rng([seed, signer])
    height_width = cv2.imread(str(photo), cv2.IMREAD_COLOR).shape[:2]
    size = output_size(height_width, int(rng.choice(LONGEST_SIDES)))
    n_frames = int(rng.integers(FRAMES_MIN, FRAMES_MAX + 1))
    return Clip(
        gloss=gloss,
        photo=photo,
        split=split,
        signer_id=signer,
        n_frames=n_frames,
        size=size,
        motion=draw_motion(rng, size),
        bbox=draw_bbox(rng, size),
        frame_range=draw_frame_range(rng, n_frames) if trim else (1, -1),
    )


def plan_clips(shared: Path, seed: int) -> list[Clip]:
    picker = np.random.default_rng([seed, 0])  # only picks which clips get a frame range
    clips = []
    for class_index, (gloss, files) in enumerate(list_photos(shared).items()):
        trimmed = set(picker.choice(len(files), size=TRIMMED_PER_CLASS, replace=False).tolist())
        for photo_index, (photo, split) in enumerate(zip(files, SPLITS, strict=True)):
            signer = class_index * len(SPLITS) + photo_index + 1  # one signer per photo
            clips.append(plan_clip(gloss, photo, split, signer, photo_index in trimmed, seed))
    return clips


def smootherstep(t: float) -> float:
    # Zero velocity and acceleration at both ends: the camera eases in and out.
    return t * t * t * (t * (6 * t - 15) + 10)


def lerp(pair: tuple[float, float], t: float) -> float:
    return pair[0] + (pair[1] - pair[0]) * t


def camera_matrix(clip: Clip, work_scale: float, index: int) -> npt.NDArray[np.float64]:
    """Output-to-picture affine map (for WARP_INVERSE_MAP) of one frame."""
    m = clip.motion
    seconds = index / FPS
    t = smootherstep(index / (clip.n_frames - 1))
    zoom = lerp(m.zoom, t)
    theta = math.radians(lerp(m.rotation_deg, t))
    width, height = clip.size
    cos, sin = math.cos(theta), math.sin(theta)
    step = work_scale / zoom  # picture pixels per output pixel
    # Half extent of the rotated window, in picture pixels, and the slack left around it.
    extent_x = step * (width * abs(cos) + height * abs(sin)) / 2
    extent_y = step * (width * abs(sin) + height * abs(cos)) / 2
    slack_x = max(0.0, work_scale * width / 2 - extent_x)
    slack_y = max(0.0, work_scale * height / 2 - extent_y)
    sway = math.sin(2 * math.pi * m.sway_hz * seconds + m.sway_phase)
    pan_x = np.clip(lerp((m.pan_start[0], m.pan_end[0]), t) + m.sway_amplitude[0] * sway, -1, 1)
    pan_y = np.clip(lerp((m.pan_start[1], m.pan_end[1]), t) + m.sway_amplitude[1] * sway, -1, 1)
    centre_x = work_scale * width / 2 + pan_x * slack_x
    centre_y = work_scale * height / 2 + pan_y * slack_y
    linear = step * np.array([[cos, -sin], [sin, cos]])
    offset = np.array([centre_x, centre_y]) - linear @ np.array([width / 2, height / 2])
    return np.hstack([linear, offset[:, None]])


def render_frames(clip: Clip) -> Iterator[Frame]:
    width, height = clip.size
    # Shrink the photo once, with area averaging, to a bit more than the largest zoom needs, so
    # the per-frame warp never has to downsample (bilinear downsampling would alias).
    work_scale = max(clip.motion.zoom)
    picture = cv2.imread(str(clip.photo), cv2.IMREAD_COLOR)
    work_size = (round(width * work_scale), round(height * work_scale))
    picture = cv2.resize(picture, work_size, interpolation=cv2.INTER_AREA)
    for index in range(clip.n_frames):
        matrix = camera_matrix(clip, work_scale, index)
        yield cv2.warpAffine(
            picture,
            matrix,
            clip.size,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT_101,
        )


def ffmpeg_command(size: tuple[int, int], target: Path) -> list[str]:
    width, height = size
    return [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-loglevel", "error",
        "-y",
        "-f", "rawvideo",
        "-pix_fmt", "bgr24",
        "-video_size", f"{width}x{height}",
        "-framerate", str(FPS),
        "-i", "pipe:0",
        "-an",
        "-c:v", "libx264",
        "-preset", "slow",
        "-crf", str(CRF),
        "-pix_fmt", "yuv420p",
        # Same bytes on every machine: x264's output depends on its thread count (by default the
        # number of cores), and bit-exact flags keep version strings out of the file.
        "-threads", "1",
        "-sws_flags", "bilinear+accurate_rnd+bitexact",
        "-fflags", "+bitexact",
        "-flags:v", "+bitexact",
        "-map_metadata", "-1",
        "-movflags", "+faststart",
        str(target),
    ]  # fmt: skip


def encode(frames: Iterator[Frame], size: tuple[int, int], target: Path) -> None:
    process = subprocess.Popen(ffmpeg_command(size, target), stdin=subprocess.PIPE)
    assert process.stdin is not None
    try:
        for frame in frames:
            process.stdin.write(np.ascontiguousarray(frame).tobytes())
    finally:
        process.stdin.close()
    if process.wait() != 0:
        raise SystemExit(f"ffmpeg failed with status {process.returncode} writing {target}")


def instance(
    *,
    bbox: Sequence[int],
    frame_range: tuple[int, int],
    instance_id: int,
    signer_id: int,
    split: str,
    url: str,
    video_id: str,
) -> dict[str, object]:
    # Keys in the order of the official WLASL_v0.3.json (alphabetical).
    return {
        "bbox": [int(v) for v in bbox],
        "fps": FPS,
        "frame_end": frame_range[1],
        "frame_start": frame_range[0],
        "instance_id": instance_id,
        "signer_id": signer_id,
        "source": "demo",
        "split": split,
        "url": url,
        "variation_id": 0,
        "video_id": video_id,
    }


def video_shape(path: Path) -> tuple[int, int, int]:
    """Width, height and frame count of a video, as the container reports them."""
    capture = cv2.VideoCapture(str(path))
    props = (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT, cv2.CAP_PROP_FRAME_COUNT)
    width, height, frames = (int(capture.get(prop)) for prop in props)
    capture.release()
    return width, height, frames


def clip_instance(clip: Clip, instance_id: int) -> dict[str, object]:
    return instance(
        bbox=clip.bbox,
        frame_range=clip.frame_range,
        instance_id=instance_id,
        signer_id=clip.signer_id,
        split=clip.split,
        url=f"videos/{clip.video_id}.mp4",
        video_id=clip.video_id,
    )


def build_index(
    clips: list[Clip], signing_size: tuple[int, int], seed: int
) -> tuple[list[dict[str, object]], list[Clip]]:
    """The WLASL-shaped index, and the clips with the video ids it gave them (in JSON order)."""
    rng = np.random.default_rng([seed, 10_000])
    numbers = itertools.count(1)
    signer_for_signing, signer_for_missing = len(clips) + 1, len(clips) + 2
    index: list[dict[str, object]] = []
    named: list[Clip] = []
    for gloss in dict.fromkeys(clip.gloss for clip in clips):
        instances = []
        for clip in (clip for clip in clips if clip.gloss == gloss):
            named.append(replace(clip, video_id=f"demo{next(numbers):05d}"))
            instances.append(clip_instance(named[-1], len(instances)))
        if gloss == MISSING_GLOSS:
            # A dead link, as WLASL has thousands: the pipeline must record it, not crash.
            instances.append(
                instance(
                    bbox=draw_bbox(rng, MISSING_SIZE),
                    frame_range=(1, -1),
                    instance_id=len(instances),
                    signer_id=signer_for_missing,
                    split="test",
                    url=MISSING_URL,
                    video_id=f"demo{next(numbers):05d}",
                )
            )
        index.append({"gloss": gloss, "instances": instances})
    signing_bbox = draw_bbox(rng, signing_size)  # one video, one framing of the signer
    signing = [
        instance(
            bbox=signing_bbox,
            frame_range=frame_range,
            instance_id=instance_id,
            signer_id=signer_for_signing,  # one person, one source video, two instances
            split="train",
            url=f"videos/{SIGNING_NAME}",
            video_id=f"demo{next(numbers):05d}",
        )
        for instance_id, frame_range in enumerate(SIGNING_RANGES)
    ]
    index.append({"gloss": SIGNING_GLOSS, "instances": signing})
    return index, named


def sources_table(clips: list[Clip], signing_shape: tuple[int, int, int]) -> str:
    """Tab-separated provenance of every video: the notice Apache-2.0 asks for on changed files."""
    header = "video\tgloss\tsplit\tframes\twidth\theight\tlicence\tchange\torigin"
    rows = [header]
    for clip in clips:
        origin = PHOTO_ORIGIN.format(gloss=clip.gloss, name=clip.photo.name)
        change = "still photo turned into a clip: resized, synthetic pan/zoom/rotation, H.264"
        width, height = clip.size
        rows.append(
            f"videos/{clip.video_id}.mp4\t{clip.gloss}\t{clip.split}\t{clip.n_frames}"
            f"\t{width}\t{height}\tApache-2.0\t{change}\t{origin}"
        )
    width, height, frames = signing_shape
    rows.append(
        f"videos/{SIGNING_NAME}\t{SIGNING_GLOSS}\ttrain\t{frames}\t{width}\t{height}\tMIT"
        f"\tnone (byte-identical copy)\t{SIGNING_ORIGIN}"
    )
    return "\n".join(rows) + "\n"


def build(shared: Path, out: Path, seed: int) -> None:
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    for stale in videos.glob("*.mp4"):
        stale.unlink()
    signing = videos / SIGNING_NAME
    shutil.copyfile(shared / SIGNING_SOURCE, signing)  # copied as is: real signing, MIT
    signing_shape = video_shape(signing)
    index, clips = build_index(plan_clips(shared, seed), signing_shape[:2], seed)
    for clip in clips:
        encode(render_frames(clip), clip.size, videos / f"{clip.video_id}.mp4")
    text = json.dumps(index, indent=4, ensure_ascii=False) + "\n"
    (out / "WLASL_demo.json").write_text(text, encoding="utf-8")
    (out / "SOURCES.tsv").write_text(sources_table(clips, signing_shape), encoding="utf-8")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {len(clips)} clips and {out / 'WLASL_demo.json'}; {total / 1e6:.2f} MB in {out}")


class TensorflowBlocker(importlib.abc.MetaPathFinder):
    """Makes `import tensorflow` fail at once: mediapipe probes for it, and loading it costs
    seconds that the Holistic solution never needs."""

    def find_spec(self, fullname: str, *_: object) -> None:
        if fullname == "tensorflow" or fullname.startswith("tensorflow."):
            raise ModuleNotFoundError(f"blocked: {fullname}", name=fullname)


def read_frames(path: Path) -> Iterator[Frame]:
    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()


def detection_ratios(path: Path) -> tuple[int, list[float]]:
    """Frames, and the share of them with body, left hand, right hand, face and any hand."""
    from mediapipe.python.solutions import holistic

    counts = np.zeros(5)
    frames = 0
    with holistic.Holistic(model_complexity=1) as model:
        for frame in read_frames(path):
            result = model.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            body, face = result.pose_landmarks is not None, result.face_landmarks is not None
            left = result.left_hand_landmarks is not None
            right = result.right_hand_landmarks is not None
            counts += [body, left, right, face, left or right]
            frames += 1
    return frames, (counts / max(frames, 1)).tolist()


HEADER = "  body  left right  face  hand"


def check(out: Path) -> None:
    """Print per-clip and per-gloss detection ratios of every built video."""
    sys.meta_path.insert(0, TensorflowBlocker())
    index = json.loads((out / "WLASL_demo.json").read_text(encoding="utf-8"))
    print(f"{'video':<20} {'gloss':<12} {'frames':>6}{HEADER}")
    per_gloss: dict[str, list[list[float]]] = {}
    seen: set[str] = set()
    for entry in index:
        for item in entry["instances"]:
            path = out / item["url"]
            if not path.exists() or item["url"] in seen:
                continue  # the dead link, and a source shared by two instances
            seen.add(item["url"])
            frames, ratios = detection_ratios(path)
            per_gloss.setdefault(entry["gloss"], []).append(ratios)
            print(f"{path.name:<20} {entry['gloss']:<12} {frames:>6} {cells(ratios)}")
    print(f"\n{'gloss (mean over clips)':<26} {'clips':>5}{HEADER}  weak clips")
    for gloss, rows in per_gloss.items():
        # A weak clip loses the body or every hand in most frames.
        weak = sum(row[0] < 0.5 or row[4] < 0.5 for row in rows)
        print(f"{gloss:<26} {len(rows):>5} {cells(np.mean(rows, axis=0))}  {weak}")


def cells(ratios: Sequence[float]) -> str:
    return " ".join(f"{r:5.2f}" for r in ratios)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.check:
        check(args.out)
    else:
        build(args.shared, args.out, args.seed)


if __name__ == "__main__":
    main()
