"""The Snakemake internals the workflow relies on (pinned: snakemake==9.27.1).

A Snakefile sees the `workflow` object, but only some of its attributes are documented API.
The two below are not; tests/test_compat_snakemake.py runs a real Snakefile through both and
fails naming the pin when an upgrade changes them.

Nothing here imports Snakemake: the Snakefile passes its `workflow` object in, and the
per-instance jobs, which import `signpose`, never load this module.
"""

from __future__ import annotations

from typing import Any

PIN = "snakemake==9.27.1"


def uses_conda(workflow: Any) -> bool:
    """Whether this run deploys each rule's software with conda (`--sdm conda`)."""
    # A set of DeploymentMethod enum members, whose str() is the option's value.
    return "conda" in map(str, workflow.deployment_settings.deployment_method)


def set_default_resource(workflow: Any, name: str, value: int) -> None:
    """Cap the global resource `name` at `value`, unless the user gave `--resources name=N`.

    Snakemake offers no documented way to default a global resource from the config; the
    scheduler reads `workflow.global_resources`, which holds what `--resources` gave.
    """
    workflow.global_resources.setdefault(name, value)
