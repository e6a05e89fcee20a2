"""Chapter 12 (hardening), executed with its CI parameters, and its stored full run."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnbook import evaluation, robustness
import bookbuild
from conftest import stored_full_run

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "12_hardening.ipynb"
KEYS = ("control", "aug", "epochs", "augepochs", "adv")
# Each defence against the control, and the augmentation against the Part I models at the same
# (longer) budget.
DEFENCES = ("aug", "epochs", "augepochs", "adv", "augepochs_vs_epochs")
EFFECTS = set(robustness.DEFENCE_EFFECTS)
SAFER = set(robustness.SAFETY_VERDICTS)
CLAIMS = set(evaluation.VERDICTS)
SCORES = ("clean", "corruption_mean", "fgsm", "pgd")

pytestmark = pytest.mark.notebook


def test_ci_parameters_are_declared():
    assert bookbuild.ci_parameters(CHAPTER) == {"train_size": 1000, "test_size": 2000, "defence_epochs": 1,
                                                "baseline_epochs": 2, "eval_images": 200, "synthetic_images": 200,
                                                "pgd_steps": 3, "seed": 0, "seeds": 2}


def _check_consistent(g: dict) -> None:
    """What must hold in any run, CI or full: by construction or by the chapter's rules."""
    assert g["precision"] == "float32"
    assert g["epsilon"] == 0.1 and g["max_epsilon"] == 0.3
    for value in [v for k, v in g.items() if isinstance(v, float) and not k.endswith(("_p", "_drop")) and k != "chapter_seconds"
                  and not k.endswith("epsilon") and not k.startswith("augment_rotation")]:
        assert 0.0 <= value <= 1.0
    # Every verdict rests on two or more seeds (a seed spread needs two runs).
    assert g["seeds"] >= 2
    # The augmentation's settings: rotations in degrees, zooms and shifts as fractions.
    assert 0 < g["augment_rotation"] < 180 and 0 < g["augment_zoom"] < 1 and 0 < g["augment_shift"] < 1
    # "augmented, more epochs" trains for more epochs than the short-budget arms.
    assert g["long_epochs"] > g["short_epochs"] >= 1
    for key in ("control", "aug", "augepochs"):
        epochs = [int(e) for e in g[f"{key}_best_epochs"].split(" and ")]
        assert len(epochs) == g["seeds"]
        budget = g["long_epochs"] if key == "augepochs" else g["short_epochs"]
        assert all(1 <= e <= budget for e in epochs)
    # Attacks: robust accuracy never above clean accuracy on the same images; PGD no better than FGSM
    # would be expected, but FGSM and PGD are different attacks, so only the clean bound is certain.
    assert g["baseline_fgsm"] <= g["baseline_eval_clean"] and g["baseline_pgd"] <= g["baseline_eval_clean"]
    assert g["baseline_pgd_max_eps"] <= g["baseline_eval_clean"]
    # Corruptions: the strongest noise does worse than the mildest.
    assert g["baseline_gaussian_noise_max"] <= g["baseline_gaussian_noise_sev1"]
    # The worst corruption(s): every kind named ties at the lowest accuracy, and no other kind does.
    named = {k.replace(" ", "_") for k in g["worst_corruption"].split(" and ")}
    assert named <= set(robustness.CORRUPTIONS)
    lowest = min(g[f"baseline_{k}_max"] for k in robustness.CORRUPTIONS)
    assert named == {k for k in robustness.CORRUPTIONS if g[f"baseline_{k}_max"] == lowest}
    for key in KEYS:  # means over the seeds, with their spread
        for score in SCORES:
            assert 0.0 <= g[f"{key}_{score}"] <= 1.0
            assert 0.0 <= g[f"{key}_{score}_spread"] <= 1.0
    for key in DEFENCES:
        reference = "epochs" if key == "augepochs_vs_epochs" else "control"
        arm = "augepochs" if key == "augepochs_vs_epochs" else key
        for what, score in (("clean", "clean"), ("corruption", "corruption_mean"), ("attack", "pgd")):
            effect = g[f"{key}_{what}_effect"]
            assert effect in EFFECTS
            assert 0.0 <= g[f"{key}_{what}_p"] <= 1.0
            # The rule: a seed's paired test at p >= 0.05 leaves no measurable difference ...
            if g[f"{key}_{what}_p"] >= 0.05:
                assert effect == "no measurable difference"
            # ... and so does a mean difference within the seed spread of either arm.
            difference = g[f"{arm}_{score}"] - g[f"{reference}_{score}"]
            noise = max(g[f"{arm}_{score}_spread"], g[f"{reference}_{score}_spread"])
            if abs(difference) <= noise:
                assert effect == "no measurable difference"
            if effect == "better":
                assert difference > noise
            if effect == "worse":
                assert difference < -noise
        # The verdict follows from the effects.
        assert g[f"{key}_verdict"] == robustness.safety_verdict(g[f"{key}_corruption_effect"],
                                                                 g[f"{key}_attack_effect"])
        assert g[f"{key}_verdict"] in SAFER
    # The article's claim: its verdict follows from the combined arm's effects against the control.
    assert g["claim_verdict"] in CLAIMS
    assert g["claim_verdict"] == robustness.claim_verdict(g["augepochs_corruption_effect"], g["augepochs_attack_effect"])
    for key in ("aug", "augepochs", "adv"):
        assert g[f"{key}_synthetic_effect"] in EFFECTS
        assert 0.0 <= g[f"{key}_synthetic_p"] <= 1.0
        if g[f"{key}_synthetic_p"] >= 0.05:
            assert g[f"{key}_synthetic_effect"] == "no measurable difference"
    for kind in ("shift", "rotation"):
        for key in ("control", "aug", "augepochs"):
            assert 0.0 <= g[f"{key}_{kind}_max"] <= 1.0
    assert g["baseline_synthetic_drop"] == pytest.approx(g["baseline_test_accuracy"] - g["baseline_synthetic"])
    # Exercises: undoing a full inversion recovers the clean accuracy on the same images exactly
    # (1 - (1 - x) == x up to rounding), which is no worse than the inverted images' accuracy.
    assert g["ex12_inversion_raw"] == pytest.approx(g["baseline_inversion_max"])
    assert g["ex12_inversion_undone"] >= g["ex12_inversion_raw"]
    assert g["ex12_inversion_undone"] == pytest.approx(g["baseline_eval_clean"], abs=0.01)
    assert 0.0 <= g["ex12_adv_pgd"] <= 1.0 and 0.0 <= g["ex12_adv_fgsm"] <= 1.0
    assert 0.0 <= g["ex12_adv_pgd_more"] <= 1.0


