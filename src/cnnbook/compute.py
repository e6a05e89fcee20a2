"""How much arithmetic a Keras model costs: FLOPs per image, for training and inference.

* :func:`forward_flops` — the floating-point operations of one image's forward
  pass: every multiply-add of the convolutions and dense layers counted as two
  FLOPs (nested models included); batch norm, activations, pooling and the
  additions of residual connections are not counted (element-wise work, a few
  per cent of a convolutional network's);
* :func:`training_flops` — forward plus backward for ``images`` training
  images, with the usual estimate that the backward pass costs twice the
  forward one (gradients with respect to the inputs and to the weights).

With :func:`cnnbook.hardware.float32_peak` this says how close a training run
comes to what the CPU could do (``benchmarks/compare.py`` reports both).
Keras is needed only for a model passed in.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["BACKWARD_FACTOR", "forward_flops", "training_flops"]

#: Training FLOPs per forward FLOP: forward (1) plus backward (about 2).
BACKWARD_FACTOR = 3


def _spatial(shape: Any) -> int:
    """Positions a layer's output has per image (1 for a flat output)."""
    dims = [int(d) for d in tuple(shape)[1:-1]]
    return math.prod(dims) if dims else 1


def _layer_flops(layer: Any) -> int:
    sub_layers = getattr(layer, "layers", None)
    if sub_layers:  # a nested model: its own layers
        return sum(_layer_flops(inner) for inner in sub_layers)
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        kernel = getattr(layer, "depthwise_kernel", None)
    if kernel is None:
        return 0
    output = getattr(layer, "output", None)
    if output is not None and any(d is None for d in tuple(output.shape)[1:]):
        raise ValueError(
            f"layer {layer.name!r} has an output of unknown size {tuple(output.shape)}; "
            "build the model with a fixed input size (e.g. keras.Input((32, 32, 3)))."
        )
    positions = _spatial(output.shape) if output is not None else 1
    flops = 2 * math.prod(int(d) for d in kernel.shape) * positions
    pointwise = getattr(layer, "pointwise_kernel", None)  # separable convolutions
    if pointwise is not None:
        flops += 2 * math.prod(int(d) for d in pointwise.shape) * positions
    return flops


def forward_flops(model: Any) -> int:
    """FLOPs of one image's forward pass through a built Keras model.

    Parameters
    ----------
    model : keras.Model
        Built (Functional, Sequential or nested), so that each layer knows
        its output shape.

    Returns
    -------
    int
        2 x the multiply-adds of its ``Conv*`` and ``Dense`` layers.

    Raises
    ------
    ValueError
        When ``model`` has no layers (not a built Keras model).
    """
    layers = getattr(model, "layers", None)
    if not layers:
        raise ValueError(
            "forward_flops needs a built Keras model with layers; build it "
            "first (call it on a batch or give it an Input)."
        )
    return sum(_layer_flops(layer) for layer in layers)


def training_flops(model: Any, images: int) -> int:
    """FLOPs of training ``model`` on ``images`` images (forward + backward).

    Parameters
    ----------
    model : keras.Model
        Built, as for :func:`forward_flops`.
    images : int
        Training images processed (epochs x images per epoch).

    Returns
    -------
    int
        ``BACKWARD_FACTOR * forward_flops(model) * images``.
    """
    if images < 0:
        raise ValueError(f"images must be zero or more, got {images}.")
    return BACKWARD_FACTOR * forward_flops(model) * images
