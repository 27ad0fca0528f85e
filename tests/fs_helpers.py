"""Filesystem helpers shared by the config and CLI tests."""
from __future__ import annotations

import os
from pathlib import Path


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def unwritable_out(tmp_path: Path) -> Path:
    """An ``out`` path that nobody can create.

    As a normal user: a subdirectory of a directory with mode 0o500. As root
    (permission bits do not stop root): a path whose parent is a regular file.
    """
    if not is_root():
        ro = tmp_path / "readonly"
        ro.mkdir()
        ro.chmod(0o500)
        if not os.access(ro, os.W_OK):
            return ro / "out"
        ro.chmod(0o700)  # e.g. CAP_DAC_OVERRIDE without uid 0: fall through
    blocker = tmp_path / "a_regular_file"
    blocker.write_text("not a directory\n")
    return blocker / "out"
