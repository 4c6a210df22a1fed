"""Model registry: ``build(config, num_items)`` makes any registered model from a :class:`TrainConfig`."""
from __future__ import annotations

from typing import Callable

from ..errors import SeqrecError
from .base import SequentialRecommender
from .bert4rec import BERT4Rec
from .gru4rec import GRU4Rec
from .s3rec import S3Rec
from .sasrec import SASRec
from .srgnn import SRGNN

REGISTRY: dict[str, Callable[..., SequentialRecommender]] = {}
OPTIONS: dict[str, tuple[str, ...]] = {}  # the ``model_options`` keys each model reads


def register(name: str, options: tuple[str, ...] = ()):
    """Register a factory ``(config, num_items) -> model`` under ``name``; ``options``: the ``model_options`` keys
    it reads (any other key is an error when a :class:`~seqrec.config.TrainConfig` is made)."""
    def wrap(factory):
        REGISTRY[name] = factory
        OPTIONS[name] = tuple(options)
        return factory
    return wrap


@register("sasrec")
def _sasrec(config, num_items: int) -> SequentialRecommender:
    return SASRec(num_items, config.max_len, config.hidden_size, config.num_layers, config.num_heads, config.dropout)


@register("gru4rec")
def _gru4rec(config, num_items: int) -> SequentialRecommender:
    return GRU4Rec(num_items, config.hidden_size, dropout=config.dropout)


@register("srgnn", options=("variant",))
def _srgnn(config, num_items: int) -> SequentialRecommender:
    return SRGNN(num_items, config.hidden_size, variant=config.model_options.get("variant", "causal"))


@register("bert4rec")
def _bert4rec(config, num_items: int) -> SequentialRecommender:
    return BERT4Rec(num_items, config.max_len, config.hidden_size, config.num_layers, config.num_heads, config.dropout)


@register("s3rec", options=("pretrain_epochs", "pretrain_recipe"))
def _s3rec(config, num_items: int) -> SequentialRecommender:
    """Loads the pretraining checkpoint of ``seqrec.pretrain.ensure_pretrained(config)``; an error if it is missing."""
    from ..pretrain import load_pretrained

    return load_pretrained(config, num_items)


def build(config, num_items: int) -> SequentialRecommender:
    if config.model not in REGISTRY:
        raise SeqrecError(f"unknown model {config.model!r}; allowed: {', '.join(REGISTRY)}")
    return REGISTRY[config.model](config, num_items)


__all__ = ["REGISTRY", "OPTIONS", "build", "register", "SequentialRecommender", "SASRec", "GRU4Rec", "SRGNN",
           "BERT4Rec", "S3Rec"]
