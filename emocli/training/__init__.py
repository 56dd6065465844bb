"""Training and measuring: MELD's splits, the embedding cache, train, evaluate (MELD) and score (your own labels),
the metrics they share, and fitting the dialogue stage. Nothing here loads on the annotate path."""
