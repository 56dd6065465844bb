"""Who speaks, per video: the utterances' voices grouped into speakers, and the groups named.

Two views of each utterance's voice: Resemblyzer's speaker embedding of its voiced samples (signals/speakers.py)
and Whisper tiny.en's encoder, its second layer's output averaged (mean and standard deviation) over the voiced
span (signals/whisper.py). Grouping (every choice made on 12 RAVDESS actors; training/diarization.py fits it and
measures it on 8 others):

1. per view, a linear backend: Resemblyzer's embedding minus the training mean with the 5 directions of largest
   within-speaker variation (emotion, effort, wording) projected out; Whisper's whitened by the within-speaker
   covariance (its eigenvalues shrunk 0.3 toward their mean); cosine scores normalised against a cohort of
   training utterances (adaptive symmetric score normalisation, top 20); the two views' scores added;
2. average-linkage clustering that favours merging small clusters, down to an over-segmentation;
3. greedy merges of the pair of clusters a logistic model rates likeliest to be one speaker (from the clusters'
   scores, their sizes, and how much of their difference lies along the directions a speaker's own voice varies
   in, where emotions split a speaker): down to the number of speakers when it is given, else while that
   likelihood stays above a threshold, within [min_speakers, max_speakers].

Two fitted backends: one on clean studio speech, one multi-condition (the same speakers also through synthetic
rooms and noises, so that channel and noise count as within-speaker variation, its cohort and merge models
including them). The clean one groups a video's voices unless its Whisper view scores them above `Backend.switch`
on average (voices unlike clean speech: in noise every utterance looks alike to it), then the multi-condition one.

Naming: a group that holds cues whose subtitles name their speaker (`NAME:`, ASS names, WebVTT voices) takes the
name most of them give, and its unnamed utterances take it too; the other groups are SPEAKER_00, SPEAKER_01, ...
in order of first appearance. A named cue keeps its own name. An utterance without voice is left unassigned. Each
row says where its speaker came from (`speaker_source`: subtitles, voice, or none).

The backend (weights/speaker/backend.safetensors) is derived from RAVDESS (CC BY-NC-SA 4.0): its cohorts are
projected RAVDESS embeddings, its merge models were fitted on conversations built from RAVDESS recordings.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .speakers import EMBEDDING, SPEAKER_DIR, SPEAKER_MODEL
from .whisper import WIDTH

BACKEND = SPEAKER_DIR / "backend.safetensors"
MAX_SPEAKERS = 8  # a prior: the speakers of one video that voices can tell apart
#: The multi-condition backend's Whisper view: its mean normalised score between a video's utterances above which
#: its voices are unlike any the backend was fitted on (clean, or through the rooms and noises of its copies), so its
#: scores and merge rule do not hold (training/diarization.py, training/results/diarization.md). On TUNING
#: conversations (6 + 6 RAVDESS actors, leave-actors-out) where grouping works (clean, RT60 0.2-0.8 s, 5-25 dB SNR)
#: it reaches at most 1.7; where it fails (RT60 1 s with white noise at 0 dB, RT60 1.2 s with pink at -5 dB: no
#: better than one speaker for all) 2.0 and more; three espeak-ng voices 26.6. Above it the count is not estimated.
DOUBTFUL_SCORE = 2.5
DOUBTFUL = ("voices unlike the speech the speaker grouping was fitted on (strong noise or reverberation, music or "
            "synthetic speech)")
WHISPER_STATE = 2  # the Whisper hidden state of the second view: the output of its second transformer layer
SUBTITLES, VOICE = "subtitles", "voice"
FEATURES = ("avg", "avg_res", "avg_wh", "log_nmin", "log_nmax", "rho_res5", "rho_res10", "rho_wh5", "rho_wh10",
            "rho_wh20")


@dataclass
class Voiceprint:
    """An utterance's voice, as the grouping reads it: Resemblyzer's 256-d embedding of its voiced samples, and
    the mean and standard deviation (768) of Whisper's hidden state WHISPER_STATE over its voiced span."""

    speaker: np.ndarray
    whisper: np.ndarray


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class View:
    """x -> l2((x - mean) @ proj); AS-norm against the cohort (projected, L2) with the top_n closest."""

    def __init__(self, mean, proj, cohort, top_n=20, l2_input=False):
        self.mean, self.proj, self.cohort, self.top_n, self.l2_input = mean, proj, cohort, top_n, l2_input

    def project(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.l2_input:
            x = _l2(x)
        return _l2((x - self.mean) @ self.proj)

    def scores(self, x: np.ndarray) -> np.ndarray:
        y = self.project(x)
        s = y @ y.T
        if self.top_n <= 0 or len(self.cohort) == 0:
            return s
        c = y @ self.cohort.T
        n = min(self.top_n, c.shape[1])
        top = np.partition(c, c.shape[1] - n, axis=1)[:, -n:]
        m, d = top.mean(1), top.std(1) + 1e-6
        return 0.5 * ((s - m[:, None]) / d[:, None] + (s - m[None]) / d[None])


class Merger:
    """logistic P(same speaker) of a cluster pair; standardised features."""

    def __init__(self, mu, scale, coef, intercept, t0, c0, p0):
        self.mu, self.scale, self.coef, self.intercept = mu, scale, coef, float(intercept)
        self.t0, self.c0, self.p0 = float(t0), float(c0), float(p0)

    def __call__(self, F: np.ndarray) -> np.ndarray:
        z = ((F - self.mu) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))


