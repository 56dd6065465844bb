"""Fit and measure `annotate --diarize` (emocli/signals/diarize.py) on RAVDESS, one command:

    python training/diarization.py                     # reads ../shared/data/ravdess, writes weights/speaker/backend
    python training/diarization.py --evaluate-only     # the table again, with the shipped backend
    python training/diarization.py --ravdess DIR --out runs/backend.safetensors --cache runs/diarization-cache

What it does (about 11 minutes on 2 CPU cores from an empty cache; deterministic):
1. The actors are split once (seed 35): REPORT = 4 men + 4 women, TUNING = the other 12 (6 + 6). Every choice of
   the method (the views, their backends, the thresholds, the merge rule's features) was made on conversations of
   the TUNING actors only (the research log: training/results/diarization.md); the REPORT actors are touched by
   the table alone.
2. Features exactly as annotate computes them (emocli.pipeline.predict.SignalReader): each recording decoded to
   16 kHz mono, silero voice detection; Resemblyzer's embedding of the voiced samples (signals/speakers.py) and
   the mean and standard deviation of Whisper tiny.en's hidden state 2 over the voiced span (signals/whisper.py).
3. Synthetic conversations: k speakers (2, 3, 4, 6) of a gender mix (men, women, mixed), 20-60 utterances,
   unbalanced turns (each speaker 2 + a Dirichlet(1)-multinomial share), recordings drawn without replacement in
   random order; 50 per (k, mix).
4. Six noisy, reverberant copies of the 720 TUNING recordings, for fitting only (COPIES: one synthetic room and
   one noise per copy, RT60 0.2-0.8 s, white/pink/brown noise at 5-25 dB SNR, or each recording its own; seeds
   unlike the table's), their features computed as annotate would (voice detection run again on each copy).
5. Two backends, fitted on the TUNING actors: per view a linear map (Resemblyzer: 5 within-speaker directions
   projected out; Whisper: within-speaker whitening, eigenvalues shrunk 0.3 toward their mean) and an AS-norm
   cohort; two logistic merge models (count known / estimated) trained on cluster pairs of the first stage's
   partitions of TUNING conversations, each scored with views fitted on the tuning actors NOT in it (at annotate
   time the speakers are unseen). The clean backend: the 720 clean recordings, 600 clean conversations. The
   multi-condition backend (NOISY): the clean recordings and their six copies (what varies within an actor,
   channel and noise included, is nuisance), a cohort of the clean ones and a third of the copies', 600 clean
   conversations and 1,200 in one copy each. annotate uses the clean one unless its Whisper view scores a video's
   voices above SWITCH on average (unlike clean speech), then the multi-condition one. Both written to --out
   (safetensors: arrays + numbers). `--tune FILE` writes the tuning figures (leave-actors-out views, merge models
   2-fold over conversations) of the settings in --settings instead, also on two conditions beyond the copies
   (BEYOND, where grouping fails); they chose NOISY, SWITCH and signals/diarize.py's DOUBTFUL_SCORE.
6. The table: the 500 REPORT conversations, the backend as shipped, count given and estimated; accuracy = share of
   utterances right under the best one-to-one map of groups to speakers (Hungarian); exact = share of
   conversations whose count is estimated right; then the same conversations from two noisy, reverberant copies
   of the recordings (one room for all; each its own). Written to training/results/diarization-report.{json,md}.
RAVDESS is CC BY-NC-SA 4.0: the backend holds projected RAVDESS embeddings (its cohorts), so it shares those terms.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emocli.media.ffmpeg import decode_audio  # noqa: E402
from emocli.media.vad import voiced_masks  # noqa: E402
from emocli.signals import diarize as dz  # noqa: E402
from emocli.signals.speakers import embed_voices  # noqa: E402
from emocli.signals.whisper import pooled_states  # noqa: E402

SPLIT_SEED = 35
KS = (2, 3, 4, 6)
MIXES = ("male", "female", "mixed")
PER_CONFIG = 50
RES_NAP = 5  # within-speaker directions projected out of the Resemblyzer embeddings
WH_SHRINK = 0.3  # within-speaker whitening of the Whisper view: eigenvalues shrunk toward their mean
TOP_N = 20  # AS-norm cohort: the closest N
COHORT_EVERY = 1  # the cohort: every clean fitting recording, and every n-th of the copies'
KNOWN = dict(t0=10.0, c0=10.0, p0=0.5)  # first stage's stop (t0) and small-cluster bonus (c0); p0 unused here
UNKNOWN = dict(t0=1.0, c0=10.0, p0=0.2)  # ... and the merge model's stop when the count is estimated
#: the fitting copies of the TUNING recordings (RT60 s, noise, SNR dB): one room and noise per copy; None: each
#: recording its own (RT60 0.2-0.8 s; white, pink or brown noise; 5-25 dB SNR)
COPIES = ((0.2, "white", 20.0), (0.45, "brown", 10.0), (0.7, "pink", 5.0), (None, None, None), (0.3, "pink", 15.0),
          (0.8, "white", 25.0))
NOISY = dict(nap=5, shrink=0.3, every=3, p0=0.3)  # the multi-condition backend: fitted on the copies too
SWITCH = 5.0  # the clean backend's doubt score above which the multi-condition one groups the voices
#: with --tune only, conditions beyond the copies (where grouping fails): they calibrate signals/diarize.py's
#: DOUBTFUL_SCORE
BEYOND = ((1.0, "white", 0.0), (1.2, "pink", -5.0))
BEYOND_NAMES = {f"train-{c}" for c in range(len(COPIES), len(COPIES) + len(BEYOND))}
RESULTS = ROOT / "training" / "results"


# --- data ------------------------------------------------------------------------------------------------------


def split() -> tuple[list[int], list[int]]:
    """(tuning actors, report actors): 4 men (odd numbers) and 4 women (even) drawn for the report."""
    rng = np.random.default_rng(SPLIT_SEED)
    men, women = rng.permutation(np.arange(1, 21, 2)), rng.permutation(np.arange(2, 21, 2))
    report = sorted(int(a) for a in np.concatenate([men[:4], women[:4]]))
    tuning = sorted(int(a) for a in np.concatenate([men[4:], women[4:]]))
    return tuning, report


@dataclass
class Conversation:
    k: int
    mix: str
    actors: list[int]
    items: np.ndarray  # rows of index.csv, in speaking order
    labels: np.ndarray  # the true speaker, 0..k-1


def conversations(actor_of: np.ndarray, actors: list[int], n: int = PER_CONFIG,
                  have: np.ndarray | None = None) -> list[Conversation]:
    """n conversations per (k, mix) of `actors`; have: the recordings they may use, each speaker's turns capped at
    what it has."""
    have = np.ones(len(actor_of), bool) if have is None else have
    out = []
    men, women = [a for a in actors if a % 2 == 1], [a for a in actors if a % 2 == 0]
    for k in KS:
        for mix in MIXES:
            pool = {"male": men, "female": women, "mixed": actors}[mix]
            if len(pool) < k:
                continue
            for c in range(n):
                rng = np.random.default_rng(zlib.crc32(f"|{sorted(actors)}|{k}|{mix}|{c}".encode()))
                while True:
                    who = [int(a) for a in rng.choice(pool, k, replace=False)]
                    if mix != "mixed" or (any(a % 2 for a in who) and any(a % 2 == 0 for a in who)):
                        break
                total = int(rng.integers(20, 61))
                counts = np.minimum(2 + rng.multinomial(total - 2 * k, rng.dirichlet(np.ones(k))), 60)
                items, labels = [], []
                for j, a in enumerate(who):
                    own = np.flatnonzero((actor_of == a) & have)
                    counts[j] = min(counts[j], len(own))
                    items += list(rng.choice(own, counts[j], replace=False))
                    labels += [j] * counts[j]
                order = rng.permutation(len(items))
                out.append(Conversation(k, mix, who, np.array(items)[order], np.array(labels)[order]))
    return out


def accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    """Share of utterances right under the best one-to-one map of predicted groups to true speakers (an unassigned
    utterance, -1, is wrong)."""
    from scipy.optimize import linear_sum_assignment

    keep = pred >= 0
    _, ti = np.unique(truth, return_inverse=True)
    _, pi = np.unique(pred[keep], return_inverse=True)
    if not keep.any():
        return 0.0
    m = np.zeros((ti.max() + 1, pi.max() + 1))
    np.add.at(m, (ti[keep], pi), 1)
    r, c = linear_sum_assignment(-m)
    return float(m[r, c].sum() / len(truth))


def room(x: np.ndarray, i: int, power: float) -> np.ndarray:
    """One room for every recording: the same synthetic impulse response (RT60 0.5 s) and pink noise at 10 dB SNR
    (its samples seeded by i), as one film's scene would put all its speakers in one acoustic."""
    from voice import add_noise, reverb

    x = reverb(x.astype(np.float64), 0.5, np.random.default_rng(7), direct_db=0.0)
    x = add_noise(x, 10.0, "pink", np.random.default_rng(20_000 + i), power)
    return np.clip(x, -1, 1).astype(np.float32)


