"""files.publish: what every artifact, the web page's folder and the report are written by."""

from __future__ import annotations

import pytest

from mnist_keras.files import PARTIAL, publish, write_atomic


def test_files_and_folders_appear_whole_and_replace_what_was_there(tmp_path):
    (tmp_path / "page").mkdir()
    (tmp_path / "page" / "old.js").write_text("an older page")
    source = tmp_path / "runtime.wasm"
    source.write_bytes(b"\0asm")
    placed = publish(tmp_path, {"model.tflite": b"bytes", "page": {"index.html": "<p>", "litert/core.wasm": source}})
    assert placed == [tmp_path / "model.tflite", tmp_path / "page"]
    assert (tmp_path / "model.tflite").read_bytes() == b"bytes"
    assert sorted(str(p.relative_to(tmp_path / "page")) for p in (tmp_path / "page").rglob("*")) == \
        ["index.html", "litert", "litert/core.wasm"]  # the old page is gone, not merged
    assert (tmp_path / "page" / "litert" / "core.wasm").read_bytes() == b"\0asm"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite", "page", "runtime.wasm"]


def test_a_check_sees_the_partials_and_adds_their_description_or_refuses_them(tmp_path):
    seen = {}

    def describe(partials):
        seen.update({name: (path.name, path.read_bytes()) for name, path in partials.items()})
        return {"m.json": '{"ok": true}\n'}

    assert publish(tmp_path, {"m.tflite": b"good"}, describe) == [tmp_path / "m.tflite", tmp_path / "m.json"]
    assert seen["m.tflite"][0].startswith(PARTIAL) and seen["m.tflite"][1] == b"good"  # checked before the rename
    assert publish(tmp_path, {"m.tflite": b"bad"}, lambda partials: None) is None
    assert (tmp_path / "m.tflite").read_bytes() == b"good"  # refused: the published one is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.tflite"]


def test_a_writer_that_fails_leaves_nothing(tmp_path):
    def half(folder):
        (folder / "saved_model.pb").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        publish(tmp_path, {"one.txt": "whole", "model": half})
    with pytest.raises(ValueError):
        publish(tmp_path, {"m.tflite": b"x"}, lambda partials: int("not a number"))
    assert not list(tmp_path.iterdir())
    write_atomic(tmp_path / "a.json", "{}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"] and (tmp_path / "a.json").read_text() == "{}\n"