class Backend:
    """Views and merge models fitted on clean speech; `noisy`, where present, the same fitted on clean and noisy,
    reverberant copies (multi-condition), used where the voices are unlike clean speech (`pick`)."""

    def __init__(self, res: View, wh: View, v_res, v_wh, wh_scale, known: Merger, unknown: Merger,
                 legacy_threshold=-3.5, legacy_min_size=2, noisy: Backend | None = None, switch=float("inf")):
        self.res, self.wh, self.v_res, self.v_wh, self.wh_scale = res, wh, v_res, v_wh, wh_scale
        self.known, self.unknown = known, unknown
        self.legacy_threshold, self.legacy_min_size = legacy_threshold, legacy_min_size
        self.noisy, self.switch = noisy, float(switch)

    def pick(self, whisper_features: np.ndarray) -> Backend:
        """The backend for a video's voices: the multi-condition one where this one's Whisper view scores them
        above `switch` on average (doubt_score: unlike the clean speech it was fitted on), else this one."""
        if self.noisy is None:
            return self
        score = doubt_score(whisper_features, self)
        return self.noisy if score is not None and score > self.switch else self

    @classmethod
    def _read(cls, arrays: dict, num: dict, p: str = "") -> Backend:
        res = View(arrays[p + "res_mean"], arrays[p + "res_proj"], arrays[p + "res_cohort"], num[p + "top_n"],
                   l2_input=True)
        wh = View(arrays[p + "wh_mean"], arrays[p + "wh_proj"], arrays[p + "wh_cohort"], num[p + "top_n"])
        m = {k: Merger(arrays[f"{p}{k}_mu"], arrays[f"{p}{k}_scale"], arrays[f"{p}{k}_coef"],
                       num[f"{p}{k}_intercept"], num[f"{p}{k}_t0"], num[f"{p}{k}_c0"], num[f"{p}{k}_p0"])
             for k in ("known", "unknown")}
        return cls(res, wh, arrays[p + "v_res"], arrays[p + "v_wh"], arrays[p + "wh_scale"], m["known"],
                   m["unknown"], num["legacy_threshold"], num["legacy_min_size"])

    def _written(self, p: str = "") -> tuple[dict, dict]:
        arrays = dict(res_mean=self.res.mean.astype(np.float32), res_proj=self.res.proj.astype(np.float32),
                      res_cohort=self.res.cohort.astype(np.float16), wh_mean=self.wh.mean.astype(np.float32),
                      wh_proj=self.wh.proj.astype(np.float16), wh_cohort=self.wh.cohort.astype(np.float16),
                      v_res=self.v_res.astype(np.float32), v_wh=self.v_wh.astype(np.float32),
                      wh_scale=self.wh_scale.astype(np.float32))
        numbers = {"top_n": self.res.top_n}
        for k, m in (("known", self.known), ("unknown", self.unknown)):
            arrays.update({f"{k}_mu": m.mu.astype(np.float64), f"{k}_scale": m.scale.astype(np.float64),
                           f"{k}_coef": m.coef.astype(np.float64)})
            numbers.update({f"{k}_intercept": m.intercept, f"{k}_t0": m.t0, f"{k}_c0": m.c0, f"{k}_p0": m.p0})
        return {p + k: v for k, v in arrays.items()}, {p + k: v for k, v in numbers.items()}

    @classmethod
    def load(cls, path: str | Path = BACKEND) -> Backend:
        """The backend file: its arrays, and its numbers in the metadata (safetensors: nothing is unpickled)."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), "np") as z:
                meta = z.metadata() or {}
                arrays = {k: z.get_tensor(k).astype(np.float64) for k in z.keys()}
            num = json.loads(meta["numbers"])
            b = cls._read(arrays, num)
            if "noisy_res_mean" in arrays:
                b.noisy, b.switch = cls._read(arrays, num, "noisy_"), float(num["switch"])
            return b
        except (OSError, SafetensorError, KeyError, ValueError) as exc:
            raise UsageError(f"the speaker backend {path} is missing or damaged ({str(exc).splitlines()[0][:120]});"
                             f" restore weights/speaker/ from the repository") from None

    def save(self, path: str | Path = BACKEND, **notes: str) -> None:
        from ..files import save_arrays

        arrays, numbers = self._written()
        numbers.update({"legacy_threshold": self.legacy_threshold, "legacy_min_size": self.legacy_min_size})
        if self.noisy is not None:
            more, also = self.noisy._written("noisy_")
            arrays.update(more)
            numbers.update({**also, "switch": self.switch})
        save_arrays(path, arrays, metadata={"numbers": json.dumps(numbers), **notes})


@functools.lru_cache(maxsize=None)
def backend() -> Backend:
    """The shipped backend, loaded once per process."""
    return Backend.load()


# ---------------------------------------------------------------------------------------------- clustering
def size_aware_ahc(S: np.ndarray, t: float, c: float, k: int | None = None) -> np.ndarray:
    """Average linkage on similarities S, merging the pair with the highest average score + c / min(size_a, size_b)
    while that is >= t; with k given, plain average linkage down to k clusters. Labels 0..K-1."""
    n = len(S)
    tot = np.array(S, dtype=np.float64)  # sums of scores between clusters (rows/cols of merged clusters reused)
    size = np.ones(n)
    alive = np.ones(n, bool)
    lab = np.arange(n)
    bonus = 0.0 if k is not None else c
    adj = tot / np.outer(size, size) + bonus
    np.fill_diagonal(adj, -np.inf)
    K = n
    while K > 1:
        f = int(np.argmax(adj))
        i, j = divmod(f, n)
        if k is not None:
            if K <= k:
                break
        elif adj[i, j] < t:
            break
        tot[i] += tot[j]
        tot[:, i] += tot[:, j]
        size[i] += size[j]
        alive[j] = False
        lab[lab == j] = i
        row = tot[i] / (size[i] * size) + bonus / np.minimum(size[i], size)
        row[~alive] = -np.inf
        row[i] = -np.inf
        adj[i], adj[:, i] = row, row
        adj[j], adj[:, j] = -np.inf, -np.inf
        K -= 1
    return np.unique(lab, return_inverse=True)[1]


def pair_features(S, A, B, X, Y, v_res, v_wh, lab):
    """FEATURES of every cluster pair (a < b) of lab (0..K-1). X, Y: raw per-utterance vectors of the two views
    (L2 d-vectors; whisper features divided by their tuning standard deviation)."""
    K = int(lab.max()) + 1
    M = np.zeros((len(lab), K))
    M[np.arange(len(lab)), lab] = 1
    sz = M.sum(0)
    nn = np.outer(sz, sz)
    cx, cy = (M.T @ X) / sz[:, None], (M.T @ Y) / sz[:, None]

    def sqd(Z):
        q = (Z ** 2).sum(1)
        return np.maximum(q[:, None] + q[None] - 2 * Z @ Z.T, 1e-12)

    dx, dy = sqd(cx), sqd(cy)
    px, py = cx @ v_res[:10].T, cy @ v_wh[:20].T
    a, b = np.triu_indices(K, 1)
    f = [((M.T @ S @ M) / nn)[a, b], ((M.T @ A @ M) / nn)[a, b], ((M.T @ B @ M) / nn)[a, b],
         np.log(np.minimum(sz[a], sz[b])), np.log(np.maximum(sz[a], sz[b])),
         sqd(px[:, :5])[a, b] / dx[a, b], sqd(px)[a, b] / dx[a, b],
         sqd(py[:, :5])[a, b] / dy[a, b], sqd(py[:, :10])[a, b] / dy[a, b], sqd(py)[a, b] / dy[a, b]]
    return np.stack(f, 1), a, b


def merge_by_model(lab, model, S, A, B, X, Y, v_res, v_wh, k=None, lo=1, hi=MAX_SPEAKERS, p0=0.5):
    """Merge the pair with the highest P(same) until k clusters (k given) or until the best P < p0 and K <= hi
    (never below lo)."""
    lab = np.unique(lab, return_inverse=True)[1]
    while True:
        K = int(lab.max()) + 1
        if K < 2 or K <= (k if k is not None else lo):
            return lab
        F, a, b = pair_features(S, A, B, X, Y, v_res, v_wh, lab)
        p = model(F)
        i = int(np.argmax(p))
        if k is None and p[i] < p0 and K <= hi:
            return lab
        lab[lab == b[i]] = a[i]
        lab = np.unique(lab, return_inverse=True)[1]


def cluster(b: Backend, E: np.ndarray, W: np.ndarray, k: int | None, lo: int, hi: int,
            scores: tuple | None = None) -> np.ndarray:
    """labels of the rows of E (d-vectors) and W (whisper features), all finite; scores: precomputed (A, B)."""
    A, B = scores if scores is not None else (b.res.scores(E), b.wh.scores(W))
    S = A + B
    X, Y = _l2(np.asarray(E, np.float64)), np.asarray(W, np.float64) / b.wh_scale
    m = b.known if k is not None else b.unknown
    lab = size_aware_ahc(S, m.t0, m.c0)
    if k is not None and lab.max() + 1 < k:
        lab = size_aware_ahc(S, 0.0, 0.0, k=k)
    return merge_by_model(lab, m, S, A, B, X, Y, b.v_res, b.v_wh, k=k, lo=lo, hi=hi, p0=m.p0)


def _legacy(b: Backend, E: np.ndarray, k: int | None, lo: int, hi: int) -> np.ndarray:
    """resemblyzer only (../speakers): average linkage cut at k, or at the threshold + small-cluster merging."""
    return legacy_labels(b.res.scores(E), k, lo, hi, b.legacy_threshold, b.legacy_min_size)


def legacy_labels(S: np.ndarray, k: int | None, lo: int = 1, hi: int = MAX_SPEAKERS, threshold: float = -3.5,
                  min_size: int = 2) -> np.ndarray:
    if k is not None:
        return size_aware_ahc(S, 0.0, 0.0, k=k)
    lab = size_aware_ahc(S, threshold, 0.0)
    if lab.max() + 1 > hi:
        lab = size_aware_ahc(S, 0.0, 0.0, k=hi)
    while True:
        ids, sizes = np.unique(lab, return_counts=True)
        if len(ids) <= lo or sizes.min() >= min_size:
            break
        small = ids[np.argmin(sizes)]
        inside = lab == small
        best = max((i for i in ids if i != small), key=lambda i: S[np.ix_(inside, lab == i)].mean())
        lab[inside] = best
    if len(np.unique(lab)) < lo:
        lab = size_aware_ahc(S, 0.0, 0.0, k=lo)
    return lab


def doubt_score(whisper_features: np.ndarray, backend_: Backend | None = None) -> float | None:
    """The Whisper view's mean normalised score between the utterances (rows) of one video (None: fewer than two
    rows with voice). Rows that are not finite are left out."""
    w = np.asarray(whisper_features, dtype=np.float64)
    w = w[np.isfinite(w).all(1) & (np.abs(w).sum(1) > 0)] if len(w) else w
    if len(w) < 2:
        return None
    s = (backend_ or backend()).wh.scores(w)
    return float(s[~np.eye(len(w), dtype=bool)].mean())


def doubtful(whisper_features: np.ndarray, backend_: Backend | None = None) -> float | None:
    """doubt_score by the multi-condition backend (the backend itself if it has none) when it is above
    DOUBTFUL_SCORE; else None."""
    b = backend_ or backend()
    score = doubt_score(whisper_features, b.noisy or b)
    return score if score is not None and score > DOUBTFUL_SCORE else None


def assign_speakers(embeddings: np.ndarray, whisper_features: np.ndarray | None = None,
                    num_speakers: int | None = None, min_speakers: int | None = None,
                    max_speakers: int | None = None, backend_: Backend | None = None) -> np.ndarray:
    """A speaker label 0..k-1 per utterance (rows in time order; 0 speaks first), -1 where a row (of either
    input) is not finite or all zero (no voice). num_speakers: the count if known; else it is estimated within
    [min_speakers, max_speakers] (default [1, MAX_SPEAKERS]). Without Whisper features, Resemblyzer's view alone
    (average linkage cut at a normalised-score threshold)."""
    b = backend_ or backend()
    e = np.asarray(embeddings, dtype=np.float64)
    ok = np.isfinite(e).all(1) & (np.abs(e).sum(1) > 0)
    w = None
    if whisper_features is not None:
        w = np.asarray(whisper_features, dtype=np.float64)
        ok &= np.isfinite(w).all(1) & (np.abs(w).sum(1) > 0)
    out = np.full(len(e), -1, dtype=np.int64)
    n = int(ok.sum())
    if n == 0:
        return out
    lo = max(1, min_speakers or 1)
    hi = max(1, min(n, max_speakers or MAX_SPEAKERS))
    k = None
    if num_speakers is not None:
        k = min(max(1, int(num_speakers)), n)
    lo = min(lo, hi)
    if n == 1 or (k or hi) == 1:
        out[ok] = 0
        return out
    if w is None:
        labels = _legacy(b, e[ok], k, lo, hi)
    else:
        labels = cluster(b.pick(w[ok]), e[ok], w[ok], k, lo, hi)
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
    """Give `rows` (outputs.result.Prediction, labelled, in the file's order, each with its `voiceprint`, None
    without voice) their speakers and `speaker_source`; returns the JSON's account of it."""
    prints = [r.voiceprint for r in rows]
    embeddings = np.stack([p.speaker if p is not None else np.full(EMBEDDING, np.nan) for p in prints]) \
        if rows else np.zeros((0, EMBEDDING))
    whisper = np.stack([p.whisper if p is not None else np.full(2 * WIDTH, np.nan) for p in prints]) \
        if rows else np.zeros((0, 2 * WIDTH))
    named = [r.speaker for r in rows]
    names = {n.strip().casefold() for n, e in zip(named, embeddings) if n and np.isfinite(e).all()}
    if num_speakers is None and names:  # the subtitles' own speakers are at least as many voices
        min_speakers = max(min_speakers or 1, min(len(names), max_speakers or MAX_SPEAKERS))
    doubt = doubtful(whisper)
    if doubt is not None and num_speakers is None:  # no estimate: every voice would be read as one speaker
        labels = np.full(len(rows), -1, dtype=np.int64)
    else:
        labels = assign_speakers(embeddings, whisper, num_speakers, min_speakers, max_speakers)
    speakers, sources = name_speakers(labels, named)
    for row, speaker, source in zip(rows, speakers, sources):
        row.speaker, row.speaker_source = speaker, source
    found = int(labels.max()) + 1 if (labels >= 0).any() else 0
    account = {"model": SPEAKER_MODEL, "speakers": found, "count": "given" if num_speakers else "estimated",
               "by_voice": sum(s == VOICE for s in sources), "by_subtitles": sum(s == SUBTITLES for s in sources),
               "unassigned": sum(s is None for s in sources)}
    if doubt is not None:
        account["doubtful"] = (f"{DOUBTFUL} (score {doubt:.1f}, above {DOUBTFUL_SCORE:g}): "
                               + ("grouped into the speakers given, less reliably" if num_speakers else
                                  "speakers not estimated; give --num-speakers to group them anyway"))
    return account
