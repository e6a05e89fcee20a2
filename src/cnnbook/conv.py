"""What a convolutional layer computes, written in NumPy.

The functions here follow TensorFlow's conventions exactly, so that the book can
show them equal (to float tolerance) to ``tf.nn.conv2d`` and
``keras.layers.MaxPooling2D``:

* images are ``H×W``, ``H×W×C`` or ``N×H×W×C`` ("channels last");
* kernels are ``kh×kw`` (one channel in, one out) or ``kh×kw×C_in×C_out``;
* a "convolution" is, as in every deep-learning framework, a *cross-correlation*:
  the kernel is not flipped;
* ``padding="valid"`` uses no padding, ``padding="same"`` pads so that the
  output has ``ceil(n / stride)`` rows and columns, putting the odd extra row or
  column at the bottom/right (TensorFlow's rule); an ``int`` pads that many
  zeros on every side (PyTorch's rule).

The formulas for output sizes, parameter counts and receptive fields are here
too, so a chapter can check them against ``model.summary()``.  This module
imports only NumPy.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "conv2d",
    "conv_params",
    "dense_params",
    "max_pool2d",
    "output_size",
    "receptive_field",
    "relu",
    "softmax",
]

Padding = str | int


# --- Small argument helpers ------------------------------------------------------


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """``3`` → ``(3, 3)``; ``(3, 2)`` stays; anything else is a ValueError."""
    if isinstance(value, (int, np.integer)):
        pair = (int(value), int(value))
    else:
        try:
            pair = tuple(int(v) for v in value)  # type: ignore[union-attr]
        except TypeError:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}.") from None
        if len(pair) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}.")
    if min(pair) < 1:
        raise ValueError(f"{name} must be positive, got {value!r}.")
    return pair  # type: ignore[return-value]


def _check_padding(padding: Padding) -> Padding:
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in ("valid", "same"):
            raise ValueError(f'padding must be "valid", "same" or a non-negative int, got {padding!r}.')
        return mode
    if isinstance(padding, (int, np.integer)) and padding >= 0:
        return int(padding)
    raise ValueError(f'padding must be "valid", "same" or a non-negative int, got {padding!r}.')


def _pad_amounts(size: int, window: int, stride: int, padding: Padding) -> tuple[int, int]:
    """Zeros (or -inf for pooling) to add before and after one spatial axis."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + window - size, 0)
        return total // 2, total - total // 2
    return int(padding), int(padding)


def _windows(
    x_batch: np.ndarray,
    window: tuple[int, int],
    stride: tuple[int, int],
    padding: Padding,
    *,
    fill: float,
    what: str,
) -> np.ndarray:
    """Every stride-th ``window`` of the padded ``N×H×W×C`` batch, as float64.

    ``windows[n, i, j, c, a, b] = padded[n, i*sh + a, j*sw + b, c]``; the border is
    padded with ``fill`` (0 for a convolution, −∞ for max pooling).  ``what``
    names the window in the error raised when it does not fit.
    """
    (wh, ww), (sh, sw) = window, stride
    mode = _check_padding(padding)
    height, width = x_batch.shape[1:3]
    top, bottom = _pad_amounts(height, wh, sh, mode)
    left, right = _pad_amounts(width, ww, sw, mode)
    if height + top + bottom < wh or width + left + right < ww:
        raise ValueError(
            f"The {wh}×{ww} {what} is larger than the padded {height + top + bottom}×"
            f"{width + left + right} image; use padding='same' or a smaller {what}."
        )
    padded = np.pad(x_batch.astype(np.float64), ((0, 0), (top, bottom), (left, right), (0, 0)),
                    constant_values=fill)
    return sliding_window_view(padded, (wh, ww), axis=(1, 2))[:, ::sh, ::sw]


def _as_batch(x: np.ndarray, name: str = "x") -> tuple[np.ndarray, bool, bool]:
    """View ``x`` as ``N×H×W×C``; also say whether it had a batch axis and a channel axis."""
    x = np.asarray(x)
    if x.ndim == 2:
        return x[None, :, :, None], False, False
    if x.ndim == 3:
        return x[None], False, True
    if x.ndim == 4:
        return x, True, True
    raise ValueError(f"{name} must be H×W, H×W×C or N×H×W×C, got an array of shape {x.shape}.")


def _float_type(*arrays: np.ndarray) -> np.dtype:
    """float32 inputs give float32 outputs (like TensorFlow); integers give float64."""
    return np.result_type(*(a.dtype for a in arrays), np.float32)


# --- Layers ----------------------------------------------------------------------


