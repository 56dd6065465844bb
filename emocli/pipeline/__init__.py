"""annotate as a pipeline: jobs and their options, the reader (text found or transcribed), the producer
(utterances, media decoded in segments), batched model calls; explain (one utterance) and Ray (many machines)."""
