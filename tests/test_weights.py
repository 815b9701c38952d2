"""Weights registry, cache directory, verified fetch over HTTP, safe loading and the CLI."""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import io
import threading
from pathlib import Path

import pytest
import torch

from talkbench_plugin import weights
from talkbench_plugin.weights import WeightsError, WeightsMissing, WeightSpec


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path / "www"``; yields (directory, base URL)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _state_bytes(seed: int = 0) -> bytes:
    gen = torch.Generator().manual_seed(seed)
    buf = io.BytesIO()
    torch.save({"w": torch.randn(4, 3, generator=gen), "b": torch.zeros(4)}, buf)
    return buf.getvalue()


def _spec(name: str, data: bytes, urls: tuple[str, ...], **pins) -> WeightSpec:
    pins = pins or {
        "sha256": hashlib.sha256(data).hexdigest(),
        "git_blob": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
        "size": len(data),
    }
    return WeightSpec(name=name, filename=f"{name}.pth", urls=urls, **pins)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty weights directory selected through the environment variable."""
    directory = tmp_path / "weights"
    monkeypatch.setenv(weights.ENV_WEIGHTS, str(directory))
    return directory


def test_weights_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv(weights.ENV_WEIGHTS, raising=False)
    monkeypatch.delenv("TALKBENCH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.weights_dir() == tmp_path / "xdg" / "talkbench" / "weights"
    monkeypatch.setenv("TALKBENCH_CACHE", str(tmp_path / "cache"))
    assert weights.weights_dir() == tmp_path / "cache" / "weights"
    monkeypatch.setenv(weights.ENV_WEIGHTS, str(tmp_path / "env"))
    assert weights.weights_dir() == tmp_path / "env"
    assert weights.weights_dir(tmp_path / "arg") == tmp_path / "arg"
    assert weights.weight_path("syncnet") == tmp_path / "env" / "syncnet_v2.model"
    assert weights.weight_path("sfd_face.pth", tmp_path) == tmp_path / "sfd_face.pth"


def test_registry_pins_are_consistent():
    sync, s3fd, inception = (weights.REGISTRY[n] for n in ("syncnet", "s3fd", "inception"))
    assert sync.git_blob == "d714bbf3b30324ced69e3815fc41ae6dc519303c"
    assert s3fd.git_blob == "2bdf053a994371d57f6f535cb2682dc3e2990e89"
    for spec in (sync, s3fd):
        prefix, suffix = spec.sha256_ends
        assert spec.sha256.startswith(prefix) and spec.sha256.endswith(suffix) and len(spec.sha256) == 64
    assert sync.sha256_ends == ("961e8696", "5442") and s3fd.sha256_ends == ("d54a87c2", "c491")
    # torch hub convention: the file name carries the first digits of the content's SHA-256
    assert inception.sha256.startswith(inception.filename.rsplit("-", 1)[1].split(".")[0])
    with pytest.raises(ValueError, match="pin at least one hash"):
        WeightSpec(name="x", filename="x.pth", urls=())


def test_git_blob_id_matches_git_hash_object(tmp_path):
    path = tmp_path / "hello"
    path.write_bytes(b"hello\n")
    # `printf 'hello\n' | git hash-object --stdin`
    assert weights._file_digests(path)[1] == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_fetch_verify_load(server, cache, monkeypatch):
    root, base = server
    data = _state_bytes()
    (root / "good.pth").write_bytes(data)
    monkeypatch.setitem(weights.REGISTRY, "tiny", _spec("tiny", data, (f"{base}/missing.pth", f"{base}/good.pth")))

    assert weights.verify("tiny").state == "missing"
    with pytest.raises(WeightsMissing, match="talkbench weights fetch tiny"):
        weights.load_state("tiny")

    path = weights.fetch("tiny")  # the first source 404s, the second serves the pinned bytes
    assert path == cache / "tiny.pth" and path.read_bytes() == data
    assert weights.verify("tiny").ok
    state = weights.load_state("tiny")
    assert set(state) == {"w", "b"} and torch.equal(state["w"], torch.load(io.BytesIO(data))["w"])
    assert [p.name for p in cache.iterdir()] == ["tiny.pth"]  # no temporary file left behind


def test_fetch_refuses_other_bytes(server, cache, monkeypatch):
    root, base = server
    pinned, other = _state_bytes(0), _state_bytes(1)
    (root / "other.pth").write_bytes(other)
    spec = _spec("tiny", pinned, (f"{base}/other.pth",))
    monkeypatch.setitem(weights.REGISTRY, "tiny", spec)

    with pytest.raises(WeightsError) as info:
        weights.fetch("tiny")
    message = str(info.value)
    assert "tiny.pth" in message and f"{base}/other.pth" in message
    assert spec.sha256 in message and hashlib.sha256(other).hexdigest() in message
    assert not cache.exists() or list(cache.iterdir()) == []

    (cache / "tiny.pth").write_bytes(other)  # a wrong file put there by hand
    status = weights.verify("tiny")
    assert status.state == "mismatch" and "git blob id" in status.detail
    with pytest.raises(WeightsError, match="not the pinned tiny.pth"):
        weights.load_state("tiny")


def test_fetch_explicit_url_and_unreachable(server, cache, monkeypatch):
    root, base = server
    data = _state_bytes()
    (root / "mirror.pth").write_bytes(data)
    monkeypatch.setitem(weights.REGISTRY, "tiny", _spec("tiny", data, ("http://127.0.0.1:9/none.pth",)))
    with pytest.raises(WeightsError, match="download failed"):
        weights.fetch("tiny")
    assert weights.fetch("tiny", url=f"{base}/mirror.pth").read_bytes() == data


def test_sha256_ends_only(cache, monkeypatch):
    data = b"0123456789"
    digest = hashlib.sha256(data).hexdigest()
    cache.mkdir()
    (cache / "ends.pth").write_bytes(data)
    monkeypatch.setitem(weights.REGISTRY, "ends", _spec("ends", data, (), sha256_ends=(digest[:8], digest[-4:])))
    assert weights.verify("ends").ok
    monkeypatch.setitem(weights.REGISTRY, "ends", _spec("ends", data, (), sha256_ends=(digest[:8], "0000")))
    assert weights.verify("ends").state == "mismatch"


def test_load_never_unpickles_code(tmp_path, cache, monkeypatch):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    buf = io.BytesIO()
    torch.save({"w": Payload()}, buf)
    data = buf.getvalue()
    cache.mkdir()
    (cache / "evil.pth").write_bytes(data)
    monkeypatch.setitem(weights.REGISTRY, "evil", _spec("evil", data, ()))
    with pytest.raises(WeightsError, match="evil.pth: not a loadable weights file"):
        weights.load_state("evil")
    assert not marker.exists()

    (cache / "junk.pth").write_bytes(b"not a torch file")
    monkeypatch.setitem(weights.REGISTRY, "junk", _spec("junk", b"not a torch file", ()))
    with pytest.raises(WeightsError, match="junk.pth: not a loadable weights file"):
        weights.load_state("junk")


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="talkbench")
    weights.add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli(server, tmp_path, capsys, monkeypatch):
    root, base = server
    data = _state_bytes()
    (root / "good.pth").write_bytes(data)
    monkeypatch.setitem(weights.REGISTRY, "tiny", _spec("tiny", data, (f"{base}/good.pth",)))
    where = str(tmp_path / "w")

    assert _cli(["weights", "--dir", where, "path", "tiny"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "w" / "tiny.pth")
    assert _cli(["weights", "--dir", where, "verify", "tiny"]) == 1
    assert "tiny: missing" in capsys.readouterr().out
    assert _cli(["weights", "--dir", where, "fetch", "tiny"]) == 0
    assert "tiny: ok" in capsys.readouterr().out
    assert _cli(["weights", "--dir", where, "verify", "tiny"]) == 0
    assert _cli(["weights", "--dir", where, "list"]) == 0
    out = capsys.readouterr().out
    assert "syncnet_v2.model" in out and "sfd_face.pth" in out and "pt_inception-2015-12-05-6726825d.pth" in out
    assert any(line.startswith("tiny") and "present" in line for line in out.splitlines())
    assert _cli(["weights", "--dir", where, "fetch", "tiny", "syncnet", "--url", f"{base}/good.pth"]) == 2
