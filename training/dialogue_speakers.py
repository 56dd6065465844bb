"""How the large model's dialogue stage gains less as speaker labels get wrong, as speakers found by voice
(`annotate --diarize`) will be (MELD dev only; test is never read). Decides where annotate may run the stage on
voice-found speakers (emocli/model/dialogue.py, read_in_dialogue).

    python training/dialogue_speakers.py --meld ../shared/data/meld      # about 20 minutes on 2 cores

Step 1 scores MELD dev with the shipped `large` model (its mpnet wheels installed) WITHOUT its stage, once (cached
in --work); step 2 relabels speakers at random and applies the stage. Writes
training/results/dialogue-speaker-errors.json and .md (the tables).

Speaker-error models (every one keeps MELD's dialogues and utterance order; only the speaker labels change):
  reassign  : round(rate*N) utterances drawn at random get another speaker present in the same dialogue (uniform
              among the others; in a one-speaker dialogue one new unnamed speaker). `rate` is the fraction relabelled.
  merge     : two speakers (current clusters) of a random dialogue merged into one, repeated.
  split     : a random subset (1..n//2 of its n turns) of one speaker's turns moved to a new speaker, repeated.
  mixed     : merge or split with probability 1/2 each, repeated.
  For merge/split/mixed `rate` is the target of the mapped error (below); events that would overshoot it by more
  than TOL are rejected. Anonymisation (names -> SPEAKER_00.. per dialogue, in order of first appearance) is checked
  to change nothing, for the true speakers and for every reassign draw.
Error measure: besides the nominal rate, every labelling's `mapped error` is reported: the fraction of utterances
wrong under the best one-to-one mapping of found speakers to true speakers within each dialogue (Hungarian), i.e.
the speaker-confusion part of a diarization error rate; diarization accuracy = 1 - mapped error.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import f1_score

from emocli.model.dialogue import apply_dialogue
from emocli.training.metrics import compute_metrics

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "training" / "results"
RATES = [0.0, 0.05, 0.10, 0.20, 0.30, 0.40, 0.50]
FINE = [round(0.025 * i, 3) for i in range(0, 41)]  # 0 .. 100 %, one seed-mean per point, for the crossing
SEEDS = 20
FINE_SEEDS = 20
STALE = 2000  # merge/split: give up after this many accepted events without a new high of the error
TOL = 0.005  # merge/split: accept an event only if the mapped error stays below target + TOL
VARIANTS = ["reassign", "merge", "split", "mixed"]


def dev_probabilities(meld: Path, work: Path) -> Path:
    """Step 1: the large model's MELD dev probabilities without its dialogue stage (cached in `work`)."""
    import torch

    from emocli.model.checkpoint import load_model
    from emocli.training.evaluate import split_predictor
    from emocli.training.meld import load_split

    if (work / "dev_probs.npy").is_file():
        return work
    work.mkdir(parents=True, exist_ok=True)
    model = load_model("large", "cpu")
    predict, present, labels = split_predictor(model, model.directory, meld, "dev", work / "cache", progress=True,
                                               log=print, dialogue=False)
    with torch.no_grad():
        probs = predict(present).numpy()
    utts = load_split(meld, "dev", limit=model.config.provenance.get("limit_dialogues"))
    np.save(work / "dev_probs.npy", probs)
    np.save(work / "dev_labels.npy", np.asarray(labels))
    (work / "dev_meta.json").write_text(json.dumps({"dialogues": [int(u.dialogue_id) for u in utts],
                                                    "speakers": [u.speaker for u in utts]}))
    (work / "dialogue_layer.json").write_text(json.dumps(model.config.dialogue))
    return work


def _arguments():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meld", type=Path, default=ROOT.parent / "shared" / "data" / "meld")
    ap.add_argument("--work", type=Path, default=Path("runs") / "dialogue-speakers")
    return ap.parse_args()


ARGS = _arguments() if __name__ == "__main__" else None
HERE = dev_probabilities(ARGS.meld, ARGS.work) if ARGS else None
probs = np.load(HERE / "dev_probs.npy")
labels = np.load(HERE / "dev_labels.npy")
meta = json.loads((HERE / "dev_meta.json").read_text())
layer = json.loads((HERE / "dialogue_layer.json").read_text())
dialogues = meta["dialogues"]
true = [str(s).strip().casefold() for s in meta["speakers"]]  # the stage compares speakers this way
N = len(true)
LABELS = list(range(probs.shape[1]))
by_dia: dict[int, list[int]] = defaultdict(list)
for i, d in enumerate(dialogues):
    by_dia[d].append(i)
