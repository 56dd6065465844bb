"""Results for people: one record per row, written as CSV, JSON, annotated SRT/WebVTT/ASS and the review page (a
registry of writers, each file atomic), with per-video summaries and timeline plots."""
