"""Decoding for annotate: frames streamed from one ffmpeg pass, segments planned over the video, chunks handed on
as their frames arrive, and a failing segment stopping its siblings."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from emocli.media import ffmpeg as media
from emocli.pipeline import decode
from emocli.errors import EmocliError
from emocli.text.segments import Utterance
from conftest import season


def test_stream_frames_yields_the_frames_sample_frames_picks(media_dir):
    path = media_dir / "both.mp4"
    start, duration = 1.0, 3.0
    times = np.array([1.305, 1.31, 2.0, 2.49, 3.96])  # none half-way between two frames (a tie)
    streamed = list(media.stream_frames(path, times, 32, fps=25.0, start_s=start, duration_s=duration))
    stamps = np.array([t for t, _ in streamed])
    # only the frames within half a frame (0.02 s) of a target, in time order; 1.305 and 1.31 share one
    assert np.allclose(stamps, [1.32, 2.0, 2.48, 3.96], atol=1e-6)
    nearest = np.abs(times[:, None] - stamps[None, :]).argmin(axis=1)
    picked = np.stack([streamed[i][1] for i in nearest])
    expected = media.sample_frames(path, times, 32, fps=25.0, start_s=start, duration_s=duration)
    assert picked.shape == expected.shape == (5, 32, 32, 3) and (picked == expected).all()


def test_stream_frames_stops_early_and_reports_bad_files(media_dir, tmp_path):
    stop = threading.Event()
    got = []
    began = time.perf_counter()
    for t, _ in media.stream_frames(media_dir / "both.mp4", np.arange(0.1, 5.9, 0.04), 32, stop=stop):
        got.append(t)
        stop.set()
    assert len(got) == 1 and time.perf_counter() - began < 10
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(EmocliError, match="cannot decode"):
        list(media.stream_frames(bad, np.array([1.0]), 32))


def _utterances(count: int, minutes: float) -> list[Utterance]:
    slot = minutes * 60 / count
    return [Utterance(i + 1, i * slot, i * slot + 0.8 * slot, f"line {i}") for i in range(count)]


@pytest.mark.parametrize("workers", [1, 2, 8, 16])
def test_plan_segments_covers_every_utterance_once_in_balanced_stretches(workers):
    utts = _utterances(350, 22)
    segments = decode.plan_segments(utts, workers)
    assert [u for s in segments for u in s] == utts  # all of them, once, in time order
    assert all(len(s) <= decode.SEGMENT_MAX_CUES for s in segments)
    assert all(s[-1].end_s - s[0].start_s <= decode.SEGMENT_MAX_S for s in segments)
    assert len(segments) % min(workers, len(segments)) == 0  # whole rounds: no segment decodes alone at the end
    assert len(segments) >= workers
    sizes = [len(s) for s in segments]
    assert max(sizes) - min(sizes) <= 1 + max(sizes) // 10


def test_plan_segments_skips_stretches_without_cues():
    """A long gap (titles, music) leaves some equal stretches empty: they are dropped, not decoded."""
    utts = _utterances(60, 5)
    utts += [Utterance(100 + i, 1200 + 5 * i, 1202 + 5 * i, "later") for i in range(60)]  # after a 15-min gap
    segments = decode.plan_segments(utts, 16)
    assert [u for s in segments for u in s] == utts and all(segments)
    assert all(s[-1].start_s < 300 or s[0].start_s >= 1200 for s in segments)  # none spans the gap


def test_plan_segments_keeps_short_media_in_few_passes():
    assert len(decode.plan_segments(_utterances(6, 0.5), 16)) == 1  # 30 s: one pass, not 16 seeks
    assert len(decode.plan_segments(_utterances(40, 2), 16)) == 5  # 119 s of cues: 20 s a pass at least
    assert decode.plan_segments([], 4) == []


def test_chunks_are_handed_on_before_the_pass_ends(media_dir, trimodal_model, six_cue_srt, monkeypatch):
    """A chunk is emitted as soon as the frames after its last target arrive, not when ffmpeg is done; and frames
    keep flowing while the segment's audio is still decoding (its chunks wait for it, the frames do not)."""
    import dataclasses

    from emocli.pipeline.jobs import Job
    from emocli.model.checkpoint import load_model
    from emocli.pipeline.prepare import prepare_job

    monkeypatch.setattr(decode, "CHUNK_MAX_CUES", 1)
    frames_read = [0]
    all_read = threading.Event()
    real_stream, real_audio = decode.stream_frames, decode.segment_audio

    def counting(*args, **kwargs):
        for pair in real_stream(*args, **kwargs):
            frames_read[0] += 1
            yield pair
        all_read.set()

    audio_waited = []

    def slow_audio(*args):
        audio_waited.append(all_read.wait(timeout=10))  # False: the frames stopped until the audio was in
        return real_audio(*args)

    monkeypatch.setattr(decode, "stream_frames", counting)
    monkeypatch.setattr(decode, "segment_audio", slow_audio)
    model = load_model(trimodal_model)
    prep = prepare_job(Job(media_dir / "both.mp4", six_cue_srt, media_dir), model)
    frames_per_cue = model.config.video.frames

    seen = []  # video alone: each chunk leaves as soon as the frame after its last target is in
    no_audio = dataclasses.replace(prep, info=dataclasses.replace(prep.info, has_audio=False))
    decode.decode_job(no_audio, model, "energy", lambda items: seen.append((frames_read[0], items)), workers=1)
    assert [u.index for _, items in seen for u, _ in items] == [1, 2, 3, 4, 5, 6]
    assert frames_read[0] == 6 * frames_per_cue
    assert seen[0][0] <= frames_per_cue + 1 and seen[-1][0] == 6 * frames_per_cue

    frames_read[0], seen = 0, []
    all_read.clear()
    decode.decode_job(prep, model, "energy", lambda items: seen.append(items), workers=1)
    assert audio_waited == [True]
    assert [u.index for items in seen for u, _ in items] == [1, 2, 3, 4, 5, 6]
    for items in seen:
        for _, item in items:
            assert item.frames.shape[0] == frames_per_cue and item.audio is not None


