"""Configuration of one training run: a plain dataclass, validated on creation, hashable for the results store."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

from .errors import SeqrecError

NEGATIVE_POOLS = ("others", "unseen")
MONITORS = ("valid_NDCG@20", "valid_HIT@10", "valid_NDCG@10", "valid_MRR", "train_loss")


def _help(text: str, **kw):
    return field(metadata={"help": text}, **kw)


def _cuda_device(device: str) -> bool:
    import torch

    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


@dataclass
class TrainConfig:
    data: str = _help("dataset name (Beauty, Sports_and_Outdoors, Toys_and_Games, Yelp, LastFM) or a .txt path", default="Beauty")
    model: str = _help("model name (see `seqrec.models.REGISTRY`)", default="sasrec")
    loss: str = _help("loss name (see `seqrec.losses.REGISTRY`)", default="cce")
    seed: int = _help("seed for initialisation, shuffling, negatives and dropout", default=42)
    max_len: int = _help("keep the last max_len items of each sequence", default=50)
    hidden_size: int = _help("hidden size D", default=64)
    num_layers: int = _help("transformer layers", default=2)
    num_heads: int = _help("attention heads", default=2)
    dropout: float = _help("dropout probability", default=0.5)
    lr: float = _help("Adam learning rate", default=1e-3)
    weight_decay: float = _help("Adam's L2 penalty (torch's weight_decay; the protocol: 0)", default=0.0)
    lr_step: int = _help("multiply the learning rate by lr_gamma every lr_step epochs (SR-GNN's recipe: 3); 0: constant",
                         default=0)
    lr_gamma: float = _help("the factor of each lr_step decay", default=0.1)
    batch_size: int = _help("training batch size (users per batch)", default=256)
    epochs: int = _help("maximum number of epochs", default=200)
    patience: int = _help("early stopping: epochs without improvement of the monitor", default=10)
    monitor: str = _help(f"early stopping monitor: one of {', '.join(MONITORS)}", default="valid_NDCG@20")
    num_negatives: int = _help("negatives per position for bce/bpr/top1 and their -max forms", default=1)
    negative_pool: str = _help("what a sampled negative may be: others (any item but the position's target) or unseen "
                               "(only items the user never interacted with, as the authors' code draws them)", default="others")
    mask_prob: float = _help("fraction of positions masked by the mlm loss", default=0.2)
    exclude_seen: str = _help("seen items in full ranking: -inf (removed) or zero (the authors' code)", default="-inf")
    ties: str = _help("ties in ranking: pessimistic (default) or optimistic", default="pessimistic")
    max_users: int | None = _help("train and evaluate on a random subset of users (None: all)", default=None)
    eval_every: int = _help("validate every N epochs (when monitoring train_loss: for the curve only; 0 = never)", default=1)
    eval_batch_size: int = _help("users per evaluation batch", default=1024)
    device: str = _help("auto, cpu or cuda", default="auto")
    precision: str = _help("fp32, or bf16 (CUDA only): forward and loss under bf16 autocast, loss reduction in float32", default="fp32")
    model_options: dict = _help("model-specific options as JSON (e.g. '{\"variant\": \"causal\"}')", default_factory=dict)

    def __post_init__(self):
        from . import losses, models

        if self.model not in models.REGISTRY:
            raise SeqrecError(f"unknown model {self.model!r}; allowed: {', '.join(models.REGISTRY)}")
        losses.get(self.loss)
        if not isinstance(self.model_options, dict):
            raise SeqrecError(f"model_options must be a JSON object (e.g. '{{\"variant\": \"causal\"}}'), "
                              f"got {self.model_options!r}")
        allowed = models.OPTIONS.get(self.model, ())
        unknown = sorted(set(self.model_options) - set(allowed))
        if unknown:
            raise SeqrecError(f"unknown model_options key {unknown[0]!r} for model {self.model!r}; allowed: "
                              + (", ".join(allowed) if allowed else "none"))
        checks = [
            (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
            (self.max_len >= 2, f"max_len must be >= 2, got {self.max_len}"),
            (self.num_negatives >= 1, f"num_negatives must be >= 1, got {self.num_negatives}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (self.lr_step >= 0, f"lr_step must be >= 0 (0: constant learning rate), got {self.lr_step}"),
            (0 < self.lr_gamma <= 1, f"lr_gamma must be in (0, 1], got {self.lr_gamma}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.patience >= 1, f"patience must be >= 1, got {self.patience}"),
            (self.eval_every >= 0, f"eval_every must be >= 0, got {self.eval_every}"),
            (0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
            (0 < self.mask_prob < 1, f"mask_prob must be in (0, 1), got {self.mask_prob}"),
            (self.hidden_size >= 1 and self.num_layers >= 1 and self.num_heads >= 1,
             "hidden_size, num_layers and num_heads must be >= 1"),
            (self.hidden_size % self.num_heads == 0, f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads}"),
            (self.max_users is None or self.max_users >= 1, f"max_users must be >= 1, got {self.max_users}"),
            (self.monitor in MONITORS, f"unknown monitor {self.monitor!r}; allowed: {', '.join(MONITORS)}"),
            (self.negative_pool in NEGATIVE_POOLS, f"unknown negative_pool {self.negative_pool!r}; allowed: {', '.join(NEGATIVE_POOLS)}"),
            (self.negative_pool == "others" or losses.get(self.loss).uses_negatives,
             f"negative_pool {self.negative_pool!r} needs a loss that samples negatives, got loss {self.loss!r}"),
            (self.exclude_seen in ("-inf", "zero"), f"unknown exclude_seen {self.exclude_seen!r}; allowed: -inf, zero"),
            (self.ties in ("pessimistic", "optimistic"), f"unknown ties {self.ties!r}; allowed: pessimistic, optimistic"),
            (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), f"unknown device {self.device!r}; allowed: auto, cpu, cuda"),
            (self.monitor == "train_loss" or self.eval_every >= 1, "eval_every must be >= 1 when monitoring a validation metric"),
            (self.monitor == "train_loss" or self.eval_every <= self.epochs,
             f"eval_every {self.eval_every} > epochs {self.epochs}: no epoch would be validated for {self.monitor}"),
            (self.precision in ("fp32", "bf16"), f"unknown precision {self.precision!r}; allowed: fp32, bf16"),
            (self.precision != "bf16" or _cuda_device(self.device), f"precision bf16 needs a CUDA device, got device {self.device!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise SeqrecError(message)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SeqrecError(f"unknown config key {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
        return cls(**values)

    def key(self) -> str:
        """A short hash of the resolved config (device excluded: it does not change what is computed)."""
        defaults_added_later = (("precision", "fp32"), ("negative_pool", "others"), ("weight_decay", 0.0),
                                ("lr_step", 0), ("lr_gamma", 0.1))  # at these values: keys as before
        values = {k: v for k, v in self.to_dict().items() if k != "device" and (k, v) not in defaults_added_later}
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
