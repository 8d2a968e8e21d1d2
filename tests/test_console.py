"""TensorFlow's native start-up lines: left alone with a GPU, filtered without one."""

import sys

import pytest

from aesweep import console

BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
ONEDNN = "I0000 00:00:1795968900.760387    5919 port.cc:153] oneDNN custom operations are on."
NO_CUDA = (
    "I0000 00:00:1795968900.761604    5919 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used."
)
NATIVE_WARNING = "W0000 00:00:1795968900.8    5919 some_op.cc:12] a native warning"
NATIVE_ERROR = "E0000 00:00:1795968906.9    5919 cuda_platform.cc:52] failed call to cuInit"


@pytest.mark.parametrize(
    ("paths", "present"),
    [
        ([], False),
        (["dev/null"], False),
        (["dev/nvidia0", "dev/nvidiactl"], True),
        (["dev/nvidia-uvm"], True),
        (["proc/driver/nvidia/version"], True),
        (["dev/dxg"], True),  # WSL2 reaches the Windows driver through /dev/dxg
    ],
)
def test_gpu_presence_is_read_from_the_driver_files(tmp_path, paths, present):
    (tmp_path / "dev").mkdir()
    for path in paths:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    assert console.gpu_present(tmp_path) is present


def test_without_a_gpu_native_lines_below_errors_and_the_cuda_probe_go():
    environ = {}
    assert console.native_log_level(environ, gpu=False) == 3
    assert environ == {"TF_CPP_MIN_LOG_LEVEL": "3"}


def test_with_a_gpu_the_lines_stay_and_the_default_is_unchanged():
    environ = {}
    assert console.native_log_level(environ, gpu=True) is None
    assert environ == {"TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.mark.parametrize(
    ("setting", "gpu", "level"),
    [("0", False, None), ("1", False, 1), ("2", False, 2), ("1", True, None), ("x", False, None)],
)
def test_the_users_own_setting_is_kept_and_honoured(setting, gpu, level):
    environ = {"TF_CPP_MIN_LOG_LEVEL": setting, "PATH": "/bin"}
    assert console.native_log_level(environ, gpu=gpu) == level
    assert environ == {"TF_CPP_MIN_LOG_LEVEL": setting, "PATH": "/bin"}


def _fake_native_module(tmp_path, monkeypatch, name):
    """A module that, like TensorFlow's libraries, writes to file descriptor 2 on import."""
    lines = [BANNER, ONEDNN, NO_CUDA, NATIVE_WARNING, NATIVE_ERROR, "not from Abseil"]
    native = "".join(f"{line}\n" for line in lines).encode()
    (tmp_path / f"{name}.py").write_text(
        "import os, sys, warnings\n"
        f"os.write(2, {native!r})\n"
        "print('python stderr during the import', file=sys.stderr)\n"
        "warnings.warn('a python warning during the import')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


@pytest.mark.parametrize("min_level", [1, 3])
def test_first_import_loses_only_abseil_lines_below_the_level(
    tmp_path, monkeypatch, capfd, min_level
):
    _fake_native_module(tmp_path, monkeypatch, "fake_native")
    finder = console._FilteredFirstImport("fake_native", min_level)
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    with pytest.warns(UserWarning, match="a python warning during the import"):
        __import__("fake_native")
    err = capfd.readouterr().err.splitlines()
    assert finder not in sys.meta_path
    assert BANNER not in err and ONEDNN not in err and NO_CUDA not in err
    assert (NATIVE_WARNING in err) is (min_level <= 1)
    assert (NATIVE_ERROR in err) is (min_level <= 2)
    assert "not from Abseil" in err and "python stderr during the import" in err


def test_unfiltered_the_same_import_prints_everything(tmp_path, monkeypatch, capfd):
    # The fake module is faithful: without the finder its lines reach stderr.
    _fake_native_module(tmp_path, monkeypatch, "fake_native_plain")
    with pytest.warns(UserWarning):
        __import__("fake_native_plain")
    err = capfd.readouterr().err.splitlines()
    assert BANNER in err and ONEDNN in err and NO_CUDA in err and NATIVE_ERROR in err


def test_stderr_is_restored_when_the_import_fails(tmp_path, monkeypatch, capfd):
    (tmp_path / "fake_broken.py").write_text(f"import os\nos.write(2, b'{ONEDNN}\\n')\n1 / 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(
        sys, "meta_path", [console._FilteredFirstImport("fake_broken", 1), *sys.meta_path]
    )
    with pytest.raises(ZeroDivisionError):
        __import__("fake_broken")
    sys.stderr.write("after the failed import\n")
    err = capfd.readouterr().err
    assert ONEDNN not in err and "after the failed import" in err
