"""Model registry: ``build(config, num_items)`` makes any registered model from a :class:`TrainConfig`."""
from __future__ import annotations

from typing import Callable

from ..errors import SeqrecError
from .base import SequentialRecommender
from .sasrec import SASRec

REGISTRY: dict[str, Callable[..., SequentialRecommender]] = {}


def register(name: str):
    def wrap(factory):
        REGISTRY[name] = factory
        return factory
    return wrap


@register("sasrec")
def _sasrec(config, num_items: int) -> SequentialRecommender:
    return SASRec(num_items, config.max_len, config.hidden_size, config.num_layers, config.num_heads, config.dropout)


def build(config, num_items: int) -> SequentialRecommender:
    if config.model not in REGISTRY:
        raise SeqrecError(f"unknown model {config.model!r}; allowed: {', '.join(REGISTRY)}")
    return REGISTRY[config.model](config, num_items)


__all__ = ["REGISTRY", "build", "register", "SequentialRecommender", "SASRec"]
