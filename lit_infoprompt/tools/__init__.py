"""Commands beside training: the PEFT export of a trained prompt (``export``) and the synthetic check of the head
loss's gradient (``theory``)."""