DIAS = sorted(by_dia)
# the stage's features only ever look within a dialogue; check the order is by dialogue (contiguous)
assert all(idx == list(range(idx[0], idx[-1] + 1)) for idx in by_dia.values())


def scores(speakers) -> tuple[dict, np.ndarray]:
    out = apply_dialogue(probs, dialogues, speakers, layer)
    m = compute_metrics(labels, out.argmax(1))
    return {k: m[k] for k in ("accuracy", "weighted_f1", "macro_f1")}, out


def dia_correct(idx, spk) -> int:
    """Utterances of one dialogue right under the best one-to-one mapping of found speakers to true ones."""
    t = sorted({true[i] for i in idx})
    f = sorted({spk[i] for i in idx})
    c = np.zeros((len(f), len(t)), dtype=np.int64)
    ti, fi = {s: j for j, s in enumerate(t)}, {s: j for j, s in enumerate(f)}
    for i in idx:
        c[fi[spk[i]], ti[true[i]]] += 1
    r, k = linear_sum_assignment(-c)
    return int(c[r, k].sum())


def mapped_error(spk) -> float:
    return 1.0 - sum(dia_correct(by_dia[d], spk) for d in DIAS) / N


def anonymise(spk) -> list[str]:
    out, names = [], {}
    for i, s in enumerate(spk):
        key = (dialogues[i], s)
        if key not in names:
            names[key] = f"SPEAKER_{sum(1 for k in names if k[0] == dialogues[i]):02d}"
        out.append(names[key])
    return out


def reassign(rng, rate) -> list[str]:
    spk = list(true)
    k = int(round(rate * N))
    for i in rng.choice(N, size=k, replace=False):
        others = sorted({true[j] for j in by_dia[dialogues[i]]} - {true[i]})
        spk[i] = str(rng.choice(others)) if others else f"__unnamed_{dialogues[i]}"
    return spk