def train_copy(x: np.ndarray, i: int, power: float, c: int) -> np.ndarray:
    """Copy c of a TUNING recording, for fitting only (its seeds unlike the table's): COPIES[c] is one room (an
    impulse response shared by all the copy's recordings) and one noise at one SNR; None: each recording its own
    room (RT60 0.2-0.8 s) and noise (white, pink or brown, 5-25 dB SNR)."""
    from voice import add_noise, reverb

    rng = np.random.default_rng(100_000 * (c + 1) + i)
    rt60, colour, snr = (COPIES + BEYOND)[c]
    x = x.astype(np.float64)
    if rt60 is None:
        x = reverb(x, rng.uniform(0.2, 0.8), rng)
        x = add_noise(x, rng.uniform(5, 25), ("white", "pink", "brown")[int(rng.integers(3))], rng, power)
    else:
        x = add_noise(reverb(x, rt60, np.random.default_rng(1_000 + c)), snr, colour, rng, power)
    return np.clip(x, -1, 1).astype(np.float32)


def features(ravdess: Path, rows: list[dict], cache: Path, degraded: np.ndarray | None = None,
             copy: str = "degraded") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E [N, 256] Resemblyzer embeddings, W [N, 768] Whisper state-2 mean + std, voiced [N]), as annotate computes
    them. Where voice detection finds no voice (it misses some shouted recordings), annotate leaves the utterance
    unassigned; these rows are computed from the whole recording for fitting, and marked not voiced.
    degraded: the rows to compute from a noisy, reverberant copy instead (the other rows are NaN): `copy`
    "degraded" is training/voice.py's (each recording its own impulse response, RT60 0.5 s, and white, pink or
    brown noise at 5-15 dB SNR), "room" one room for all (`room`), "train-c" the fitting copy c (`train_copy`)."""
    path = cache / ("features.npz" if degraded is None else f"features-{copy}.npz")
    if path.is_file():
        z = np.load(path)
        return z["E"].astype(np.float64), z["W"].astype(np.float64), z["voiced"]
    started = time.time()
    todo = np.arange(len(rows)) if degraded is None else np.flatnonzero(degraded)
    with ThreadPoolExecutor(4) as pool:
        clips = list(pool.map(lambda i: decode_audio(ravdess / rows[i]["file"]), todo))
    if degraded is not None:
        from voice import degrade, voiced_spans  # training/voice.py: the voice head's test copy

        power = [float(np.mean(s.astype(np.float64) ** 2)) for s in voiced_spans(clips)]
        make = {"degraded": degrade, "room": room}.get(copy) \
            or (lambda x, i, p: train_copy(x, i, p, int(copy.split("-")[1])))
        clips = [make(x, int(i), p) for i, x, p in zip(todo, clips, power)]
    samples, spans, voiced = [], [], np.zeros(len(rows), bool)
    for i, x, m in zip(todo, clips, voiced_masks(clips)):
        where = np.flatnonzero(m)
        samples.append(x[m] if len(where) else x)
        spans.append(x[where[0]:where[-1] + 1] if len(where) else x)
        voiced[i] = len(where) > 0
    print(f"  decoded, voice found: {time.time() - started:.0f} s", flush=True)
    E, W = np.full((len(rows), 256), np.nan, np.float32), np.full((len(rows), 768), np.nan, np.float32)
    E[todo] = embed_voices(samples)
    W[todo] = pooled_states(spans, upto=dz.WHISPER_STATE)[:, dz.WHISPER_STATE]
    print(f"  features: {time.time() - started:.0f} s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, E=E, W=W, voiced=voiced)
    return E.astype(np.float64), W.astype(np.float64), voiced


# --- the backend -----------------------------------------------------------------------------------------------


def _within_between(X: np.ndarray, actor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    within, means = np.zeros((X.shape[1], X.shape[1])), []
    for a in np.unique(actor):
        xa = X[actor == a]
        mu = xa.mean(0)
        within += (xa - mu).T @ (xa - mu)
        means.append(mu)
    M = np.stack(means)
    M = M - M.mean(0)
    return within / len(X), M.T @ M / len(M)


def _top(C: np.ndarray, r: int) -> np.ndarray:
    return np.linalg.eigh(C)[1][:, ::-1][:, :r].T


def fit_views(E: np.ndarray, W: np.ndarray, actor: np.ndarray, nap: int = RES_NAP, shrink: float = WH_SHRINK,
              cohort: np.ndarray | None = None):
    """(Resemblyzer view, Whisper view, its within-speaker directions, Whisper's, Whisper's scale). The rows may
    hold every actor's recordings in several conditions: what varies within an actor is nuisance. cohort: the
    rows of the AS-norm cohorts (default all)."""
    cohort = np.ones(len(E), bool) if cohort is None else cohort
    from scipy.linalg import eigh

    X = dz._l2(E)
    V = _top(_within_between(X, actor)[0], 10)
    res = dz.View(X.mean(0), np.eye(X.shape[1]) - V[:nap].T @ V[:nap], np.zeros((0, X.shape[1])), TOP_N,
                  l2_input=True)
    res.cohort = res.project(E[cohort])
    ww, bw = _within_between(W, actor)
    w, v = np.linalg.eigh(ww)
    w = (1 - shrink) * w + shrink * w.mean()
    wh = dz.View(W.mean(0), v / np.sqrt(w), np.zeros((0, W.shape[1])), TOP_N)
    wh.cohort = wh.project(W[cohort])
    scale = np.sqrt(np.diag(ww + bw))
    n = len(ww)
    V2 = eigh(ww / np.outer(scale, scale), subset_by_index=(n - 20, n - 1))[1][:, ::-1].T
    return res, wh, V, V2, scale


def first_stage(A: np.ndarray, B: np.ndarray, t0: float, c0: float) -> np.ndarray:
    return dz.size_aware_ahc(A + B, t0, c0)


def train_merger(convs: list[Conversation], data: list, t0: float, c0: float, p0: float) -> dz.Merger:
    """The logistic P(same speaker) of a cluster pair, from the first stage's partitions of `convs`; label: both
    clusters' majority speaker is the same."""
    from sklearn.linear_model import LogisticRegression

    Fs, ys = [], []
    for c, (A, B, X, Y, V, V2) in zip(convs, data):
        lab = first_stage(A, B, t0, c0)
        if lab.max() < 1:
            continue
        F, a, b = dz.pair_features(A + B, A, B, X, Y, V, V2, lab)
        major = np.array([np.bincount(c.labels[lab == i], minlength=c.k).argmax() for i in range(lab.max() + 1)])
        Fs.append(F)
        ys.append(major[a] == major[b])
    F, y = np.concatenate(Fs), np.concatenate(ys)
    mu, scale = F.mean(0), F.std(0) + 1e-12
    clf = LogisticRegression(C=1.0, max_iter=5000).fit((F - mu) / scale, y)
    return dz.Merger(mu, scale, clf.coef_[0].copy(), float(clf.intercept_[0]), t0, c0, p0)


