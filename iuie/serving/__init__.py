"""``iuie serve``: the Extractor behind a versioned JSON API with dynamic batching, and a page (docs/serving.md)."""
