"""S3-Rec's pretraining stage: separate, checkpointed after every epoch, resumable, found again by name.

``ensure_pretrained(config)`` returns the path of the checkpoint for ``config.data``, ``max_users``, ``seed``,
the encoder sizes (``max_len``, ``hidden_size``, ``num_layers``, ``num_heads``, ``dropout``) and
``config.model_options["pretrain_epochs"]`` (default: the protocol's 150, or 100 for Sports_and_Outdoors and
Yelp). The file is ``<root>/pretrain/<data>-u<users>-s<seed>-L<len>-D<size>-l<layers>-h<heads>-d<dropout>-e<epochs>.pt``
with ``<root>`` = ``$SEQREC_CHECKPOINT_DIR`` or ``checkpoints`` (relative to the working directory). A finished
checkpoint is returned as is; an unfinished one (an interrupted run) is resumed from its last epoch with its
saved random states, so the result equals an uninterrupted run; otherwise pretraining starts.

Data: each user's ``items[:-2]`` (its last ``max_len`` items, left-padded), so the validation and test items
never enter pretraining; with ``model_options["pretrain_recipe"] = "s3rec"`` (the S3-Rec authors' code, see
:mod:`seqrec.models.s3rec`) every prefix of those items instead, one sample each (23.6 times as many samples per
epoch on LastFM, 6.3-8.1 on the others), and the checkpoint's name ends in ``-rs3rec``. Attributes from
``<NAME>_item2attributes.json`` (found with :func:`seqrec.data.locate`; for a ``.txt`` path, the
``<stem>_item2attributes.json`` beside it). On ``config.device`` (the random draws stay on a CPU generator); Adam
with ``config.lr``, batch 100, mask probability 0.2, the loss weights of :mod:`seqrec.models.s3rec`.

Each process that pretrains appends its provenance to the checkpoint's ``sessions`` (commit, clean tree, start,
first epoch, device), which :func:`summary` hands to the finetuned run's record: pretraining and finetuning may
run from different commits, and each is recorded.

The checkpoint also records the data file's SHA-256: resuming it, or finetuning from it, after that file has
changed is a one-line error (checkpoints written before this was recorded are not checked).

``load_pretrained(config, num_items)`` is what the ``s3rec`` model factory calls: it raises a one-line
:class:`SeqrecError` telling to run ``seqrec pretrain ...`` when the checkpoint is missing, unfinished or made
for other data or sizes — never a silent random initialisation.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from pathlib import Path

import torch
from tqdm import tqdm

from . import data as data_mod
from . import provenance
from .config import TrainConfig
from .errors import SeqrecError
from .locking import file_lock, held
from .results import session_seconds
from .trainer import check_same_data, deterministic, resolve_device, save_checkpoint
from .models.s3rec import MASK_PROB, RECIPES, WEIGHTS, S3Rec, S3RecPretrainer

BATCH_SIZE = 100
DEFAULT_EPOCHS = {"Sports_and_Outdoors": 100, "Yelp": 100}
SIZE_FIELDS = ("max_len", "hidden_size", "num_layers", "num_heads", "dropout")


def options_epochs(data: str, options: dict) -> int:
    """The pretraining epochs a run with these ``model_options`` on ``data`` asks for (or the protocol's)."""
    epochs = (options or {}).get("pretrain_epochs", DEFAULT_EPOCHS.get(data, 150))
    if not isinstance(epochs, int) or epochs < 1:
        raise SeqrecError(f"model_options pretrain_epochs must be a positive integer, got {epochs!r}")
    return epochs


def options_recipe(options: dict) -> str:
    """The pretraining recipe these ``model_options`` ask for (default ``"seqrec"``)."""
    recipe = (options or {}).get("pretrain_recipe", "seqrec")
    if recipe not in RECIPES:
        raise SeqrecError(f"unknown model_options pretrain_recipe {recipe!r}; allowed: {', '.join(RECIPES)}")
    return recipe


def pretrain_epochs(config: TrainConfig) -> int:
    return options_epochs(config.data, config.model_options)


def pretrain_recipe(config: TrainConfig) -> str:
    return options_recipe(config.model_options)


def _data_tag(name: str) -> str:
    if name in data_mod.DATASETS:
        return name
    path = Path(name).resolve()
    return f"{path.stem}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


def _root() -> Path:
    return Path(os.environ.get("SEQREC_CHECKPOINT_DIR") or "checkpoints") / "pretrain"


def checkpoint_path(config: TrainConfig) -> Path:
    users = "all" if config.max_users is None else str(config.max_users)
    name = (f"{_data_tag(config.data)}-u{users}-s{config.seed}-L{config.max_len}-D{config.hidden_size}-l{config.num_layers}"
            f"-h{config.num_heads}-d{config.dropout:g}-e{pretrain_epochs(config)}{_recipe_tag(config)}.pt")
    return _root() / name


def _recipe_tag(config: TrainConfig) -> str:
    recipe = pretrain_recipe(config)
    return "" if recipe == "seqrec" else f"-r{recipe}"


def _meta(config: TrainConfig, num_items: int, num_attributes: int) -> dict:
    recipe = pretrain_recipe(config)  # in the meta only when not the default: older checkpoints still match
    return {**({} if recipe == "seqrec" else {"recipe": recipe}), "data": _data_tag(config.data),
            "max_users": config.max_users, "seed": config.seed, "epochs": pretrain_epochs(config), "num_items": num_items, "num_attributes": num_attributes,
            "lr": config.lr, "batch_size": BATCH_SIZE, "mask_prob": MASK_PROB, "weights": WEIGHTS,
            **{k: getattr(config, k) for k in SIZE_FIELDS}}


def attributes_file(name: str) -> Path:
    if name in data_mod.DATASETS:
        return data_mod.locate(f"{name}_item2attributes.json")
    path = Path(name)
    sibling = path.with_name(f"{path.stem}_item2attributes.json")
    if not sibling.is_file():
        raise SeqrecError(f"missing attribute file {sibling} (S3-Rec pretrains on item attributes: a JSON object "
                          '{"<item id>": [<attribute id>, ...]} beside the .txt, ids from 1)')
    return sibling


def read_attributes(path: str | os.PathLike, num_items: int) -> torch.Tensor:
    """``{"item": [attribute, ...]}`` JSON → (N+1, A+1) bool multi-hot (row and column 0 unused)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        pairs = [(int(item), int(a)) for item, attrs in raw.items() for a in attrs]
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise SeqrecError(f"{path}: not an item-to-attributes JSON object ({exc})") from None
    if any(a < 1 or i < 1 for i, a in pairs):
        raise SeqrecError(f"{path}: item and attribute ids must be >= 1")
    num_attributes = max((a for _, a in pairs), default=0)
    table = torch.zeros(num_items + 1, num_attributes + 1, dtype=torch.bool)
    pairs = [(i, a) for i, a in pairs if i <= num_items]
    if pairs:
        idx = torch.tensor(pairs)
        table[idx[:, 0], idx[:, 1]] = True
    return table


def training_windows(dataset: data_mod.SequenceData, max_len: int) -> list[list[int]]:
    """Each user's ``items[:-2]`` (held-out items left out), its last ``max_len`` items."""
    return [s[:-2][-max_len:] for s in dataset.sequences]


def pretraining_sequences(dataset: data_mod.SequenceData, max_len: int, recipe: str = "seqrec") -> torch.Tensor:
    """``"seqrec"``: (U, L), each user's training window (:func:`training_windows`), left-padded. ``"s3rec"``:
    (P, L), every prefix ``w[:1], w[:2], ..., w`` of each window ``w``."""
    windows = training_windows(dataset, max_len)
    if recipe == "s3rec":
        windows = [w[:i] for w in windows for i in range(1, len(w) + 1)]
    return data_mod.left_pad(windows, max_len)


def long_sequence(dataset: data_mod.SequenceData) -> torch.Tensor:
    """(T,): every user's ``items[:-2]``, concatenated: where the ``"s3rec"`` recipe cuts SP's negative segments
    (the authors' code cuts them from whole sequences; here held-out items stay out of pretraining)."""
    return torch.tensor([i for s in dataset.sequences for i in s[:-2]], dtype=torch.long)


def _build(config: TrainConfig, num_items: int, num_attributes: int) -> S3RecPretrainer:
    return S3RecPretrainer(num_items, num_attributes, config.max_len, config.hidden_size, config.num_layers,
                           config.num_heads, config.dropout)

def ensure_pretrained(config: TrainConfig, *, dataset: data_mod.SequenceData | None = None, progress: bool = True,
                      stop_after: int | None = None) -> Path:
    """Find, resume or run the pretraining for ``config``; return the checkpoint path.

    ``dataset`` overrides loading ``config.data`` (its attributes are still located from ``config.data``).
    ``stop_after`` ends after that many epochs in total, leaving a resumable unfinished checkpoint (tests).
    Holds a lock on ``<checkpoint>.lock`` meanwhile: two runs that need the same pretraining (S3-Rec's BCE and CCE
    cells run side by side, ``seqrec run --jobs``) pretrain once; the second waits, then finds it finished.
    """
    path = checkpoint_path(config)
    with file_lock(path.with_name(path.name + ".lock")):
        return _ensure_pretrained(config, path, dataset=dataset, progress=progress, stop_after=stop_after)


def _ensure_pretrained(config: TrainConfig, path: Path, *, dataset, progress: bool, stop_after: int | None) -> Path:
    epochs = pretrain_epochs(config)
    saved = torch.load(path, map_location="cpu", weights_only=False) if path.exists() else None
    if saved is not None and saved["epochs_done"] >= epochs:
        return path
    dataset = dataset or data_mod.load(config.data, max_users=config.max_users, seed=config.seed)
    attributes = read_attributes(attributes_file(config.data), dataset.num_items)
    meta = _meta(config, dataset.num_items, attributes.shape[1] - 1)
    recipe = pretrain_recipe(config)
    seqs = pretraining_sequences(dataset, config.max_len, recipe)
    everything = long_sequence(dataset) if recipe == "s3rec" else None

    device = resolve_device(config.device)  # the run's device; the generator (masks, negatives, segments) stays on CPU
    attributes = attributes.to(device)
    everything = everything.to(device) if everything is not None else None
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = _build(config, dataset.num_items, meta["num_attributes"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999))
    state = {"epochs_done": 0, "curve": [], "seconds": 0.0, "sessions": []}
    if saved is not None:
        if saved["meta"] != meta:
            raise SeqrecError(f"pretraining checkpoint {path} was made for other settings; move it away to start again")
        check_same_data(path, saved.get("data_sha256"), dataset.sha256, dataset.name)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
        generator.set_state(saved["generator"])
        if device.type == "cuda" and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        state = {k: saved.get(k, []) if k == "sessions" else saved[k] for k in state}  # older: no sessions

    # provenance of this process's part: the code that pretrains now (a finetuning records its own at its start)
    state["sessions"] = [*state["sessions"], {**provenance.git_state(), "from_epoch": state["epochs_done"],
                                              "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                              "device": provenance.device_name(device),
                                              "kernels": provenance.kernels(device)}]

    last = epochs if stop_after is None else min(epochs, stop_after)
    bar = tqdm(range(state["epochs_done"] + 1, last + 1), desc=f"S3-Rec pretraining on {dataset.name}",
               disable=not progress, initial=state["epochs_done"], total=epochs, unit="epoch")
    model.train()
    for epoch in bar:
        t0 = time.perf_counter()
        order = torch.randperm(seqs.shape[0], generator=generator)
        sums, batches = {k: 0.0 for k in WEIGHTS}, 0
        with deterministic(device):  # on CPU: repeatable on one thread or many (see trainer.deterministic)
            for start in range(0, seqs.shape[0], BATCH_SIZE):
                total, parts = model.loss(seqs[order[start:start + BATCH_SIZE]].to(device), attributes, generator,
                                          recipe=recipe, long_sequence=everything)
                if not torch.isfinite(total):
                    raise SeqrecError(f"pretraining loss became {total.item()} at epoch {epoch}; lower the learning rate")
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                optimizer.step()
                for k, v in parts.items():
                    sums[k] += v
                batches += 1
        state["seconds"] += time.perf_counter() - t0
        state["curve"].append({"epoch": epoch, **{k: v / batches for k, v in sums.items()}, "elapsed": state["seconds"]})
        state["epochs_done"] = epoch
        bar.set_postfix({k: f"{v / batches:.3f}" for k, v in sums.items()})
        save_checkpoint(path, {"meta": meta, "model": model.state_dict(), "encoder": model.encoder.state_dict(),
                     "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                     "generator": generator.get_state(), "data_sha256": dataset.sha256,
                     "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None, **state})
    bar.close()
    return path


def unfinished() -> list[dict]:
    """The S3-Rec pretrainings under ``<root>/pretrain/`` not finished yet: ``checkpoint`` (file name), ``epoch``
    (epochs done), ``epochs`` (planned), ``seconds`` (spent so far), ``seconds_left`` (the epochs left at the mean
    seconds per epoch so far; None before the first epoch) and ``training`` (True while a process holds its lock)."""
    rows = []
    for path in sorted(_root().glob("*.pt")):
        try:
            saved = torch.load(path, map_location="cpu", weights_only=False)
            done, planned = saved["epochs_done"], saved["meta"]["epochs"]
        except Exception:  # noqa: BLE001  a checkpoint being replaced right now, or a foreign file
            continue
        if done < planned:
            left = (planned - done) * saved["seconds"] / done if done else None
            rows.append({"checkpoint": path.name, "epoch": done, "epochs": planned, "seconds": saved["seconds"],
                         "seconds_left": left, "training": held(path.with_name(path.name + ".lock"))})
    return rows


def summary(path: Path) -> dict:
    """What a finetuned run's record keeps of its pretraining: the checkpoint's name, epochs, seconds (summed over
    resumed sessions), the last epoch's four losses and the sessions, each with the seconds its epochs took (from the
    curve's cumulative ``elapsed``), so that compute can be told by device when a pretraining moved between them."""
    saved = torch.load(path, map_location="cpu", weights_only=False)
    last = saved["curve"][-1] if saved["curve"] else {}
    return {"checkpoint": Path(path).name, "epochs": saved["epochs_done"], "seconds": saved["seconds"],
            "final_losses": {k: v for k, v in last.items() if k not in ("epoch", "elapsed")},
            "data_sha256": saved.get("data_sha256"),
            "sessions": session_seconds(saved.get("sessions", []), saved["curve"], saved["epochs_done"])}


def _command(config: TrainConfig) -> str:
    parts = [f"seqrec pretrain --data {config.data} --epochs {pretrain_epochs(config)} --seed {config.seed}"]
    if config.max_users is not None:
        parts.append(f"--max-users {config.max_users}")
    for k in SIZE_FIELDS:
        if getattr(config, k) != TrainConfig.__dataclass_fields__[k].default:
            parts.append(f"--{k.replace('_', '-')} {getattr(config, k)}")
    if pretrain_recipe(config) != "seqrec":
        parts.append(f"--model-options '{json.dumps({'pretrain_recipe': pretrain_recipe(config)})}'")
    return " ".join(parts)


def load_pretrained(config: TrainConfig, num_items: int) -> S3Rec:
    """The finetuning model with the pretrained encoder of ``config``'s checkpoint, or a one-line SeqrecError."""
    path = checkpoint_path(config)
    hint = f"run `{_command(config)}` first"
    if not path.exists():
        attributes_file(config.data)  # without attributes, pretraining cannot run: say that first
        raise SeqrecError(f"no S3-Rec pretraining checkpoint {path}; {hint} (to finetune a pretraining of another "
                          "length N, pass --model-options '{\"pretrain_epochs\": N}')")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    meta = saved.get("meta", {})
    if saved.get("epochs_done", 0) < meta.get("epochs", pretrain_epochs(config)):
        raise SeqrecError(f"S3-Rec pretraining checkpoint {path} is unfinished ({saved.get('epochs_done')} of "
                          f"{meta.get('epochs')} epochs); {hint} to resume it")
    wanted = {"num_items": num_items, "data": _data_tag(config.data), "max_users": config.max_users, "seed": config.seed,
              "recipe": pretrain_recipe(config), **{k: getattr(config, k) for k in SIZE_FIELDS}}
    wrong = [k for k, v in wanted.items() if meta.get(k, "seqrec" if k == "recipe" else None) != v]
    if wrong:
        raise SeqrecError(f"S3-Rec pretraining checkpoint {path} does not match this run ({wrong[0]}: "
                          f"{meta.get(wrong[0])!r} vs {wanted[wrong[0]]!r}); {hint}")
    check_same_data(path, saved.get("data_sha256"), data_mod.sha256_of(data_mod.data_file(config.data)), config.data)
    model = S3Rec(num_items, config.max_len, config.hidden_size, config.num_layers, config.num_heads, config.dropout)
    model.load_state_dict(saved["encoder"])
    return model
