"""signpose.shards: the features stage's stable assignment of instances to jobs."""

from __future__ import annotations

from signpose import shards


def test_adding_instances_moves_no_other_instance():
    ids = [f"{i:05d}" for i in range(2000)]
    before = shards.by_shard(ids, 64)
    after = shards.by_shard([*ids, "new00001", "new00002"], 64)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {shards.shard_of("new00001", 64), shards.shard_of("new00002", 64)}
    for name, members in before.items():  # the new ids join the end of their shard's list
        assert after[name][: len(members)] == members


def test_names_are_zero_padded_and_the_shards_even():
    assert shards.shard_of("00001", 1) == "0"
    groups = shards.by_shard([f"{i:05d}" for i in range(25600)], 256)
    assert list(groups) == sorted(groups) and len(groups) == 256
    assert {len(name) for name in groups} == {3}
    sizes = [len(v) for v in groups.values()]
    assert min(sizes) > 60 and max(sizes) < 140  # about 100 each
    assert shards.shard_of("00001", 256) == shards.shard_of("00001", 256)  # no process salt
