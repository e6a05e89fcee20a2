"""Cheap checks of the book's prose pages and configuration, without building the book.

- The build sees no page outside ``_toc.yml``: Jupyter Book excludes the files missing from
  the toc only where its ``glob`` finds them, and ``glob`` skips hidden paths, while Sphinx
  reads them; so a ``.pytest_cache/README.md`` left by ``make test`` broke the next
  ``make book`` (warnings are errors). ``exclude_patterns`` must cover every hidden path.
- The glossary is bilingual and has the terms the chapters link to.
- Every cross-document glue reference (``{glue:text}`../notebooks/x.ipynb::key:fmt```) in
  ``book/*.md`` names a key that notebook glues, with a format its value accepts.
- The Chinese reader's guide (``book/guide_zh.md``) covers every section of the source article.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

import bookbuild

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
SOURCE_SUFFIXES = (".md", ".ipynb", ".rst", ".myst")
CJK = re.compile(r"[\u4e00-\u9fff]")


# --- Which files a build reads ------------------------------------------------------


def _exclude_patterns() -> list[str]:
    """``exclude_patterns`` exactly as Jupyter Book hands them to Sphinx (its defaults included)."""
    from jupyter_book.config import get_final_config

    config, _ = get_final_config(
        user_yaml=ROOT / "_config.yml", sourcedir=ROOT, cli_config={"latex_individualpages": False}
    )
    assert config.get("external_toc_exclude_missing"), "only_build_toc_files is expected to be on"
    return config["exclude_patterns"]


def _discovered(srcdir: Path) -> list[str]:
    """The source files Sphinx would read in ``srcdir``, as Sphinx itself finds them."""
    from sphinx.util.matching import get_matching_files

    return sorted(f for f in get_matching_files(srcdir, ["**"], _exclude_patterns()) if f.endswith(SOURCE_SUFFIXES))


def _toc_docs() -> set[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    docs = {toc["root"]}

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                docs.add(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return docs


def _hidden(path: str) -> bool:
    return any(part.startswith(".") for part in path.split("/"))


def test_hidden_files_are_never_pages(tmp_path):
    """Dot-folders that tools create (pytest, mypy, ruff, Jupyter, venvs) hold stray Markdown."""
    stray = [
        ".pytest_cache/README.md",
        ".mypy_cache/README.md",
        ".ruff_cache/notes.md",
        ".venv/lib/python3/site-packages/pkg/README.md",
        ".github/ISSUE_TEMPLATE/bug.md",
        ".hidden.md",
        "notebooks/.05_training.running.ipynb",
        "notebooks/.ipynb_checkpoints/05_training-checkpoint.ipynb",
        "book/.drafts/page.md",
    ]
    pages = ["book/intro.md", "notebooks/05_training.ipynb"]
    for name in stray + pages:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("# x\n", encoding="utf-8")
    assert _discovered(tmp_path) == sorted(pages)


def test_the_build_reads_the_toc_and_nothing_it_cannot_exclude():
    """Files outside the toc are fine only where Jupyter Book's glob sees them (not hidden)."""
    found = _discovered(ROOT)
    docs = {f.rsplit(".", 1)[0] for f in found}
    missing = sorted(_toc_docs() - docs)
    assert not missing, f"_toc.yml pages that exclude_patterns hide from Sphinx: {missing}"
    slipping_in = [f for f in found if _hidden(f) and f.rsplit(".", 1)[0] not in _toc_docs()]
    assert not slipping_in, f"hidden files the build would read, outside the toc: {slipping_in}"


# --- Glossary -----------------------------------------------------------------------

