"""emocli: annotate videos with per-utterance emotions from their subtitles, audio and frames."""

__version__ = "0.1.0"

#: The 7 MELD emotions, in the order of every probability vector and logit in emocli.
LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")

#: Modalities a model may use, in canonical order.
MODALITIES: tuple[str, ...] = ("text", "audio", "video")
