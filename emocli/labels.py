"""The label space every model, output and score in emocli shares."""

#: The 7 MELD emotions, in the order of every probability vector and logit in emocli.
LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")

#: Modalities a model may use, in canonical order.
MODALITIES: tuple[str, ...] = ("text", "audio", "video")

#: One colour per emotion (subtitles, plots, the review page), distinct for common colour-vision deficiencies.
EMOTION_COLORS = {"anger": "#d62728", "disgust": "#2ca02c", "fear": "#9467bd", "joy": "#f2b701",
                  "neutral": "#8c8c8c", "sadness": "#1f77b4", "surprise": "#ff7f0e"}