def test_prose_reads_verdicts_from_glued_values():
    """Every verdict sentence of the chapter is glued: no verdict word is typed after a defence's name."""
    import json
    import re

    text = " ".join("".join(c["source"]) for c in json.loads(CHAPTER.read_text(encoding="utf-8"))["cells"]
                    if c["cell_type"] == "markdown")
    for key in ("aug", "epochs", "augepochs", "adv", "augepochs_vs_epochs"):
        assert f"{{glue:text}}`{key}_verdict`" in text
    assert "{glue:text}`claim_verdict`" in text and "{glue:text}`seeds`" in text
    typed = re.findall(r"\*\*[^*]+\*\* is (?:safer|less safe|not measurably|better|worse)", text)
    assert not typed, typed


def test_hardening_chapter_values(chapter_runner):
    _, g = chapter_runner("12_hardening")
    assert g["test_images"] == 2000 and g["eval_images"] == 200 and g["synthetic_images"] == 200
    assert g["pgd_steps"] == 3 and g["seeds"] == 2
    _check_consistent(g)


def test_stored_full_run():
    g, defaults = stored_full_run(CHAPTER)
    assert g["test_images"] == 10_000 and g["eval_images"] == defaults["eval_images"]
    assert g["synthetic_images"] == defaults["synthetic_images"] and g["pgd_steps"] == defaults["pgd_steps"]
    assert g["seeds"] == defaults["seeds"] and g["short_epochs"] == defaults["defence_epochs"]
    _check_consistent(g)
    # The full run's Part I model is the book's: at the Part I bar on clean test digits.
    assert g["baseline_test_accuracy"] >= 0.99
    # What the chapter's prose says without a glued number: attacks at ε = 0.1 hurt far more than
    # the mildest corruptions, and PGD is the stronger attack on the Part I model.
    assert g["baseline_pgd"] < g["baseline_gaussian_noise_sev1"] - 0.2
    assert g["baseline_pgd"] <= g["baseline_fgsm"]
    # Synthetic digits are a real distribution shift for the Part I model.
    assert g["baseline_synthetic_drop"] > 0.05


@pytest.mark.xfail(
    strict=True,
    reason="over budget: the stored run (2 seeds per verdict, the augmentation + more epochs arm, "
    "the seed-1 Part I model trained on first use) took 24.7 min on a 2-core AMD Zen 3 in float32 "
    "with oneDNN on; cut it or re-run where it fits, then remove this mark (issue 33 note)",
)
def test_stored_full_run_within_the_study_budget():
    g, _ = stored_full_run(CHAPTER)
    assert g["chapter_seconds"] <= 20 * 60  # a Part III study: at most 20 min, float32, 2 cores
