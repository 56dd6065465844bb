"""Where the words come from: subtitle files (SRT, WebVTT, ASS; any common encoding), text tracks inside the video,
or speech recognition, cleaned (markup, sound descriptions, two-speaker cues) and cut into utterances with their
dialogue context."""
