"""Issue 17x: a reader that leaves early (``python -m elk_dse validate --help | head``) ends any command quietly,
with status 141 as a Unix tool's under ``| head`` (docs/reliability.md, "Exit statuses"); a broken pipe that is
not the standard streams' stays an I/O error (74). In-process, on real pipes whose read end is closed."""

from __future__ import annotations

import errno
import io
import os
import sys

import pytest

from elk_dse import cli
from elk_dse.cli import EXIT_IO, EXIT_PIPE, main


def _closed_pipe(buffer_size: int, line_buffering: bool = False) -> io.TextIOWrapper:
    """A text stream on the write end of a pipe nobody reads any more."""
    r, w = os.pipe()
    os.close(r)
    return io.TextIOWrapper(io.BufferedWriter(io.FileIO(w, "w"), buffer_size=buffer_size), encoding="utf-8",
                            line_buffering=line_buffering)


# buffer 8192: the help text fits the buffer and fails at main's last flush; 64: the first print fails.
@pytest.mark.parametrize("buffer_size", [8192, 64])
@pytest.mark.parametrize("args", [["--help"], ["validate", "--help"], ["evaluate", "+chip=mesh64", "--cfg"],
                                  ["sweep", "+chip=mesh64", "--cfg"]])
def test_a_reader_that_left_ends_the_command_quietly(capsys, monkeypatch, args, buffer_size):
    stream = _closed_pipe(buffer_size)
    monkeypatch.setattr(sys, "stdout", stream)
    assert main(args) == EXIT_PIPE == 141
    assert capsys.readouterr().err == ""  # no "error: ... Broken pipe" line, no traceback
    stream.write("later output")
    stream.close()  # what is left goes to os.devnull: the interpreter's last flush cannot fail either


def test_an_error_line_for_a_reader_that_left_is_dropped(monkeypatch):
    stream = _closed_pipe(64, line_buffering=True)  # as Python's stderr is
    monkeypatch.setattr(sys, "stderr", stream)
    assert main(["evaluate", "+chip=nope"]) == 2  # the status of the bad input; its line has no reader
    stream.close()


def test_a_broken_pipe_elsewhere_stays_an_io_error(capsys, monkeypatch):
    def broken(argv):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")  # e.g. a subprocess's pipe; stdout is fine

    monkeypatch.setattr(cli, "_run", broken)
    assert main(["evaluate", "+chip=mesh64"]) == EXIT_IO
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Broken pipe" in err
