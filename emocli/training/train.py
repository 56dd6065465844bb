"""train: MELD -> a checkpoint. Frozen-encoder features come from the embedding cache; the fusion head (and,
optionally, the top layers of the text encoder) are trained with a class-weighted loss, AdamW, modality dropout
and early stopping on dev weighted F1, with fixed seeds."""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
import random
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..errors import EmocliError, UsageError
from ..files import atomic_write, check_output_dir, default_cache_dir
from ..labels import LABELS, MODALITIES
from ..media.vad import VAD_METHODS
from ..model.checkpoint import model_card, model_state, save_checkpoint
from ..model.network import AudioConfig, EmotionModel, FusionConfig, VideoConfig, head_logits, make_config
from .features import compute_features
from .meld import SENTIMENTS, MeldUtterance, has_clips, load_split
from .metrics import compute_metrics

POOLINGS = ("mean", "utterance", "cls")
CLASS_WEIGHTINGS = ("inverse", "sqrt", "none")


@dataclass
class TrainConfig:
    """The training recipe; written into the checkpoint's provenance."""

    modalities: list[str] = field(default_factory=lambda: ["text"])
    text_encoder: str = "minilm"
    audio_encoder: str = AudioConfig.encoder
    video_encoder: str = VideoConfig.encoder
    context: int = 0  # previous utterances of the dialogue given to the text encoder
    context_after: int = 0  # following utterances of the dialogue, too
    pooling: str = "mean"
    ascii_quotes: bool = False  # typographic punctuation -> ASCII before tokenising
    finetune_layers: int = 0  # top text-encoder layers trained (0: frozen, cached features)
    finetune_embeddings: bool = False  # also train the text encoder's embeddings (needs finetune_layers > 0)
    label_smoothing: float = 0.0
    sentiment_weight: float = 0.0  # auxiliary loss: MELD's sentiment label predicted from the text vector
    epochs: int = 30
    patience: int = 5  # epochs without a better dev weighted F1 before stopping
    batch_size: int = 32
    lr: float = 1e-3  # fusion head
    encoder_lr: float = 5e-5  # fine-tuned text layers
    weight_decay: float = 0.01
    class_weighting: str = "sqrt"  # "inverse", "sqrt" (of inverse frequency) or "none"
    hidden: int = 256
    dropout: float = 0.3
    modality_dropout: float = 0.25
    seed: int = 0
    vad: str = "silero"
    limit_dialogues: int | None = None  # only the first N dialogues of each split (quick runs, tests)

    def validate(self) -> TrainConfig:
        """Check the recipe before any work (the command line and `emocli.train` alike); a UsageError names the
        first bad option. Returns self."""
        if isinstance(self.modalities, str):
            self.modalities = [m.strip().lower() for m in self.modalities.split(",") if m.strip()]
        if not self.modalities or any(m not in MODALITIES for m in self.modalities) \
                or len(set(self.modalities)) != len(self.modalities):
            raise UsageError(f"--modalities must be a comma list of {', '.join(MODALITIES)}")
        for name, value in (("--lr", self.lr), ("--encoder-lr", self.encoder_lr)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise UsageError(f"{name} must be a positive number, not {value}")
        if self.pooling not in POOLINGS:
            raise UsageError(f"--pooling must be one of {', '.join(POOLINGS)}, not {self.pooling!r}")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise UsageError(f"--class-weighting must be inverse, sqrt or none, not {self.class_weighting!r}")
        if self.vad not in VAD_METHODS:
            raise UsageError(f"--vad must be one of {', '.join(VAD_METHODS)}")
        for name, value, low in (("--epochs", self.epochs, 1), ("--patience", self.patience, 1),
                                 ("--batch-size", self.batch_size, 1), ("--context", self.context, 0),
                                 ("--context-after", self.context_after, 0),
                                 ("--finetune-layers", self.finetune_layers, 0)):
            if not isinstance(value, int) or value < low:
                raise UsageError(f"{name} must be a whole number of at least {low}, not {value!r}")
        if self.finetune_layers and "text" not in self.modalities:
            raise UsageError("--finetune-layers needs the text modality")
        if self.sentiment_weight and not self.finetune_layers:
            raise UsageError("--sentiment-weight needs --finetune-layers (the auxiliary loss trains the text encoder)")
        if self.finetune_embeddings and not self.finetune_layers:
            raise UsageError("--finetune-embeddings needs --finetune-layers (at least 1)")
        return self


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


#: What `train` leaves in its checkpoint folder after every finished epoch, until the run ends: everything needed
#: to continue it (`train --resume RUN`) exactly as if it had not stopped. Deleted once the checkpoint is written.
RESUME_FILE = "resume.pt"


def _rng_states() -> dict:
    """Every random number generator a training step may draw from (dropout, modality dropout: torch's)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                      "has_gauss": has_gauss, "gauss": gauss},
            "python": random.getstate()}


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(states["python"])


def _trainable_state(step: nn.Module) -> dict[str, torch.Tensor]:
    """What training changes in the train step: the fusion head (parameters and buffers), the fine-tuned text
    layers, the auxiliary sentiment classifier. The frozen layers come back from the encoder's own weights."""
    trainable = {name for name, p in step.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu().clone() for k, v in step.state_dict().items()
            if k in trainable or k.startswith("head.") or k.startswith("sentiment.")}


def resume_state(run_dir: str | Path) -> dict:
    """The saved state of the interrupted training run in `run_dir`; a UsageError when there is none."""
    run_dir = Path(run_dir)
    path = run_dir / RESUME_FILE
    if not path.is_file():
        if (run_dir / "model.safetensors").is_file():
            raise UsageError(f"{run_dir} holds a finished run (its checkpoint is written); nothing to resume")
        raise UsageError(f"no interrupted training run in {run_dir} ({RESUME_FILE} not found: a run saves it "
                         f"after its first epoch)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem to the user
        raise UsageError(f"cannot read {path}: {exc.__class__.__name__}") from exc
    if state.get("version") != 1:
        raise UsageError(f"{path} was written by another version of emocli; start the run afresh")
    return state


def resume_config(run_dir: str | Path) -> tuple[TrainConfig, dict]:
    """The recipe of the interrupted run in `run_dir`, and where its data and cache were."""
    state = resume_state(run_dir)
    return TrainConfig(**state["recipe"]), {"meld": state["meld"], "cache": state["cache"]}


def class_weights(labels: np.ndarray, scheme: str) -> torch.Tensor:
    """Loss weights per class: inverse frequency, its square root, or none; normalised to mean 1."""
    counts = np.bincount(labels, minlength=len(LABELS)).astype(np.float64)
    inverse = counts.sum() / np.maximum(counts, 1)
    weights = {"inverse": inverse, "sqrt": np.sqrt(inverse), "none": np.ones_like(inverse)}.get(scheme)
    if weights is None:
        raise UsageError(f"class weighting must be inverse, sqrt or none, not {scheme!r}")
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _text_layers(model: EmotionModel) -> nn.ModuleList:
    encoder = getattr(model.encoders["text"].model, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise UsageError("fine-tuning needs a BERT-style text encoder (model.encoder.layer)")
    return layers


def unfreeze_text_layers(model: EmotionModel, n: int, embeddings: bool = False) -> list[nn.Parameter]:
    """Make the top `n` transformer layers (and, optionally, the embeddings) of the text encoder trainable;
    returns their parameters."""
    layers = _text_layers(model)
    n = min(n, len(layers))
    modules = list(layers[len(layers) - n:])
    if embeddings:
        modules.append(model.encoders["text"].model.embeddings)
    params = []
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(True)
            params.append(p)
    model.config.text.finetuned = n > 0
    return params


class TextBatcher:
    """Text features computed on the fly through a (partly) trainable encoder."""

    def __init__(self, model: EmotionModel, utterances: list[MeldUtterance]) -> None:
        self.encoder = model.encoders["text"]
        self.texts = [u.text for u in utterances]
        self.contexts = [u.context for u in utterances] if model.config.text.uses_context else None
        self.device = model.device

    def tokens(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        contexts = [self.contexts[i] for i in idx] if self.contexts else None
        tokens = self.encoder.tokenize([self.texts[i] for i in idx], contexts)
        return {k: v.to(self.device) for k, v in tokens.items()}

    def __call__(self, idx: np.ndarray) -> torch.Tensor:
        return self.encoder(**self.tokens(idx))

    @torch.no_grad()
    def all(self, batch_size: int = 128) -> torch.Tensor:
        was = self.encoder.training
        self.encoder.eval()
        out = torch.cat([self(np.arange(i, min(i + batch_size, len(self.texts)))).cpu()
                         for i in range(0, len(self.texts), batch_size)])
        self.encoder.train(was)
        return out


def length_batches(order: np.ndarray, lengths: np.ndarray, batch_size: int, generator: torch.Generator,
                   pool: int = 50) -> list[np.ndarray]:
    """Batches of similar length (less padding): sort each pool of `pool` batches' worth of the shuffled order by
    length, cut it into batches, then shuffle the batches. Deterministic for a given generator."""
    batches = []
    for i in range(0, len(order), batch_size * pool):
        part = order[i:i + batch_size * pool]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
    return [batches[k] for k in torch.randperm(len(batches), generator=generator).numpy()]


class TrainStep(nn.Module):
    """What is trained, as one module (so DistributedDataParallel can average its gradients): the fusion head
    and, when fine-tuning, the text encoder (whose frozen layers take no gradient)."""

    def __init__(self, head: nn.Module, text_encoder: nn.Module | None = None, sentiment: bool = False) -> None:
        super().__init__()
        self.head, self.text_encoder = head, text_encoder
        # training-only auxiliary classifier (negative/neutral/positive) on the text vector; not saved
        self.sentiment = (nn.Linear(text_encoder.dim, len(SENTIMENTS)) if sentiment and text_encoder is not None
                          else None)

    def forward(self, features: dict[str, torch.Tensor], present: torch.Tensor,
                tokens: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if tokens is not None:
            features = {**features, "text": self.text_encoder(**tokens)}
        aux = self.sentiment(features["text"]) if self.sentiment is not None else None
        return self.head(features, present)[0], aux


def _save_resume(out_dir: Path, state: dict) -> None:
    """Write the training state atomically: a run killed while writing it keeps the previous epoch's."""
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(out_dir / RESUME_FILE, buffer.getvalue())


def distributed_setup(device: str) -> tuple[int, int, str]:
    """Under torchrun (WORLD_SIZE > 1): join the process group (NCCL on CUDA, else gloo); returns
    (rank, world size, this rank's device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank(), world, device


def train(meld_dir: str | Path, out_dir: str | Path, cfg: TrainConfig, cache_dir: str | Path | None = None,
          device: str = "cpu", progress: bool = True, log: Callable[[str], None] = print,
          resume: bool = False, finish: bool = False) -> dict:
    """Train on MELD train, select on MELD dev, write the best checkpoint to out_dir; returns its dev metrics.

    After every epoch the whole training state goes to out_dir/resume.pt; `resume=True` continues from the last
    finished epoch there (same recipe required), with the same result as a run that never stopped. `finish=True`
    (with resume) trains no further: the best epoch so far is written, and the model card says where it stopped."""
    started = time.time()
    cfg.validate()
    if finish and not resume:
        raise UsageError("--finish ends an interrupted run: use it with --resume RUN")
    saved = resume_state(out_dir) if resume else None
    if saved is not None and saved["recipe"] != asdict(cfg):
        changed = sorted(k for k, v in asdict(cfg).items() if saved["recipe"].get(k) != v)
        raise UsageError(f"--resume continues {out_dir} with its own recipe; these options differ: "
                         f"{', '.join(changed)}")
    rank, world, device = distributed_setup(device)
    if rank != 0:  # one voice: rank 0 logs, shows progress and writes the checkpoint
        progress, log = False, (lambda msg: None)
    meld_dir, out_dir = Path(meld_dir), Path(out_dir)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    if rank == 0:  # before training, not after it
        check_output_dir(out_dir, "checkpoint folder")
        check_output_dir(cache, "cache folder")
    mods = [m for m in MODALITIES if m in cfg.modalities]
    for m in mods:
        if m != "text" and not has_clips(meld_dir, "train"):
            raise UsageError(f"--modalities {m} needs the MELD.Raw clip folders (train_splits/, "
                             f"dev_splits_complete/) in {meld_dir}; only the CSVs are there, so train with "
                             f"--modalities text")
    set_seed(cfg.seed)
    torch.set_flush_denormal(True)  # tiny gradients late in training otherwise slow CPU epochs down several-fold
    fusion = FusionConfig(hidden=cfg.hidden, dropout=cfg.dropout, modality_dropout=cfg.modality_dropout)
    config = make_config(mods, cfg.text_encoder, cfg.audio_encoder, cfg.video_encoder, cfg.context, cfg.pooling,
                         fusion, cfg.context_after, cfg.ascii_quotes)
    config.provenance = {"recipe": asdict(cfg), "limit_dialogues": cfg.limit_dialogues}
    set_seed(cfg.seed)
    model = EmotionModel(config).to(device)
    data = {s: load_split(meld_dir, s, cfg.context, cfg.limit_dialogues, cfg.context_after) for s in ("train", "dev")}
    log(f"MELD train {len(data['train'])} / dev {len(data['dev'])} utterances; modalities {', '.join(mods)}")

    finetune = cfg.finetune_layers > 0
    if rank != 0:
        dist.barrier()  # rank 0 fills the embedding cache first; the others then read it
    features: dict[str, dict[str, torch.Tensor]] = {"train": {}, "dev": {}}
    present: dict[str, list[torch.Tensor]] = {"train": [], "dev": []}
    for split in ("train", "dev"):
        for m in mods:
            if m == "text" and finetune:
                features[split][m] = None  # computed per batch
                present[split].append(torch.tensor([bool(u.text) for u in data[split]]))
                continue
            features[split][m], p = compute_features(model, m, data[split], split, cache, cfg.vad,
                                                     progress=progress, log=log)
            present[split].append(p)
    if rank == 0 and world > 1:
        dist.barrier()
    present_t = {s: torch.stack(present[s], 1) for s in present}
    labels = {s: np.array([u.label for u in data[s]]) for s in data}

    encoder_params = unfreeze_text_layers(model, cfg.finetune_layers, cfg.finetune_embeddings) if finetune else []
    text_batches = {s: TextBatcher(model, data[s]) for s in data} if finetune else {}
    use_sentiment = finetune and cfg.sentiment_weight > 0
    step: nn.Module = TrainStep(model.head, model.encoders["text"] if finetune else None, use_sentiment).to(device)
    if world > 1:
        step = DistributedDataParallel(step, find_unused_parameters=True)
    head_params = list(model.head.parameters())
    if use_sentiment:
        head_params += list(step.sentiment.parameters())
    groups = [{"params": head_params, "lr": cfg.lr}]
    if encoder_params:
        groups.append({"params": encoder_params, "lr": cfg.encoder_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    per_rank = len(labels["train"]) // world  # equal shares, so every rank takes the same number of steps
    steps_per_epoch = (per_rank + cfg.batch_size - 1) // cfg.batch_size
    total = steps_per_epoch * cfg.epochs
    warmup = max(1, int(0.06 * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup)))
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(labels["train"], cfg.class_weighting).to(device),
                                  label_smoothing=cfg.label_smoothing)
    generator = torch.Generator().manual_seed(cfg.seed)
    y_train = torch.from_numpy(labels["train"])
    s_train = torch.tensor([u.sentiment for u in data["train"]])
    sentiment_loss = nn.CrossEntropyLoss(ignore_index=-1)
    lengths = np.array([len(u.text) + len(u.context) for u in data["train"]])  # characters: a token-count proxy

    best = {"weighted_f1": -1.0}
    best_state, stale, history, first, stopped = None, 0, [], 1, False
    inner = step.module if isinstance(step, DistributedDataParallel) else step
    if saved is not None:
        missing = [k for k in _trainable_state(inner) if k not in saved["step"]]
        if missing:
            raise UsageError(f"{out_dir / RESUME_FILE} does not fit this model (missing {missing[0]})")
        inner.load_state_dict(saved["step"], strict=False)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        generator.set_state(saved["generator"])
        _set_rng_states(saved["rng"])
        best, best_state, stale, history = saved["best"], saved["best_state"], saved["stale"], saved["history"]
        first, stopped = saved["epoch"] + 1, saved["stopped"]
        started -= saved["seconds"]
        log(f"resuming {out_dir} after epoch {saved['epoch']} of {cfg.epochs} (best dev weighted F1 so far "
            f"{best['weighted_f1']:.4f}, epoch {best['epoch']})")
        if finish and not stopped:
            first = cfg.epochs + 1  # no more epochs
            config.provenance["notes"] = [f"Training was ended after epoch {saved['epoch']} of {cfg.epochs} "
                                          f"(train --resume --finish); the best of those epochs is kept."]
            log(f"--finish: writing the best epoch so far ({best['epoch']}) without training further")
    elif rank == 0 and (out_dir / RESUME_FILE).is_file():
        log(f"{out_dir} holds an interrupted run: starting afresh over it (--resume {out_dir} continues it)")
    for epoch in range(first, cfg.epochs + 1):
        if stopped:
            break
        model.head.train()
        if finetune:
            model.encoders["text"].train()
        order = torch.randperm(len(y_train), generator=generator).numpy()  # same on every rank (same seed)
        order = order[: per_rank * world][rank::world]
        running = 0.0
        for idx in length_batches(order, lengths, cfg.batch_size, generator):
            feats = {m: f[idx].to(device) for m, f in features["train"].items() if f is not None}
            tokens = text_batches["train"].tokens(idx) if finetune else None
            logits, aux = step(feats, present_t["train"][idx].to(device), tokens)
            loss = loss_fn(logits, y_train[idx].to(device))
            if aux is not None:
                loss = loss + cfg.sentiment_weight * sentiment_loss(aux, s_train[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
            optimizer.step()
            scheduler.step()
            running += loss.item() * len(idx)
            if not math.isfinite(running):
                raise EmocliError(f"training diverged in epoch {epoch} (the loss is {loss.item()}); try a lower "
                                  f"--lr / --encoder-lr")
        dev_feats = {m: (text_batches["dev"].all() if f is None else f) for m, f in features["dev"].items()}
        dev_pred = head_logits(model.head, dev_feats, present_t["dev"]).argmax(1).numpy()
        metrics = compute_metrics(labels["dev"], dev_pred)
        history.append({"epoch": epoch, "train_loss": round(running / len(order), 4),
                        "dev_weighted_f1": metrics["weighted_f1"], "dev_macro_f1": metrics["macro_f1"]})
        log(f"epoch {epoch}: train loss {running / len(order):.4f}, dev weighted F1 {metrics['weighted_f1']:.4f}, "
            f"macro F1 {metrics['macro_f1']:.4f}")
        if metrics["weighted_f1"] > best["weighted_f1"]:
            best, best_state, stale = {**metrics, "epoch": epoch}, copy.deepcopy(model_state(model)), 0
        else:
            stale += 1
        stopped = stale >= cfg.patience
        if rank == 0:
            _save_resume(out_dir, {
                "version": 1, "recipe": asdict(cfg), "meld": str(meld_dir.absolute()),
                "cache": str(cache.absolute()), "epoch": epoch, "stopped": stopped,
                "step": _trainable_state(inner), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "generator": generator.get_state(), "rng": _rng_states(),
                "best": best, "best_state": best_state, "stale": stale, "history": history,
                "seconds": time.time() - started})
        if stopped:
            log(f"no better dev weighted F1 for {cfg.patience} epochs: stopping")
    for p in model.parameters():  # only what was fine-tuned stays marked trainable (that is what gets saved)
        p.requires_grad_(False)
    for p in encoder_params:
        p.requires_grad_(True)
    config.provenance.update({
        "data": {"dataset": "MELD", "train_utterances": len(data["train"]), "dev_utterances": len(data["dev"]),
                 "modalities_with_data": {m: int(present_t["train"][:, i].sum()) for i, m in enumerate(mods)}},
        "dev_weighted_f1": best["weighted_f1"], "history": history,
        "dev_metrics": {k: best[k] for k in ("n", "accuracy", "weighted_f1", "macro_f1", "epoch")},
        "trained": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "git_commit": _git_commit(),
        "train_seconds": round(time.time() - started, 1), "torch": torch.__version__})
    config.provenance["world_size"] = world
    if rank == 0:
        save_checkpoint(model, out_dir, model_card(config), state=best_state)
        (out_dir / RESUME_FILE).unlink(missing_ok=True)  # the run is complete: nothing left to resume
        log(f"best dev weighted F1 {best['weighted_f1']:.4f} (epoch {best['epoch']}); checkpoint written to "
            f"{out_dir}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return best
