"""Tasks and their data: where the examples come from (``sources``, with the bundled CB copy under ``data/``),
the few-shot split (``sampling``), templates and label words (``templates``), step batches and evaluation shards
(``batching``) and the Lightning DataModule (``datamodule``)."""