def conv2d(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | float | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Padding = "valid",
) -> np.ndarray:
    """2-D convolution (cross-correlation) with stride, padding and several channels.

    Every output value is a dot product between one ``kh×kw×C_in`` window of
    the (padded) input and one ``kh×kw×C_in`` slice of the kernel, plus a bias::

        out[n, i, j, o] = bias[o] + sum_{a, b, c} x_pad[n, i*sh + a, j*sw + b, c] * kernel[a, b, c, o]

    Parameters
    ----------
    x:
        Image(s): ``H×W`` (one channel), ``H×W×C`` or ``N×H×W×C``.
    kernel:
        ``kh×kw`` (one input and one output channel) or ``kh×kw×C_in×C_out``
        — the layout of ``tf.nn.conv2d`` filters and Keras ``Conv2D`` kernels.
    bias:
        One number per output channel (shape ``C_out``), a scalar, or ``None``.
    stride:
        Step between windows, an int or ``(rows, columns)``.
    padding:
        ``"valid"``, ``"same"`` (TensorFlow's rule) or a number of zeros on every side.

    Returns
    -------
    numpy.ndarray
        ``H'×W'`` when both ``x`` and ``kernel`` are 2-D; otherwise ``H'×W'×C_out``,
        or ``N×H'×W'×C_out`` when ``x`` had a batch axis.  Computed in float64
        and returned in the inputs' float type (float32 stays float32).
    """
    x_batch, had_batch, had_channels = _as_batch(x)
    kernel = np.asarray(kernel)
    kernel_2d = kernel.ndim == 2
    if kernel_2d:
        kernel = kernel[:, :, None, None]
    if kernel.ndim != 4:
        raise ValueError(
            f"kernel must be kh×kw or kh×kw×C_in×C_out, got an array of shape {kernel.shape}."
        )
    kh, kw, c_in, c_out = kernel.shape
    if x_batch.shape[-1] != c_in:
        raise ValueError(
            f"The image has {x_batch.shape[-1]} channel(s) but the kernel expects {c_in} "
            f"(kernel shape {kernel.shape}, image shape {np.shape(x)})."
        )
    windows = _windows(x_batch, (kh, kw), _pair(stride, "stride"), padding, fill=0.0, what="kernel")
    dtype = _float_type(x_batch, kernel)
    out = np.einsum("nijcab,abco->nijo", windows, kernel.astype(np.float64), optimize=True)
    if bias is not None:
        bias = np.asarray(bias, dtype=np.float64)
        if bias.ndim > 1 or (bias.ndim == 1 and bias.shape[0] != c_out):
            raise ValueError(f"bias must be a scalar or have {c_out} values, got shape {bias.shape}.")
        out = out + bias

    if kernel_2d and not had_channels:
        out = out[..., 0]
    if not had_batch:
        out = out[0]
    return out.astype(dtype)


def max_pool2d(
    x: np.ndarray,
    pool_size: int | Sequence[int] = 2,
    *,
    stride: int | Sequence[int] | None = None,
    padding: Padding = "valid",
) -> np.ndarray:
    """Max pooling: the largest value of each window, channel by channel.

    Follows ``keras.layers.MaxPooling2D``: ``stride`` defaults to ``pool_size``
    and ``"same"`` padding pads with −∞ (padding never wins the maximum).

    Parameters
    ----------
    x : numpy.ndarray
        ``H×W``, ``H×W×C`` or ``N×H×W×C``; the output keeps the same layout.
    pool_size : int or pair of int
        Window size, an int or ``(rows, columns)``.
    stride : int or pair of int, optional
        Step between windows (default: ``pool_size``, i.e. non-overlapping windows).
    padding : str
        ``"valid"`` (drop the incomplete windows at the border) or ``"same"``.

    Returns
    -------
    numpy.ndarray
        ``H'×W'``, ``H'×W'×C`` or ``N×H'×W'×C`` (the layout of ``x``), in the
        input's float type (integers give float64).
    """
    x_batch, had_batch, had_channels = _as_batch(x)
    window = _pair(pool_size, "pool_size")
    stride_pair = _pair(pool_size if stride is None else stride, "stride")
    windows = _windows(x_batch, window, stride_pair, padding, fill=-np.inf, what="pooling window")
    dtype = _float_type(x_batch)
    out = windows.max(axis=(-2, -1))
    if not had_channels:
        out = out[..., 0]
    if not had_batch:
        out = out[0]
    return out.astype(dtype)


