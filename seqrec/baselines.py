"""The popularity baseline: every user's candidates ranked by how often each item occurs, no model trained.

It is the floor a sequential recommender has to clear, and what a model that learned only item popularity scores.
Scores are item counts over the inputs of the test step, every user's sequence without its last item (what a
model may see before it is tested), so no test target is counted. They are ranked by the evaluation of the
trained models (:func:`seqrec.trainer.evaluate`), with the same split, seen-item exclusion, tie rule and
sampled negatives. Popular items share counts, so the tie rule matters: under the default (pessimistic) rule, a
target tied with other items ranks behind all of them.
"""
from __future__ import annotations

import torch

from . import data as data_mod
from .data import SequenceData


def popularity_scores(data: SequenceData) -> torch.Tensor:
    """(N + 1,) float: how often each item occurs in the users' sequences without their last item (the test
    target), :func:`seqrec.data.item_popularity` with ``hold_out=1``; column 0, the padding, is 0."""
    return torch.as_tensor(data_mod.item_popularity(data, hold_out=1), dtype=torch.float32)


class PopularityRanker(torch.nn.Module):
    """The same ``score_all`` as a trained model: one row of item counts, the same for every user."""

    def __init__(self, scores: torch.Tensor):
        super().__init__()
        self.register_buffer("scores", scores)

    def score_all(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (B, L) -> (B, N + 1) scores, the counts for every user."""
        return self.scores.expand(inputs.shape[0], -1)


def popularity_metrics(data: SequenceData, *, seed: int = 42, max_len: int = 50, exclude: str = "-inf",
                       ties: str = "pessimistic") -> dict[str, float]:
    """Test metrics of ranking by popularity, under the protocol of :func:`seqrec.trainer.train`: full ranking
    (``full_*``), sampled with 99 uniform negatives (``sampled_*``; LastFM: its sample file) and with 99
    popularity-drawn ones (``pop_sampled_*``), the negatives fixed by ``seed`` as for a trained run."""
    from .trainer import evaluate

    split = data_mod.split(data, max_len)
    negatives = {"sampled_": data_mod.evaluation_negatives(data, seed),
                 "pop_sampled_": data_mod.evaluation_popularity_negatives(data, seed)}
    return evaluate(PopularityRanker(popularity_scores(data)), split.test_inputs, split.test_targets,
                    split.test_seen, negatives, exclude=exclude, ties=ties)
