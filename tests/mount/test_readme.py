"""The README's tour, run as written, against a freshly mounted store."""
import os
import re
import subprocess
from pathlib import Path

from conftest import POG

README = Path(__file__).resolve().parents[2] / "README.md"


def tour_script():
    text = README.read_text()
    start = text.index("## A tour")
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert block, "no ```sh block under '## A tour'"
    return block.group(1)


def test_readme_tour(mount, tmp_path):
    env = dict(os.environ)
    env["PATH"] = str(Path(POG).parent) + os.pathsep + env.get("PATH", "")
    r = subprocess.run(["bash", "-e", "-c", tour_script()], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"tour failed:\n{r.stdout}\n{r.stderr}"
    out = r.stdout
    assert "hello" in out                  # the greeting, back after abort
    assert "people/augusta" in out         # the ref followed the rename
    assert "refused" in out                # a typed scalar kept its value
    assert 'user.pog.type="int"' in out    # rsync -X kept the type
    assert not os.path.ismount(mount.path)  # the tour unmounts at its end
    # what the tour committed is in the pool
    r = subprocess.run([POG, "fsck", str(mount.pool)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