# The names chapters link with {term}`...` (issue 15); Sphinx matches terms case-insensitively.
REQUIRED_TERMS = """
Convolution; Pooling; Fully connected layer; Receptive field; Overfitting; Data augmentation;
Ensemble; Generalisation; Feature map; Kernel; Filter; Stride; Padding; Activation function;
ReLU; Softmax; Logits; Loss function; Cross-entropy; Gradient descent; Backpropagation;
Learning rate; Epoch; Batch; Optimizer; Adam; AdamW; Weight decay; One-cycle schedule;
Early stopping; Callback; Validation set; Test set; Training set; Precision; Recall; F1 score;
Confusion matrix; Calibration; Expected calibration error; ECE; Test-time augmentation;
Global pooling; Mixed precision; bfloat16; Weight sharing; Soft voting; Hard voting; Dropout;
Batch normalization; Normalisation; Parameter; Hyperparameter; Translation invariance;
Translation equivariance; Channel; Tensor; MNIST; Fashion-MNIST; CIFAR-10; Adversarial example;
Robustness; Underfitting; Regularisation; Learning curve; Baseline; Random forest;
Logistic regression; Inference; Quantisation;
卷积; 池化; 全连接层; 感受野; 过拟合; 数据增强; 集成; 泛化能力; 特征图; 卷积核; 步长; 填充;
激活函数; 损失函数; 交叉熵; 梯度下降; 反向传播; 学习率; 轮次; 批次; 优化器; 权重衰减; 早停;
回调; 验证集; 测试集; 训练集; 精确率; 召回率; 混淆矩阵; 校准; 测试时增强; 全局池化; 混合精度;
权值共享; 软投票; 硬投票; 批归一化; 归一化; 参数; 超参数; 平移不变性; 通道; 张量; 对抗样本;
鲁棒性; 欠拟合; 正则化; 学习曲线; 基线; 随机森林; 逻辑回归; 推理; 量化
"""


def _glossary() -> list[tuple[list[str], str]]:
    """(terms, definition) of every entry of the {glossary} directive in book/glossary.md."""
    text = (BOOK / "glossary.md").read_text(encoding="utf-8")
    block = re.search(r"^```\{glossary\}\n(.*?)^```", text, re.S | re.M)
    assert block, "book/glossary.md has no {glossary} directive"
    entries: list[tuple[list[str], str]] = []
    for chunk in re.split(r"\n\s*\n", block.group(1).strip("\n")):
        lines = chunk.splitlines()
        if lines and lines[0][:1].isspace():  # a definition's second paragraph
            terms, definition = entries[-1]
            entries[-1] = (terms, definition + "\n" + chunk)
            continue
        terms = [line.strip() for line in lines if line and not line[0].isspace()]
        definition = "\n".join(line.strip() for line in lines if line[:1].isspace())
        entries.append((terms, definition))
    return entries


def _term_targets(markdown: str) -> list[str]:
    targets = []
    for text in re.findall(r"\{term\}`([^`]+)`", markdown):
        explicit = re.search(r"<([^<>]+)>\s*$", text)
        targets.append((explicit.group(1) if explicit else text).strip())
    return targets


def test_glossary_is_bilingual_and_complete():
    entries = _glossary()
    assert len(entries) >= 60, f"only {len(entries)} glossary entries"
    terms = [term.lower() for names, _ in entries for term in names]
    duplicates = sorted({t for t in terms if terms.count(t) > 1})
    assert not duplicates, f"duplicate glossary terms: {duplicates}"
    missing = [t for t in re.split(r"[;\n]\s*", REQUIRED_TERMS.strip()) if t and t.lower() not in terms]
    assert not missing, f"glossary lacks the terms: {missing}"
    for names, definition in entries:
        assert definition.strip(), f"{names[0]} has no definition"
        assert not CJK.search(names[0]), f"an entry must start with its English name: {names}"
        chinese = any(CJK.search(name) for name in names[1:]) or CJK.search(definition.splitlines()[0])
        assert chinese, f"{names[0]}: give its Chinese name as a second term or at the start of the definition"
    english = [names[0] for names, _ in entries]
    assert english == sorted(english, key=str.lower), "glossary entries are not in alphabetical order"


def test_every_term_link_has_an_entry():
    terms = {term.lower() for names, _ in _glossary() for term in names}
    sources = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in sorted(BOOK.glob("*.md"))}
    for nb_path in bookbuild.chapter_paths(ROOT / "notebooks"):
        cells = json.loads(nb_path.read_text(encoding="utf-8"))["cells"]
        sources[str(nb_path.relative_to(ROOT))] = "\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
        )
    dangling = [
        f"{name}: {target}" for name, text in sources.items() for target in _term_targets(text)
        if target.lower() not in terms
    ]
    assert not dangling, f"{{term}} links without a glossary entry: {dangling}"


# --- Cross-document glue --------------------------------------------------------------

GLUE_ROLE = re.compile(r"\{glue(?::(\w+))?\}`([^`]+)`")


