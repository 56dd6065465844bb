"""Who speaks: the ported speaker encoder against the original package's outputs, and --diarize end to end on
espeak-ng voices (tests/fixtures/voices.opus, made by tools/speech_fixture.py)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
import pytest

from emocli.signals import speakers

FIXTURES = Path(__file__).parent / "fixtures"


def decode_pcm(path: Path) -> np.ndarray:
    """16 kHz mono int16, decoded by the ffmpeg of imageio-ffmpeg (the build the reference was made with)."""
    import imageio_ffmpeg

    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-ac", "1",
                          "-ar", "16000", "-f", "s16le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, np.int16)


def test_the_port_gives_the_original_packages_embeddings():
    """tools/speaker_reference.py stored, once, what resemblyzer 0.1.4 itself computes for four clips of the speech
    fixture (one shorter than a partial window, one with several, one quiet): the port must agree."""
    ref = np.load(FIXTURES / "speaker_reference.npz")
    pcm = decode_pcm(FIXTURES / "speech.opus")
    same_input = hashlib.sha256(pcm.tobytes()).hexdigest() == str(ref["pcm_sha256"])
    wavs = [(pcm[a:b].astype(np.int32) // d).astype(np.int16).astype(np.float32) / 32768 for a, b, d in ref["spans"]]
    got = speakers.embed_voices(wavs)
    tolerance = 1e-4 if same_input else 2e-2  # another ffmpeg build may decode the Opus a bit differently
    assert np.abs(got - ref["embeddings"]).max() < tolerance
    assert (got * ref["embeddings"]).sum(1).min() > (0.99999 if same_input else 0.99)
    one = speakers.encoder().embed_utterance(wavs[2])
    assert np.abs(one - got[2]).max() < 1e-5  # batched windows give what one utterance alone gives
    partials = speakers.encoder().embed_partials(speakers.partial_mels(speakers.normalize_volume(wavs[0])))
    assert np.abs(partials - ref["partials"][:len(partials)]).max() < tolerance


def test_an_utterance_without_voice_has_no_embedding_and_quiet_speech_is_raised():
    rng = np.random.default_rng(0)
    voice = rng.standard_normal(16000).astype(np.float32) * 0.01  # -40 dBFS: both are raised to -30
    out = speakers.embed_voices([voice, np.zeros(0, np.float32), voice * 0.01])
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()
    assert np.allclose(np.linalg.norm(out[[0, 2]], axis=1), 1.0, atol=1e-5)
    assert np.abs(out[0] - out[2]).max() < 1e-4  # the volume is raised to -30 dBFS before embedding


def test_missing_weights_are_one_clear_error(tmp_path):
    from emocli.errors import UsageError

    with pytest.raises(UsageError, match="speaker encoder's weights .* are missing or damaged"):
        speakers.SpeakerEncoder.load(tmp_path / "none.safetensors")


def test_the_speaker_backend_survives_saving_and_loading(tmp_path):
    """Every array as it was (safetensors writes a strided view's raw buffer: eigenvectors come out as such views),
    and the same groups before and after."""
    from emocli.signals import diarize

    b = diarize.Backend.load()
    rng = np.random.default_rng(0)
    b.v_res = np.linalg.eigh(np.cov(rng.standard_normal((256, 400))))[1][:, ::-1][:, :10].T  # a strided view
    b.save(tmp_path / "backend.safetensors")
    again = diarize.Backend.load(tmp_path / "backend.safetensors")
    np.testing.assert_allclose(again.v_res, b.v_res, atol=1e-6)
    for view in ("res", "wh"):
        for name in ("mean", "proj", "cohort"):
            np.testing.assert_allclose(getattr(getattr(again, view), name), getattr(getattr(b, view), name),
                                       atol=1e-6 if name == "mean" else 2e-3)
    np.testing.assert_allclose(again.unknown.coef, b.unknown.coef)
    assert (again.unknown.t0, again.unknown.p0) == (b.unknown.t0, b.unknown.p0)
    # the multi-condition backend, for voices unlike clean speech
    assert again.switch == b.switch and again.noisy.noisy is None
    np.testing.assert_allclose(again.noisy.wh.cohort, b.noisy.wh.cohort, atol=2e-3)
    np.testing.assert_allclose(again.noisy.v_wh, b.noisy.v_wh, atol=1e-6)
    np.testing.assert_allclose(again.noisy.known.coef, b.noisy.known.coef)
    assert (again.noisy.unknown.t0, again.noisy.unknown.p0) == (b.noisy.unknown.t0, b.noisy.unknown.p0)


# --- --diarize end to end on three espeak-ng voices -----------------------------------------------------------

import csv  # noqa: E402
import json  # noqa: E402

from typer.testing import CliRunner  # noqa: E402

from emocli.cli import app  # noqa: E402
from emocli.synth import write_srt  # noqa: E402

SCENE = json.loads((FIXTURES / "voices.json").read_text())  # [start, end, text, speaker (None: silence)]


def scene_srt(path: Path, names: set[str] = frozenset()) -> Path:
    """The scene's cues; the silent stretch as a cue too ("Hello?"); `names`: the speakers whose cues say so."""
    return write_srt(path, [(a, b, (f"{who}: " if who in names else "") + (text if who else "Hello?"))
                            for a, b, text, who in SCENE])


def annotate(tmp_path: Path, subs: Path, *extra: str) -> tuple[object, list[dict], dict]:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["annotate", str(FIXTURES / "voices.opus"), "--subs", str(subs), "-o", str(out),
                                      "-f", "csv,json", "--diarize", "--overwrite", *extra])
    if result.exit_code:
        return result, [], {}
    with open(out / "voices.emotions.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return result, rows, json.loads((out / "voices.emotions.json").read_text())


def test_diarize_gives_each_voice_its_speaker_and_leaves_silence_unassigned(tmp_path, text_model):
    result, rows, doc = annotate(tmp_path, scene_srt(tmp_path / "scene.srt"), "--model", str(text_model),
                                 "--num-speakers", "3")
    assert result.exit_code == 0, result.output
    truth = [who for *_, who in SCENE]
    found = [r["speaker"] for r in rows]
    assert found[truth.index(None)] == "" and rows[truth.index(None)]["speaker_source"] == ""
    voiced = [(t, f) for t, f in zip(truth, found) if t]
    mapping = dict(voiced)
    assert len(set(mapping.values())) == 3 and all(mapping[t] == f for t, f in voiced)  # every utterance right
    assert [f for _, f in voiced][:4] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00", "SPEAKER_02"]  # by first turn
    assert {r["speaker_source"] for r, t in zip(rows, truth) if t} == {"voice"}
    assert doc["model"]["diarization"] == {**doc["model"]["diarization"], "speakers": 3, "count": "given",
                                           "by_voice": 12, "by_subtitles": 0, "unassigned": 1}
    assert doc["utterances"][0]["speaker_source"] == "voice"
    assert "SPEAKER_00" in result.output  # the summary's dominant emotion per speaker


def test_voices_unlike_the_training_speech_are_not_counted_but_said(tmp_path, text_model):
    """espeak-ng's synthetic voices sit far from the human speech (clean, noisy, reverberant) the grouping was
    fitted on: every voice would be read as one speaker, so without a count none is estimated, and a warning and the
    JSON say why."""
    result, rows, doc = annotate(tmp_path, scene_srt(tmp_path / "scene.srt"), "--model", str(text_model))
    assert result.exit_code == 0, result.output
    assert {r["speaker"] for r in rows} == {""} and {r["speaker_source"] for r in rows} == {""}
    account = doc["model"]["diarization"]
    assert account["speakers"] == 0 and account["unassigned"] == len(rows)
    assert "speakers not estimated; give --num-speakers" in account["doubtful"]
    assert "warning: voices.opus: --diarize: voices unlike the speech the speaker grouping" in result.output


def test_names_in_some_cues_name_their_voices_other_cues(tmp_path, text_model):
    subs = tmp_path / "named.srt"
    lines = scene_srt(subs, {"ANNA", "BORIS"}).read_text().split("\n\n")
    # only ANNA's and BORIS's first cues keep their name: the others must get it by voice
    first = {"ANNA": False, "BORIS": False}
    for k, block in enumerate(lines):
        for who in first:
            if f"{who}: " in block:
                lines[k] = block if not first[who] else block.replace(f"{who}: ", "")
                first[who] = True
    subs.write_text("\n\n".join(lines))
    result, rows, _ = annotate(tmp_path, subs, "--model", str(text_model), "--num-speakers", "3")
    assert result.exit_code == 0, result.output
    truth = [who for *_, who in SCENE]
    expected = {"ANNA": "ANNA", "BORIS": "BORIS", "CLARA": "SPEAKER_00", None: ""}
    assert [r["speaker"] for r in rows] == [expected[t] for t in truth]
    sources = [r["speaker_source"] for r in rows]
    assert sources[0] == "subtitles" and sources[1] == "subtitles" and sources[2] == "voice"


@pytest.mark.parametrize("args,message", [
    (["--num-speakers", "0"], "--num-speakers must be a whole number of at least 1, not 0"),
    (["--min-speakers", "3", "--max-speakers", "2"], "--min-speakers 3 is more than --max-speakers 2"),
    (["--num-speakers", "2", "--max-speakers", "4"], "--num-speakers gives the count: leave out --min-speakers"),
])
def test_bad_speaker_counts_are_one_line_and_exit_2(tmp_path, text_model, args, message):
    result, _, _ = annotate(tmp_path, scene_srt(tmp_path / "scene.srt"), "--model", str(text_model), *args)
    assert result.exit_code == 2 and result.output.startswith(f"emocli: error: {message}"), result.output
    assert not (tmp_path / "out").exists()


def test_speaker_counts_need_diarize(tmp_path, text_model):
    result = CliRunner().invoke(app, ["annotate", str(FIXTURES / "voices.opus"), "--subs",
                                      str(scene_srt(tmp_path / "s.srt")), "--model", str(text_model),
                                      "--num-speakers", "2"])
    assert result.exit_code == 2
    assert result.output.strip() == ("emocli: error: --num-speakers counts the speakers --diarize finds: add "
                                     "--diarize")
    import sys

    run = subprocess.run([sys.executable, "-m", "emocli", "annotate", str(FIXTURES / "voices.opus"), "--diarize",
                          "--num-speakers", "two"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.count("\n") == 1  # one line, from the option parser
    assert run.stderr.startswith("emocli: error: Invalid value for '--num-speakers'")


def test_the_dialogue_stage_runs_on_speakers_found_by_voice(tmp_path, text_model):
    from emocli.labels import LABELS
    from emocli.model.checkpoint import save_dialogue
    from emocli.model.dialogue import FEATURES

    k = len(LABELS)
    weight = np.zeros((k, FEATURES))
    weight[:, 3 * k:4 * k] = 5 * np.eye(k)  # a speaker keeps the emotion they had
    staged = save_dialogue(text_model, tmp_path / "staged", {"weight": weight.tolist(), "bias": [0.0] * k}, {})
    result, _, doc = annotate(tmp_path, scene_srt(tmp_path / "scene.srt"), "--model", str(staged),
                              "--num-speakers", "3")
    assert result.exit_code == 0, result.output
    assert doc["model"]["dialogue_stage"] == ("applied to 13 utterances (speakers: 0 named by the subtitles, 12 found "
                                              "by voice, 1 without voice, read as one speaker)")
