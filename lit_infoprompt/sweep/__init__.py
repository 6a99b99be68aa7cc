"""Sweeps: the ``compare`` and ``robustness`` commands, their arguments (``args``), the grid of runs in this
process, worker processes or SLURM jobs (``grid``) and the run claims that keep two workers off one run
(``locks``)."""
