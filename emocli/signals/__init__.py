"""What the media shows beside the words, reported in columns of its own and never mixed into the model's emotion:
the faces in each utterance's frames and what they express."""
