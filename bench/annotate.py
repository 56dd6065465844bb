"""Benchmark `emocli annotate` on a synthetic episode against floors measured in the same run.

    python bench/annotate.py                                  # 10-min 720p video, 200 cues, tiny trimodal model
    python bench/annotate.py --minutes 22 --cues 350 --model default --naive
    python bench/annotate.py --minutes 22 --cues 350 --model base --naive --device cuda
    python bench/annotate.py --minutes 3 --cues 50 --episodes 6              # a folder: 6 episodes in one run

Figures (a table, then one JSON line; with --episodes N, for the whole folder of N episodes, every floor being N
times one episode's):
  load_s           model load (encoders + checkpoint), reported apart from processing
  annotate_s       end-to-end processing after load: probe, subtitles, decode, model, writing the CSV
  decode_floor_s   ffmpeg alone decoding the streams the model needs (audio to 16 kHz PCM and/or every video
                   frame), one ffmpeg per stream with its own threads, the two at once
  decode_floor_parallel_s  the same streams cut into --decode-workers equal stretches decoded at once (as
                   annotate's segments are), each ffmpeg with one thread when they fill the cores: stricter
  compute_floor_s  the same model's batched forward passes over the same utterances, inputs already in memory
  naive_s          one ffmpeg call per modality and one model call per utterance (as most MELD research code does)
Not a test: numbers depend on the machine. Put them in docs/performance.md with the command, device and date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from emocli.pipeline.jobs import AnnotateOptions, find_jobs
from emocli.pipeline.predict import BatchPredictor
from emocli.device import amp_dtype, precision_name, resolve_device
from emocli.pipeline.annotate import annotate
from emocli.model.checkpoint import load_model
from emocli.pipeline.prepare import prepare_job
from emocli.pipeline.decode import decode_inputs, decode_workers, decoder_threads  # noqa: E402
from emocli.model.checkpoint import save_checkpoint  # noqa: E402
from emocli.media.ffmpeg import audio_command, decode_audio, ffmpeg_exe, probe, sample_frames  # noqa: E402
from emocli.model.network import EmotionModel, FusionConfig, UtteranceInput, make_config  # noqa: E402
from emocli.text.segments import frame_times  # noqa: E402
from emocli.synth import make_encoders, write_srt  # noqa: E402
from emocli.media.vad import voiced_mask  # noqa: E402

LINES = ["I can't believe you did that!", "Oh my God, that's wonderful!", "Get out of my apartment.",
         "I miss her so much.", "What?! You're getting married?", "Okay.", "Ew, that's disgusting.",
         "Did you hear that noise?", "We were on a break!", "How you doin'?"]


SPEAKERS = ["MONICA", "ROSS", "RACHEL", "JOEY"]


def make_episode(workdir: Path, minutes: float, cues: int, height: int, fps: int = 25, seed: int = 0,
                 speakers: bool = False) -> tuple[Path, Path]:
    """A synthetic episode (testsrc2 + sine) and an SRT with `cues` cues of 0.8-4 s spread over it (`speakers`:
    each cue starts with "NAME: ", so a model's dialogue stage runs)."""
    duration = minutes * 60
    width = height * 16 // 9 // 2 * 2
    video = workdir / f"episode-{minutes:g}min-{height}p{fps}.mp4"
    if not video.is_file():
        print(f"making {video} ...", file=sys.stderr)
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size={width}x{height}:rate={fps}:duration={duration}", "-f", "lavfi", "-i",
                        f"sine=frequency=300:sample_rate=44100:duration={duration}", "-c:v", "libx264", "-preset",
                        "ultrafast", "-g", str(2 * fps), "-pix_fmt", "yuv420p", "-c:a", "aac", "-t", str(duration),
                        str(video)], check=True)
    rng = random.Random(seed)
    slot = duration / cues
    triples = []
    for i in range(cues):
        length = rng.uniform(0.8, min(4.0, slot * 0.95))
        start = i * slot + rng.uniform(0, slot - length)
        line = rng.choice(LINES)
        triples.append((start, start + length, f"{rng.choice(SPEAKERS)}: {line}" if speakers else line))
    named = "-speakers" if speakers else ""
    subs = write_srt(workdir / f"episode-{minutes:g}min-{cues}cues{named}.srt", triples)
    return video, subs


def build_model(spec: str, workdir: Path, tokenizer: str = "minilm") -> Path | None:
    """'tiny'/'base': random trimodal checkpoints with those encoder shapes; 'default': the shipped model."""
    if spec == "default":
        return None
    if spec not in ("tiny", "base"):
        return Path(spec)
    directory = workdir / f"model-{spec}"
    if not (directory / "config.json").is_file():
        enc = make_encoders(workdir / "encoders", spec, tokenizer=tokenizer)
        config = make_config(["text", "audio", "video"], enc["text"], enc["audio"], enc["video"],
                             fusion=FusionConfig())
        torch.manual_seed(0)
        save_checkpoint(EmotionModel(config), directory)
    return directory