def test_a_failing_segment_stops_the_others(media_dir, trimodal_model, six_cue_srt, monkeypatch):
    from emocli.pipeline.jobs import Job
    from emocli.model.checkpoint import load_model
    from emocli.pipeline.prepare import prepare_job

    monkeypatch.setattr(decode, "SEGMENT_MIN_S", 1.0)
    real = decode.segment_audio

    def fail_second(prep, segment, vad):
        if segment[0].index > 2:
            raise EmocliError("cannot decode: simulated")
        return real(prep, segment, vad)

    monkeypatch.setattr(decode, "segment_audio", fail_second)
    model = load_model(trimodal_model)
    prep = prepare_job(Job(media_dir / "both.mp4", six_cue_srt, media_dir), model)
    with pytest.raises(EmocliError, match="simulated"):
        decode.decode_job(prep, model, "energy", lambda items: None, workers=3)
    assert not [t for t in threading.enumerate() if t.name.startswith("emocli-")]  # no decoder left running


def test_a_model_error_mid_run_leaves_no_decoder_behind(media_dir, trimodal_model, tmp_path, monkeypatch):
    """If the model fails while segments are still decoding (their chunks waiting for room in the queue), the
    error reaches the caller and every decoder thread and ffmpeg ends: nothing is left to hang the exit."""
    from emocli.pipeline.jobs import AnnotateOptions, find_jobs
    from emocli.pipeline.predict import BatchPredictor
    from emocli.pipeline.annotate import annotate
    from emocli.model.checkpoint import load_model
    from emocli.synth import write_srt

    subs = write_srt(tmp_path / "dense.srt", [(0.19 * i, 0.19 * i + 0.15, f"line {i}") for i in range(30)])
    monkeypatch.setattr(decode, "CHUNK_MAX_CUES", 1)  # 30 chunks: far more than the queue holds
    monkeypatch.setattr(decode, "SEGMENT_MIN_S", 1.0)

    def broken(self, batch):
        time.sleep(0.3)  # the decoders fill the queue meanwhile
        raise EmocliError("model failed (simulated)")

    monkeypatch.setattr(BatchPredictor, "_run", broken)
    model = load_model(trimodal_model)
    options = AnnotateOptions(formats=[], progress=False, batch_size=1, decode_workers=3, vad="energy")
    with pytest.raises(EmocliError, match="simulated"):
        annotate(find_jobs(media_dir / "both.mp4", subs), model, options)
    # gone by the time annotate returns: threads still inside ONNX Runtime or PyTorch when the interpreter exits
    # (as after a Ctrl-C) abort it with SIGABRT
    assert not [t.name for t in threading.enumerate() if t.name.startswith("emocli-")]


