"""How robust is a classifier? Corruptions, adversarial attacks and adversarial training.

Everything here works on images in [0, 1] (``N×H×W×C``, the book's convention) and on any Keras
classifier that outputs logits.  Nothing here trains by itself: :class:`FGSMTraining` is a model
whose training step mixes clean and attacked images, trained with
:func:`cnnbook.training.fit_classifier` like any other.

* :func:`corrupt` — common corruptions (noise, blur, shift, rotation, occlusion, contrast,
  inversion) at severities 1 to 5, in the spirit of MNIST-C and CIFAR-10-C (NumPy/SciPy only,
  deterministic given a seed);
* :func:`fgsm` and :func:`pgd` — the fast gradient sign method and projected gradient descent
  (L∞, random start), the two standard white-box attacks;
* :func:`accuracy_under_corruption` and :func:`adversarial_accuracy` — accuracy on the altered
  images;
* :func:`defence_effect`, :func:`safety_verdict` and :func:`claim_verdict` — chapter 12's
  rules for judging a defence against its control over several seeds.

The training-time augmentation for digits is :func:`cnnbook.models.digit_augmentation` (one
function for the whole book, each random layer with its own seed).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from .significance import change_beyond_noise, verdict

__all__ = [
    "CORRUPTIONS",
    "DEFENCE_EFFECTS",
    "SAFETY_VERDICTS",
    "SEVERITIES",
    "FGSMTraining",
    "accuracy_under_corruption",
    "adversarial_accuracy",
    "claim_verdict",
    "corrupt",
    "defence_effect",
    "fgsm",
    "pgd",
    "safety_verdict",
]

#: The corruption kinds :func:`corrupt` knows, and what severity 1..5 means for each.
CORRUPTIONS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.08, 0.16, 0.24, 0.32, 0.40),  # standard deviation of the added noise
    "blur": (0.5, 1.0, 1.5, 2.0, 2.5),  # standard deviation (pixels) of a Gaussian blur
    "shift": (2.0, 3.0, 4.0, 5.0, 6.0),  # pixels, in a random direction per image
    "rotation": (10.0, 20.0, 30.0, 45.0, 60.0),  # degrees, random sign per image
    "occlusion": (6.0, 8.0, 10.0, 12.0, 14.0),  # side (pixels) of a black square near the centre
    "contrast": (0.6, 0.45, 0.3, 0.2, 0.1),  # contrast left (1: unchanged)
    "inversion": (0.2, 0.4, 0.6, 0.8, 1.0),  # share of the inverted image blended in
}

#: The severities of :func:`corrupt` (0 is the identity).
SEVERITIES = (1, 2, 3, 4, 5)


def _check_images(images: Any, name: str = "images") -> np.ndarray:
    x = np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"{name} must be N×H×W×C, got shape {x.shape}.")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be floats in [0, 1] (see cnnbook.data.to_float), got {x.dtype}.")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{name} must lie in [0, 1], got values in [{x.min():.3g}, {x.max():.3g}].")
    return x


def corrupt(images: Any, kind: str, severity: int, *, seed: int = 0) -> np.ndarray:
    """A corrupted copy of ``images``: same shape, dtype and range [0, 1].

    Parameters
    ----------
    images : array-like
        ``N×H×W×C`` floats in [0, 1].
    kind : str
        One of :data:`CORRUPTIONS`: ``"gaussian_noise"``, ``"blur"``, ``"shift"``, ``"rotation"``,
        ``"occlusion"``, ``"contrast"``, ``"inversion"``.
    severity : int
        0 (a copy, unchanged) or 1 to 5 (see :data:`CORRUPTIONS` for the amounts).
    seed : int
        Seed of the random parts (noise, directions, positions); the same seed gives the same
        result, and for a given seed a higher severity alters each image at least as much.

    Returns
    -------
    numpy.ndarray
        The corrupted images.

    Raises
    ------
    ValueError
        Unknown kind, severity outside 0..5, or images not ``N×H×W×C`` floats in [0, 1].
    """
    from scipy import ndimage

    if kind not in CORRUPTIONS:
        raise ValueError(f"Unknown corruption {kind!r}; choose one of {', '.join(CORRUPTIONS)}.")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 0 <= severity <= 5:
        raise ValueError(f"severity must be an integer from 0 to 5, got {severity!r}.")
    x = _check_images(images)
    if severity == 0:
        return x.copy()
    amount = CORRUPTIONS[kind][severity - 1]
    rng = np.random.default_rng(seed)
    n, h, w, _ = x.shape
    f = x.astype(np.float64)
    if kind == "gaussian_noise":
        out = f + amount * rng.standard_normal(f.shape)
    elif kind == "blur":
        out = ndimage.gaussian_filter(f, sigma=(0, amount, amount, 0), mode="constant")
    elif kind == "shift":
        angles = rng.uniform(0, 2 * np.pi, n)
        out = np.stack([
            ndimage.shift(img, (amount * np.sin(a), amount * np.cos(a), 0), order=1, mode="constant")
            for img, a in zip(f, angles)
        ]) if n else f.copy()
    elif kind == "rotation":
        signs = rng.choice((-1.0, 1.0), n)
        out = np.stack([
            ndimage.rotate(img, s * amount, axes=(0, 1), reshape=False, order=1, mode="constant")
            for img, s in zip(f, signs)
        ]) if n else f.copy()
    elif kind == "occlusion":
        # The centre of the square is drawn from the middle half of the image (where digits are),
        # the same for every severity given the seed, so a larger square covers a smaller one.
        cy = rng.uniform(h / 4, 3 * h / 4, n)
        cx = rng.uniform(w / 4, 3 * w / 4, n)
        rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
        half = amount / 2
        inside = (np.abs(rows + 0.5 - cy[:, None, None]) < half) & (np.abs(cols + 0.5 - cx[:, None, None]) < half)
        out = np.where(inside[..., None], 0.0, f)
    elif kind == "contrast":
        mean = f.mean(axis=(1, 2, 3), keepdims=True)
        out = mean + amount * (f - mean)
    else:  # inversion
        out = (1 - amount) * f + amount * (1 - f)
    return np.clip(out, 0.0, 1.0).astype(x.dtype)


#: What :func:`defence_effect` answers (the words of :func:`cnnbook.study.effect`).
DEFENCE_EFFECTS = ("better", "worse", "no measurable difference")

#: What :func:`safety_verdict` answers.
SAFETY_VERDICTS = (
    "safer against corruptions and attacks",
    "safer against corruptions only",
    "safer against attacks only",
    "safer against corruptions but less safe against attacks",
    "safer against attacks but less safe against corruptions",
    "less safe",
    "not measurably safer",
)


def defence_effect(
    defence: Sequence[float],
    control: Sequence[float],
    p_values: Sequence[float],
    *,
    level: float = 0.05,
) -> str:
    """Whether a defence changes a measure against its control, over seeds.

    Seed ``i`` trains one defence model and one control model; both are
    scored on the same test images, and a paired test of the two (McNemar's
    for right-or-wrong, Wilcoxon's signed-rank test for per-image scores)
    gives ``p_values[i]``.  The rule guards against both sources of chance
    (see the book's page on deciding): the *images*, because every seed's
    paired test must be significant at ``level`` with the defence ahead (or
    behind) in every seed; and the *training run*, because the difference of
    the means over seeds must exceed the seed spread (largest minus smallest)
    of both arms — :func:`cnnbook.evaluation.change_beyond_noise` with the
    larger spread as the noise, the rule of :func:`cnnbook.study.effect`.

    Parameters
    ----------
    defence, control : sequence of float
        The measure (e.g. an accuracy) of each seed's defence and control
        model, in the same order of seeds; at least two seeds.
    p_values : sequence of float
        Each seed's paired p-value, in [0, 1].
    level : float
        The significance level of the paired tests, in (0, 1).

    Returns
    -------
    str
        ``"better"``, ``"worse"`` or ``"no measurable difference"``
        (:data:`DEFENCE_EFFECTS`).

    Raises
    ------
    ValueError
        Fewer than two seeds, lengths that differ, a p-value outside [0, 1],
        a measure that is not finite or a level outside (0, 1).
    """
    a = np.asarray(defence, dtype=float)
    b = np.asarray(control, dtype=float)
    p = np.asarray(p_values, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or a.shape != p.shape:
        raise ValueError(
            "defence, control and p_values need one value per seed each, "
            f"got lengths {a.size}, {b.size} and {p.size}."
        )
    if a.size < 2:
        raise ValueError(
            "a defence's effect needs two or more seeds: one seed has no "
            "spread to compare with."
        )
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("the measures must be finite numbers.")
    if np.any(~((p >= 0) & (p <= 1))):
        raise ValueError(f"p-values lie in [0, 1], got {p.tolist()}.")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    noise = max(float(np.ptp(a)), float(np.ptp(b)))
    change = change_beyond_noise(float(a.mean() - b.mean()), noise)
    significant = bool(np.all(p < level))
    if change == "raised accuracy" and significant and np.all(a > b):
        return DEFENCE_EFFECTS[0]
    if change == "lowered accuracy" and significant and np.all(a < b):
        return DEFENCE_EFFECTS[1]
    return DEFENCE_EFFECTS[2]


def safety_verdict(corruption: str, attack: str) -> str:
    """A defence's verdict from its effects under corruption and under attack.

    Parameters
    ----------
    corruption, attack : str
        The defence's :func:`defence_effect` against the control on the
        corrupted images and under attack (one of :data:`DEFENCE_EFFECTS`).

    Returns
    -------
    str
        One of :data:`SAFETY_VERDICTS`: "safer" on each measure where it is
        better, "less safe" where it is worse, "not measurably safer" when
        neither measure changed.
    """
    _check_effects(corruption, attack)
    names = {"corruption": "corruptions", "attack": "attacks"}
    effects = {"corruption": corruption, "attack": attack}
    better = [names[w] for w, e in effects.items() if e == "better"]
    worse = [names[w] for w, e in effects.items() if e == "worse"]
    if len(better) == 2:
        return "safer against corruptions and attacks"
    if better and worse:
        return f"safer against {better[0]} but less safe against {worse[0]}"
    if better:
        return f"safer against {better[0]} only"
    return "less safe" if worse else "not measurably safer"


def _check_effects(corruption: str, attack: str) -> None:
    for name, value in (("corruption", corruption), ("attack", attack)):
        if value not in DEFENCE_EFFECTS:
            raise ValueError(
                f"{name} must be one of {', '.join(map(repr, DEFENCE_EFFECTS))}, "
                f"got {value!r}."
            )


def claim_verdict(corruption: str, attack: str) -> str:
    """The verdict on "this defence makes the model safer", from its effects.

    Parameters
    ----------
    corruption, attack : str
        The defence's :func:`defence_effect` against the control on the
        corrupted images and under attack (one of :data:`DEFENCE_EFFECTS`).

    Returns
    -------
    str
        ``"holds"`` when it is better on both measures, ``"partly holds"``
        when it is better on one, ``"does not hold"`` otherwise
        (:data:`cnnbook.evaluation.VERDICTS`).
    """
    _check_effects(corruption, attack)
    better = [corruption, attack].count("better")
    return verdict(holds=better == 2, partly=better == 1)


def _predict_labels(model: Any, images: np.ndarray, batch_size: int) -> np.ndarray:
    logits = model.predict(images, batch_size=batch_size, verbose=0)
    return np.asarray(logits).argmax(axis=-1)


def accuracy_under_corruption(
    model: Any, images: Any, labels: Any, kind: str, severity: int, *, seed: int = 0, batch_size: int = 1024
) -> float:
    """Accuracy of ``model`` on ``corrupt(images, kind, severity, seed=seed)``.

    Parameters
    ----------
    model : keras.Model
        A classifier (logits or probabilities out; the top class is used).
    images, labels : array-like
        ``N×H×W×C`` floats in [0, 1] and their ``N`` class indices.
    kind, severity, seed
        As in :func:`corrupt`.
    batch_size : int
        Prediction batch size.

    Returns
    -------
    float
        The fraction classified correctly.
    """
    y = np.asarray(labels).ravel()
    x = corrupt(images, kind, severity, seed=seed)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels.")
    return float((_predict_labels(model, x, batch_size) == y).mean())


# One compiled gradient function per model, reused across calls (tracing costs far more than a batch).
_SIGN_FNS: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def _gradient_sign_fn(model: Any):
    """A compiled function: sign of the input gradient of the cross-entropy (logits out)."""
    import tensorflow as tf

    try:
        return _SIGN_FNS[model]
    except (KeyError, TypeError):
        pass

    @tf.function(reduce_retracing=True)
    def sign(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = tf.cast(model(x, training=False), tf.float32)
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        return tf.sign(tape.gradient(loss, x))

    try:
        _SIGN_FNS[model] = sign
    except TypeError:  # not weakly referable: compile anew each time
        pass
    return sign


def _attack_inputs(images: Any, labels: Any, epsilon: float, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    x = _check_images(images)
    y = np.asarray(labels).ravel().astype(np.int64)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels.")
    if not np.isfinite(epsilon) or epsilon < 0:
        raise ValueError(f"epsilon must be a non-negative number, got {epsilon!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    return x, y


def fgsm(model: Any, images: Any, labels: Any, epsilon: float, *, batch_size: int = 512) -> np.ndarray:
    """Fast gradient sign method (Goodfellow et al., 2015): one step of size ``epsilon`` per pixel.

    Each pixel moves by ``epsilon`` in the direction that increases the model's cross-entropy on
    the true label, then the image is clipped to [0, 1]; so ``|x' - x| <= epsilon`` everywhere.

    Parameters
    ----------
    model : keras.Model
        A classifier that outputs logits, taking images in [0, 1].
    images : array-like
        ``N×H×W×C`` floats in [0, 1].
    labels : array-like
        ``N`` true class indices.
    epsilon : float
        The L∞ budget, at least 0 (0 returns the images unchanged).
    batch_size : int
        Images per gradient computation.

    Returns
    -------
    numpy.ndarray
        The adversarial images, same shape and dtype, in [0, 1].
    """
    x, y = _attack_inputs(images, labels, epsilon, batch_size)
    if epsilon == 0 or len(x) == 0:
        return x.copy()
    sign = _gradient_sign_fn(model)
    out = np.empty_like(x)
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].astype(np.float32)
        step = sign(xb, y[start:start + batch_size]).numpy()
        out[start:start + batch_size] = np.clip(xb + epsilon * step, 0.0, 1.0)
    return out


def pgd(
    model: Any,
    images: Any,
    labels: Any,
    epsilon: float,
    *,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    seed: int = 0,
    batch_size: int = 512,
) -> np.ndarray:
    """Projected gradient descent in the L∞ ball (Madry et al., 2018).

    Starts at a random point of the ball around each image (``random_start``), then takes
    ``steps`` signed-gradient steps of ``step_size``, each time projecting back into the ball of
    radius ``epsilon`` and into [0, 1].

    Parameters
    ----------
    model : keras.Model
        A classifier that outputs logits, taking images in [0, 1].
    images : array-like
        ``N×H×W×C`` floats in [0, 1].
    labels : array-like
        ``N`` true class indices.
    epsilon : float
        The L∞ budget, at least 0 (0 returns the images unchanged).
    steps : int
        Gradient steps, at least 1.
    step_size : float, optional
        Size of each step; default ``2.5 * epsilon / steps`` (Madry et al.'s choice).
    random_start : bool
        Start from a uniformly random point of the ball (else from the image itself).
    seed : int
        Seed of the random start.
    batch_size : int
        Images per gradient computation.

    Returns
    -------
    numpy.ndarray
        The adversarial images, same shape and dtype, in [0, 1], within ``epsilon`` of the originals.
    """
    x, y = _attack_inputs(images, labels, epsilon, batch_size)
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}.")
    if epsilon == 0 or len(x) == 0:
        return x.copy()
    alpha = 2.5 * epsilon / steps if step_size is None else float(step_size)
    if not alpha > 0:
        raise ValueError(f"step_size must be positive, got {step_size!r}.")
    sign = _gradient_sign_fn(model)
    rng = np.random.default_rng(seed)
    out = np.empty_like(x)
    for start in range(0, len(x), batch_size):
        x0 = x[start:start + batch_size].astype(np.float32)
        yb = y[start:start + batch_size]
        adv = x0.copy()
        if random_start:
            adv = np.clip(adv + rng.uniform(-epsilon, epsilon, adv.shape).astype(np.float32), 0.0, 1.0)
        for _ in range(steps):
            adv = adv + alpha * sign(adv, yb).numpy()
            adv = np.clip(np.clip(adv, x0 - epsilon, x0 + epsilon), 0.0, 1.0)
        out[start:start + batch_size] = adv
    return out


def adversarial_accuracy(
    model: Any,
    images: Any,
    labels: Any,
    epsilon: float,
    *,
    attack: str = "fgsm",
    batch_size: int = 512,
    **attack_options: Any,
) -> float:
    """Accuracy of ``model`` on images attacked with :func:`fgsm` or :func:`pgd` at ``epsilon``.

    Parameters
    ----------
    model : keras.Model
        A classifier that outputs logits.
    images, labels : array-like
        ``N×H×W×C`` floats in [0, 1] and their ``N`` true class indices.
    epsilon : float
        The L∞ budget.
    attack : str
        ``"fgsm"`` or ``"pgd"``.
    batch_size : int
        Images per batch.
    **attack_options
        Passed to :func:`pgd` (``steps``, ``step_size``, ``random_start``, ``seed``).

    Returns
    -------
    float
        The fraction of attacked images still classified correctly.
    """
    if attack == "fgsm":
        if attack_options:
            raise ValueError(f"fgsm takes no options, got {sorted(attack_options)}.")
        adv = fgsm(model, images, labels, epsilon, batch_size=batch_size)
    elif attack == "pgd":
        adv = pgd(model, images, labels, epsilon, batch_size=batch_size, **attack_options)
    else:
        raise ValueError(f"attack must be 'fgsm' or 'pgd', got {attack!r}.")
    y = np.asarray(labels).ravel()
    return float((_predict_labels(model, adv, max(batch_size, 1024)) == y).mean())


@keras.saving.register_keras_serializable(package="cnnbook")
class FGSMTraining(keras.Model):
    """Adversarial training with FGSM: a wrapper whose training step attacks part of each batch.

    At each training step the last ``adversarial_fraction`` of the batch is replaced by FGSM
    images at ``epsilon`` (computed against the current weights, in inference mode), and the
    wrapped classifier is trained on the mixed batch.  Prediction and evaluation are the wrapped
    classifier's own.  Train it like any model, e.g. with :func:`cnnbook.training.fit_classifier`,
    then use :attr:`classifier`.

    Parameters
    ----------
    classifier : keras.Model
        The classifier to train (logits out, images in [0, 1]).
    epsilon : float
        The FGSM budget used during training (positive).
    adversarial_fraction : float
        Share of each batch that is attacked, in (0, 1].
    """

    def __init__(self, classifier: keras.Model, epsilon: float = 0.1, adversarial_fraction: float = 0.5,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {epsilon!r}.")
        if not 0 < adversarial_fraction <= 1:
            raise ValueError(f"adversarial_fraction must be in (0, 1], got {adversarial_fraction!r}.")
        self.classifier = classifier
        self.epsilon = float(epsilon)
        self.adversarial_fraction = float(adversarial_fraction)
        if classifier.built and getattr(classifier, "inputs", None):
            # Built now, because Keras' BackupAndRestore refuses an unbuilt model.
            self.build(tuple(classifier.inputs[0].shape))

    def build(self, input_shape: Any) -> None:
        if not self.classifier.built:
            self.classifier.build(input_shape)
        self.built = True

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.classifier(inputs, training=training)

    def train_step(self, data: Any) -> dict[str, Any]:
        import tensorflow as tf

        x, y = data
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = tf.cast(self.classifier(x, training=False), tf.float32)
            attack_loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=tf.cast(y, tf.int32), logits=logits))
        x_adv = tf.stop_gradient(tf.clip_by_value(x + self.epsilon * tf.sign(tape.gradient(attack_loss, x)), 0.0, 1.0))
        n = tf.shape(x)[0]
        clean = n - tf.cast(tf.math.round(tf.cast(n, tf.float32) * self.adversarial_fraction), tf.int32)
        mixed = tf.concat([x[:clean], x_adv[clean:]], axis=0)
        with tf.GradientTape() as tape:
            y_pred = self(mixed, training=True)
            loss = self.compute_loss(x=mixed, y=y, y_pred=y_pred, training=True)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "classifier": keras.saving.serialize_keras_object(self.classifier),
            "epsilon": self.epsilon,
            "adversarial_fraction": self.adversarial_fraction,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "FGSMTraining":
        config = dict(config)
        config["classifier"] = keras.saving.deserialize_keras_object(config["classifier"])
        return cls(**config)
