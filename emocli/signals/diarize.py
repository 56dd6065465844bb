"""Who speaks, per video: the utterances' speaker embeddings (signals/speakers.py) grouped into speakers, and the
groups named.

Grouping (chosen on RAVDESS's tuning actors only; training/diarization.py fits it, bench/diarization.py measures
it on other actors): a backend subtracts the training mean and projects out the directions of largest
within-speaker variation (emotion, effort, wording), cosine scores are normalised against a cohort of other
speakers' embeddings (adaptive symmetric score normalisation), and average-linkage agglomerative clustering cuts
the tree at the number of speakers when it is given, else at a normalised-score threshold, then merges clusters
smaller than `min_size` into the one they resemble most, within [min_speakers, max_speakers].

Naming: a group that holds cues whose subtitles name their speaker (`NAME:`, ASS names, WebVTT voices) takes
the name most of them give, and its unnamed utterances take it too; the other groups are SPEAKER_00,
SPEAKER_01, ... in order of first appearance. A named cue keeps its own name. An utterance without voice is
left unassigned. Each row says where its speaker came from (`speaker_source`: subtitles, voice, or none).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .speakers import SPEAKER_DIR, SPEAKER_MODEL

BACKEND = SPEAKER_DIR / "backend.safetensors"
MAX_SPEAKERS = 8  # a prior: the speakers of one video that voices can tell apart
SUBTITLES, VOICE = "subtitles", "voice"


@dataclass
class Backend:
    mean: np.ndarray  # (256,)
    nuisance: np.ndarray  # (R, 256) orthonormal rows, projected out
    cohort: np.ndarray  # (N, 256) projected, L2-normalised cohort embeddings
    top_n: int  # cohort scores per utterance for the score normalisation
    threshold: float  # normalised average-linkage score above which clusters merge (count not given)
    min_size: int  # clusters smaller than this are merged when the count is not given

    @classmethod
    def load(cls, path: str | Path = BACKEND) -> Backend:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), "np") as f:
                meta = f.metadata() or {}
                arrays = {k: f.get_tensor(k).astype(np.float64) for k in ("mean", "nuisance", "cohort")}
            return cls(arrays["mean"], arrays["nuisance"], arrays["cohort"], int(meta["top_n"]),
                       float(meta["threshold"]), int(meta["min_size"]))
        except (OSError, SafetensorError, KeyError, ValueError) as exc:
            raise UsageError(f"the speaker backend {path} is missing or damaged ({str(exc).splitlines()[0][:120]});"
                             f" restore weights/speaker/ from the repository") from None

    def save(self, path: str | Path = BACKEND, **metadata: str) -> None:
        from safetensors.numpy import save_file

        save_file({"mean": self.mean.astype(np.float32), "nuisance": self.nuisance.astype(np.float32),
                   "cohort": self.cohort.astype(np.float16)}, str(path),
                  metadata={"top_n": str(self.top_n), "threshold": str(self.threshold),
                            "min_size": str(self.min_size), **metadata})

    def project(self, x: np.ndarray) -> np.ndarray:
        x = _l2(np.asarray(x, dtype=np.float64)) - self.mean
        x = x - (x @ self.nuisance.T) @ self.nuisance
        return _l2(x)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Normalised similarity matrix of projected embeddings x (n, 256)."""
        s = x @ x.T
        if self.top_n <= 0 or len(self.cohort) == 0:
            return s
        c = x @ self.cohort.T
        n = min(self.top_n, c.shape[1])
        top = np.partition(c, c.shape[1] - n, axis=1)[:, -n:]
        m, d = top.mean(1), top.std(1) + 1e-6
        return 0.5 * ((s - m[:, None]) / d[:, None] + (s - m[None]) / d[None])


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


_backend: Backend | None = None


def backend() -> Backend:
    global _backend
    if _backend is None:
        _backend = Backend.load()
    return _backend


def _tree(s: np.ndarray) -> tuple[np.ndarray, float]:
    """Average-linkage tree on distances shift - s (shift: the largest score, so distances are >= 0; average
    linkage is unchanged by a constant shift, so a merge at height h means an average score of shift - h)."""
    from scipy.cluster.hierarchy import linkage

    iu = np.triu_indices(len(s), 1)
    shift = float(s[iu].max())
    return linkage(shift - s[iu], "average"), shift


def _merge_small(s: np.ndarray, labels: np.ndarray, min_size: int, min_k: int) -> np.ndarray:
    """Merge the smallest cluster under min_size into the cluster with the highest average score, repeatedly."""
    labels = labels.copy()
    while True:
        ids, sizes = np.unique(labels, return_counts=True)
        if len(ids) <= max(min_k, 1) or sizes.min() >= min_size:
            return labels
        small = ids[np.argmin(sizes)]
        inside = labels == small
        best = max((i for i in ids if i != small), key=lambda i: s[np.ix_(inside, labels == i)].mean())
        labels[inside] = best