@dataclass
class Take:
    """A conversation in one condition: its recordings' features from one copy (clean: the recordings)."""

    conv: Conversation
    number: int  # the conversation's, among the TUNING ones (the same in every condition)
    condition: str
    E: np.ndarray  # [n, 256]
    W: np.ndarray  # [n, 768]
    voiced: np.ndarray  # [n]


@dataclass
class Pool:
    """The rows the backend is fitted on: the TUNING recordings, clean and in every fitting copy."""

    E: np.ndarray
    W: np.ndarray
    actor: np.ndarray
    condition: np.ndarray  # "clean" or the copy's name

    def cohort(self, every: int) -> np.ndarray:
        """The rows of the AS-norm cohort: the clean ones, and every `every`-th of the copies'."""
        i = np.arange(len(self.E))
        return (self.condition == "clean") | ((i + np.cumsum(np.r_[0, self.condition[1:] != self.condition[:-1]]))
                                              % every == 0)


def pool(E: np.ndarray, W: np.ndarray, actor_of: np.ndarray, tuning: list[int], copies: dict) -> Pool:
    m = np.isin(actor_of, tuning)
    parts = [(E[m], W[m], actor_of[m], "clean")]
    for name, (Ec, Wc, _) in copies.items():
        have = np.isfinite(Wc).all(1)
        parts.append((Ec[have], Wc[have], actor_of[have], name))
    return Pool(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]), np.concatenate([[p[3]] * len(p[0]) for p in parts]))


