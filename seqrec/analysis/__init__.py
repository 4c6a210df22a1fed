"""What the book's notebooks compute that the experiment runner does not: paper-layout tables, verdict
counts, paired ablation differences, seed statistics, per-negative gradient signal and accuracy by sequence
length. Frames in, frames out; the notebooks only call these and show the result.

Conventions: a *tidy* frame has one row per run × metric (``seqrec.results.to_frame`` plus the grid's label
columns: ``paper_model``, ``loss_kind``, ``paper_loss``, ``variant``, ``ablation``). Relative difference
``rel = (reproduced − reported) / reported``.

One module per job, each re-exported here (``from seqrec import analysis; analysis.claims(...)``):

- ``labels``: the paper's loss names, verdict words, a run's display label
- ``frames``: stored runs as tidy frames, planned cells, compute spent, repeated-run checks
- ``figure1``, ``verdicts`` (Table 2), ``table3``: the per-result tables, verdicts and claims
- ``nearness``, ``reasons``, ``pretraining``, ``seen``, ``tuning``: why a cell is off, checked where it can be
- ``ablations``: paired differences, seed statistics, curves
- ``gradients``, ``lengths`` (with ``cache``: small trainings, cached on disk): the "why CCE" diagnostics
- ``display``: pandas Stylers for the book
"""
from .. import data as data_mod  # noqa: F401  (tests patch data_mod.load)
from .ablations import (
    DESCRIPTORS,
    improvement_vs_noise,
    negative_pool_overlap,
    paired,
    reach_levels,
    seed_summary,
    time_curves,
    time_to_reach,
    time_to_reach_in_words,
)
from .cache import cache_path, cached
from .display import WRAP_LABEL_CHARS, WRAP_LABEL_STYLE, color_verdict, styled, table_or_reason
from .figure1 import (
    FIGURE1_CELL_METRIC,
    FIGURE1_METRICS,
    FIGURE1_POINT_COLUMNS,
    GPU_TIMING_COLUMNS,
    LONGER_BUDGET,
    NEAR_POPULARITY,
    figure1_cells,
    figure1_claim,
    figure1_claim_in_words,
    figure1_closest,
    figure1_closest_in_words,
    figure1_reasons,
    figure1_points,
    figure1_popularity,
    figure1_verdicts,
    gpu_timings,
    gpu_timings_in_words,
    is_cpu_device,
    side_by_side,
    verdict_overview,
)
from .frames import (
    ANALYSIS_RUNS,
    TIDY_COLUMNS,
    compute_spent,
    curve_differences,
    data_files,
    grid_frame,
    planned_cells,
    repeated_runs,
    replayed_curves,
    table2_frame,
    table3_frame,
)
from .gradients import gradient_share, gradient_signal, gradient_signal_in_words, negative_gradients, score_loss
from .labels import NEGATIVE_LOSSES, NOT_REPORTED, PAPER_LOSS, VERDICTS, loss_label, loss_labels, profile_banner
from .nearness import MIN_SHARE_OF_GAP
from .lengths import length_bins, metric_by_length, ranks_by_length
from .tuning import PROTOCOL_SETTING, ROLES, TUNED_FIELDS, TUNING_COLUMNS, TUNING_METRICS, tuning_sweep
from .pretraining import (
    finetuning_curves,
    head_start,
    head_start_in_words,
    pretraining_claim,
    pretraining_comparison,
    pretraining_gain,
    pretraining_samples,
)
from .reasons import (LONG_PATIENCE, STILL_RISING, after_best, discrepancies, discrepancy_reasons, late_trend,
                      levelled_off, overfit_after_best, recipe_comparison)
from .seen import SEEN_SCORING_METRICS, seen_scoring, seen_scoring_checks
from .table3 import (
    CLAIM3_METRICS,
    SAMPLER_SYSTEMS,
    TABLE3_METRICS,
    sampler_check,
    table3_against_table2,
    table3_claim,
    table3_side_by_side,
)
from .verdicts import (
    CLAIM_VERDICTS,
    NOISE_COLUMNS,
    PENDING,
    claim_counts,
    claims_headline,
    claims,
    claims_in_words,
    not_run_by_display,
    not_run_reasons,
    not_yet_stored,
    srgnn_variants,
    srgnn_variants_in_words,
    table2_layout,
    verdict_counts,
)

__all__ = [
    "MIN_SHARE_OF_GAP",
    "DESCRIPTORS", "improvement_vs_noise", "negative_pool_overlap", "paired", "seed_summary", "time_curves",
    "reach_levels", "time_to_reach", "time_to_reach_in_words",
    "cache_path", "cached", "WRAP_LABEL_CHARS", "WRAP_LABEL_STYLE", "color_verdict", "styled", "table_or_reason",
    "FIGURE1_CELL_METRIC", "FIGURE1_METRICS", "FIGURE1_POINT_COLUMNS", "LONGER_BUDGET", "NEAR_POPULARITY", "figure1_cells",
    "figure1_claim", "figure1_claim_in_words", "figure1_closest", "figure1_closest_in_words",
    "figure1_points", "figure1_popularity", "figure1_reasons", "figure1_verdicts",
    "side_by_side", "verdict_overview", "ANALYSIS_RUNS", "TIDY_COLUMNS", "compute_spent", "curve_differences", "GPU_TIMING_COLUMNS", "gpu_timings", "is_cpu_device", "gpu_timings_in_words", "data_files", "grid_frame",
    "planned_cells", "repeated_runs", "replayed_curves", "table2_frame", "table3_frame", "gradient_share",
    "gradient_signal",
    "gradient_signal_in_words",
    "negative_gradients", "score_loss", "NEGATIVE_LOSSES", "NOT_REPORTED", "PAPER_LOSS", "VERDICTS", "loss_label",
    "loss_labels", "profile_banner", "length_bins", "metric_by_length", "ranks_by_length", "finetuning_curves",
    "head_start", "head_start_in_words", "pretraining_claim",
    "PROTOCOL_SETTING", "ROLES", "TUNED_FIELDS", "TUNING_COLUMNS", "TUNING_METRICS", "tuning_sweep",
    "pretraining_comparison", "pretraining_gain", "pretraining_samples", "after_best", "discrepancies",
    "discrepancy_reasons", "LONG_PATIENCE", "STILL_RISING", "late_trend",
    "overfit_after_best", "levelled_off", "recipe_comparison", "SEEN_SCORING_METRICS", "seen_scoring",
    "seen_scoring_checks", "CLAIM3_METRICS",
    "SAMPLER_SYSTEMS", "TABLE3_METRICS", "sampler_check", "table3_against_table2", "table3_claim",
    "table3_side_by_side", "CLAIM_VERDICTS", "NOISE_COLUMNS", "PENDING", "claim_counts", "claims_headline", "claims",
    "claims_in_words",
    "not_run_by_display", "not_run_reasons", "not_yet_stored", "srgnn_variants", "srgnn_variants_in_words", "table2_layout", "verdict_counts",
]
