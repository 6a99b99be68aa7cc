"""Reading finished runs: which run answers a config (``runs``), whether runs may be aggregated
(``comparable``), the comparison's statistics, intervals and power (``statistics``, ``power``), its tables, plots
and files (``tables``, ``plots``, ``comparison``), robustness to the prompt initialisation and the report.
Nothing here imports the model or training code: ``make report`` needs no torch."""