def takes(E: np.ndarray, W: np.ndarray, voiced: np.ndarray, actor_of: np.ndarray, tuning: list[int],
          copies: dict) -> list[Take]:
    """The TUNING conversations clean, and a third of them again in each copy (each in one condition)."""
    convs = conversations(actor_of, tuning)
    out = [Take(c, i, "clean", E[c.items], W[c.items], voiced[c.items]) for i, c in enumerate(convs)]
    for j, (name, (Ec, Wc, vc)) in enumerate(copies.items()):
        out += [Take(c, i, name, Ec[c.items], Wc[c.items], vc[c.items]) for i, c in enumerate(convs) if i % 3 == j % 3]
    return out


def scored(P: Pool, ts: list[Take], nap: int = RES_NAP, shrink: float = WH_SHRINK,
           every: int = COHORT_EVERY) -> tuple[list, dict]:
    """Each take's (A, B, X, Y, V, V2) by views fitted on the pool's rows of the other actors (at annotate time
    the speakers are unseen); and the views' (V, V2, scale) by actor set."""
    by: dict[frozenset, list[int]] = {}
    for i, t in enumerate(ts):
        by.setdefault(frozenset(t.conv.actors), []).append(i)
    data, nuisance = [None] * len(ts), {}
    for key, which in by.items():
        m = ~np.isin(P.actor, list(key))
        res, wh, V, V2, scale = fit_views(P.E[m], P.W[m], P.actor[m], nap, shrink, P.cohort(every)[m])
        for i in which:
            data[i] = (res.scores(ts[i].E), wh.scores(ts[i].W), dz._l2(ts[i].E), ts[i].W / scale, V, V2)
        nuisance[key] = (V, V2, scale)
    return data, nuisance


