"""evaluate: a checkpoint on a MELD split -> accuracy, weighted/macro F1, per-class report, confusion matrix,
and (optionally) the modality-ablation table."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..device import amp_dtype
from ..errors import UsageError
from ..files import atomic_write, check_output_dir, default_cache_dir, file_sha256
from ..model.checkpoint import WEIGHTS_FILE, load_checkpoint, resolve_model
from ..model.dialogue import apply_dialogue
from ..model.network import BlendModel, EmotionModel, EnsembleModel, head_logits
from ..model.prior import apply_class_bias
from .features import compute_features
from .meld import has_clips, load_split
from .metrics import compute_metrics, per_class_text, write_confusion


def split_features(model: EmotionModel, meld_dir: Path, split: str, cache_dir: Path | None, vad: str = "silero",
                   progress: bool = True, log: Callable[[str], None] = print, weights_key: str = "",
                   precision: str = "fp32") -> tuple[dict[str, torch.Tensor], torch.Tensor, np.ndarray]:
    """Features of every modality of the model for one split (cached), the present mask and the labels.

    `weights_key` identifies fine-tuned text-encoder weights (their features cannot be shared with others).
    `precision`: the encoders' arithmetic, as for annotate (int8: the text encoders must already be quantised).
    """
    amp = amp_dtype(model.device, precision)
    cfg = model.config
    utts = load_split(meld_dir, split, context=cfg.text.context if cfg.text else 0,
                      limit=cfg.provenance.get("limit_dialogues"),
                      context_after=cfg.text.context_after if cfg.text else 0)
    media = [m for m in cfg.modalities if m != "text"]
    if media and not has_clips(meld_dir, split):
        log(f"{split}: the MELD.Raw clip folder is absent, so {', '.join(media)} is masked for every utterance")
    features, present = {}, []
    for m in cfg.modalities:
        extra = weights_key if m == "text" and cfg.text.finetuned else ""
        if precision != "fp32":  # float32 features keep their old cache keys
            extra += f"|{precision}"
        features[m], p = compute_features(model, m, utts, split, cache_dir, vad, progress=progress, log=log,
                                          extra_key=extra, amp_dtype=amp)
        present.append(p)
    labels = np.array([u.label for u in utts])
    return features, torch.stack(present, 1), labels


def ablation_table(modalities: list[str], predict: Callable[[torch.Tensor], torch.Tensor], present: torch.Tensor,
                   labels: np.ndarray) -> list[dict]:
    """Metrics for every non-empty subset of the modalities (the others masked); `predict(present) -> scores`."""
    rows = []
    for k in range(1, len(modalities) + 1):
        for subset in itertools.combinations(modalities, k):
            keep = torch.tensor([m in subset for m in modalities])
            masked = present & keep
            usable = masked.any(1)  # an utterance with none of the subset present is predicted from nothing
            scores = predict(torch.where(usable.unsqueeze(1), masked, keep))
            metrics = compute_metrics(labels, scores.argmax(1).numpy())
            rows.append({"modalities": "+".join(subset), "accuracy": metrics["accuracy"],
                         "weighted_f1": metrics["weighted_f1"], "macro_f1": metrics["macro_f1"],
                         "utterances_with_data": int(usable.sum())})
    return rows


def ablation_markdown(rows: list[dict], split: str) -> str:
    lines = [f"| modalities ({split}) | accuracy | weighted F1 | macro F1 | utterances with data |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['modalities']} | {r['accuracy']:.3f} | {r['weighted_f1']:.3f} | {r['macro_f1']:.3f} | "
              f"{r['utterances_with_data']} |" for r in rows]
    return "\n".join(lines) + "\n"


def split_predictor(model: EmotionModel | EnsembleModel | BlendModel, run_dir: Path, meld_dir: Path, split: str,
                    cache: Path | None, vad: str = "silero", progress: bool = True,
                    log: Callable[[str], None] = print, precision: str = "fp32", dialogue: bool = True
                    ) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, np.ndarray]:
    """Encode a split once (per ensemble member) and return `predict(present mask) -> probabilities [N, 7]`
    (the members' mean; a blend's parts' weighted mean, prior-shifted; then the model's dialogue stage, if it has
    one and `dialogue`), the split's present mask and its labels. int8 quantises the text encoders first."""
    if dialogue and model.config.dialogue:
        predict, present, labels = split_predictor(model, run_dir, meld_dir, split, cache, vad, progress, log,
                                                   precision, dialogue=False)
        utts = load_split(meld_dir, split, limit=model.config.provenance.get("limit_dialogues"))
        dialogues, speakers = [u.dialogue_id for u in utts], [u.speaker for u in utts]

        def in_dialogue(mask: torch.Tensor) -> torch.Tensor:
            probs = predict(mask).numpy()
            return torch.from_numpy(apply_dialogue(probs, dialogues, speakers, model.config.dialogue))

        return in_dialogue, present, labels
    if isinstance(model, BlendModel):
        parts = [split_predictor(part, path, meld_dir, split, cache, vad, progress, log, precision, dialogue=False)
                 for part, path in zip(model.parts, model.part_dirs)]

        def blended(mask: torch.Tensor) -> torch.Tensor:
            probs = sum(w * predict(mask) for w, (predict, _, _) in zip(model.weights, parts))
            return apply_class_bias(probs, model.config.class_bias)

        return blended, parts[0][1], parts[0][2]
    if precision == "int8":
        from ..model.int8 import quantize_text_encoders

        quantize_text_encoders(model, log, split_threads=False)  # the members are encoded one after another
    members = list(model.members) if isinstance(model, EnsembleModel) else [model]
    weights_key = file_sha256(run_dir / WEIGHTS_FILE) if model.config.text and model.config.text.finetuned else ""
    heads = []
    for i, member in enumerate(members):
        # an ensemble's fine-tuned text encoders differ per member, so do their cached features
        key = f"{weights_key}:member{i}" if weights_key and len(members) > 1 else weights_key
        features, present, labels = split_features(member, meld_dir, split, cache, vad, progress, log, key,
                                                   precision)
        heads.append((member.head, features))

    def predict(mask: torch.Tensor) -> torch.Tensor:
        """Class probabilities, averaged over an ensemble's members."""
        return sum(torch.softmax(head_logits(head, feats, mask), 1) for head, feats in heads) / len(heads)

    return predict, present, labels


