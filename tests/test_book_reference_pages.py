"""The book's reference pages: glossary, Chinese guide, deciding section.

Cheap checks of Markdown, the toc and stored glued values (no chapter runs):

- the glossary has at least 100 real entries, each with a Chinese name, the
  statistics terms the chapters rely on and the residual-network terms, and
  its Chinese names follow d2l-zh (《动手学深度学习》), the old names kept as
  further names so that existing ``{term}`` links still resolve;
- the Chinese guide maps every article section to chapters and every chapter
  of the toc back to article sections, and repeats no statement the stored
  runs contradict (chapter 8's "same time", mixed precision, "%" for a
  difference of accuracies);
- "How this book decides a difference is real" (``book/deciding.md``) comes
  before chapter 2 in the toc, is linked where McNemar's test is first used,
  names functions that exist and types no result numbers.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import yaml

from cnnbook import book

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CJK = re.compile(r"[\u4e00-\u9fff]")

# The article's section numbers (its headings: tests/test_book_pages.py).
ARTICLE_NUMBERS = {
    "2", "2.1", "2.2", "2.3", "3", "3.1", "3.2", "3.3",
    "4", "4.1", "4.2", "4.3", "5", "6",
}


def _toc_files() -> list[str]:
    """The toc's pages in reading order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [entry["file"] for entry in part.get("chapters", [])]
    return files


def _glossary() -> list[tuple[list[str], str]]:
    """(names, definition) of every entry of book/glossary.md."""
    text = (BOOK / "glossary.md").read_text(encoding="utf-8")
    block = re.search(r"^```\{glossary\}\n(.*?)^```", text, re.S | re.M)
    assert block, "book/glossary.md has no {glossary} directive"
    entries: list[tuple[list[str], str]] = []
    for chunk in re.split(r"\n\s*\n", block.group(1).strip("\n")):
        lines = chunk.splitlines()
        if lines[0][:1].isspace():  # a definition's further paragraph
            names, definition = entries[-1]
            entries[-1] = (names, definition + "\n" + chunk)
            continue
        names = [ln.strip() for ln in lines if ln and not ln[0].isspace()]
        definition = "\n".join(
            ln.strip() for ln in lines if ln[:1].isspace()
        )
        entries.append((names, definition))
    return entries


def _entry(entries, english: str) -> tuple[list[str], str]:
    for names, definition in entries:
        if names[0].lower() == english.lower():
            return names, definition
    raise AssertionError(f"the glossary has no entry {english!r}")


def _markdown(stem: str) -> str:
    path = ROOT / "notebooks" / f"{stem}.ipynb"
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join(
        "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
    )


# --- Glossary -----------------------------------------------------------


def test_glossary_has_a_hundred_entries_each_with_a_chinese_name():
    entries = _glossary()
    assert len(entries) >= 100, f"only {len(entries)} glossary entries"
    for names, definition in entries:
        first_line = definition.splitlines()[0] if definition else ""
        chinese = any(CJK.search(n) for n in names[1:])
        assert chinese or CJK.search(first_line), (
            f"{names[0]}: no Chinese name"
        )
        # A definition, not a translation alone: English prose of its own.
        english = re.sub(r"（[^）]*）", "", definition)
        words = re.findall(r"[A-Za-z]{2,}", english)
        assert len(words) >= 12, f"{names[0]}: {definition!r} is too short"
    definitions = [d for _, d in entries]
    assert len(set(definitions)) == len(definitions), "repeated definitions"


STATISTICS = [
    "McNemar's test", "Wilson interval", "Welch's t-test", "p-value",
    "Paired test", "Paired t-test", "Seed spread", "Significance level",
    "Null hypothesis", "Wilcoxon signed-rank test", "Mann-Whitney U test",
    "Confidence interval", "Standard error", "No measurable difference",
]
RESIDUAL = [
    "Residual connection", "Residual block", "Identity shortcut",
    "Projection shortcut", "Strided convolution", "ResNet",
]


