"""emocli: annotate videos with per-utterance emotions from their subtitles, audio and frames.

The Python API (the command line calls the same functions):

    import emocli

    model = emocli.load_model()                       # or "large", or a checkpoint folder
    results = emocli.annotate("episode.mp4", subs="episode.srt", model=model, formats=["csv"])
    metrics = emocli.evaluate("default", "MELD/", split="dev")

The package, by stage (each folder's __init__ says what it does):
    text/      where the words come from: subtitle files, embedded tracks, speech recognition -> utterances
    media/     decoding audio and frames with ffmpeg; where the voice is
    signals/   what the media shows beside the words: faces and their expressions
    model/     the emotion model: encoders, fusion, checkpoints, the dialogue stage
    pipeline/  annotate: jobs, the reader, the decoders, batched model calls, Ray
    outputs/   CSV, JSON, subtitles, the review page, summaries and plots
    training/  MELD, the embedding cache, train, evaluate, score
"""

from .api import AnnotateError, annotate, evaluate, load_model, train
from .errors import EmocliError, UsageError
from .labels import LABELS, MODALITIES

__version__ = "0.1.0"

__all__ = ["LABELS", "MODALITIES", "AnnotateError", "EmocliError", "UsageError", "annotate", "evaluate",
           "load_model", "train", "__version__"]