def fit(P: Pool, ts: list[Take], nap: int = RES_NAP, shrink: float = WH_SHRINK, every: int = COHORT_EVERY,
        p0: float = UNKNOWN["p0"]) -> dz.Backend:
    data, _ = scored(P, ts, nap, shrink, every)
    convs = [t.conv for t in ts]
    known, unknown = train_merger(convs, data, **KNOWN), train_merger(convs, data, **{**UNKNOWN, "p0": p0})
    res, wh, V, V2, scale = fit_views(P.E, P.W, P.actor, nap, shrink, P.cohort(every))
    return dz.Backend(res, wh, V, V2, scale, known, unknown)


def tune(P: Pool, ts: list[Take], settings: dict, p0s=(0.1, 0.2, 0.3, 0.5)) -> list[dict]:
    """The tuning figures of one setting: views leave-actors-out, merge models 2-fold over conversations; per
    condition and p0: count given, estimated, exact, and the doubt score."""
    nap, shrink, mc = settings["nap"], settings["shrink"], settings["multi_condition"]
    if not mc:
        keep = P.condition == "clean"
        P = Pool(P.E[keep], P.W[keep], P.actor[keep], P.condition[keep])
    data, views = scored(P, ts, nap, shrink, settings.get("cohort_every", COHORT_EVERY))
    out = []
    for fold in (0, 1):
        train = [i for i, t in enumerate(ts) if t.number % 2 != fold and (mc or t.condition == "clean")
                 and t.condition not in BEYOND_NAMES]
        known = train_merger([ts[i].conv for i in train], [data[i] for i in train], **KNOWN)
        unknown = train_merger([ts[i].conv for i in train], [data[i] for i in train], **UNKNOWN)
        for t, (A, B, *_) in zip(ts, data):
            if t.number % 2 != fold:
                continue
            b = dz.Backend(None, None, *views[frozenset(t.conv.actors)], known, unknown)  # scores given
            ok = t.voiced
            sub = (A[np.ix_(ok, ok)], B[np.ix_(ok, ok)])
            hi = min(int(ok.sum()), dz.MAX_SPEAKERS)

            def labels(k, m):
                b.unknown = m
                out = np.full(len(ok), -1)
                out[ok] = dz.cluster(b, t.E[ok], t.W[ok], k, 1, hi, scores=sub)
                return out

            row = {"number": t.number, "condition": t.condition, "k": t.conv.k, "mix": t.conv.mix,
                   "doubt": float(sub[1][~np.eye(len(sub[1]), dtype=bool)].mean()),
                   "given": accuracy(t.conv.labels, labels(t.conv.k, unknown))}
            for p0 in p0s:
                found = labels(None, dz.Merger(unknown.mu, unknown.scale, unknown.coef, unknown.intercept,
                                               unknown.t0, unknown.c0, p0))
                row[f"estimated@{p0}"] = accuracy(t.conv.labels, found)
                row[f"count@{p0}"] = int(found.max()) + 1
            out.append(row)
    return out


