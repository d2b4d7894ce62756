"""When the machine, not the input, is at fault: a full disk, a directory bioprobe may not write,
a download cut short. Each is one line naming the path and what to do, never a traceback wall,
and leaves no output that looks complete. A bug's traceback reaches the job's log once.

Tests may run as root, where chmod does not stop a write: the read-only cases simulate the
refusal with monkeypatch wherever chmod has not.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bioprobe import hub
from bioprobe.analysis.dumpio import NpyWriter, open_dump
from bioprobe.errors import EnvironmentProblem
from bioprobe.io import atomic_path, write_json

TRACEBACK = "Traceback (most recent call last)"
DISK_ADVICE = ("no space left on device", "README's Disk section", "keep_dumps: false")
WRITE_ADVICE = ("Check the permissions", "run the same command again")


def run_job(tmp_path: Path, body: str, *, log: bool = True) -> tuple[int, str]:
    """A rule script in a process of its own: `body` defines `main(sm)`, run by run_script.
    Returns the exit status and what the user sees: the job's log and its stderr together."""
    log_file = tmp_path / "job.log"
    job = (
        f"job = SimpleNamespace(log={[str(log_file)] if log else []!r}, threads=1, "
        f"output=[{str(tmp_path / 'results' / 'out')!r}], resources=SimpleNamespace(gpu=0))"
    )
    code = "\n".join(
        [
            "import errno, os",
            "from types import SimpleNamespace",
            "from bioprobe.pipeline.smk_support import run_script",
            textwrap.dedent(body),
            job,
            "run_script(job, main)",
        ]
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    seen = (log_file.read_text() if log_file.exists() else "") + out.stderr + out.stdout
    return out.returncode, seen


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- a bug: its traceback once, in the job's log ---


@pytest.mark.parametrize("log", [True, False], ids=["log-file", "stderr"])
def test_an_unexpected_error_prints_its_traceback_once(tmp_path, log):
    rc, seen = run_job(
        tmp_path,
        """
        def main(sm):
            raise ValueError("a bug only this test raises")
        """,
        log=log,
    )
    assert rc != 0
    assert seen.count(TRACEBACK) == 1, seen
    assert seen.count("ValueError: a bug only this test raises") == 1, seen
    if log:  # where the user looks: the job's log has it
        assert TRACEBACK in (tmp_path / "job.log").read_text()


def test_other_os_errors_are_bugs_and_keep_their_traceback(tmp_path):
    """Only a full disk or a refused write is the environment's: a missing file is not."""
    rc, seen = run_job(
        tmp_path,
        """
        def main(sm):
            open("/nonexistent/input.txt")
        """,
    )
    assert rc == 1 and seen.count(TRACEBACK) == 1, seen
    assert "FileNotFoundError" in seen and "README's Disk section" not in seen


# --- a full disk ---


def failing_pwrite(after: int, code: int = errno.ENOSPC):
    """os.pwrite that writes `after` bytes in all, then behaves as a full disk does: a short
    write that says nothing, then ENOSPC."""
    real = os.pwrite
    left = [after]

    def pwrite(fd, data, offset):
        data = memoryview(data).cast("B")
        if left[0] <= 0:
            raise OSError(code, os.strerror(code))
        written = real(fd, data[: left[0]], offset)
        left[0] -= written
        return written

    return pwrite


def test_a_full_disk_during_a_dump_write_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / "dumps" / "seed1"
    monkeypatch.setattr(os, "pwrite", failing_pwrite(after=1000))
    with (
        pytest.raises(EnvironmentProblem) as caught,
        atomic_path(out, is_dir=True) as tmp,
        NpyWriter(tmp / "test.hidden.npy", (3, 50, 8), "float16", axis=1) as writer,
    ):
        for start in range(0, 50, 10):
            writer.write(start, np.ones((3, 10, 8), dtype=np.float32))
    message = str(caught.value)
    assert message.startswith(f"{out / 'test.hidden.npy'}: "), message
    assert all(words in message for words in DISK_ADVICE), message
    assert "\n" not in message and TRACEBACK not in message
    assert leftovers(out.parent) == []  # neither the dump nor its temporary


def test_a_short_write_is_completed_not_left_as_zeros(tmp_path, monkeypatch):
    """A write the disk only partly takes must not leave zeros where rows should be."""
    real = os.pwrite

    def short(fd, data, offset):  # takes at most 7 bytes per call, as a filling disk may
        return real(fd, memoryview(data).cast("B")[:7], offset)

    monkeypatch.setattr(os, "pwrite", short)
    path = tmp_path / "x.npy"
    rows = np.arange(2 * 6 * 4, dtype=np.float16).reshape(2, 6, 4)
    with NpyWriter(path, (2, 6, 4), "float16", axis=1) as writer:
        writer.write(0, rows[:, :3])
        writer.write(3, rows[:, 3:])
    np.testing.assert_array_equal(open_dump(path), rows)


def test_a_full_disk_in_an_atomic_file_write_keeps_the_old_output(tmp_path):
    out = tmp_path / "eval.json"
    write_json(out, {"old": 1})
    with (
        pytest.raises(EnvironmentProblem, match="no space left on device") as caught,
        atomic_path(out) as tmp,
    ):
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(caught.value).startswith(f"{out}: ")
    assert out.read_text() == '{\n  "old": 1\n}\n'
    assert leftovers(tmp_path) == ["eval.json"]


@pytest.mark.parametrize(
    "error",
    [
        # safetensors (Rust's std::io) keeps only the text of the OSError
        "Error while serializing: I/O error: No space left on device (os error 28)",
        # torch.save does not say why its write failed
        "[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534",
        "Disk quota exceeded",
    ],
)
def test_a_full_disk_while_saving_a_model_names_the_model_directory(tmp_path, error):
    out = tmp_path / "models" / "run"
    with pytest.raises(EnvironmentProblem) as caught, atomic_path(out, is_dir=True) as tmp:
        (tmp / "config.json").write_text("{}")
        raise RuntimeError(error)
    message = str(caught.value)
    assert message.startswith(f"{out}: ") and "README's Disk section" in message, message
    assert leftovers(out.parent) == []


def test_a_full_disk_in_a_job_is_one_log_line_naming_the_file(tmp_path):
    rc, seen = run_job(
        tmp_path,
        """
        def main(sm):
            from bioprobe.io import atomic_path
            with atomic_path(sm.output[0], is_dir=True) as tmp:
                (tmp / "meta.json").write_text("{}")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp / "a.npy"))
        """,
    )
    assert rc == 1
    assert TRACEBACK not in seen, seen
    [line] = [x for x in seen.splitlines() if "ERROR" in x]
    assert f"ERROR bioprobe: {tmp_path / 'results' / 'out' / 'a.npy'}: " in line, seen
    assert all(words in line for words in DISK_ADVICE), line
    assert leftovers(tmp_path / "results") == []


def test_an_error_that_names_no_file_is_named_by_the_jobs_outputs(tmp_path):
    """The Trainer's checkpoints are written outside atomic_path, by libraries."""
    rc, seen = run_job(
        tmp_path,
        """
        def main(sm):
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
        """,
    )
    assert rc == 1 and TRACEBACK not in seen, seen
    assert f"{tmp_path / 'results' / 'out'}: disk quota exceeded (EDQUOT)" in seen, seen


# --- a directory bioprobe may not write ---


def refuse_writes(directory: Path, monkeypatch, code: int = errno.EACCES) -> None:
    """Make `directory` unwritable: chmod, and where that does not stop writes (root),
    temporaries in it refused as the kernel would refuse them."""
    directory.chmod(0o555)
    probe = directory / ".probe"
    try:
        probe.touch()
    except PermissionError:
        return
    probe.unlink()

    def refuse(prefix=None, suffix=None, dir=None, *args, **kwargs):
        raise OSError(code, os.strerror(code), os.path.join(dir, f"{prefix}abcdefgh{suffix}"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS], ids=["EACCES", "EROFS"])
@pytest.mark.parametrize("is_dir", [False, True], ids=["file", "directory"])
def test_a_read_only_results_directory_is_one_line_naming_the_output(
    tmp_path, monkeypatch, code, is_dir
):
    results = tmp_path / "results"
    results.mkdir()
    refuse_writes(results, monkeypatch, code)
    try:
        with (
            pytest.raises(EnvironmentProblem) as caught,
            atomic_path(results / "probes.tsv", is_dir=is_dir) as tmp,
        ):
            (tmp / "x" if is_dir else tmp).write_text("rows")
    finally:
        results.chmod(0o755)
    message = str(caught.value)
    assert message.startswith(f"{results / 'probes.tsv'}: "), message
    if os.geteuid() != 0:  # chmod gives EACCES whatever was asked for
        code = errno.EACCES if code == errno.EROFS else code
    assert f"({errno.errorcode[code]})" in message
    assert all(words in message for words in WRITE_ADVICE), message
    assert "\n" not in message
    assert leftovers(results) == []


def test_a_refused_rename_removes_the_temporary(tmp_path, monkeypatch):
    """Refused at the last step (EROFS on the rename): the temporary goes, nothing is named
    after it."""

    def refuse(src, dst):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(src), str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    out = tmp_path / "labels.json"
    with pytest.raises(EnvironmentProblem, match="read-only file system") as caught:
        write_json(out, {"a": 1})
    assert str(caught.value).startswith(f"{out}: ")
    assert leftovers(tmp_path) == []


def test_a_permission_error_in_a_job_is_one_log_line(tmp_path):
    rc, seen = run_job(
        tmp_path,
        """
        def main(sm):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/data/results/x")
        """,
    )
    assert rc == 1 and TRACEBACK not in seen, seen
    assert "ERROR bioprobe: /data/results/x: permission denied (EACCES)" in seen, seen


# --- a download cut short ---


def test_a_download_that_fails_midway_leaves_no_output(tmp_path, monkeypatch):
    """The download rules' outputs appear whole or not at all (hub._place fills a hidden
    temporary and moves it into place); a copy that fails (a full disk) removes the temporary
    and is one line naming the output."""
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (snapshot / name).write_text(name)
    placed = []
    real_link = os.link

    def link(src, dst):
        if placed:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        placed.append(dst)
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(hub.shutil, "copy2", link)
    dest = tmp_path / "hub" / "models" / "m"
    with pytest.raises(EnvironmentProblem, match="no space left"):
        hub.download_model("org/m", dest, snapshot=lambda **_: str(snapshot))
    assert not dest.exists()
    assert leftovers(dest.parent) == []


# --- a log that the handler and the redirected fds share ---


def test_log_lines_and_raw_output_interleave_without_overwriting(tmp_path):
    """logging, print() and a C-level write to fd 2 all land in the log, in order, whole: a
    handler with its own file offset used to overwrite what the fds had appended."""
    rc, seen = run_job(
        tmp_path,
        """
        import logging, sys
        def main(sm):
            log = logging.getLogger("bioprobe.test")
            for i in range(3):
                log.info("logged line %d of the job", i)
                print(f"printed line {i} of the job", flush=True)
                os.write(2, f"raw line {i} written to fd 2\\n".encode())
            logging.getLogger("fontTools.subset").info("a glyph subset nobody reads")
            logging.getLogger("transformers.x").warning("\x1b[1mBOLD REPORT\x1b[0m from: here")
        """,
    )
    assert rc == 0, seen
    lines = seen.splitlines()
    expected = [f"{what} line {i}" for i in range(3) for what in ("logged", "printed", "raw")]
    found = [next(j for j, line in enumerate(lines) if e in line) for e in expected]
    assert found == sorted(found), seen
    assert all(line.split()[0][:2].isdigit() or "line" in line for line in lines), seen
    assert "glyph" not in seen
    assert "BOLD REPORT from: here" in seen and "\x1b" not in seen


def test_a_job_that_logs_nothing_ends_its_log_naming_what_it_wrote(tmp_path):
    """A plot or a collected table says nothing while it works: its log still ends with the
    rule, the time taken and the outputs, never empty."""
    status, _ = run_job(tmp_path, "def main(sm):\n    pass\n")
    assert status == 0
    last = (tmp_path / "job.log").read_text().strip().splitlines()[-1]
    assert re.search(r"INFO bioprobe: job done in \d+\.\d s: .*results/out$", last), last
