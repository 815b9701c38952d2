"""Manifest loading: cases, segments, and errors that name the file and the key."""

from pathlib import Path

import pytest

from talkbench_plugin.errors import ManifestError
from talkbench_plugin.manifest import Segment, load_manifest


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for rel in ("ref/a.mp4", "ref/b.mp4", "audio/a.wav", "img/a.png", "W2L/a_W2L.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    return tmp_path


def write(root: Path, text: str) -> Path:
    path = root / "m.toml"
    path.write_text(text)
    return path


GOOD = """
[dataset]
name = "tiny"
[speakers.a]
language = "en"
reference = "ref/a.mp4"
audio = "audio/a.wav"
image = "img/a.png"
[speakers.b]
language = "zh"
reference = "ref/b.mp4"
segment = { start = 1.5, end = 9.0 }
[pipelines.W2L]
mode = "dubbing"
outputs = "{pipeline}/{speaker}_{pipeline}.mp4"
[pipelines.NeRF]
mode = "person-specific"
outputs = "NeRF/{speaker}.mp4"
speakers = ["b"]
train = { start = 0, end = 5 }
evaluate = { start = 5 }
"""


def test_cases_cover_pipelines_for_their_speakers(root: Path) -> None:
    dataset = load_manifest(write(root, GOOD))
    assert dataset.name == "tiny"
    assert [c.id for c in dataset.cases()] == ["a-W2L", "b-W2L", "b-NeRF"]
    a_w2l, b_w2l, b_nerf = dataset.cases()
    assert a_w2l.generated == root.resolve() / "W2L" / "a_W2L.mp4"
    assert a_w2l.segment == Segment() and a_w2l.offset == 0
    assert b_w2l.segment == Segment(1.5, 9.0)
    # person-specific: evaluated from 5 s on (intersected with the speaker's segment); video starts there
    assert b_nerf.segment == Segment(5.0, 9.0) and b_nerf.offset == 5.0


def test_root_option_resolves_media_elsewhere(root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    manifest = tmp_path_factory.mktemp("elsewhere") / "m.toml"
    manifest.write_text(GOOD)
    dataset = load_manifest(manifest, root=root)
    assert dataset.speakers["a"].reference == root.resolve() / "ref" / "a.mp4"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("language = \"en\"", "language = \"en\"\nlangauge = \"en\""), "speakers.a.langauge: unknown key"),
        (("reference = \"ref/a.mp4\"", "reference = \"ref/missing.mp4\""), "speakers.a.reference: file not found"),
        (("reference = \"ref/a.mp4\"", "reference = \"../outside.mp4\""), "speakers.a.reference: '../outside.mp4' escapes"),
        (("reference = \"ref/a.mp4\"", "reference = \"/etc/passwd\""), "escapes the dataset root"),
        (("speakers = [\"b\"]", "speakers = [\"c\"]"), "pipelines.NeRF.speakers: unknown speaker 'c'"),
        (("mode = \"dubbing\"", "mode = \"lipsync\""), "pipelines.W2L.mode: 'lipsync' is not one of"),
        (("{pipeline}/{speaker}_{pipeline}.mp4", "{pipline}/{speaker}.mp4"), "unknown placeholder pipline"),
        (("{pipeline}/{speaker}_{pipeline}.mp4", "../{speaker}.mp4"), "pipelines.W2L.outputs: '../s.mp4' escapes"),
        (("evaluate = { start = 5 }", ""), "pipelines.NeRF.evaluate: person-specific pipelines need"),
        (("end = 9.0", "end = 1.0"), "speakers.b.segment: needs 0 <= start < end"),
        (("[speakers.b]", "[speakers.a]"), "not valid TOML"),
        (("[speakers.b]", "[speakers.\"b c\"]"), "speakers.b c: ids may hold"),
        (("language = \"zh\"", "language = 3"), "speakers.b.language: must be a string"),
    ],
)
def test_errors_name_file_and_key(root: Path, edit: tuple[str, str], message: str) -> None:
    path = write(root, GOOD.replace(*edit, 1))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_manifest_and_no_speakers(root: Path) -> None:
    with pytest.raises(ManifestError, match="manifest not found"):
        load_manifest(root / "nope.toml")
    with pytest.raises(ManifestError, match="names no speakers"):
        load_manifest(write(root, "[dataset]\nname = 'x'\n[speakers]\n"))


def test_shipped_microbench_manifest_is_valid(tmp_path: Path) -> None:
    """The six-speaker manifest loads against a tree with the published file names."""
    import tomllib

    manifest = Path(__file__).resolve().parents[1] / "fixtures" / "datasets" / "microbench.toml"
    data = tomllib.loads(manifest.read_text())
    for speaker in data["speakers"].values():
        for key in ("reference", "audio", "image"):
            (tmp_path / speaker[key]).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / speaker[key]).write_bytes(b"x")
    dataset = load_manifest(manifest, root=tmp_path)
    ids = [c.id for c in dataset.cases()]
    assert len(dataset.speakers) == 6
    assert {d.language for d in dataset.speakers.values()} == {"en", "zh"}
    assert ids.count("obama1-Wav2Lip") == 1 and "macron_english_trim-ER-NeRF" in ids
    assert "obama1-GeneFace" not in ids
    nerf = next(c for c in dataset.cases() if c.id == "zuijiapaidang_chinese-GeneFace")
    assert nerf.segment.start == 180.0 and nerf.offset == 180.0
