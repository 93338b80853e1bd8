"""Stable shards of instances: the features stage runs one job per shard, not per instance.

An instance's shard is a hash of its `video_id` alone, so adding or removing instances never
moves another one to a different shard: a new instance reruns its own shard (and the cheap
steps after it), not every shard. Changing the number of shards moves most instances.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def name_width(shards: int) -> int:
    """Digits in a shard's name: every name of one configuration has the same width."""
    return len(str(shards - 1))


def shard_of(video_id: str, shards: int) -> str:
    """The shard of `video_id` among `shards`, as its zero-padded name ("007")."""
    digest = hashlib.sha1(video_id.encode("utf-8")).hexdigest()
    return str(int(digest[:12], 16) % shards).zfill(name_width(shards))


def by_shard(video_ids: Iterable[str], shards: int) -> dict[str, list[str]]:
    """The non-empty shards, by name in sorted order, each with its video ids in input order."""
    out: dict[str, list[str]] = {}
    for vid in video_ids:
        out.setdefault(shard_of(vid, shards), []).append(vid)
    return dict(sorted(out.items()))