def decode_floor(video: Path, modalities: list[str], workers: int) -> dict[str, float]:
    """Seconds ffmpeg alone takes to decode what the model needs: each stream alone and both at once, one ffmpeg
    per stream with its own threading (the decode floor); and, stricter, the same streams cut into `workers` equal
    stretches decoded at once, each ffmpeg with decoder_threads() threads (the parallel floor: what annotate's
    segments do, without selecting or scaling frames)."""
    duration = probe(video).duration_s
    whole, slices = {}, []
    threads = decoder_threads(workers)
    bounds = np.linspace(0.0, duration, workers + 1)
    if "audio" in modalities:
        whole["audio"] = _to_null(audio_command(video))
        slices += [_to_null(audio_command(video, a, b - a)) for a, b in zip(bounds[:-1], bounds[1:])]
    if "video" in modalities:
        whole["video"] = [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(video), "-map", "0:v:0", "-f", "null", "-"]
        slices += [[ffmpeg_exe(), "-v", "error", "-nostdin", "-ss", f"{a:.3f}", "-t", f"{b - a:.3f}", "-threads",
                    str(threads), "-i", str(video), "-map", "0:v:0", "-f", "null", "-"]
                   for a, b in zip(bounds[:-1], bounds[1:])]
    out = {}
    for name, cmd in whole.items():
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        out[f"decode_{name}_s"] = time.perf_counter() - t
    out["decode_floor_s"] = _all_at_once(list(whole.values()))
    out["decode_floor_parallel_s"] = _all_at_once(slices)
    return out


def _to_null(cmd: list[str]) -> list[str]:
    cmd = list(cmd)
    cmd[cmd.index("pipe:")] = os.devnull
    return [cmd[0], "-y", *cmd[1:]]


def _all_at_once(commands: list[list[str]]) -> float:
    if not commands:
        return 0.0
    t = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for cmd in commands]
    for p in procs:
        p.wait()
    return time.perf_counter() - t


def compute_floor(model: EmotionModel, video: Path, subs: Path, batch_size: int, vad: str, precision: str
                  ) -> tuple[float, int]:
    """Seconds of the model's batched forward passes alone over the same utterances (inputs decoded first)."""
    job = find_jobs(video, subs)[0]
    prep = prepare_job(job, model)
    inputs = [item for _, item in decode_inputs(prep, model, vad, decode_workers())]
    inputs.sort(key=lambda u: (len(u.audio) if u.audio is not None else 0) + len(u.text))
    predictor = BatchPredictor(model, batch_size, precision)
    predictor(inputs[:batch_size])  # warm-up
    sync()
    t = time.perf_counter()
    predictor(inputs)
    sync()
    return time.perf_counter() - t, len(inputs)


def naive(model: EmotionModel, video: Path, subs: Path, limit: int | None, vad: str, precision: str
          ) -> tuple[float, int]:
    """One ffmpeg call per modality and one model call per utterance, for the first `limit` utterances."""
    job = find_jobs(video, subs)[0]
    prep = prepare_job(job, model)
    utts = prep.utterances[:limit] if limit else prep.utterances
    cfg, fps = model.config, prep.info.fps
    predictor = BatchPredictor(model, 1, precision)
    t = time.perf_counter()
    for u in utts:
        item = UtteranceInput(text=u.text, context=u.context)
        if cfg.audio:
            item.audio = decode_audio(video, u.start_s, u.end_s - u.start_s)
            item.voiced = voiced_mask(item.audio, vad)
        if cfg.video:
            item.frames = sample_frames(video, np.array(frame_times(u.start_s, u.end_s, cfg.video.frames)),
                                        cfg.video.image_size, fps, start_s=u.start_s, duration_s=u.end_s - u.start_s)
        predictor([item])
    sync()
    return time.perf_counter() - t, len(utts)


