"""Features of any PyTorch model without changing it: a forward hook on a named module.

For models without an ``embed()`` method: ``features(model, "encoder.fc", loader)`` runs the
loader through the model in eval mode under ``torch.no_grad()`` and returns what the named
module output, with the model's class probabilities and the labels, as numpy arrays. The hook
is removed and the model's train/eval mode restored afterwards; no parameter or buffer changes
(batch-norm statistics are not updated in eval mode), so the trained weights stay bit-identical.
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple

import numpy as np


class Features(NamedTuple):
    """What :func:`features` returns; unpacks as ``(features, labels, proba)`` for ``log_epoch``."""

    features: np.ndarray
    labels: np.ndarray
    proba: np.ndarray


def features(model: Any, module: str, loader: Iterable, *, device: Any = None) -> Features:
    """Run ``loader`` (batches ``(inputs, labels)``) through ``model`` and collect the output of
    the submodule named ``module`` (as in ``model.named_modules()``), flattened per row, plus
    softmax probabilities of the model's output and the labels.
    """
    import torch

    modules = dict(model.named_modules())
    if module not in modules:
        names = ", ".join(name for name in modules if name) or "(none)"
        raise ValueError(f"the model has no module named {module!r}; its modules: {names}")
    caught: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        caught.append(output.detach().reshape(output.shape[0], -1).float().cpu())

    handle = modules[module].register_forward_hook(hook)
    was_training = model.training
    outputs, labels = [], []
    try:
        model.eval()
        with torch.no_grad():
            for batch in loader:
                inputs, y = batch[0], batch[1]
                if device is not None:
                    inputs = inputs.to(device)
                outputs.append(torch.softmax(model(inputs).float(), dim=1).cpu())
                labels.append(torch.as_tensor(y).cpu())
    finally:
        handle.remove()
        model.train(was_training)
    if not caught:
        raise ValueError(f"module {module!r} produced no output: is it used in the model's forward pass?")
    return Features(torch.cat(caught).numpy(), torch.cat(labels).numpy().astype(np.int64), torch.cat(outputs).numpy())
