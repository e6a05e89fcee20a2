"""Chapter 12 (hardening), executed with its CI parameters, and its stored full run."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnbook import evaluation, robustness
import bookbuild
from conftest import stored_full_run

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "12_hardening.ipynb"
KEYS = ("control", "aug", "epochs", "adv")
DEFENCES = ("aug", "epochs", "adv")
EFFECTS = {"better", "worse", "no measurable difference"}
SAFER = {"safer against corruptions and attacks", "safer against corruptions only", "safer against attacks only",
         "safer against corruptions but less safe against attacks",
         "safer against attacks but less safe against corruptions", "less safe", "not measurably safer"}
CLAIMS = set(evaluation.VERDICTS)

pytestmark = pytest.mark.notebook


def test_ci_parameters_are_declared():
    assert bookbuild.ci_parameters(CHAPTER) == {"train_size": 1000, "test_size": 2000, "defence_epochs": 1, "baseline_epochs": 2,
                                           "eval_images": 200, "synthetic_images": 200, "pgd_steps": 3, "seed": 0}


def _check_consistent(g: dict) -> None:
    """What must hold in any run, CI or full."""
    assert g["precision"] == "float32"
    assert g["epsilon"] == 0.1 and g["max_epsilon"] == 0.3
    for value in [v for k, v in g.items() if isinstance(v, float) and not k.endswith(("_p", "_drop")) and k != "chapter_seconds"
                  and not k.endswith("epsilon")]:
        assert 0.0 <= value <= 1.0
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
    for key in DEFENCES:
        for what in ("clean", "corruption", "attack"):
            assert g[f"{key}_{what}_effect"] in EFFECTS
            assert 0.0 <= g[f"{key}_{what}_p"] <= 1.0
            if g[f"{key}_{what}_p"] >= 0.05:
                assert g[f"{key}_{what}_effect"] == "no measurable difference"
        assert g[f"{key}_verdict"] in SAFER
        # The verdict follows from the effects.
        better = {w for w in ("corruption", "attack") if g[f"{key}_{w}_effect"] == "better"}
        worse = {w for w in ("corruption", "attack") if g[f"{key}_{w}_effect"] == "worse"}
        assert (g[f"{key}_verdict"] == "not measurably safer") == (not better and not worse)
        assert (g[f"{key}_verdict"] == "less safe") == (not better and bool(worse))
        assert ("less safe" in g[f"{key}_verdict"]) == bool(worse)
        assert (g[f"{key}_verdict"] == "safer against corruptions and attacks") == (len(better) == 2)
        # "better" on the attack means a higher PGD accuracy than the control.
        if g[f"{key}_attack_effect"] == "better":
            assert g[f"{key}_pgd"] > g["control_pgd"]
        if g[f"{key}_attack_effect"] == "worse":
            assert g[f"{key}_pgd"] < g["control_pgd"]
    for key in KEYS:
        assert g[f"{key}_pgd"] <= 1.0 and g[f"{key}_fgsm"] <= 1.0
    assert g["baseline_test_accuracy"] == g["epochs_clean"]  # "more epochs" is the Part I model
    assert g["epochs_fgsm"] == g["baseline_fgsm"] and g["epochs_pgd"] == g["baseline_pgd"]
    # The article's claim: its verdict follows from the two article defences' verdicts.
    assert g["claim_verdict"] in CLAIMS
    wins = sum(g[f"{k}_{w}_effect"] == "better" for k in ("aug", "epochs") for w in ("corruption", "attack"))
    assert g["claim_verdict"] == ("holds" if wins == 4 else "does not hold" if wins == 0 else "partly holds")
    assert g["aug_synthetic_effect"] in EFFECTS
    for kind in ("shift", "rotation"):
        assert g[f"aug_{kind}_max"] <= 1.0 and g[f"control_{kind}_max"] <= 1.0
    assert g["baseline_synthetic_drop"] == pytest.approx(g["epochs_clean"] - g["epochs_synthetic"])
    # Exercises: undoing a full inversion recovers the clean accuracy on the same images exactly
    # (1 - (1 - x) == x up to rounding), which is no worse than the inverted images' accuracy.
    assert g["ex12_inversion_raw"] == pytest.approx(g["baseline_inversion_max"])
    assert g["ex12_inversion_undone"] >= g["ex12_inversion_raw"]
    assert g["ex12_inversion_undone"] == pytest.approx(g["baseline_eval_clean"], abs=0.01)
    assert g["ex12_adv_fgsm"] == g["adv_fgsm"]
    assert 0.0 <= g["ex12_adv_pgd_more"] <= g["adv_clean"] + 0.05


def test_hardening_chapter_values(chapter_runner):
    _, g = chapter_runner("12_hardening")
    assert g["test_images"] == 2000 and g["eval_images"] == 200 and g["synthetic_images"] == 200
    assert g["pgd_steps"] == 3
    _check_consistent(g)


def test_stored_full_run():
    g, defaults = stored_full_run(CHAPTER)
    assert g["test_images"] == 10_000 and g["eval_images"] == defaults["eval_images"]
    assert g["synthetic_images"] == defaults["synthetic_images"] and g["pgd_steps"] == defaults["pgd_steps"]
    _check_consistent(g)
    # The full run's Part I model is the book's: at the Part I bar on clean test digits.
    assert g["baseline_test_accuracy"] >= 0.99
    # What the chapter's prose says without a glued number: attacks at ε = 0.1 hurt far more than
    # the mildest corruptions, and PGD is the stronger attack on the Part I model.
    assert g["baseline_pgd"] < g["baseline_gaussian_noise_sev1"] - 0.2
    assert g["baseline_pgd"] <= g["baseline_fgsm"]
    # Synthetic digits are a real distribution shift for the Part I model.
    assert g["baseline_synthetic_drop"] > 0.05
    assert g["chapter_seconds"] <= 20 * 60