def assign_speakers(embeddings: np.ndarray, num_speakers: int | None = None, min_speakers: int | None = None,
                    max_speakers: int | None = None, backend_: Backend | None = None) -> np.ndarray:
    """A speaker label 0..k-1 per utterance (row of `embeddings`, in time order; 0 speaks first), -1 for a row that
    is not finite (no voice). `num_speakers`: the count if known; else it is estimated within [min_speakers,
    max_speakers] (default 1..MAX_SPEAKERS)."""
    from scipy.cluster.hierarchy import fcluster

    b = backend_ or backend()
    e = np.asarray(embeddings, dtype=np.float64).reshape(len(embeddings), -1)
    out = np.full(len(e), -1, dtype=np.int64)
    ok = np.isfinite(e).all(1) & (np.abs(e).sum(1) > 0) if len(e) else np.zeros(0, bool)
    n = int(ok.sum())
    if n == 0:
        return out
    lo = max(1, min_speakers or 1)
    hi = min(n, max_speakers or MAX_SPEAKERS)
    if num_speakers is not None:
        lo = hi = min(max(1, int(num_speakers)), n)
    lo = min(lo, hi)
    if n == 1 or hi == 1:
        out[ok] = 0
        return out
    s = b.scores(b.project(e[ok]))
    z, shift = _tree(s)
    if lo == hi:
        labels = fcluster(z, lo, "maxclust") - 1
    else:
        labels = fcluster(z, shift - b.threshold, "distance") - 1  # merge while the average score >= threshold
        if len(np.unique(labels)) > hi:
            labels = fcluster(z, hi, "maxclust") - 1
        labels = _merge_small(s, labels, b.min_size, lo)
        if len(np.unique(labels)) < lo:
            labels = fcluster(z, lo, "maxclust") - 1
    first: dict[int, int] = {}
    for lab in labels:
        first.setdefault(int(lab), len(first))
    out[ok] = [first[int(lab)] for lab in labels]
    return out


def name_speakers(labels: np.ndarray, named: list[str | None]) -> tuple[list[str | None], list[str | None]]:
    """Each utterance's speaker and where it came from, from its voice group (`labels`, -1: no voice) and the
    name its subtitle gives (`named`, None: none): see the module's docstring."""
    groups: dict[int, Counter] = {}
    for lab, name in zip(labels, named):
        if lab >= 0 and name:
            groups.setdefault(int(lab), Counter())[name.strip().casefold()] += 1
    spelled = {}
    for name in named:  # a name as the subtitles first spell it
        if name:
            spelled.setdefault(name.strip().casefold(), name.strip())
    taken = {lab: spelled[c.most_common(1)[0][0]] for lab, c in groups.items()}
    unnamed, out, source = {}, [], []
    for lab, name in zip(labels, named):
        if name:
            out.append(name)
            source.append(SUBTITLES)
        elif lab < 0:
            out.append(None)
            source.append(None)
        else:
            if lab not in taken:
                taken[int(lab)] = unnamed.setdefault(int(lab), f"SPEAKER_{len(unnamed):02d}")
            out.append(taken[int(lab)])
            source.append(VOICE)
    return out, source


def diarize(rows: list, num_speakers: int | None = None, min_speakers: int | None = None,
            max_speakers: int | None = None) -> dict:
    """Give `rows` (outputs.result.Prediction, labelled, in the file's order, each with its `speaker_embedding`,
    None without voice) their speakers and `speaker_source`; returns the JSON's account of it."""
    embeddings = np.stack([r.speaker_embedding if r.speaker_embedding is not None else np.full(256, np.nan)
                           for r in rows]) if rows else np.zeros((0, 256))
    named = [r.speaker for r in rows]
    names = {n.strip().casefold() for n, e in zip(named, embeddings) if n and np.isfinite(e).all()}
    if num_speakers is None and names:  # the subtitles' own speakers are at least as many voices
        min_speakers = max(min_speakers or 1, min(len(names), max_speakers or MAX_SPEAKERS))
    labels = assign_speakers(embeddings, num_speakers, min_speakers, max_speakers)
    speakers, sources = name_speakers(labels, named)
    for row, speaker, source in zip(rows, speakers, sources):
        row.speaker, row.speaker_source = speaker, source
    found = int(labels.max()) + 1 if (labels >= 0).any() else 0
    return {"model": SPEAKER_MODEL, "speakers": found, "count": "given" if num_speakers else "estimated",
            "by_voice": sum(s == VOICE for s in sources), "by_subtitles": sum(s == SUBTITLES for s in sources),
            "unassigned": sum(s is None for s in sources)}