def test_glossary_has_the_statistics_and_residual_network_terms():
    entries = _glossary()
    for english in STATISTICS + RESIDUAL:
        names, _ = _entry(entries, english)
        assert any(CJK.search(n) for n in names[1:]), (
            f"{english}: its Chinese name should be a term of its own"
        )
    # The deciding section is where the glossary sends a reader for the
    # book's own rules.
    for english in ("McNemar's test", "No measurable difference"):
        assert "{ref}`deciding`" in _entry(entries, english)[1], english


# English name -> (d2l-zh's name, first; the other names the book's pages
# link to, kept as further names of the entry).
D2L_ZH = {
    "Pooling": ("汇聚层", ["池化"]),
    "Max pooling": ("最大汇聚层", ["最大池化"]),
    "Stride": ("步幅", ["步长"]),
    "Padding": ("填充", []),
    "Batch normalization": ("批量规范化", ["批归一化"]),
    "Dropout": ("暂退法", ["随机失活"]),
    "Weight decay": ("权重衰减", []),
    "Learning rate": ("学习率", []),
    "Stochastic gradient descent": ("小批量随机梯度下降", []),
    "Batch": ("批量", ["批次"]),
    "Epoch": ("轮", ["轮次"]),
    "Feature map": ("特征图", []),
    "Convolutional layer": ("卷积层", []),
    "Residual block": ("残差块", []),
    "ResNet": ("残差网络", []),
    "Data augmentation": ("图像增广", ["数据增强"]),
    "Momentum": ("动量法", []),
    "Generalisation": ("泛化", ["泛化能力"]),
}


def test_glossary_follows_d2l_zh_first_and_keeps_the_linked_names():
    entries = _glossary()
    for english, (d2l, others) in D2L_ZH.items():
        names, _ = _entry(entries, english)
        chinese = [n for n in names if CJK.search(n)]
        assert chinese and chinese[0] == d2l, (
            f"{english}: d2l-zh's {d2l!r} should come first, got {chinese}"
        )
        for other in others:
            assert other in names, f"{english}: {other!r} no longer a term"


# --- The Chinese guide ----------------------------------------------------

GUIDE = BOOK / "guide_zh.md"


def _guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def _table_after(text: str, marker: str) -> list[list[str]]:
    """The rows (cells) of the first Markdown table after ``marker``."""
    rest = text[text.index(marker):]
    rows = []
    for line in rest.splitlines()[1:]:
        if line.startswith("|"):
            if not re.fullmatch(r"\|[\s\-|]+\|", line):
                rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            break
    return rows


def _docs(cell: str) -> set[str]:
    return {d.lstrip("/") for d in re.findall(r"\{doc\}`([^`]+)`", cell)}


def test_guide_maps_every_article_section_to_pages_that_exist():
    rows = _table_after(_guide(), "| 原文章节 | 本书章节 |")
    toc = set(_toc_files())
    mapped = {}
    for section, pages in rows:
        number = re.match(r"(\d+(?:\.\d+)?)", section)
        key = number.group(1) if number else "opening"
        docs = {d if "/" in d else f"book/{d}" for d in _docs(pages)}
        assert docs, f"section {section!r} maps to no page"
        assert docs <= toc, f"{section!r}: not in the toc: {docs - toc}"
        mapped[key] = docs
    missing = sorted(ARTICLE_NUMBERS - set(mapped))
    assert not missing, f"article sections without a row: {missing}"
    for key in ("2.1", "6"):
        assert any(d.startswith("notebooks/") for d in mapped[key]), key


def test_guide_maps_every_chapter_back_to_article_sections():
    rows = _table_after(_guide(), "| 本书章节 | 回答的原文章节 |")
    answered = {}
    for page, sections in rows:
        numbers = set(re.findall(r"\d+(?:\.\d+)?", sections))
        assert numbers and numbers <= ARTICLE_NUMBERS, (page, sections)
        for doc in _docs(page):
            answered[doc if "/" in doc else f"book/{doc}"] = numbers
    chapters = [
        f for f in _toc_files()
        if f.startswith("notebooks/") or f == "book/results"
    ]
    missing = [c for c in chapters if c not in answered]
    assert not missing, f"chapters the guide maps to no section: {missing}"


