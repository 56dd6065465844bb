"""Fit and measure `annotate --diarize` (emocli/signals/diarize.py) on RAVDESS, one command:

    python training/diarization.py                     # reads ../shared/data/ravdess, writes weights/speaker/backend
    python training/diarization.py --evaluate-only     # the table again, with the shipped backend
    python training/diarization.py --ravdess DIR --out runs/backend.safetensors --cache runs/diarization-cache

What it does (about 10 minutes on 2 CPU cores from an empty cache; deterministic):
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
4. The backend, fitted on the 720 TUNING recordings: per view a linear map (Resemblyzer: 5 within-speaker
   directions projected out; Whisper: within-speaker whitening, eigenvalues shrunk 0.3 toward their mean) and an
   AS-norm cohort; two logistic merge models (count known / estimated) trained on cluster pairs of the first
   stage's partitions of the 600 TUNING conversations, each scored with views fitted on the tuning actors NOT in
   it (at annotate time the speakers are unseen). Written to --out (safetensors: arrays + numbers).
5. The table: the 500 REPORT conversations, the backend as shipped, count given and estimated; accuracy = share of
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
KNOWN = dict(t0=10.0, c0=10.0, p0=0.5)  # first stage's stop (t0) and small-cluster bonus (c0); p0 unused here
UNKNOWN = dict(t0=1.0, c0=10.0, p0=0.2)  # ... and the merge model's stop when the count is estimated
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


def conversations(actor_of: np.ndarray, actors: list[int], n: int = PER_CONFIG) -> list[Conversation]:
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
                    items += list(rng.choice(np.flatnonzero(actor_of == a), counts[j], replace=False))
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


def features(ravdess: Path, rows: list[dict], cache: Path, degraded: np.ndarray | None = None,
             copy: str = "degraded") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E [N, 256] Resemblyzer embeddings, W [N, 768] Whisper state-2 mean + std, voiced [N]), as annotate computes
    them. Where voice detection finds no voice (it misses some shouted recordings), annotate leaves the utterance
    unassigned; these rows are computed from the whole recording for fitting, and marked not voiced.
    degraded: the rows to compute from a noisy, reverberant copy instead (the other rows are NaN): `copy`
    "degraded" is training/voice.py's (each recording its own impulse response, RT60 0.5 s, and white, pink or
    brown noise at 5-15 dB SNR), "room" one room for all (`room`)."""
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
        clips = [(degrade if copy == "degraded" else room)(x, int(i), p) for i, x, p in zip(todo, clips, power)]
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


def fit_views(E: np.ndarray, W: np.ndarray, actor: np.ndarray):
    """(Resemblyzer view, Whisper view, its within-speaker directions, Whisper's, Whisper's scale)."""
    X = dz._l2(E)
    V = _top(_within_between(X, actor)[0], 10)
    res = dz.View(X.mean(0), np.eye(X.shape[1]) - V[:RES_NAP].T @ V[:RES_NAP], np.zeros((0, X.shape[1])), TOP_N,
                  l2_input=True)
    res.cohort = res.project(E)
    ww, bw = _within_between(W, actor)
    w, v = np.linalg.eigh(ww)
    w = (1 - WH_SHRINK) * w + WH_SHRINK * w.mean()
    wh = dz.View(W.mean(0), v / np.sqrt(w), np.zeros((0, W.shape[1])), TOP_N)
    wh.cohort = wh.project(W)
    scale = np.sqrt(np.diag(ww + bw))
    return res, wh, V, _top(ww / np.outer(scale, scale), 20), scale


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


def fit(E: np.ndarray, W: np.ndarray, actor_of: np.ndarray, tuning: list[int]) -> dz.Backend:
    convs = conversations(actor_of, tuning)
    views, data = {}, []
    for c in convs:  # each conversation scored by views fitted without its own actors
        key = frozenset(c.actors)
        if key not in views:
            m = np.isin(actor_of, [a for a in tuning if a not in c.actors])
            views[key] = fit_views(E[m], W[m], actor_of[m])
        res, wh, V, V2, scale = views[key]
        e, w = E[c.items], W[c.items]
        data.append((res.scores(e), wh.scores(w), dz._l2(e), w / scale, V, V2))
    known, unknown = train_merger(convs, data, **KNOWN), train_merger(convs, data, **UNKNOWN)
    m = np.isin(actor_of, tuning)
    res, wh, V, V2, scale = fit_views(E[m], W[m], actor_of[m])
    return dz.Backend(res, wh, V, V2, scale, known, unknown)


