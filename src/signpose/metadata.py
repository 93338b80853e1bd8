"""Dataset metadata → one validated table of instances.

Two input formats share one interface, `load(dataset_config)`:
- WLASL JSON (`WLASL_v0.3.json` shape): a list of {gloss, instances[]}; the subset WLASL-K is
  the first K glosses of the file;
- a CSV of local (or remote) videos, one row per instance, for users with their own recordings.

Every record is checked once here, so the stages can trust it: a bad record stops the run at
start with one line naming the file, the record and the field (`MetadataError`). Glosses are
free text and never become part of a file name; video ids do, so they are restricted to a safe
alphabet.

Every metadata column the user has travels with its instance, unchanged, in `Instance.extra`
under the name `meta_<column>` (META_PREFIX): every CSV column (the mapped ones too, so a label
canonicalised by `csv.label_id_column` keeps its original spelling), and every WLASL instance
field the loader does not use. The prefix keeps them from colliding with the project's own
table columns; their values are data, written to tables and never used as file names.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signpose.paths import not_a_file
from signpose.sites import source_id

SPLITS = ("train", "val", "test")
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
WLASL_FIELDS = ("bbox", "fps", "frame_end", "frame_start", "split", "url", "video_id")
# The instance fields the WLASL loader uses; every other one is kept as a `meta_` column.
WLASL_USED = frozenset((*WLASL_FIELDS, "gloss", "signer_id"))
META_PREFIX = "meta_"
# The project's own instance columns a report can be grouped by (report.group_by).
GROUPABLE = ("split", "site", "signer_id", "gloss")
# A split whose share of the instances is further than this from the requested fraction is
# reported (planning log and dataset page): a few signers cannot be divided 0.8/0.1/0.1.
FRACTION_TOLERANCE = 0.05


class MetadataError(ValueError):
    """A metadata record that cannot be used; the message is one line naming file and record."""


@dataclass(frozen=True, slots=True)
class Instance:
    """One sign instance: a (trimmed) span of one source video, with its label."""

    video_id: str
    gloss: str
    split: str
    url: str
    source_id: str
    frame_start: int  # 1-based, inclusive, counted at `fps`
    frame_end: int  # inclusive; -1 = to the end of the video
    fps: float  # the frame rate the frame numbers are counted at (25 for WLASL)
    bbox: tuple[float, float, float, float] | None  # xmin, ymin, xmax, ymax in source pixels
    signer_id: str
    site: str  # host name, or "local" for files; used by per-site reports
    # The user's other metadata, (meta_<column>, value) in file order: see the module docstring.
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def start_s(self) -> float:
        return (self.frame_start - 1) / self.fps

    @property
    def end_s(self) -> float | None:
        return None if self.frame_end == -1 else self.frame_end / self.fps

    def clip_spec(self) -> dict[str, Any]:
        """What the clip stage needs: a relabelled gloss must not re-cut 20,000 clips."""
        return {"start_s": self.start_s, "end_s": self.end_s, "bbox": self.bbox}


@dataclass(frozen=True)
class Dataset:
    instances: dict[str, Instance]  # by video_id, in metadata order
    urls: dict[str, str]  # source_id -> url (one download per source)
    split_note: str = ""  # the signer-aware split's shortfall, when it has one

    def by_split(self, split: str) -> list[str]:
        if split == "all":
            return list(self.instances)
        return [v for v, i in self.instances.items() if i.split == split]


def load(cfg: Mapping[str, Any], base_dir: Path | None = None) -> Dataset:
    """Load and validate the dataset that `cfg` describes: the config's `dataset` section with
    every default filled (by the workflow's validation, or `signpose.config.with_defaults`)."""
    path = Path(cfg["metadata"])
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    kind = not_a_file(path)
    if kind:  # a FIFO would block the reader until someone writes to it
        raise MetadataError(f"{path}: {kind}, not a metadata file")
    if cfg["format"] == "wlasl":
        records = wlasl_records(path, cfg["subset"])
    else:
        records = csv_records(path, cfg["csv"])
    instances: dict[str, Instance] = {}
    labels: dict[str, str] = {}  # label id -> the first spelling seen: one class per id
    for where, rec in records:
        if "label_id" in rec:
            if not rec["label_id"].strip():
                raise MetadataError(f"{path}: {where}: field 'label_id': empty")
            rec["gloss"] = labels.setdefault(rec.pop("label_id"), rec["gloss"])
        inst = make_instance(
            rec, f"{path}: {where}", cfg["allow_local_files"], cfg["max_label_chars"]
        )
        if inst.video_id in instances:
            raise MetadataError(
                f"{path}: {where}: field 'video_id': duplicate video_id {inst.video_id!r}"
            )
        instances[inst.video_id] = inst
    if not instances:
        raise MetadataError(f"{path}: no instances (a run over nothing is a mistake)")
    fractions = cfg["split_fractions"]
    if cfg["split"] == "signer_independent":
        instances = assign_splits(instances, fractions, cfg["seed"], balance=True)
        notes = (obtained_split(instances, cfg["seed"]), split_shortfall(instances, fractions))
        return Dataset(instances, urls_of(instances), "; ".join(filter(None, notes)))
    if cfg["format"] == "csv" and not cfg["csv"]["split_column"]:
        instances = assign_splits(instances, fractions, cfg["seed"])
        return Dataset(instances, urls_of(instances), split_shortfall(instances, fractions))
    return Dataset(instances, urls_of(instances))


def group_columns(dataset: Dataset, names: Iterable[str]) -> list[str]:
    """The tables/instances.csv column of each report.group_by name: a project column as it is,
    a metadata column as meta_<name>; an unknown name stops the run at start, saying what exists."""
    # WLASL instances need not share their fields: the union, in order of first appearance
    meta = list(dict.fromkeys(k for i in dataset.instances.values() for k, _ in i.extra))
    out = []
    for name in names:
        if name in GROUPABLE or name in meta:
            out.append(name)
        elif META_PREFIX + name in meta:
            out.append(META_PREFIX + name)
        else:
            have = [*GROUPABLE, *(m.removeprefix(META_PREFIX) for m in meta)]
            raise MetadataError(f"report.group_by: no column {name!r} in the metadata ({have})")
    return out


def urls_of(instances: Mapping[str, Instance]) -> dict[str, str]:
    return {i.source_id: i.url for i in instances.values()}


def wlasl_records(path: Path, subset: int | None) -> Iterable[tuple[str, dict[str, Any]]]:
    """(where, record) for each instance of the first `subset` glosses (all when None)."""
    data = read_json(path)
    if not isinstance(data, list):
        raise MetadataError(f"{path}: top level must be a list of {{gloss, instances}} entries")
    if subset is not None:
        data = data[:subset]
    for gi, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("gloss"), str):
            raise MetadataError(f"{path}: entry {gi}: field 'gloss': missing or not a string")
        if not isinstance(entry.get("instances"), list):
            raise MetadataError(f"{path}: entry {gi}: field 'instances': missing or not a list")
        for ii, inst in enumerate(entry["instances"]):
            where = f"entry {gi} (gloss {short(entry['gloss'])}) instance {ii}"
            if not isinstance(inst, dict):
                raise MetadataError(f"{path}: {where}: not an object")
            # only the used fields as fields: a user's field never takes an internal key's role
            # (one pass, no copies: WLASL2000 has 21,000 instances, parsed at every planning)
            rec: dict[str, Any] = {"extra": []}
            for k, v in inst.items():
                if k in WLASL_USED:
                    rec[k] = v
                else:
                    rec["extra"].append((META_PREFIX + k, k, v))
            rec["gloss"] = entry["gloss"]  # the entry's, never an instance field of that name
            yield where, rec