def merge_split(rng, rate, kinds) -> list[str]:
    spk = list(true)
    correct = {d: len(by_dia[d]) for d in DIAS}
    total = N
    counter = 0
    rejects = 0
    best, stale = 0.0, 0  # stop when the error has not reached a new high for STALE events (the variant's reach)
    while (N - total) / N < rate - 1e-12 and rejects < 300 and stale < STALE:
        kind = kinds[rng.integers(len(kinds))]
        new = list(spk)
        if kind == "merge":
            cands = [d for d in DIAS if len({spk[i] for i in by_dia[d]}) >= 2]
            if not cands:
                rejects += 1
                continue
            d = cands[rng.integers(len(cands))]
            clusters = sorted({spk[i] for i in by_dia[d]})
            a, b = rng.choice(len(clusters), size=2, replace=False)
            for i in by_dia[d]:
                if new[i] == clusters[b]:
                    new[i] = clusters[a]
        else:
            cands = [(d, s) for d in DIAS for s, n in sorted(Counter(spk[i] for i in by_dia[d]).items()) if n >= 2]
            if not cands:
                rejects += 1
                continue
            d, s = cands[rng.integers(len(cands))]
            turns = [i for i in by_dia[d] if spk[i] == s]
            k = int(rng.integers(1, len(turns) // 2 + 1))
            counter += 1
            for i in rng.choice(turns, size=k, replace=False):
                new[i] = f"{s}#split{counter}"
        c = dia_correct(by_dia[d], new)
        t = total - correct[d] + c
        if (N - t) / N > rate + TOL:
            rejects += 1
            continue
        spk, total, correct[d], rejects = new, t, c, 0
        if (N - total) / N > best + 1e-12:
            best, stale = (N - total) / N, 0
        else:
            stale += 1
    return spk


def corrupt(variant, rng, rate):
    if variant == "reassign":
        return reassign(rng, rate)
    return merge_split(rng, rate, {"merge": ["merge"], "split": ["split"], "mixed": ["merge", "split"]}[variant])


def summary(vals):
    v = np.asarray(vals, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "p5": float(np.percentile(v, 5)), "p95": float(np.percentile(v, 95)), "min": float(v.min()),
            "max": float(v.max())}


def main():
    base = compute_metrics(labels, probs.argmax(1))
    base = {k: base[k] for k in ("accuracy", "weighted_f1", "macro_f1")}
    truth, truth_probs = scores(true)
    print("no stage     ", base)
    print("true speakers", truth)
    assert abs(base["weighted_f1"] - 0.6343) < 1e-4 and abs(truth["weighted_f1"] - 0.6447) < 1e-4

    # anonymisation of the true speakers: identical probabilities?
    _, anon_probs = scores(anonymise(true))
    anon_identical = bool(np.array_equal(anon_probs, truth_probs))
    print("anonymised true speakers identical:", anon_identical)

    # paired bootstrap over dialogues of the true-speaker gain (dev sampling noise, for scale)
    rng = np.random.default_rng(12345)
    p0, p1 = probs.argmax(1), truth_probs.argmax(1)
    gains = []
    for _ in range(2000):
        pick = np.concatenate([by_dia[DIAS[j]] for j in rng.integers(len(DIAS), size=len(DIAS))])
        gains.append(f1_score(labels[pick], p1[pick], labels=LABELS, average="weighted", zero_division=0)
                     - f1_score(labels[pick], p0[pick], labels=LABELS, average="weighted", zero_division=0))
    boot = summary(gains)
    boot["p2.5"], boot["p97.5"] = float(np.percentile(gains, 2.5)), float(np.percentile(gains, 97.5))
    boot["frac_le_0"] = float(np.mean(np.asarray(gains) <= 0))
    print("bootstrap gain (true speakers):", boot)

    # the two extremes
    one = [f"one_{d}" for d in dialogues]
    own = [f"utt_{i}" for i in range(N)]
    extremes = {}
    for name, spk in (("one speaker per dialogue", one), ("every utterance its own speaker", own)):
        s, _ = scores(spk)
        extremes[name] = {**s, "mapped_error": mapped_error(spk)}
        print(name, extremes[name])

    grid = {}
    anon_all_identical = True
    for vi, variant in enumerate(VARIANTS):
        for rate in RATES:
            rows = []
            for seed in range(SEEDS):
                r = np.random.default_rng([vi, int(round(rate * 1000)), seed])
                spk = corrupt(variant, r, rate)
                s, p = scores(spk)
                if variant == "reassign":
                    _, pa = scores(anonymise(spk))
                    anon_all_identical &= bool(np.array_equal(pa, p))
                rows.append({**s, "relabelled": sum(a != b for a, b in zip(spk, true)) / N,
                             "mapped_error": mapped_error(spk)})
            cell = {k: summary([row[k] for row in rows]) for k in rows[0]}
            cell["gain_weighted_f1"] = summary([row["weighted_f1"] - base["weighted_f1"] for row in rows])
            cell["gain_macro_f1"] = summary([row["macro_f1"] - base["macro_f1"] for row in rows])
            cell["share_gain_positive"] = float(np.mean([row["weighted_f1"] > base["weighted_f1"] for row in rows]))
            grid[f"{variant}@{rate}"] = cell
            print(f"{variant:8s} {rate:4.2f}  wF1 {cell['weighted_f1']['mean']:.4f} ± {cell['weighted_f1']['std']:.4f}"
                  f"  gain {cell['gain_weighted_f1']['mean']:+.4f}  mapped {cell['mapped_error']['mean']:.3f}",
                  flush=True)
    print("anonymised reassign draws identical:", anon_all_identical)

    # fine grid for the crossing: seed-mean gain every 2.5 % (reassign up to 100 %, others up to their reach)
    fine = {}
    for vi, variant in enumerate(VARIANTS):
        pts = []
        for rate in FINE:
            rows = []
            for seed in range(FINE_SEEDS):
                r = np.random.default_rng([100 + vi, int(round(rate * 1000)), seed])
                spk = corrupt(variant, r, rate)
                s, _ = scores(spk)
                rows.append((s["weighted_f1"] - base["weighted_f1"], mapped_error(spk),
                             sum(a != b for a, b in zip(spk, true)) / N, s["macro_f1"] - base["macro_f1"]))
            g, me, rl, gm = (np.asarray(x) for x in zip(*rows))
            pts.append({"rate": rate, "gain_mean": float(g.mean()), "gain_p5": float(np.percentile(g, 5)),
                        "macro_gain_mean": float(gm.mean()),
                        "mapped_error": float(me.mean()), "relabelled": float(rl.mean()),
                        "share_positive": float(np.mean(g > 0))})
            if variant != "reassign" and me.mean() < rate - 2 * TOL:
                break  # the variant cannot reach higher error rates (merge-all / split-all caps)
        fine[variant] = pts
        print(variant, "fine grid done", flush=True)

    def crossing(pts, key, xkey):
        """First x where the seed-mean `key` goes from > 0 to <= 0 (linear interpolation); None if never."""
        for a, b in zip(pts, pts[1:]):
            if a[key] > 0 >= b[key]:
                return a[xkey] + (b[xkey] - a[xkey]) * a[key] / (a[key] - b[key])
        return None

    crossings = {v: {"mean_gain_zero_at_rate": crossing(pts, "gain_mean", "rate"),
                     "mean_gain_zero_at_mapped_error": crossing(pts, "gain_mean", "mapped_error"),
                     "p5_gain_zero_at_rate": crossing(pts, "gain_p5", "rate"),
                     "p5_gain_zero_at_mapped_error": crossing(pts, "gain_p5", "mapped_error"),
                     "macro_mean_gain_zero_at_mapped_error": crossing(pts, "macro_gain_mean", "mapped_error"),
                     "reach": pts[-1]["mapped_error"]} for v, pts in fine.items()}
    print(json.dumps(crossings, indent=1))

    result = {"n": N, "no_stage": base, "true_speakers": truth, "anonymised_true_identical": anon_identical,
              "anonymised_reassign_identical": anon_all_identical, "bootstrap_true_gain": boot,
              "extremes": extremes, "grid": grid, "fine": fine, "crossings": crossings,
              "settings": {"rates": RATES, "seeds": SEEDS, "fine_rates": FINE, "fine_seeds": FINE_SEEDS, "tol": TOL}}
    (RESULTS / "dialogue-speaker-errors.json").write_text(json.dumps(result, indent=1))
    write_tables(result)


def write_tables(res):
    b = res["no_stage"]
    L = ["| variant | rate | relabelled | mapped err. | wF1 mean | gain wF1 | std | p5–p95 wF1 | gain>0 | "
         "macro F1 mean | gain macro | std |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for v in VARIANTS:
        for rate in RATES:
            c = res["grid"][f"{v}@{rate}"]
            w, m = c["weighted_f1"], c["macro_f1"]
            L.append(f"| {v} | {rate:.0%} | {c['relabelled']['mean']:.1%} | {c['mapped_error']['mean']:.1%} | "
                     f"{w['mean']:.4f} | {c['gain_weighted_f1']['mean']:+.4f} | {w['std']:.4f} | "
                     f"{w['p5']:.4f}–{w['p95']:.4f} | {c['share_gain_positive']:.0%} | {m['mean']:.4f} | "
                     f"{c['gain_macro_f1']['mean']:+.4f} | {m['std']:.4f} |")
    L += ["", "| speakers | mapped err. | wF1 | gain wF1 | macro F1 | gain macro |", "|---|---|---|---|---|---|",
          f"| no stage | – | {b['weighted_f1']:.4f} | – | {b['macro_f1']:.4f} | – |",
          f"| true MELD speakers | 0.0% | {res['true_speakers']['weighted_f1']:.4f} | "
          f"{res['true_speakers']['weighted_f1'] - b['weighted_f1']:+.4f} | {res['true_speakers']['macro_f1']:.4f} | "
          f"{res['true_speakers']['macro_f1'] - b['macro_f1']:+.4f} |"]
    for name, e in res["extremes"].items():
        L.append(f"| {name} | {e['mapped_error']:.1%} | {e['weighted_f1']:.4f} | {e['weighted_f1'] - b['weighted_f1']:+.4f}"
                 f" | {e['macro_f1']:.4f} | {e['macro_f1'] - b['macro_f1']:+.4f} |")
    L += ["", "Fine grid (seed-mean gain in weighted F1, 20 seeds per point):", "",
          "| variant | rate | mapped err. | mean gain wF1 | p5 gain wF1 | gain>0 | mean gain macro F1 |",
          "|---|---|---|---|---|---|---|"]
    for v, pts in res["fine"].items():
        for p in pts:
            L.append(f"| {v} | {p['rate']:.1%} | {p['mapped_error']:.1%} | {p['gain_mean']:+.4f} | "
                     f"{p['gain_p5']:+.4f} | {p['share_positive']:.0%} | {p['macro_gain_mean']:+.4f} |")
    (RESULTS / "dialogue-speaker-errors.md").write_text("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
