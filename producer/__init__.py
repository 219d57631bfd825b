"""Producer: headline sources -> validated, deduplicated batches -> the annotate queue."""
