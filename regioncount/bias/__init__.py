"""The implicit bias of gradient flow on diagonal linear DEQs (``regioncount bias``, ``docs/bias.md``)."""
