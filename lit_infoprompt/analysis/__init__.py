"""Reading finished runs: which run answers a config (``runs``), whether runs may be aggregated
(``aggregation_check``), the comparison's statistics, intervals and power (``aggregates``, ``power``), its tables,
plots and files (``tables``, ``plots``, ``comparison_files``), robustness to the prompt initialisation
(``robustness_files``), the declared experiments as the report reads them (``declarations``) and the report with its
prose (``report``, ``claims_report``, ``report_prose.md``). Nothing here imports the model or training code: ``make
report`` needs no torch."""