def relu(x: np.ndarray) -> np.ndarray:
    """Rectified linear unit: ``max(x, 0)`` element by element.

    Parameters
    ----------
    x : array-like
        Any shape.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``x``, negative values replaced by 0.
    """
    x = np.asarray(x)
    return np.maximum(x, np.zeros((), dtype=x.dtype))


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Turn scores (logits) into probabilities that are positive and sum to 1 along ``axis``.

    ``softmax(z)_k = exp(z_k) / sum_j exp(z_j)``.  The largest logit is
    subtracted first — the result is the same, but ``exp`` cannot overflow.

    Parameters
    ----------
    logits : array-like
        Scores, at least one axis (e.g. ``K`` or ``N×K``).
    axis : int
        Axis of the classes.

    Returns
    -------
    numpy.ndarray
        Same shape as ``logits``, in ``numpy.result_type(logits.dtype, float32)``
        (float32 stays float32, float64 stays float64).
    """
    z = np.asarray(logits, dtype=np.result_type(np.asarray(logits).dtype, np.float32))
    if z.ndim == 0:
        raise ValueError("softmax needs at least one axis of scores, got a scalar.")
    shifted = z - z.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


# --- Formulas --------------------------------------------------------------------


def output_size(
    input_size: int,
    kernel_size: int,
    stride: int = 1,
    padding: Padding = "valid",
) -> int:
    """Rows (or columns) out of a convolution or pooling layer along one axis.

    * ``"valid"``: ``floor((n - k) / s) + 1``
    * ``"same"``: ``ceil(n / s)``
    * ``p`` zeros on each side: ``floor((n + 2p - k) / s) + 1``

    Parameters
    ----------
    input_size : int
        Rows (or columns) in, ``n``.
    kernel_size : int
        Kernel or pooling window size along this axis, ``k``.
    stride : int
        Step between windows, ``s``.
    padding : str or int
        ``"valid"``, ``"same"`` or ``p``, a number of zeros on each side.

    Returns
    -------
    int
        Rows (or columns) out.
    """
    if min(input_size, kernel_size, stride) < 1:
        raise ValueError(
            f"input_size, kernel_size and stride must be positive, got {input_size}, {kernel_size}, {stride}."
        )
    mode = _check_padding(padding)
    if mode == "same":
        return math.ceil(input_size / stride)
    pad = 0 if mode == "valid" else int(mode)
    if input_size + 2 * pad < kernel_size:
        raise ValueError(
            f"A kernel of {kernel_size} does not fit in {input_size} pixels with padding {padding!r}."
        )
    return (input_size + 2 * pad - kernel_size) // stride + 1


def conv_params(
    kernel_size: int | Sequence[int], in_channels: int, filters: int, use_bias: bool = True
) -> int:
    """Trainable numbers of a ``Conv2D`` layer: ``kh·kw·C_in·C_out (+ C_out biases)``.

    The count does not depend on the image size — the same small kernel slides
    over every position (weight sharing).

    Parameters
    ----------
    kernel_size : int or pair of int
        ``k`` or ``(kh, kw)``.
    in_channels : int
        Channels of the layer's input, ``C_in``.
    filters : int
        Output channels, ``C_out``.
    use_bias : bool
        Whether the layer has one bias per filter.

    Returns
    -------
    int
        The layer's parameter count, as in ``model.summary()``.
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    if in_channels < 1 or filters < 1:
        raise ValueError(f"in_channels and filters must be positive, got {in_channels} and {filters}.")
    return kh * kw * in_channels * filters + (filters if use_bias else 0)


def dense_params(in_features: int, units: int, use_bias: bool = True) -> int:
    """Trainable numbers of a ``Dense`` layer: ``in·units (+ units biases)``.

    Parameters
    ----------
    in_features : int
        Inputs per example (e.g. the flattened feature maps).
    units : int
        Outputs of the layer.
    use_bias : bool
        Whether the layer has one bias per unit.

    Returns
    -------
    int
        The layer's parameter count, as in ``model.summary()``.
    """
    if in_features < 1 or units < 1:
        raise ValueError(f"in_features and units must be positive, got {in_features} and {units}.")
    return in_features * units + (units if use_bias else 0)


def receptive_field(layers: Sequence[tuple[int, int]]) -> list[int]:
    """Receptive field (in input pixels, along one axis) after each layer of a stack.

    ``layers`` lists ``(kernel_size, stride)`` for every convolution or pooling
    layer in order (layers such as ReLU or batch normalisation do not change the
    receptive field and are left out).  With ``j`` the distance in input pixels
    between neighbouring units of the current layer ("jump"), each layer does::

        r ← r + (k − 1) · j        j ← j · s

    starting from ``r = 1, j = 1`` (one pixel sees itself).

    Parameters
    ----------
    layers : sequence of (int, int)
        ``(kernel_size, stride)`` of each convolution or pooling layer, input first.

    Returns
    -------
    list of int
        The receptive field after each layer (same length as ``layers``).

    >>> receptive_field([(3, 1), (3, 1), (2, 2), (3, 1)])
    [3, 5, 6, 10]
    """
    sizes = []
    field, jump = 1, 1
    for index, layer in enumerate(layers):
        try:
            kernel, stride = (int(v) for v in layer)
        except (TypeError, ValueError):
            raise ValueError(
                f"Layer {index} must be a (kernel_size, stride) pair of ints, got {layer!r}."
            ) from None
        if kernel < 1 or stride < 1:
            raise ValueError(f"Layer {index}: kernel_size and stride must be positive, got {layer!r}.")
        field += (kernel - 1) * jump
        jump *= stride
        sizes.append(field)
    return sizes