def read_json(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8-sig"))  # a BOM from Windows editors
    except FileNotFoundError:
        raise MetadataError(f"{path}: metadata file not found") from None
    except UnicodeDecodeError as e:
        raise MetadataError(f"{path}: not UTF-8 at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise MetadataError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise MetadataError(
            f"{path}: JSON nested too deeply to read (more than about "
            f"{sys.getrecursionlimit()} levels; WLASL needs 4)"
        ) from None


def csv_records(path: Path, cfg: Mapping[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    """(where, record) per CSV row, mapped onto WLASL field names by the `csv` config."""
    video_col = cfg["video_column"]
    label_col = cfg["label_column"]
    optional = {
        "split": cfg["split_column"],
        "signer_id": cfg["signer_column"],
        "video_id": cfg["id_column"],
        "label_id": cfg["label_id_column"],
    }
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            for col in (video_col, label_col, *filter(None, optional.values())):
                if col not in header:
                    raise MetadataError(f"{path}: column {col!r} missing (header: {header})")
            names = meta_names(path, header)
            for n, row in enumerate(reader, start=2):
                # a short row leaves None, a long one a list under None: both are a broken line
                if None in row or None in row.values():
                    raise MetadataError(
                        f"{path}: line {n}: not the {len(header)} columns of the header"
                    )
                rec: dict[str, Any] = {
                    "url": row[video_col],
                    "gloss": row[label_col],
                    "fps": cfg["fps"],
                    "frame_start": 1,
                    "frame_end": -1,
                    "bbox": None,
                }
                for field, col in optional.items():
                    if col:
                        rec[field] = row[col]
                rec["extra"] = [(name, c, row[c]) for name, c in zip(names, header, strict=True)]
                rec.setdefault("video_id", csv_video_id(row[video_col]))
                rec.setdefault("split", "train")  # replaced by assign_splits
                yield f"line {n}", rec
    except FileNotFoundError:
        raise MetadataError(f"{path}: metadata file not found") from None
    except UnicodeDecodeError as e:
        raise MetadataError(f"{path}: not UTF-8 at byte {e.start}") from None


def meta_names(path: Path, header: list[str]) -> list[str]:
    """The table column of each CSV column: meta_<name>, meta_column_<n> for an unnamed one."""
    names = [META_PREFIX + (c if c else f"column_{i}") for i, c in enumerate(header, start=1)]
    dup = next((c for c in header if c and header.count(c) > 1), None)
    if dup is not None:
        raise MetadataError(f"{path}: column {dup!r} appears twice in the header")
    return names


def extra_columns(rec: Mapping[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    """The record's other metadata, (table column, field, value) triples, as (column, text):
    strings as they are, other JSON values as JSON (7 -> "7"), so a table holds them without
    reinterpretation."""
    out = []
    for name, key, value in rec.get("extra", ()):
        if type(value) is int:  # WLASL's ids: the common case, and str() is json.dumps() here
            out.append((name, str(value)))
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        unicode_ok = (text.isascii() or is_utf8(text)) and (key.isascii() or is_utf8(key))
        if "\x00" in text or not unicode_ok:
            raise MetadataError(
                f"{where}: field {short(key)}: NUL or lone surrogates are not text a table holds"
            )
        out.append((name, text))
    return tuple(out)


def csv_video_id(video_file: str) -> str:
    """The file's stem when it is a safe id, else a stable hash of the whole path."""
    stem = Path(video_file).stem
    if SAFE_ID.fullmatch(stem):
        return stem
    return "v" + hashlib.sha256(video_file.encode("utf-8")).hexdigest()[:15]


def make_instance(
    rec: Mapping[str, Any], where: str, allow_local: bool, max_label_chars: int
) -> Instance:
    missing = [f for f in WLASL_FIELDS if f not in rec and f != "bbox"]
    if missing:
        raise MetadataError(f"{where}: field {missing[0]!r}: missing")
    video_id = rec["video_id"]
    if not isinstance(video_id, str) or not SAFE_ID.fullmatch(video_id):
        raise MetadataError(
            f"{where}: field 'video_id': {short(video_id)} is not 1-128 characters of "
            "[A-Za-z0-9_-] (it becomes a file name)"
        )
    where = f"{where} (video_id {video_id})"
    gloss = rec["gloss"]
    if not isinstance(gloss, str) or not gloss.strip() or "\x00" in gloss or not is_utf8(gloss):
        raise MetadataError(
            f"{where}: field 'gloss': must be a non-empty string without NUL or lone surrogates"
        )
    if len(gloss) > max_label_chars:
        raise MetadataError(
            f"{where}: field 'gloss': {len(gloss)} characters (at most {max_label_chars}: "
            "dataset.max_label_chars)"
        )
    split = rec["split"]
    if split not in SPLITS:
        raise MetadataError(f"{where}: field 'split': unknown split {short(split)} ({SPLITS})")
    fps = rec["fps"]
    if not is_number(fps) or not math.isfinite(fps) or fps <= 0:  # JSON allows NaN, Infinity
        raise MetadataError(f"{where}: field 'fps': {short(fps)} is not a positive number")
    start, end = rec["frame_start"], rec["frame_end"]
    if not is_int(start) or start < 1:
        raise MetadataError(f"{where}: field 'frame_start': {short(start)} is not an integer >= 1")
    if not is_int(end) or (end != -1 and end < start):
        raise MetadataError(
            f"{where}: field 'frame_end': {short(end)} is neither -1 nor >= frame_start {start}"
        )
    url = rec["url"]
    site = url_site(url, where, allow_local)
    signer_id = str(rec.get("signer_id", ""))
    if not is_utf8(signer_id):
        raise MetadataError(f"{where}: field 'signer_id': not valid Unicode")
    return Instance(
        video_id=video_id,
        gloss=gloss,
        split=split,
        url=url,
        source_id=source_id(url),
        frame_start=int(start),
        frame_end=int(end),
        fps=float(fps),
        bbox=parse_bbox(rec.get("bbox"), where),
        signer_id=signer_id,
        site=site,
        extra=extra_columns(rec, where),
    )


def url_site(url: Any, where: str, allow_local: bool) -> str:
    """The host of an http(s) URL, or "local" for a file path when the config allows them."""
    if not isinstance(url, str) or not url or "\x00" in url or len(url) > 2048 or not is_utf8(url):
        raise MetadataError(f"{where}: field 'url': missing, too long, not a string or not Unicode")
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0].lower()
        if not host:
            raise MetadataError(f"{where}: field 'url': no host in {short(url)}")
        return host
    has_scheme = re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", url) and not re.match(r"[A-Za-z]:\\", url)
    if allow_local and (not has_scheme or url.startswith("file://")):
        return "local"
    raise MetadataError(
        f"{where}: field 'url': {short(url)} is not an http(s) URL"
        + ("" if allow_local else " (local files need dataset.allow_local_files: true)")
    )


def parse_bbox(value: Any, where: str) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list | tuple)
        or len(value) != 4
        or not all(is_number(v) and math.isfinite(v) for v in value)
    ):
        raise MetadataError(f"{where}: field 'bbox': {short(value)} is not 4 finite numbers")
    x0, y0, x1, y1 = (float(v) for v in value)
    if x1 <= x0 or y1 <= y0:
        raise MetadataError(f"{where}: field 'bbox': {short(value)} has xmax<=xmin or ymax<=ymin")
    return (x0, y0, x1, y1)


def assign_splits(
    instances: dict[str, Instance],
    fractions: Mapping[str, float],
    seed: int,
    balance: bool = False,
) -> dict[str, Instance]:
    """Deterministic, signer-aware split: every instance of one signer lands in one split.

    A signer (or, without signer ids, a video) is placed by a hash of (seed, signer), so adding
    recordings never moves existing ones between splits. With `balance` (the signer-independent
    protocol), the signers are taken in the order of that hash instead, each into the split
    furthest below its share of the instances (WLASL's signers range from 1 to 245 instances
    of WLASL100: placed by the hash alone, test got 3% of them), and then a gloss left without
    a train instance gets some (`give_every_gloss_train`).
    """
    unit_of = {vid: inst.signer_id or vid for vid, inst in instances.items()}
    draw = {}
    for key in dict.fromkeys(unit_of.values()):
        digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
        draw[key] = int.from_bytes(digest[:8], "big") / 2**64
    shares = {"train": fractions["train"], "val": fractions["val"]}
    shares["test"] = max(0.0, 1 - shares["train"] - shares["val"])
    if balance:
        place = balanced_places(Counter(unit_of.values()), sorted(draw, key=draw.get), shares)
        give_every_gloss_train(instances, unit_of, place)
    else:
        train, val = shares["train"], shares["val"]
        place = {key: "train" if u < train else "val" if u < train + val else "test"
                 for key, u in draw.items()}  # fmt: skip
    return {
        vid: Instance(**{**as_dict(inst), "split": place[unit_of[vid]]})
        for vid, inst in instances.items()
    }


def balanced_places(
    size: Mapping[str, int], order: Iterable[str], shares: Mapping[str, float]
) -> dict[str, str]:
    """Signer -> split: in `order`, each signer (of `size` instances) into the split whose
    instances are furthest below its share of the total (ties: train, val, test)."""
    total = sum(size.values())
    got = dict.fromkeys(SPLITS, 0)
    place = {}
    for unit in order:
        split = max(SPLITS, key=lambda s: shares[s] * total - got[s])
        got[split] += size[unit]
        place[unit] = split
    return place


def give_every_gloss_train(
    instances: Mapping[str, Instance], unit_of: Mapping[str, str], place: dict[str, str]
) -> None:
    """In place: move signers (`place`: signer -> split) to train until every gloss has a train
    instance where that empties no split; glosses in metadata order, so the result is a
    function of the metadata and the seed alone."""
    size = Counter(unit_of.values())  # instances per signer
    per_split = Counter(place[unit] for unit in unit_of.values())  # instances per split
    signers: dict[str, dict[str, None]] = defaultdict(dict)  # gloss -> its signers, in order
    for vid, inst in instances.items():
        signers[inst.gloss][unit_of[vid]] = None
    for units in signers.values():
        if any(place[unit] == "train" for unit in units):
            continue
        movable = [unit for unit in units if per_split[place[unit]] > size[unit]]
        if movable:
            unit = min(movable, key=size.__getitem__)  # the first of the smallest
            per_split[place[unit]] -= size[unit]
            per_split["train"] += size[unit]
            place[unit] = "train"


def obtained_split(instances: Mapping[str, Instance], seed: int) -> str:
    """One line for the signer-independent split: the shares obtained, the signers per split
    (none in two), and the glosses left without a train instance."""
    counts = Counter(i.split for i in instances.values())
    units = {s: {i.signer_id or v for v, i in instances.items() if i.split == s} for s in SPLITS}
    trained = {i.gloss for i in instances.values() if i.split == "train"}
    untrained = len({i.gloss for i in instances.values()} - trained)
    return (
        f"signer-independent split (dataset.seed {seed}): obtained "
        + "/".join(f"{s} {counts[s] / len(instances):.2f}" for s in SPLITS)
        + f" ({'/'.join(str(counts[s]) for s in SPLITS)} of {len(instances)} instances, "
        + "/".join(str(len(units[s])) for s in SPLITS)
        + f" signers); {untrained} glosses without a train instance"
    )


def split_shortfall(instances: Mapping[str, Instance], fractions: Mapping[str, float]) -> str:
    """One line saying how far the obtained split is from the requested fractions, or "" when
    every split is within FRACTION_TOLERANCE of its share."""
    wanted = {"train": fractions["train"], "val": fractions["val"]}
    wanted["test"] = max(0.0, 1 - wanted["train"] - wanted["val"])
    counts = {s: sum(i.split == s for i in instances.values()) for s in SPLITS}
    got = {s: counts[s] / len(instances) for s in SPLITS}
    if all(abs(got[s] - wanted[s]) <= FRACTION_TOLERANCE for s in SPLITS):
        return ""
    units = len({i.signer_id or v for v, i in instances.items()})
    unit = "signers" if any(i.signer_id for i in instances.values()) else "videos"
    return (
        "signer-aware split: the requested fractions "
        + "/".join(f"{s} {wanted[s]:.2f}" for s in SPLITS)
        + f" are not met with {units} {unit}, each kept whole in one split; obtained "
        + "/".join(f"{s} {got[s]:.2f}" for s in SPLITS)
        + f" ({'/'.join(str(counts[s]) for s in SPLITS)} of {len(instances)} instances)"
    )


def as_dict(inst: Instance) -> dict[str, Any]:
    return {f: getattr(inst, f) for f in Instance.__slots__}


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def is_utf8(text: str) -> bool:
    """False for strings with lone surrogates: valid JSON ("\\ud800"), but no file can hold them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def short(value: Any, limit: int = 60) -> str:
    """repr() cut to one short line: error messages must stay one line for 10 MB strings."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
