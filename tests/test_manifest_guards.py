"""Ids and expanded output paths cannot leave the dataset root; two cases cannot share an id (issue 16.6, 16.7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from talkbench_plugin.errors import ManifestError
from talkbench_plugin.manifest import load_manifest


def dataset(tmp_path: Path, speakers: dict[str, str], pipelines: str):
    root = tmp_path / "data"
    (root / "ref").mkdir(parents=True)
    (root / "ref" / "a.mp4").write_bytes(b"x")
    (tmp_path / "secret.mp4").write_bytes(b"outside")  # what a '..' id would reach
    text = "".join(f'[speakers."{sid}"]\nlanguage = "{lang}"\nreference = "ref/a.mp4"\n'
                   for sid, lang in speakers.items())
    path = root / "m.toml"
    path.write_text(text + pipelines)
    return load_manifest(path)


@pytest.mark.parametrize("sid", ["..", ".", ".hidden"])
def test_a_dot_speaker_id_is_refused(tmp_path: Path, sid: str) -> None:
    with pytest.raises(ManifestError, match=rf"m.toml: speakers\.{sid}: ids may hold .* may not start with a dot"):
        dataset(tmp_path, {sid: "en"}, '[pipelines.P]\nmode = "dubbing"\noutputs = "x/{speaker}/out.mp4"\n')


def test_an_expanded_output_path_outside_the_root_is_refused(tmp_path: Path) -> None:
    """The language is free text: ``{language}`` = ``../..`` would leave the root."""
    data = dataset(tmp_path, {"a": "../.."}, '[pipelines.P]\nmode = "dubbing"\noutputs = "x/{language}/secret.mp4"\n')
    with pytest.raises(ManifestError, match=r"pipelines\.P\.outputs: 'x/\.\./\.\./secret\.mp4' \(for speaker 'a'\) "
                                            r"escapes the dataset root"):
        data.cases()


def test_colliding_case_ids_are_refused(tmp_path: Path) -> None:
    data = dataset(tmp_path, {"a": "en", "a-x": "en"},
                   '[pipelines.x-P]\nmode = "dubbing"\noutputs = "1/{speaker}.mp4"\n'
                   '[pipelines.P]\nmode = "dubbing"\noutputs = "2/{speaker}.mp4"\n')
    with pytest.raises(ManifestError, match=r"case id 'a-x-P' is both speaker 'a' x pipeline 'x-P' and speaker "
                                            r"'a-x' x pipeline 'P'; rename one"):
        data.cases()


def test_distinct_ids_load(tmp_path: Path) -> None:
    data = dataset(tmp_path, {"a": "en", "b": "en"}, '[pipelines.P]\nmode = "dubbing"\noutputs = "x/{speaker}.mp4"\n')
    assert [c.id for c in data.cases()] == ["a-P", "b-P"]