def evaluate(run_dir: str | Path, meld_dir: str | Path, split: str = "dev", ablations: bool = False,
             output_dir: str | Path | None = None, cache_dir: str | Path | None = None, device: str = "cpu",
             vad: str = "silero", progress: bool = True, log: Callable[[str], None] = print,
             precision: str = "fp32") -> dict:
    """Evaluate a checkpoint on a MELD split; writes metrics.json, confusion_matrix.{csv,png} (and ablations).

    `precision`: the encoders' arithmetic (fp32, the reference; bf16, fp16 or int8 to measure what annotate's
    faster modes cost). The fusion head always runs in float32, as in annotate."""
    run_dir, meld_dir = resolve_model(run_dir), Path(meld_dir)  # a folder, or an installed name (large)
    if not meld_dir.is_dir():
        raise UsageError(f"MELD folder not found: {meld_dir}")
    out = Path(output_dir) if output_dir else run_dir / f"eval-{split}"
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    model = load_checkpoint(run_dir, device)
    check_output_dir(out)  # before scoring, not after it
    check_output_dir(cache, "cache folder")
    predict, present, labels = split_predictor(model, run_dir, meld_dir, split, cache, vad, progress, log, precision)
    parts = model.parts if isinstance(model, BlendModel) else [model]
    members = sum(len(m.members) if isinstance(m, EnsembleModel) else 1 for m in parts)
    preds = predict(present).argmax(1).numpy()
    metrics = compute_metrics(labels, preds)
    metrics.update({"split": split, "checkpoint": str(run_dir), "modalities": model.config.modalities,
                    "members": members, "precision": precision,
                    **({"blend": len(parts)} if isinstance(model, BlendModel) else {}),
                    "modalities_present": {m: int(present[:, i].sum()) for i, m in
                                           enumerate(model.config.modalities)}})
    write_confusion(out, labels, preds, f"{run_dir.name} on MELD {split}: weighted F1 {metrics['weighted_f1']:.3f}")
    if ablations:
        rows = ablation_table(model.config.modalities, predict, present, labels)
        metrics["ablations"] = rows
        atomic_write(out / "ablations.md", ablation_markdown(rows, split))
    atomic_write(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    metrics["output_dir"] = str(out)
    return metrics


def metrics_text(metrics: dict) -> str:
    """A human-readable summary: headline scores, per-class table, ablations."""
    members = f", an ensemble of {metrics['members']}" if metrics.get("members", 1) > 1 else ""
    if metrics.get("blend"):
        members = f", a blend of {metrics['blend']} checkpoints ({metrics['members']} networks)"
    if metrics.get("precision", "fp32") != "fp32":
        members += f", encoders in {metrics['precision']}"
    lines = [f"MELD {metrics['split']} ({metrics['n']} utterances, modalities {'+'.join(metrics['modalities'])}"
             f"{members}): "
             f"accuracy {metrics['accuracy']:.4f}, weighted F1 {metrics['weighted_f1']:.4f}, "
             f"macro F1 {metrics['macro_f1']:.4f}", "", per_class_text(metrics)]
    if metrics.get("ablations"):
        lines += ["", ablation_markdown(metrics["ablations"], metrics["split"]).rstrip()]
    return "\n".join(lines)