def season(workdir: Path, video: Path, subs: Path, episodes: int) -> Path:
    """A folder of `episodes` episodes: links to the one video, each with a copy of its subtitles."""
    folder = workdir / f"season-{video.stem}-x{episodes}"
    folder.mkdir(exist_ok=True)
    for k in range(episodes):
        link = folder / f"ep{k:03d}.mp4"
        if not link.exists():
            link.symlink_to(video.resolve())
        shutil.copyfile(subs, link.with_suffix(".srt"))
    return folder


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory of this process (ffmpeg children are small and not included)."""
    return {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--cues", type=int, default=200)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--model", default="tiny", help="tiny, base, default, large (an installed model), or a checkpoint directory")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--vad", default="silero")
    ap.add_argument("--decode-workers", type=int, default=None, help="default: one per CPU core, at most 16")
    ap.add_argument("--episodes", type=int, default=1, help="annotate a folder of N episodes (the same video "
                    "under N names, each with its subtitles) in one run")
    ap.add_argument("--precision", default="auto", help="auto, fp32, bf16, fp16 or int8 (annotate and compute "
                    "floor)")
    ap.add_argument("--naive-precision", default=None, help="the naive baseline's arithmetic (default: the same "
                    "as --precision); fp32 is what research scripts run")
    ap.add_argument("--naive", action="store_true", help="also time the naive per-utterance baseline")
    ap.add_argument("--naive-limit", type=int, default=None, help="time the naive baseline on the first N cues "
                    "only and scale to all cues (said so in the output)")
    ap.add_argument("--speakers", action="store_true", help="the cues name their speakers (\"ROSS: ...\"), so a "
                    "model's dialogue stage runs (emocli/model/dialogue.py)")
    ap.add_argument("--no-compute-floor", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="annotate (and measure the decode floors) this many "
                    "times, alternating; report medians and each run's ratios")
    ap.add_argument("--tokenizer", default="minilm", help="the random BERT's tokenizer: a directory saved with "
                    "save_pretrained where the bundled MiniLM package is not installed (bench/gpu.sh)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "emocli-bench")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    args.workdir.mkdir(parents=True, exist_ok=True)
    video, subs = make_episode(args.workdir, args.minutes, args.cues, args.height, args.fps, speakers=args.speakers)
    target, target_subs = (season(args.workdir, video, subs, args.episodes), None) if args.episodes > 1 else (
        video, subs)
    model_dir = build_model(args.model, args.workdir, args.tokenizer)
    device = resolve_device(args.device)

    t = time.perf_counter()
    model = load_model(model_dir, device)
    BatchPredictor(model, 1, args.precision)  # int8: the quantised graphs load with the model
    sync()
    load_s = time.perf_counter() - t
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    options = AnnotateOptions(formats=["csv"], output_dir=args.workdir / "out", device=str(device),
                              batch_size=args.batch_size, overwrite=True, vad=args.vad, progress=False,
                              decode_workers=args.decode_workers, precision=args.precision)
    runs, floors = [], []
    for _ in range(args.repeat):  # annotate and the decode floors alternate, so both see the same machine
        t = time.perf_counter()
        summary = annotate(find_jobs(target, target_subs, options.output_dir), model, options)
        sync()
        runs.append(time.perf_counter() - t)
        for outcome in summary.outcomes:
            assert outcome.status == "done", outcome.message
        one = decode_floor(video, model.config.modalities, decode_workers(args.decode_workers))
        floors.append({key: value * args.episodes for key, value in one.items()})
    annotate_s = float(np.median(runs))
    n = sum(len(outcome.result.predictions) for outcome in summary.outcomes)
    figures = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else
               f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
               "date": time.strftime("%Y-%m-%d"), "video": f"{args.minutes:g} min {args.height}p {args.fps} fps",
               "cues": args.cues, "speakers": args.speakers, "episodes": args.episodes, "utterances": n,
               "model": args.model,
               "modalities": "+".join(model.config.modalities), "batch_size": args.batch_size,
               "decode_workers": decode_workers(args.decode_workers),
               "precision": precision_name(amp_dtype(device, args.precision), args.precision,
                                           model.config.modalities),
               "load_s": round(load_s, 2), "annotate_s": round(annotate_s, 2),
               "utterances_per_s": round(n / annotate_s, 2), "episode_seconds_per_s": round(
                   probe(video).duration_s * args.episodes / annotate_s, 1),
               "episodes_per_hour": round(3600 * args.episodes / annotate_s)}
    stage = summary.outcomes[0].result.model.get("dialogue_stage")
    if stage:
        figures["dialogue_stage"] = stage
    if args.repeat > 1:
        figures["repeats"] = args.repeat
        figures["annotate_runs_s"] = [round(r, 2) for r in runs]
    if device.type == "cuda":
        figures["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    for key in floors[0]:  # medians over the repeats
        figures[key] = round(float(np.median([f[key] for f in floors])), 2)
    for key, name in (("decode_floor_s", "x_decode_floor"), ("decode_floor_parallel_s", "x_parallel_floor")):
        if figures[key] > 0:  # each run against the floor measured right after it
            ratios = [r / f[key] for r, f in zip(runs, floors)]
            figures[name] = round(float(np.median(ratios)), 2)
            if args.repeat > 1:
                figures[name + "_runs"] = [round(x, 2) for x in ratios]
    if not args.no_compute_floor:
        floor, _ = compute_floor(model, video, subs, args.batch_size, args.vad, args.precision)
        floor *= args.episodes
        figures["compute_floor_s"] = round(floor, 2)
        figures["x_compute_floor"] = round(annotate_s / floor, 2)
    if args.naive:
        naive_precision = args.naive_precision or args.precision
        naive_s, measured = naive(model, video, subs, args.naive_limit, args.vad, naive_precision)
        figures["naive_precision"] = naive_precision
        scaled = naive_s * n / measured
        figures["naive_s"] = round(scaled, 2)
        figures["naive_measured_utterances"] = measured
        figures["speedup_vs_naive"] = round(scaled / annotate_s, 1)
    figures.update(peak_rss_mb())
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
