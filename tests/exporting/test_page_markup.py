"""The drawing pages' shared markup: pad.html and panel.html, put in where a page includes them."""

from __future__ import annotations

from importlib import resources

from mnist_keras.exporting import web_page


def page(package: str, name: str) -> str:
    return web_page.page_text(resources.files(package).joinpath(name).read_text())


def test_every_page_holds_the_one_pad_and_no_include_is_left():
    pages = {"index.html": page("mnist_keras.exporting", "web/index.html"),
             "explain.html": page("mnist_keras.exporting", "web/explain.html"),
             "draw.html": page("mnist_keras.serving", "draw.html")}  # mnist-serve's, as it serves it
    pad = resources.files("mnist_keras.exporting").joinpath("web/pad.html").read_text().splitlines()[1]
    for name, text in pages.items():
        assert "<!-- include" not in text, name
        assert text.count('<canvas id="canvas"') == 1 and pad.strip() in text, name
        assert text.count('id="upload"') == 1 and text.count('id="status"') == 1, name
    for name in ("index.html", "draw.html"):  # the panel: the bars and the preview with its hint
        assert pages[name].count('<canvas id="seen"') == 1 and 'id="seen-hint"' in pages[name], name
    assert 'id="explain-link"' in pages["index.html"] and 'href="web/explain.html"' in pages["draw.html"]


def test_an_included_part_is_indented_as_its_include_line():
    text = web_page.page_text('<div>\n    <!-- include pad.html -->\n</div>\n')
    lines = text.splitlines()
    assert lines[0] == "<div>" and lines[-1] == "</div>"
    assert all(line.startswith("    ") for line in lines[1:-1] if line)
