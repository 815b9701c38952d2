"""A cache directory talkbench cannot write: one line naming it and how to choose another; entries that
are already there are used read-only."""

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from videos import moving_frames, write_video

ROOT = Path(__file__).resolve().parents[1]
# root ignores file modes: run the command as nobody there
UNPRIVILEGED = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
pytestmark = pytest.mark.skipif(bool(UNPRIVILEGED) and shutil.which("setpriv") is None,
                                reason="running as root without setpriv: file modes cannot be tested")


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder another user can read (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="talkbench-ro-"))
    path.chmod(0o755)
    yield path
    for p in [path, *path.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)
    shutil.rmtree(path)


def run(*args: str) -> subprocess.CompletedProcess:
    """``python *args`` as an unprivileged user, with this checkout's talkbench."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([*UNPRIVILEGED, sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          check=False, timeout=120)


def read_only(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)


MATERIALIZE = """
import sys
from pathlib import Path
from talkbench_plugin.datasets import load_dataset, materialize
from talkbench_plugin.errors import TalkbenchError
data, cache = Path(sys.argv[1]), Path(sys.argv[2])
case = load_dataset(data, str(data / "m.toml"), cache, data, calibrations=["static"]).cases()[0]
try:
    print(materialize(case, cache)[0].generated)
except TalkbenchError as exc:
    print(exc)
"""


def test_read_only_cache(folder: Path) -> None:
    """A calibration video already in the cache is used; one that is not fails the case, naming the folder."""
    from talkbench_plugin.datasets import load_dataset, materialize

    data, cache = folder / "data", folder / "cache"
    (data / "ref").mkdir(parents=True)
    write_video(data / "ref" / "a.mp4", moving_frames(5, 32, 32), 25)
    (data / "m.toml").write_text('[speakers.a]\nlanguage = "en"\nreference = "ref/a.mp4"\n')
    for p in [data, *data.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    case = load_dataset(data, str(data / "m.toml"), cache, data, calibrations=["static"]).cases()[0]
    built = materialize(case, cache)[0].generated
    read_only(cache)
    empty = folder / "empty"
    empty.mkdir(mode=0o555)
    script = folder / "materialize.py"
    script.write_text(MATERIALIZE)
    script.chmod(0o644)
    reused = run(str(script), str(data), str(cache))
    assert reused.returncode == 0 and reused.stdout == f"{built}\n", reused.stderr
    fresh = run(str(script), str(data), str(empty / "sub"))
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout == f"{empty}: directory not writable (Permission denied); choose a writable cache with " \
                           "--cache DIR (talkbench), --talkbench-cache DIR (pytest) or $TALKBENCH_CACHE\n"


def test_read_only_demo_folder(folder: Path) -> None:
    demo = folder / "cache" / "demo" / "v1"
    demo.mkdir(parents=True)
    read_only(folder / "cache")
    done = run("-m", "talkbench_plugin.cli", "--cache", str(folder / "cache"), "demo")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"talkbench: {demo.parent}: directory not writable (Permission denied); choose a writable " \
                          "cache with --cache DIR (talkbench), --talkbench-cache DIR (pytest) or $TALKBENCH_CACHE\n"
    demo.chmod(0o755)
    (demo / "demo.toml").write_text("")  # a built demo: its manifest is written last
    read_only(folder / "cache")
    done = run("-m", "talkbench_plugin.cli", "--cache", str(folder / "cache"), "demo")
    assert done.returncode == 0 and done.stdout == f"{demo / 'demo.toml'}\n"


CONVERTED = """
import sys
from pathlib import Path
import numpy as np
from talkbench_plugin.runtime.openvino import OpenVinoNetwork, converted
folder = converted(Path(sys.argv[1]), lambda: sys.exit("converted again"), (), [])
print(OpenVinoNetwork(folder)(np.ones((2, 3), np.float32)).shape)
"""


def test_a_read_only_cache_s_converted_network_is_used(folder: Path) -> None:
    import torch

    from talkbench_plugin.runtime.openvino import converted, ir_folder

    shapes = [(-1, 3)]
    ir = converted(ir_folder(folder / "cache", "tiny", "ab" * 32, shapes), lambda: torch.nn.Linear(3, 1),
                   (torch.zeros(1, 3),), shapes)
    read_only(folder)
    done = run("-c", CONVERTED, str(ir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(2,", "1)"]