# --- the table -------------------------------------------------------------------------------------------------


def evaluate(b: dz.Backend, E: np.ndarray, W: np.ndarray, voiced: np.ndarray,
             convs: list[Conversation]) -> list[dict]:
    """Each conversation grouped as annotate groups it: utterances without voice are left unassigned (and count
    as wrong)."""
    out = []
    for c in convs:
        e, w = E[c.items].copy(), W[c.items].copy()
        e[~voiced[c.items]], w[~voiced[c.items]] = np.nan, np.nan  # annotate has no voiceprint there
        t = time.process_time()
        given = dz.assign_speakers(e, w, num_speakers=c.k, backend_=b)
        found = dz.assign_speakers(e, w, backend_=b)
        cpu = (time.process_time() - t) / 2
        out.append({"k": c.k, "mix": c.mix, "actors": c.actors, "utterances": len(c.items),
                    "given": accuracy(c.labels, given), "estimated": accuracy(c.labels, found),
                    "count": int(found.max()) + 1, "unassigned": int((found < 0).sum()), "cpu_s": cpu,
                    "doubtful": dz.doubtful(w, b) is not None, "doubt": dz.doubt_score(w, b.noisy or b),
                    "multi_condition": b.pick(w[np.isfinite(w).all(1)]) is not b})
    return out


def summarise(results: list[dict]) -> list[dict]:
    groups = [(str(k), m) for k in KS for m in MIXES] + [(str(k), "all") for k in KS] \
        + [("2-4", m) for m in MIXES] + [("2-4", "all"), ("all", "all")]
    rows = []
    for k, mix in groups:
        sel = [r for r in results if (k == "all" or (k == "2-4" and r["k"] <= 4) or k == str(r["k"]))
               and mix in ("all", r["mix"])]
        if sel:
            rows.append({"speakers": k, "mix": mix, "conversations": len(sel),
                         "utterances": round(float(np.mean([r["utterances"] for r in sel])), 1),
                         "given": round(float(np.mean([r["given"] for r in sel])), 3),
                         "estimated": round(float(np.mean([r["estimated"] for r in sel])), 3),
                         "count_exact": round(float(np.mean([r["count"] == r["k"] for r in sel])), 2),
                         "mean_count": round(float(np.mean([r["count"] for r in sel])), 2),
                         "doubtful": round(float(np.mean([r["doubtful"] for r in sel])), 2),
                         "multi_condition": round(float(np.mean([r["multi_condition"] for r in sel])), 2)})
    return rows


