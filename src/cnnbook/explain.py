"""Where a trained CNN looks: saliency maps and the checks that say whether to trust them.

Every function takes a trained Keras classifier with **logits** out (the
book's models) and images as a NumPy array ``N×H×W×C`` (float, the scaling the
model was trained on), and returns plain arrays.  Nothing here trains a model.

Maps (``N×H×W``, one value per pixel, larger = more important for the class):

* :func:`saliency` — the absolute gradient of the class logit with respect to
  each pixel (Simonyan et al., 2014);
* :func:`smoothgrad` — the same, averaged over noisy copies of the image
  (Smilkov et al., 2017);
* :func:`grad_cam` — the last convolution's feature maps weighted by the
  gradient of the class logit, averaged over space (Selvaraju et al., 2017),
  upsampled to the image;
* :func:`occlusion` — how much the class probability drops when a small grey
  patch covers each place (Zeiler and Fergus, 2014).

Checks: :func:`deletion_curve` (delete the most important pixels first: a map
that finds what matters makes the accuracy fall faster than random deletion)
and :func:`randomisation_check` (Adebayo et al., 2018: re-initialise the
weights layer by layer, from the logits down; a map that barely changes is
explaining the image, not the model).

Works with Sequential and Functional Keras 3 models.  TensorFlow is imported
inside the functions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

__all__ = [
    "DeletionCurve",
    "METHODS",
    "deletion_curve",
    "grad_cam",
    "last_conv_layer",
    "layer_outputs",
    "occlusion",
    "randomisation_check",
    "rank_correlation",
    "saliency",
    "smoothgrad",
]


# --- Inputs ------------------------------------------------------------------------


def _images(images: Any) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"images must be a batch shaped N×H×W×C (add [None] for one image); got shape {x.shape}.")
    if x.dtype.kind not in "fiu":
        raise ValueError(f"images must be numeric, got dtype {x.dtype}.")
    if len(x) == 0:
        raise ValueError("images is empty.")
    return x.astype(np.float32)


def _logits(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    out = [np.asarray(model(x[i: i + batch_size], training=False), dtype=np.float32)
           for i in range(0, len(x), batch_size)]
    logits = np.concatenate(out)
    if logits.ndim != 2:
        raise ValueError(f"the model should output N×K logits; got shape {logits.shape}.")
    return logits


def _targets(model: Any, x: np.ndarray, target: Any) -> np.ndarray:
    """One class index per image: the predicted class (``None``), one class for all, or one each."""
    if target is None:
        return _logits(model, x).argmax(axis=1)
    t = np.asarray(target)
    if t.ndim == 0:
        t = np.full(len(x), int(t))
    if t.shape != (len(x),) or t.dtype.kind not in "iu":
        raise ValueError(f"target must be None, one class index or one index per image ({len(x)}); got {target!r}.")
    return t.astype(np.int64)


def _probabilities(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _class_logit(out: Any, targets: Any) -> Any:
    import tensorflow as tf

    out = tf.cast(out, tf.float32)
    return tf.gather(out, targets, axis=1, batch_dims=1)


# --- Layers ------------------------------------------------------------------------


def _conv_types() -> tuple[type, ...]:
    import keras

    return (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)


def last_conv_layer(model: Any) -> str:
    """Name of the model's last 2-D convolution layer (the one :func:`grad_cam` uses by default).

    Parameters
    ----------
    model : keras.Model
        A Sequential or Functional model; only its top-level layers are searched.

    Returns
    -------
    str
        The layer's name.

    Raises
    ------
    ValueError
        The model has no 2-D convolution among its layers.
    """
    convs = [layer for layer in model.layers if isinstance(layer, _conv_types())]
    if not convs:
        kinds = ", ".join(type(layer).__name__ for layer in model.layers) or "none"
        raise ValueError(f"{model.name} has no Conv2D layer (its layers: {kinds}); Grad-CAM needs the feature "
                         "maps of a convolution — pass layer= a layer with a 4-D output, or use saliency().")
    return convs[-1].name


def _split_at(model: Any, layer_name: str) -> Callable[[Any], tuple[Any, Any]]:
    """A function x -> (that layer's output, the model's logits), differentiable end to end."""
    import keras

    try:
        target_layer = model.get_layer(layer_name)
    except ValueError:
        names = ", ".join(layer.name for layer in model.layers)
        raise ValueError(f"{model.name} has no layer {layer_name!r}; its layers are: {names}.") from None
    if isinstance(model, keras.Sequential):
        # Run the stack by hand: keras-io's recipe (keras.Model(model.inputs, [conv.output, model.output]))
        # fails on a Sequential model, whose `output` is undefined, and a Sequential built by a first call
        # has inputs fixed to that call's batch size.
        def run(x: Any) -> tuple[Any, Any]:
            feature = None
            for layer in model.layers:
                x = layer(x, training=False)
                if layer is target_layer:
                    feature = x
            return feature, x

        return run
    both = keras.Model(model.inputs[0], [target_layer.output, model.outputs[0]])
    return lambda x: tuple(both(x, training=False))


def layer_outputs(model: Any, images: Any, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """The outputs of some layers for ``images`` (feature maps, for instance).

    Parameters
    ----------
    model : keras.Model
        Sequential or Functional.
    images : array-like
        ``N×H×W×C``.
    layers : sequence of str
        Names of top-level layers.

    Returns
    -------
    dict of str to numpy.ndarray
        Each layer's output (float32), in the order of ``layers``.
    """
    x = _images(images)
    if not layers:
        raise ValueError("layers names no layer.")
    return {name: np.asarray(_split_at(model, name)(x)[0], dtype=np.float32) for name in layers}


# --- Gradient maps -----------------------------------------------------------------


def _input_gradients(model: Any, x: np.ndarray, targets: np.ndarray, batch_size: int) -> np.ndarray:
    import tensorflow as tf

    grads = []
    for i in range(0, len(x), batch_size):
        xb = tf.convert_to_tensor(x[i: i + batch_size])
        with tf.GradientTape() as tape:
            tape.watch(xb)
            score = _class_logit(model(xb, training=False), targets[i: i + batch_size])
        grads.append(tape.gradient(score, xb).numpy())
    return np.concatenate(grads)


def saliency(model: Any, images: Any, target: Any = None, *, batch_size: int = 128) -> np.ndarray:
    """Vanilla gradient saliency: how strongly each pixel moves the class logit.

    The absolute gradient of the target class's logit with respect to the
    input, the largest over the colour channels (Simonyan et al., 2014).

    Parameters
    ----------
    model : keras.Model
        A trained classifier with logits out.
    images : array-like
        ``N×H×W×C`` inputs, scaled as in training.
    target : int or array-like of int, optional
        The class to explain, one for all or one per image; default each
        image's predicted class.
    batch_size : int
        Images per gradient computation.

    Returns
    -------
    numpy.ndarray
        float32 ``N×H×W``, non-negative.
    """
    x = _images(images)
    grads = _input_gradients(model, x, _targets(model, x, target), batch_size)
    return np.abs(grads).max(axis=-1)


def smoothgrad(
    model: Any,
    images: Any,
    target: Any = None,
    *,
    samples: int = 25,
    noise: float = 0.15,
    seed: int = 0,
    batch_size: int = 128,
) -> np.ndarray:
    """SmoothGrad: gradient saliency averaged over noisy copies of each image.

    Adds Gaussian noise of standard deviation ``noise × (max − min)`` of each
    image ``samples`` times and averages the absolute gradients (Smilkov et
    al., 2017), which removes much of a single gradient's speckle.

    Parameters
    ----------
    model : keras.Model
        A trained classifier with logits out.
    images : array-like
        ``N×H×W×C``.
    target : int or array-like of int, optional
        As for :func:`saliency`; the class is chosen on the clean images.
    samples : int
        Noisy copies per image (at least 1).
    noise : float
        Noise level as a fraction of each image's value range (non-negative).
    seed : int
        Seed of the noise.
    batch_size : int
        Images per gradient computation.

    Returns
    -------
    numpy.ndarray
        float32 ``N×H×W``, non-negative.
    """
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}.")
    if noise < 0:
        raise ValueError(f"noise must be non-negative, got {noise}.")
    x = _images(images)
    targets = _targets(model, x, target)
    rng = np.random.default_rng(seed)
    spread = (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3))).reshape(-1, 1, 1, 1)
    total = np.zeros(x.shape, dtype=np.float64)
    for _ in range(samples):
        noisy = (x + rng.standard_normal(x.shape).astype(np.float32) * noise * spread).astype(np.float32)
        total += np.abs(_input_gradients(model, noisy, targets, batch_size))
    return (total / samples).max(axis=-1).astype(np.float32)


def grad_cam(
    model: Any,
    images: Any,
    target: Any = None,
    *,
    layer: str | None = None,
    batch_size: int = 128,
) -> np.ndarray:
    """Grad-CAM: which places of the last feature maps the class depends on, at the image's size.

    Each channel of the layer's output is weighted by the gradient of the class
    logit averaged over its positions; the weighted sum, through a ReLU (only
    evidence *for* the class), is resized bilinearly to the input's height and
    width (Selvaraju et al., 2017).

    Parameters
    ----------
    model : keras.Model
        A trained Sequential or Functional classifier with logits out.
    images : array-like
        ``N×H×W×C``.
    target : int or array-like of int, optional
        As for :func:`saliency`.
    layer : str, optional
        Name of a layer with a 4-D output; default :func:`last_conv_layer`.
    batch_size : int
        Images per gradient computation.

    Returns
    -------
    numpy.ndarray
        float32 ``N×H×W``, non-negative (all zero where nothing speaks for the class).
    """
    import tensorflow as tf

    x = _images(images)
    targets = _targets(model, x, target)
    name = layer if layer is not None else last_conv_layer(model)
    run = _split_at(model, name)
    maps = []
    for i in range(0, len(x), batch_size):
        xb = tf.convert_to_tensor(x[i: i + batch_size])
        with tf.GradientTape() as tape:
            features, out = run(xb)
            if features.shape.rank != 4:
                raise ValueError(f"Grad-CAM needs a layer with N×h×w×channels outputs; {name!r} gives {features.shape}.")
            tape.watch(features)
            score = _class_logit(out, targets[i: i + batch_size])
        # The gradient is taken with respect to the tensor the model used (bfloat16 in a mixed-precision
        # model); a float32 copy made before it would be disconnected from the logits.
        grads = tf.cast(tape.gradient(score, features), tf.float32)
        features = tf.cast(features, tf.float32)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1, keepdims=True))
        maps.append(tf.image.resize(cam, x.shape[1:3], method="bilinear").numpy()[..., 0])
    return np.maximum(np.concatenate(maps), 0.0).astype(np.float32)


def occlusion(
    model: Any,
    images: Any,
    target: Any = None,
    *,
    patch: int | None = None,
    stride: int | None = None,
    baseline: float | np.ndarray = 0.0,
    batch_size: int = 512,
) -> np.ndarray:
    """Occlusion sensitivity: the drop in the class probability when a patch is covered.

    A ``patch × patch`` square of ``baseline`` slides over the image with
    ``stride``; each pixel gets the average drop of the target class's
    probability over the positions that covered it (Zeiler and Fergus, 2014).
    No gradients: it works on any model, and costs one prediction per position.

    Parameters
    ----------
    model : keras.Model
        A trained classifier with logits out.
    images : array-like
        ``N×H×W×C``.
    target : int or array-like of int, optional
        As for :func:`saliency`.
    patch : int, optional
        Side of the square (default: a seventh of the smaller side, at least 2).
    stride : int, optional
        Step between positions (default ``patch // 2``, at least 1).
    baseline : float or array
        What covers the patch: a value or one value per channel (0: black).
    batch_size : int
        Occluded copies per prediction call.

    Returns
    -------
    numpy.ndarray
        float32 ``N×H×W``; positive where covering the place lowers the
        probability, *negative* where it raises it.
    """
    x = _images(images)
    n, h, w, c = x.shape
    patch = max(2, min(h, w) // 7) if patch is None else int(patch)
    stride = max(1, patch // 2) if stride is None else int(stride)
    if not 1 <= patch <= min(h, w):
        raise ValueError(f"patch must be between 1 and the image's smaller side ({min(h, w)}), got {patch}.")
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}.")
    fill = np.broadcast_to(np.asarray(baseline, dtype=np.float32), (c,)) if np.ndim(baseline) <= 1 else None
    if fill is None:
        raise ValueError("baseline must be one value or one value per channel.")
    targets = _targets(model, x, target)
    base = _probabilities(_logits(model, x))[np.arange(n), targets]
    tops = list(range(0, h - patch + 1, stride))
    lefts = list(range(0, w - patch + 1, stride))
    # Make sure the last row and column of pixels are covered too.
    if tops[-1] != h - patch:
        tops.append(h - patch)
    if lefts[-1] != w - patch:
        lefts.append(w - patch)
    positions = [(t, left) for t in tops for left in lefts]
    total = np.zeros((n, h, w), dtype=np.float64)
    count = np.zeros((h, w), dtype=np.float64)
    for t, left in positions:
        count[t: t + patch, left: left + patch] += 1
    for k in range(n):
        copies = np.repeat(x[k: k + 1], len(positions), axis=0)
        for j, (t, left) in enumerate(positions):
            copies[j, t: t + patch, left: left + patch, :] = fill
        p = _probabilities(_logits(model, copies, batch_size))[:, targets[k]]
        for (t, left), drop in zip(positions, base[k] - p):
            total[k, t: t + patch, left: left + patch] += drop
    return (total / count).astype(np.float32)


#: The four maps by name, as the command line and the chapter call them: ``METHODS[name](model, images, target)``.
METHODS: dict[str, Callable[..., np.ndarray]] = {
    "saliency": saliency,
    "smoothgrad": smoothgrad,
    "grad_cam": grad_cam,
    "occlusion": occlusion,
}


# --- Checks ------------------------------------------------------------------------


def rank_correlation(a: Any, b: Any) -> np.ndarray:
    """Spearman rank correlation between two batches of maps, one value per image.

    Parameters
    ----------
    a, b : array-like
        Maps of the same shape ``N×H×W``.

    Returns
    -------
    numpy.ndarray
        float64 ``N``, each in [-1, 1]; 0 where one of the two maps is constant
        (it ranks no pixel above another, so it shares no ordering).
    """
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"a and b must be batches of maps of the same shape; got {a.shape} and {b.shape}.")
    out = np.zeros(len(a))
    for i, (u, v) in enumerate(zip(a.reshape(len(a), -1), b.reshape(len(b), -1))):
        if np.ptp(u) > 0 and np.ptp(v) > 0:
            out[i] = spearmanr(u, v).statistic
    return np.clip(out, -1.0, 1.0)


@dataclass(frozen=True)
class DeletionCurve:
    """What :func:`deletion_curve` measured.

    Attributes
    ----------
    fractions : numpy.ndarray
        Fractions of the pixels deleted, from 0 upwards.
    accuracy : numpy.ndarray
        Accuracy on the images at each fraction.
    probability : numpy.ndarray
        ``N × len(fractions)``: each image's probability of its label.
    area : float
        Area under the accuracy curve (trapezoids over ``fractions``): lower
        means the map found what the model needs sooner.
    image_areas : numpy.ndarray
        ``N``: area under each image's probability curve (for paired comparisons).
    """

    fractions: np.ndarray
    accuracy: np.ndarray
    probability: np.ndarray
    area: float
    image_areas: np.ndarray


def _area(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return ((y[..., 1:] + y[..., :-1]) / 2 * np.diff(x)).sum(axis=-1)


def deletion_curve(
    model: Any,
    images: Any,
    labels: Any,
    maps: Any,
    *,
    fractions: Sequence[float] | np.ndarray = tuple(np.linspace(0.0, 0.5, 11)),  # noqa: B008 -- an immutable tuple
    baseline: float | np.ndarray = 0.0,
) -> DeletionCurve:
    """Delete pixels in the order of a map, most important first, and measure the accuracy.

    At each fraction ``f`` the ``f × H × W`` pixels with the largest map
    values (ties broken in a fixed random order) are set to ``baseline`` in
    every channel.  A map that points at what the model uses makes the accuracy
    fall faster than deleting in a random order (pass random maps for that curve).

    Parameters
    ----------
    model : keras.Model
        A trained classifier with logits out.
    images : array-like
        ``N×H×W×C``.
    labels : array-like of int
        ``N`` true classes.
    maps : array-like
        ``N×H×W`` importance of each pixel (e.g. from :func:`grad_cam`).
    fractions : sequence of float
        Increasing fractions of the pixels, in [0, 1].
    baseline : float or array
        What a deleted pixel becomes: a value or one per channel (0: black).

    Returns
    -------
    DeletionCurve
    """
    x = _images(images)
    n, h, w, c = x.shape
    y = np.asarray(labels).astype(np.int64)
    m = np.asarray(maps, dtype=np.float64)
    f = np.asarray(fractions, dtype=np.float64)
    if y.shape != (n,):
        raise ValueError(f"labels must hold one class per image ({n}); got shape {y.shape}.")
    if m.shape != (n, h, w):
        raise ValueError(f"maps must be N×H×W = {(n, h, w)}, one per image; got {m.shape}.")
    if f.ndim != 1 or len(f) < 2 or np.any(np.diff(f) <= 0) or f[0] < 0 or f[-1] > 1:
        raise ValueError(f"fractions must be at least two increasing values in [0, 1]; got {fractions!r}.")
    fill = np.broadcast_to(np.asarray(baseline, dtype=np.float32), (c,))
    # Stable sort on a fixed random permutation: equal values (e.g. Grad-CAM's zeros) go in random order.
    tie = np.random.default_rng(0).permutation(h * w)
    flat = m.reshape(n, -1)[:, tie]
    order = tie[np.argsort(-flat, axis=1, kind="stable")]
    probability = np.empty((n, len(f)))
    accuracy = np.empty(len(f))
    for j, fraction in enumerate(f):
        k = int(round(fraction * h * w))
        deleted = x.reshape(n, h * w, c).copy()
        rows = np.repeat(np.arange(n), k)
        deleted[rows, order[:, :k].ravel()] = fill
        logits = _logits(model, deleted.reshape(n, h, w, c))
        probability[:, j] = _probabilities(logits)[np.arange(n), y]
        accuracy[j] = float((logits.argmax(axis=1) == y).mean())
    return DeletionCurve(fractions=f, accuracy=accuracy, probability=probability,
                         area=float(_area(accuracy, f)), image_areas=_area(probability, f))


def _reinitialise(layer: Any, seed: int) -> None:
    import keras

    for name in ("kernel", "depthwise_kernel", "pointwise_kernel", "bias"):
        variable = getattr(layer, name, None)
        if variable is None:
            continue
        init = keras.initializers.get(getattr(layer, f"{name}_initializer", "glorot_uniform"))
        if hasattr(init, "seed"):
            init = init.__class__.from_config({**init.get_config(), "seed": seed})
        variable.assign(keras.ops.cast(init(tuple(variable.shape), dtype="float32"), variable.dtype))


def randomisation_check(
    model: Any,
    images: Any,
    method: Callable[..., np.ndarray],
    target: Any = None,
    *,
    seed: int = 0,
) -> list[tuple[str, np.ndarray]]:
    """Adebayo et al.'s model-randomisation test: does the map depend on the learned weights?

    On a copy of ``model``, re-initialise the layers with weights (convolutions
    and dense layers; kernel and bias, from their initialisers), one more at a
    time from the logits down (*cascading* randomisation), and after each step
    compare the map with the trained model's by rank correlation.  The class
    explained stays the trained model's prediction.  ``model`` itself is not changed.

    Parameters
    ----------
    model : keras.Model
        A trained classifier with logits out.
    images : array-like
        ``N×H×W×C``.
    method : callable
        ``method(model, images, target)`` returning ``N×H×W`` maps, e.g. :func:`saliency`
        or ``functools.partial(smoothgrad, samples=10)``.
    target : int or array-like of int, optional
        The class to explain; default the trained model's prediction.
    seed : int
        Seed of the new weights.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``("trained", ones)`` first, then for each step the name of the layer
        re-initialised last and the rank correlation of each image's map with
        the trained model's (1: unchanged; near 0: unrelated), see
        :func:`rank_correlation`; ``.mean()`` of the last entry is the usual summary.
    """
    import keras

    x = _images(images)
    targets = _targets(model, x, target)
    original = method(model, x, targets)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    weighted = [layer for layer in copy.layers if getattr(layer, "kernel", None) is not None
                or getattr(layer, "depthwise_kernel", None) is not None]
    if not weighted:
        raise ValueError(f"{model.name} has no convolution or dense layer to re-initialise.")
    rows = [("trained", np.ones(len(x)))]
    for step, layer in enumerate(reversed(weighted)):
        _reinitialise(layer, seed + step)
        rows.append((layer.name, rank_correlation(original, method(copy, x, targets))))
    return rows
