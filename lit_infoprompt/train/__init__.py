"""A training run: the composition root (``runner``: config -> backbone -> data -> module -> trainer -> summary),
its callbacks and checkpoints, run directories, metrics, the console and the optional W&B logger (``tracking``)."""