def markdown(rows: list[dict], report: list[int], tuning: list[int], cpu_ms: float, noisy: dict) -> str:
    lines = ["# `--diarize` on conversations of RAVDESS actors it was not tuned on", "",
             f"Made by `python training/diarization.py` on {dt.date.today().isoformat()}: the backend fitted on "
             f"actors {tuning}, every conversation built from actors {report} (never used to choose anything). "
             "Accuracy: share of utterances given the right speaker under the best one-to-one map of groups to "
             "speakers; exact: share of conversations whose speaker count was estimated right. "
             f"Grouping cost: {cpu_ms:.1f} ms CPU per conversation of about 40 utterances.", "",
             "Utterances in which voice detection finds no voice (some shouted recordings) are left unassigned, as "
             "annotate leaves them, and count as wrong. "
             "Caveat: short (about 2 s), acted, studio speech of two sentences; expect less on films and TV.", "",
             "| speakers | mix | conversations | utterances (mean) | right, count given | right, count estimated "
             "| count exact | mean count | said doubtful | multi-condition backend |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        bold = "**" if (r["speakers"], r["mix"]) == ("2-4", "all") else ""
        lines.append(f"| {bold}{r['speakers']}{bold} | {r['mix']} | {r['conversations']} | {r['utterances']} | "
                     f"{bold}{r['given']:.3f}{bold} | {bold}{r['estimated']:.3f}{bold} | "
                     f"{bold}{r['count_exact']:.2f}{bold} | {r['mean_count']:.2f} | {r['doubtful']:.2f} | "
                     f"{r['multi_condition']:.2f} |")
    lines += ["", "## The same conversations, noisy and reverberant", "",
              "The multi-condition backend was fitted on other rooms and noises (COPIES, the tuning actors only; "
              "neither this room nor these seeds). **One room**: every recording through the same synthetic "
              "impulse response (RT60 0.5 s) with pink noise at 10 dB SNR, as a scene puts its speakers in one "
              "acoustic. **Every utterance its own room**: training/voice.py's test copy (each recording its own "
              "impulse response, white, pink or brown noise at 5-15 dB SNR): a worst case, in which the noise "
              "differs more between utterances than the voices do. Voice detection runs again on the copies. "
              "'Said doubtful': the share of conversations that annotate flags (signals/diarize.py DOUBTFUL_SCORE): "
              "there it estimates no count, and says so, instead of the grouping shown here. 'Multi-condition "
              "backend': the share of conversations whose voices the clean backend scores above SWITCH, grouped by "
              "the backend fitted on clean and degraded copies.", "",
              "| copy | speakers | right, count given | right, count estimated | count exact | mean count "
              "| said doubtful | multi-condition backend |", "|---|---|---|---|---|---|---|---|"]
    for copy, title in (("room", "one room"), ("degraded", "every utterance its own room")):
        for r in noisy[copy]:
            if r["mix"] == "all":
                lines.append(f"| {title} | {r['speakers']} | {r['given']:.3f} | {r['estimated']:.3f} | "
                             f"{r['count_exact']:.2f} | {r['mean_count']:.2f} | {r['doubtful']:.2f} | "
                             f"{r['multi_condition']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", type=Path, default=ROOT.parent / "shared" / "data" / "ravdess")
    ap.add_argument("--out", type=Path, default=dz.BACKEND)
    ap.add_argument("--cache", type=Path, default=Path("runs") / "diarization-cache")
    ap.add_argument("--evaluate-only", action="store_true", help="measure the backend at --out, fit nothing")
    ap.add_argument("--tune", type=Path, default=None,
                    help="write the tuning figures (TUNING actors only) of --settings here; fit nothing")
    ap.add_argument("--settings", default='[{"nap": 5, "shrink": 0.3, "multi_condition": true}]',
                    help="JSON list of settings for --tune")
    args = ap.parse_args()
    import torch

    torch.manual_seed(0)
    started = time.time()
    index = args.ravdess / "index.csv"
    if not index.is_file():
        sys.exit(f"diarization: no RAVDESS index at {index} (see ../shared/data/ravdess/README.md)")
    with open(index, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    actor_of = np.array([int(r["actor"]) for r in rows])
    tuning, report = split()
    print(f"{len(rows)} recordings; tuning actors {tuning}, report actors {report}", flush=True)
    E, W, voiced = features(args.ravdess, rows, args.cache)
    print(f"voice found in {int(voiced.sum())} of {len(voiced)} recordings", flush=True)
    if not args.evaluate_only:
        copies = {}
        for c in range(len(COPIES)):
            print(f"fitting copy {c} of the tuning recordings: {COPIES[c]}", flush=True)
            copies[f"train-{c}"] = features(args.ravdess, rows, args.cache, np.isin(actor_of, tuning),
                                            copy=f"train-{c}")
        P, ts = pool(E, W, actor_of, tuning, copies), takes(E, W, voiced, actor_of, tuning, copies)
        print(f"fitting rows {len(P.E)}, tuning conversations {len(ts)}", flush=True)
        if args.tune:
            beyond = {f"train-{c}": features(args.ravdess, rows, args.cache, np.isin(actor_of, tuning),
                                             copy=f"train-{c}") for c in range(len(COPIES), len(COPIES + BEYOND))}
            ts += [t for t in takes(E, W, voiced, actor_of, tuning, beyond) if t.condition != "clean"]
            out = [{"settings": st, "conversations": tune(P, ts, st)} for st in json.loads(args.settings)]
            args.tune.write_text(json.dumps(out) + "\n")
            print(f"written: {args.tune} ({time.time() - started:.0f} s)")
            return
        clean = P.condition == "clean"
        b = fit(Pool(P.E[clean], P.W[clean], P.actor[clean], P.condition[clean]),
                [t for t in ts if t.condition == "clean"])
        print(f"clean backend fitted ({time.time() - started:.0f} s)", flush=True)
        b.noisy, b.switch = fit(P, ts, **NOISY), SWITCH
        args.out.parent.mkdir(parents=True, exist_ok=True)
        b.save(args.out, actors=json.dumps(tuning), fitted=dt.date.today().isoformat(),
               licence=f"fitted on RAVDESS actors {tuning} (CC BY-NC-SA 4.0); its cohorts are projected RAVDESS "
                       "embeddings")
        for name, m in (("count given", b.known), ("count estimated", b.unknown),
                        ("multi-condition, count given", b.noisy.known),
                        ("multi-condition, count estimated", b.noisy.unknown)):
            print(f"merge model, {name}: " + " ".join(f"{f} {c:+.2f}" for f, c in zip(dz.FEATURES, m.coef))
                  + f"; intercept {m.intercept:+.2f}")
        print(f"written: {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, {time.time() - started:.0f} s)",
              flush=True)
    b = dz.Backend.load(args.out)
    convs = conversations(actor_of, report)
    results = evaluate(b, E, W, voiced, convs)
    table = summarise(results)
    cpu_ms = 1000 * float(np.mean([r["cpu_s"] for r in results]))
    noisy = {}
    for copy in ("room", "degraded"):
        print(f"the same conversations, noisy and reverberant ({copy}):", flush=True)
        Ed, Wd, voiced_d = features(args.ravdess, rows, args.cache, degraded=np.isin(actor_of, report), copy=copy)
        noisy[copy] = summarise(evaluate(b, Ed, Wd, voiced_d, convs))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "diarization-report.json").write_text(json.dumps(
        {"tuning_actors": tuning, "report_actors": report, "backend": str(args.out), "table": table,
         "table_one_room": noisy["room"], "table_every_utterance_its_own_room": noisy["degraded"],
         "cpu_ms_per_conversation": round(cpu_ms, 2),
         "conversations": results}, indent=1) + "\n")
    text = markdown(table, report, tuning, cpu_ms, noisy)
    (RESULTS / "diarization-report.md").write_text(text)
    print(text)
    print(f"written: {RESULTS / 'diarization-report.md'} ({time.time() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
