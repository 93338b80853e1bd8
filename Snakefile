from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/poses.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/text.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/lexicon.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        expand(res("lexicon/{split}/index.csv"), split=LEXICON_SPLITS),
        res("tables/instances.csv"),
        res("tables/failures.csv"),
        res("tables/funnel.csv"),
        res("stats/global_stats.npz"),
        res("model/metrics.json"),
        res("report/dataset.html"),
        res("report/metrics.html"),
        res("report/qc.png"),
        res("report/skeletons.png"),
        res("report/lexicon.html"),
        [res("report/groups.png")] if GROUP_COLUMNS else [],
        # a target of its own: results made without train.seeds have every other file
        [res("model/seeds.json")] if SEEDS else [],


# After a failed or interrupted run, the way back (common.smk).
onerror:
    RESUME_HINT.give(logger.error)