def test_the_next_video_decodes_while_the_current_one_finishes(media_dir, trimodal_model, tmp_path, monkeypatch):
    """Folder runs share one set of decoders: a free decoder takes the next video's segment instead of waiting
    for the current video's last one (which used to leave cores idle at every video's end)."""
    from emocli.pipeline.jobs import AnnotateOptions, find_jobs
    from emocli.pipeline.annotate import annotate
    from emocli.model.checkpoint import load_model

    spans: dict[str, list[float]] = {}
    real = decode.decode_segment

    def timed(prep, *args, **kwargs):
        began = time.perf_counter()
        time.sleep(0.5 if prep.job.video.name == "ep0.mp4" else 0.0)  # the first video's segment is slow
        real(prep, *args, **kwargs)
        spans[prep.job.video.name] = [began, time.perf_counter()]

    monkeypatch.setattr(decode, "decode_segment", timed)
    model = load_model(trimodal_model)
    options = AnnotateOptions(formats=["csv"], output_dir=tmp_path / "out", progress=False, decode_workers=2,
                              vad="energy")
    summary = annotate(find_jobs(season(media_dir, tmp_path / "season", 3), None, options.output_dir), model, options)
    assert [o.status for o in summary.outcomes] == ["done"] * 3
    assert all(len(o.result.predictions) == 6 for o in summary.outcomes)
    assert spans["ep1.mp4"][0] < spans["ep0.mp4"][1]  # began before the first video was done
    assert spans["ep2.mp4"][0] < spans["ep0.mp4"][1]  # ...and the one after, on the same free decoder


def test_a_video_failing_mid_decode_leaves_the_others_in_the_folder(media_dir, trimodal_model, tmp_path,
                                                                     monkeypatch):
    from emocli.pipeline.jobs import AnnotateOptions, find_jobs
    from emocli.pipeline.annotate import annotate
    from emocli.model.checkpoint import load_model

    real = decode.segment_audio

    def fail_ep1(prep, segment, vad):
        if prep.job.video.name == "ep1.mp4":
            raise EmocliError(f"cannot decode {prep.job.video}: simulated")
        return real(prep, segment, vad)

    monkeypatch.setattr(decode, "segment_audio", fail_ep1)
    model = load_model(trimodal_model)
    logged = []
    options = AnnotateOptions(formats=["csv"], output_dir=tmp_path / "out", progress=False, decode_workers=2,
                              vad="energy", log=logged.append)
    summary = annotate(find_jobs(season(media_dir, tmp_path / "season", 3), None, options.output_dir), model, options)
    assert [o.status for o in summary.outcomes] == ["done", "failed", "done"]
    assert "simulated" in summary.outcomes[1].message and any("simulated" in line for line in logged)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ep0.emotions.csv", "ep2.emotions.csv"]
    assert not [t for t in threading.enumerate() if t.name.startswith("emocli-")]


@pytest.mark.parametrize("seed", [0, 1])
def test_shared_decoders_under_random_timing_and_failures(media_dir, trimodal_model, tmp_path, monkeypatch, seed):
    """Twelve videos of 1-3 segments on three decoders, segments taking random times and some failing: every
    good video gets all its cues in its output, every failing one one error, and no decoder is left running."""
    import random

    from emocli.pipeline.jobs import AnnotateOptions, find_jobs
    from emocli.pipeline.annotate import annotate
    from emocli.model.checkpoint import load_model
    from emocli.model.network import UtteranceInput
    from emocli.synth import write_srt

    rng = random.Random(seed)
    folder = tmp_path / "season"
    folder.mkdir()
    cues, failing = {}, {f"ep{k:02d}.mp4" for k in rng.sample(range(12), 3)}
    for k in range(12):
        name = f"ep{k:02d}.mp4"
        (folder / name).symlink_to(media_dir / "both.mp4")
        count = rng.randint(1, 12)
        cues[name] = count
        write_srt(folder / f"ep{k:02d}.srt", [(i * 0.45, i * 0.45 + 0.4, f"line {i}") for i in range(count)])
    monkeypatch.setattr(decode, "SEGMENT_MIN_S", 1.5)  # up to 3 segments a video
    monkeypatch.setattr(decode, "CHUNK_MAX_CUES", 2)

    def fake(prep, model, vad, segment, emit, audio_pool, threads=None, stop=None, faces=False, audio=False):
        chunks = decode.chunks_of(segment)
        for chunk in chunks:
            time.sleep(rng.uniform(0, 0.02))
            if prep.job.video.name in failing and chunk is chunks[-1]:  # after its other chunks went on
                raise EmocliError(f"cannot decode {prep.job.video.name}: simulated")
            emit([(u, UtteranceInput(text=u.text)) for u in chunk])

    monkeypatch.setattr(decode, "decode_segment", fake)
    model = load_model(trimodal_model)
    options = AnnotateOptions(formats=["csv"], output_dir=tmp_path / "out", progress=False, batch_size=3,
                              decode_workers=3, log=lambda line: None)
    summary = annotate(find_jobs(folder, None, options.output_dir), model, options)
    for outcome in summary.outcomes:
        name = outcome.video.name
        if name in failing:
            assert outcome.status == "failed" and "simulated" in outcome.message
            assert not (tmp_path / "out" / f"{outcome.video.stem}.emotions.csv").exists()
        else:
            assert outcome.status == "done", outcome.message
            assert [p.index for p in outcome.result.predictions] == list(range(1, cues[name] + 1))
    assert not [t for t in threading.enumerate() if t.name.startswith("emocli-")]
