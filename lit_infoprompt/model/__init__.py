"""The model: the frozen backbone (``backbone``), the soft prompt (``prompt``), the class head (``head``),
InfoPrompt's bottleneck and estimator networks (``bottleneck``, ``estimators``), the losses (``losses``), the cached
unprompted representations (``cache``) and the LightningModule that holds them (``module``)."""