# --- the table -------------------------------------------------------------------------------------------------


def evaluate(b: dz.Backend, E: np.ndarray, W: np.ndarray, voiced: np.ndarray,
             convs: list[Conversation]) -> list[dict]:
    """Each conversation grouped as annotate groups it: utterances without voice are left unassigned (and count
    as wrong)."""
    out = []
    for c in convs:
        e, w = E[c.items].copy(), W[c.items].copy()
        e[~voiced[c.items]] = np.nan
        t = time.process_time()
        given = dz.assign_speakers(e, w, num_speakers=c.k, backend_=b)
        found = dz.assign_speakers(e, w, backend_=b)
        cpu = (time.process_time() - t) / 2
        out.append({"k": c.k, "mix": c.mix, "actors": c.actors, "utterances": len(c.items),
                    "given": accuracy(c.labels, given), "estimated": accuracy(c.labels, found),
                    "count": int(found.max()) + 1, "unassigned": int((found < 0).sum()), "cpu_s": cpu,
                    "doubtful": dz.doubtful(w, b) is not None})
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
                         "doubtful": round(float(np.mean([r["doubtful"] for r in sel])), 2)})
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
             "| count exact | mean count | said doubtful |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        bold = "**" if (r["speakers"], r["mix"]) == ("2-4", "all") else ""
        lines.append(f"| {bold}{r['speakers']}{bold} | {r['mix']} | {r['conversations']} | {r['utterances']} | "
                     f"{bold}{r['given']:.3f}{bold} | {bold}{r['estimated']:.3f}{bold} | "
                     f"{bold}{r['count_exact']:.2f}{bold} | {r['mean_count']:.2f} | {r['doubtful']:.2f} |")
    lines += ["", "## The same conversations, noisy and reverberant", "",
              "The backend never heard degraded audio. **One room**: every recording through the same synthetic "
              "impulse response (RT60 0.5 s) with pink noise at 10 dB SNR, as a scene puts its speakers in one "
              "acoustic. **Every utterance its own room**: training/voice.py's test copy (each recording its own "
              "impulse response, white, pink or brown noise at 5-15 dB SNR): a worst case, in which the noise "
              "differs more between utterances than the voices do. Voice detection runs again on the copies. "
              "'Said doubtful': the share of conversations that annotate flags (signals/diarize.py DOUBTFUL_SCORE): "
              "there it estimates no count, and says so, instead of the grouping shown here.", "",
              "| copy | speakers | right, count given | right, count estimated | count exact | mean count "
              "| said doubtful |", "|---|---|---|---|---|---|---|"]
    for copy, title in (("room", "one room"), ("degraded", "every utterance its own room")):
        for r in noisy[copy]:
            if r["mix"] == "all":
                lines.append(f"| {title} | {r['speakers']} | {r['given']:.3f} | {r['estimated']:.3f} | "
                             f"{r['count_exact']:.2f} | {r['mean_count']:.2f} | {r['doubtful']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ravdess", type=Path, default=ROOT.parent / "shared" / "data" / "ravdess")
    ap.add_argument("--out", type=Path, default=dz.BACKEND)
    ap.add_argument("--cache", type=Path, default=Path("runs") / "diarization-cache")
    ap.add_argument("--evaluate-only", action="store_true", help="measure the backend at --out, fit nothing")
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
        b = fit(E, W, actor_of, tuning)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        b.save(args.out, actors=json.dumps(tuning), fitted=dt.date.today().isoformat(),
               licence=f"fitted on RAVDESS actors {tuning} (CC BY-NC-SA 4.0); its cohorts are projected RAVDESS "
                       "embeddings")
        for name, m in (("count given", b.known), ("count estimated", b.unknown)):
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
