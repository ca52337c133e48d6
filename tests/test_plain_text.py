"""Untrusted text on the leaderboard renders as the characters it is, never as Markdown or HTML."""

import pytest

from leaderboard.plain_text import html_literal, markdown_literal


@pytest.mark.parametrize("hostile", [
    "![x](https://tracker.example/pixel.png)",
    "[click](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    "**bold** _it_ `code` # title\n- item",
])
def test_markdown_metacharacters_are_escaped(hostile):
    import markdown_it

    rendered = markdown_it.MarkdownIt("commonmark").render(markdown_literal(hostile))
    assert "<img" not in rendered and "<a " not in rendered and "<strong>" not in rendered
    assert "<em>" not in rendered and "<code>" not in rendered and "<h1>" not in rendered and "<li>" not in rendered
    text = rendered.replace("<p>", "").replace("</p>", "").strip()
    import html

    assert html.unescape(text) == " ".join(hostile.splitlines())


def test_html_is_escaped_for_plotly():
    assert html_literal('<a href="x">y</a>') == "&lt;a href=&quot;x&quot;&gt;y&lt;/a&gt;"


def test_results_made_without_the_sandbox_are_marked_in_the_model_type(tmp_path):
    from benchmark.evaluation.results import CaseResult, ResultsFile
    from leaderboard.data import cases_from_results

    case = CaseResult(case_id="ds:a", dataset="ds", subject="s", contrast="T2w", image_sha256="0", suite_role="ood",
                      dataset_in_training=False, subject_in_training=False, dice=1, nsd=1, hd95=0, rve=0, csa_error=0)
    made = {mode: ResultsFile(submission=f"m-{mode}", suite="synthetic", benchmark_version="v", cordbench_version="0",
                              model_sha256="0", model_type="command", declared_training_datasets=[], created_utc="t",
                              sandbox=mode, cases=[case]) for mode in ("none", "bubblewrap")}
    frame = cases_from_results(list(made.values()))
    assert dict(zip(frame["submission"].astype(str), frame["model_type"].astype(str))) == {
        "m-none": "command (NOT sandboxed)", "m-bubblewrap": "command"}