def test_guide_repeats_no_claim_the_stored_runs_contradict():
    guide = _guide()
    glued = book.read_glued(ROOT / "notebooks" / "08_cifar10.ipynb")
    ratio = glued["matched_train_seconds"] / glued["article_train_seconds"]
    if abs(ratio - 1) > 0.10:
        same_time = re.findall(
            r"[^。\n]*(?:相同|同样|相等)的?训练时间[^。\n]*", guide
        )
        assert not same_time, (
            f"chapter 8's short run had {ratio:.0%} of the article's "
            f"training time: {same_time}"
        )
    section = guide[guide.index("### 4.3"):guide.index("## 5.")]
    if glued["precision"] == "float32":
        assert "混合精度" not in section, (
            "chapter 8's stored run computed in float32"
        )
    # A difference of two accuracies is in percentage points, not "%".
    for key, fmt in re.findall(r"::(\w+):([^`]*)`", guide):
        if re.search(r"gap|margin|diff|drop|gain", key):
            assert not fmt.endswith("%"), f"{key} formatted as {fmt!r}"


def test_guide_names_the_ensembles_single_model_and_its_test():
    section = _guide()
    section = section[section.index("### 3.3"):section.index("## 4.")]
    assert "第一个成员" in section, "which single model is meant?"
    for key in ("mcnemar_p", "ensemble_difference_verdict"):
        assert f"09_ensembles.ipynb::{key}:" in section, key


# --- How this book decides a difference is real ---------------------------

DECIDING = BOOK / "deciding.md"


def test_deciding_comes_before_chapter_2_and_is_linked():
    files = _toc_files()
    assert "book/deciding" in files, "book/deciding.md is not in the toc"
    chapter_2 = files.index("notebooks/02_cnn_vs_traditional")
    assert files.index("book/deciding") < chapter_2
    assert DECIDING.read_text(encoding="utf-8").startswith("(deciding)=\n")
    ch2 = _markdown("02_cnn_vs_traditional")
    first = ch2.index("McNemar")
    link = ch2.find("{ref}`deciding`", first)
    paragraph_end = ch2.find("\n\n", first)
    assert 0 <= link < paragraph_end, (
        "chapter 2 links to the deciding section where it first uses "
        "McNemar's test"
    )
    results = (BOOK / "results.md").read_text(encoding="utf-8")
    assert "{ref}`deciding`" in results


def test_deciding_names_functions_that_exist():
    text = DECIDING.read_text(encoding="utf-8")
    names = set(re.findall(r"`((?:cnnbook|scipy)\.[\w.]+)", text))
    assert {"cnnbook.evaluation.mcnemar",
            "cnnbook.evaluation.accuracy_interval",
            "cnnbook.study.effect"} <= names
    for dotted in sorted(names):
        parts = dotted.split(".")
        for split in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            for attribute in parts[split:]:
                assert hasattr(obj, attribute), f"{dotted} does not exist"
                obj = getattr(obj, attribute)
            break
        else:
            raise AssertionError(f"{dotted}: no such module")


# Numbers a rule may state: the 95 % level, 0.05, 1.96 standard errors,
# "at most 1", "four times", 0 to 100 %, and chapter numbers.
CONVENTIONS = {"95", "0.05", "1.96", "0", "1", "100"}


def test_deciding_types_no_results():
    text = DECIDING.read_text(encoding="utf-8")
    assert "{glue" not in text, "a concepts page glues nothing"
    prose = re.sub(r"`[^`]*`", "", text)
    prose = re.sub(r"[Cc]hapters? [\d, and]+", "", prose)
    prose = re.sub(r"\$[^$]*\$", "", prose)
    numbers = set(re.findall(r"\d+(?:\.\d+)?", prose))
    typed = sorted(numbers - CONVENTIONS)
    assert not typed, f"numbers typed into book/deciding.md: {typed}"
