"""Every ``src/train.py`` command in README.md and docs/ composes and passes the check a sweep
makes of its jobs before the first one starts: a renamed key or option breaks this test,
not a reader's first try. (Running them all would take hours; debug=tiny versions of the
main ones run in the end-to-end tests.) The worked example of docs/your-network.md is
copied out of the page and swept against the seed's cnn from the command line."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from conftest import CONF_DIR, LEAN, ROOT, TINY, run_cli, summary_rows
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from aesweep.config import check_job
from aesweep.errors import InputError
from aesweep.search import parse_space
from aesweep.sweep import validate_jobs

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _commands() -> list[tuple[str, list[str]]]:
    """(where, arguments after src/train.py) of each command in a ```bash block."""
    found = []
    for page in PAGES:
        blocks = re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S)
        for block in blocks:
            for line in block.replace("\\\n", " ").splitlines():
                if "src/train.py" not in line:
                    continue
                words = shlex.split(line, comments=True)
                script = [i for i, w in enumerate(words) if w.endswith("src/train.py")]
                if not script:
                    continue  # "src/train.py" in a comment or a string
                args = words[script[0] + 1 :]
                found.append((f"{page.name}: {' '.join(args) or '(no arguments)'}", args))
    return found


COMMANDS = _commands()
YOUR_NETWORK = ROOT / "docs" / "your-network.md"


def _example_files() -> dict[str, str]:
    """The files of docs/your-network.md's worked example, by the path each block names on
    its first line (``# src/my_nets.py``)."""
    blocks = re.findall(r"```(?:python|yaml)\n# (\S+)\n(.*?)```", YOUR_NETWORK.read_text(), re.S)
    return dict(blocks)


@pytest.fixture(scope="module")
def user_project(tmp_path_factory) -> Path:
    """A folder with the worked example's ``src/my_nets.py`` and ``conf/arch/small_conv.yaml``."""
    folder = tmp_path_factory.mktemp("user_project")
    for name, text in _example_files().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def with_user_network(user_project, monkeypatch) -> list[str]:
    """The worked example on the path and in Hydra's search path, as the page sets it up."""
    monkeypatch.syspath_prepend(str(user_project / "src"))
    return [f"hydra.searchpath=[file://{user_project / 'conf'}]"]


@pytest.fixture(scope="module")
def full_size_file(tmp_path_factory) -> Path:
    """A stand-in for the full MNIST file the docs name (``data.path=mnist.npz``)."""
    path = tmp_path_factory.mktemp("docs") / "mnist.npz"
    np.savez_compressed(
        path, x_train=np.zeros((70000, 784), np.uint8), y_train=np.arange(70000) % 10
    )
    return path


def test_the_docs_hold_the_main_commands():
    shown = {where.split(": ", 1)[1] for where, _ in COMMANDS}
    assert "-m arch=ffn,cnn lr=0.01,0.005" in shown  # the design card
    assert "(no arguments)" in shown and len(COMMANDS) > 20


@pytest.mark.parametrize(("where", "args"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_a_documented_command_composes_and_passes_the_up_front_check(
    where, args, full_size_file, with_user_network
):
    overrides = [a for a in args if not a.startswith("-")]
    if where.startswith(YOUR_NETWORK.name):
        overrides += with_user_network
    overrides = [
        f"data.path={full_size_file}" if o.startswith("data.path=") else o for o in overrides
    ]
    search = any(o.startswith("hparams_search=") for o in overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        if search:
            # The preset's space is checked value by value in test_search.py; here, the
            # command's own dimensions parse, and its fixed overrides make a valid job.
            space, fixed = parse_space({}, [o for o in overrides if not o.startswith("hydra")])
            swept = {f"{key}=" for key in space}
            plain = [o for o in overrides if not o.startswith(tuple(swept))]
            config = compose("config", overrides=plain, return_hydra_config=True)
            check_job(compose("config", overrides=[o for o in fixed if "=" in o]))
            assert config.hydra.sweeper.n_trials >= 1
        elif "-m" in args:
            # What the sweep's callback checks: every job of the grid, before the first.
            config = compose("config", overrides=[], return_hydra_config=True)
            with open_dict(config):
                config.hydra.overrides.task = [o for o in overrides if not o.startswith("hydra")]
                config.hydra.overrides.hydra = [o for o in overrides if o.startswith("hydra")]
            validate_jobs(config)
        else:
            check_job(compose("config", overrides=overrides))


def test_the_worked_example_names_its_two_files():
    assert set(_example_files()) == {"src/my_nets.py", "conf/arch/small_conv.yaml"}


@pytest.mark.parametrize(
    "message", re.findall(r"```text\n(.*?)```", YOUR_NETWORK.read_text(), re.S)[0].splitlines()
)
def test_the_worked_example_shows_the_errors_the_check_gives(message, with_user_network):
    override = message.split(": ", 1)[0]
    key, value = override.split("=", 1)
    override = f"{'+' if key.endswith('.filter') else ''}{key}={value.strip(chr(39))}"
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        config = compose("config", overrides=["arch=small_conv", override, *with_user_network])
    with pytest.raises(InputError) as info:
        check_job(config)
    assert str(info.value) == message


@pytest.mark.slow
def test_a_network_of_ones_own_sweeps_against_the_seed_cnn(user_project, workdir, monkeypatch):
    # The page's files in a project of their own: its src/ on the path (the page's
    # PYTHONPATH), its conf/ searched.
    monkeypatch.syspath_prepend(str(user_project / "src"))
    result = run_cli(
        [
            "-m",
            "arch=cnn,small_conv",
            *TINY,
            *LEAN,
            f"hydra.searchpath=[file://{user_project}/conf]",
        ],
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["arch"]: row for row in summary_rows(workdir)}
    assert set(rows) == {"cnn", "small_conv", "pixels (reference)"}
    assert all(rows[arch]["status"] == "FINISHED" for arch in ("cnn", "small_conv"))
    assert 0 < float(rows["small_conv"]["test/acc"]) <= 1