def _glue_references(page: Path) -> list[tuple[str, str, str]]:
    """(role, target, format) of every ``path::key`` glue role, parsed the way myst-nb does."""
    refs = []
    for role, text in GLUE_ROLE.findall(page.read_text(encoding="utf-8")):
        role = role or "any"
        fmt = ""
        if role == "text":
            key, _, fmt = text.rpartition(":")  # myst-nb splits the format off first
            if not key:
                key, fmt = text, ""
            text = key
        if "::" in text or text.endswith(":"):
            refs.append((role, text, fmt))
    return refs


def _glued(notebook: Path, cache: dict = {}) -> dict:  # noqa: B006 - a per-session cache
    from cnnbook import book

    if notebook not in cache:
        cache[notebook] = book.read_glued(notebook)
    return cache[notebook]


@pytest.mark.parametrize("page", sorted(BOOK.glob("*.md")), ids=lambda p: p.name)
def test_glue_references_name_keys_their_notebook_glues(page):
    from myst_nb.core.variables import format_plain_text

    problems = []
    for role, target, fmt in _glue_references(page):
        path, sep, key = target.partition("::")
        if not sep or not key:
            problems.append(f"{target!r}: a glue:text from another page needs a format, `path::key:fmt`")
            continue
        notebook = (ROOT / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
        notebook = notebook.resolve()
        if notebook.suffix != ".ipynb" or not notebook.is_file():
            problems.append(f"{target!r}: no notebook {path}")
            continue
        glued = _glued(notebook)
        if key not in glued:
            problems.append(f"{target!r}: {notebook.name} glues no {key!r} (it glues {sorted(glued)})")
            continue
        if role == "text" and fmt:
            try:
                format_plain_text(repr(glued[key]), fmt)
            except Exception as exc:  # what the build would warn about
                problems.append(f"{target!r}: format {fmt!r} fails on {glued[key]!r}: {exc}")
    assert not problems, "\n".join(problems)


# --- The reader's guide for readers of the source article ------------------------------

# The article's numbered headings, verbatim (it has no section 1). With CNNBOOK_ARTICLE set to
# the article's text file, the test also checks this list against the article itself.
ARTICLE_SECTIONS = [
    "2. 技术原理及概念",
    "2.1基本概念解释",
    "2.2技术原理介绍",
    "2.3相关技术比较",
    "3. 实现步骤与流程",
    "3.1准备工作",
    "3.2核心模块实现",
    "3.3集成与测试",
    "4. 应用示例与代码实现",
    "4.1应用场景介绍",
    "4.2应用实例分析",
    "4.3核心代码实现",
    "5. 优化与改进",
    "6. 结论与展望",
]
SECTION_5_ITEMS = ["性能优化", "可扩展性改进", "安全性加固"]


def _article_headings(text: str) -> list[str]:
    """Setext headings (a line underlined with --- or ===) that start with a section number."""
    lines = text.splitlines()
    return [
        lines[i].strip() for i in range(len(lines) - 1)
        if re.fullmatch(r"\s*(-{3,}|={3,})\s*", lines[i + 1]) and re.match(r"\d+(\.\d+)*\.?", lines[i].strip())
    ]


def test_article_sections_list_matches_the_article():
    path = os.environ.get("CNNBOOK_ARTICLE")
    if not path or not Path(path).is_file():
        pytest.skip("set CNNBOOK_ARTICLE to the source article's text file to check the list")
    assert _article_headings(Path(path).read_text(encoding="utf-8")) == ARTICLE_SECTIONS


def test_guide_maps_every_section_of_the_article():
    guide = (BOOK / "guide_zh.md").read_text(encoding="utf-8")
    headings = re.findall(r"^#{2,6}\s+(.+?)\s*$", guide, re.M)
    missing = [s for s in ARTICLE_SECTIONS if s not in headings]
    assert not missing, f"book/guide_zh.md has no heading for the article's sections {missing}"
    section_5 = guide[guide.index("\n## 5. 优化与改进"):guide.index("\n## 6. 结论与展望")]
    for item in SECTION_5_ITEMS:
        assert item in section_5, item
    # Every claim of section 5 is measured now: each names the chapter that measures it.
    assert "尚未测量" not in section_5, "a section 5 claim is said to be unmeasured, but chapters 10 and 12 measure all three"
    assert "{doc}`/notebooks/10_improving`" in section_5 and "{doc}`/notebooks/12_hardening`" in section_5
    assert _glue_references(BOOK / "guide_zh.md"), "the guide's numbers must be glued from the chapters"
    assert "book/guide_zh" in _toc_docs()
