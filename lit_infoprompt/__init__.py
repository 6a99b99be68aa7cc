"""InfoPrompt and vanilla soft prompt tuning of a frozen masked LM, with PyTorch Lightning."""

__version__ = "0.1.0"
