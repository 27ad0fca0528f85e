"""Building C++ translation units into cached shared libraries (gpu-sim and the
CPU engine's native pass), loaded with ctypes, and reading the kernel files
they are made from.

A library is built once per (source text, compiler, flags, host) and cached
under ``$KCBATCH_CACHE_DIR`` (default ``~/.cache/kcbatch``); the key hashes all
of them, so an edited source or another machine's CPU never loads a stale or
foreign build (a home directory may be shared by cluster nodes of different
CPUs, and ``-march=native`` code can crash on another model).

Loading a library runs its code, so the cache is trusted only as far as it is
private. The directory must belong to this user and be writable by no one
else (created with mode 0700 whatever the umask); otherwise
:class:`CacheError` refuses it, naming the directory and what is wrong. A
library ``NAME.so`` is loaded only when it and its record ``NAME.so.sha256``
(the library's SHA-256, written when it was built) are regular files, not
symbolic links, of this user, writable by no one else, and the library's
content hashes to the record; anything else is rebuilt. A build is compiled
in a private temporary directory inside the cache, made 0700 (the record
0600), hashed and renamed into place (the library, then its record), so no
reader sees a partial file; the library loaded is the very file that was
checked or built (through its open descriptor where ``/proc/self/fd`` exists),
so it cannot be swapped in between.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import secrets
import shutil
import stat
import subprocess
from pathlib import Path

# The library file and its record are made with these modes, whatever the umask.
LIBRARY_MODE = 0o700
RECORD_MODE = 0o600
DIR_MODE = 0o700
RECORD_SUFFIX = ".sha256"
# Descriptors of the libraries loaded through /proc/self/fd: kept open for the
# process's life, since the dynamic loader knows a library by the name it was
# opened with, and a reused descriptor number would name another file.
_loaded_fds: list[int] = []


def kernel_text(name: str) -> str:
    """The text of ``kernels/<name>`` (installed as ``kcbatch.kernels``)."""
    try:
        from kcbatch.kernels import read_source
    except ModuleNotFoundError:
        # A source checkout on sys.path without an install: kernels/ is beside kcbatch/.
        return (Path(__file__).resolve().parents[2] / "kernels" / name).read_text("utf-8")
    return read_source(name)


class BuildError(RuntimeError):
    """The compiler rejected a translation unit; the message ends with its log."""


class CacheError(BuildError):
    """The cache directory cannot be used (one line naming it and what is wrong):
    it cannot be found, made or read, or another user could write into it."""


def compiler() -> str | None:
    """The C++ compiler: ``$CXX``, else ``g++``, else ``c++`` on the PATH."""
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def cache_dir() -> Path:
    """``$KCBATCH_CACHE_DIR``, else ``~/.cache/kcbatch``; CacheError when there is
    no home directory to put it in."""
    d = os.environ.get("KCBATCH_CACHE_DIR")
    if d:
        return Path(d)
    try:
        return Path.home() / ".cache" / "kcbatch"
    except (RuntimeError, KeyError, OSError) as exc:
        raise CacheError(f"no home directory for the build cache ({exc}); "
                         f"set KCBATCH_CACHE_DIR to a directory of your own") from None


@functools.cache
def host_signature() -> str:
    """The CPU model and instruction-set flags of this host (Linux), else its
    architecture: part of every cache key of ``-march=native`` builds."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    keep = [ln for ln in lines if ln.split(":")[0].strip() in ("model name", "flags", "Features")]
    return platform.machine() + "|" + "|".join(sorted(set(keep)))


def _why(exc: OSError) -> str:
    """What went wrong, with the file it concerns (one line)."""
    if isinstance(exc, FileExistsError):  # mkdir of a path that is a file
        return f"{exc.filename} is not a directory"
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def _unsafe(st: os.stat_result) -> str | None:
    """Why a file or directory of status ``st`` is not this user's alone, or None."""
    if st.st_uid != os.getuid():
        return f"is owned by uid {st.st_uid}, not by this user (uid {os.getuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = "its group" if st.st_mode & stat.S_IWGRP else "everyone"
        return f"is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _open_dir(path: Path) -> int:
    """A descriptor of the cache directory ``path``, made (mode 0700) if it is not
    there; CacheError unless it is this user's and writable by no one else."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(path, DIR_MODE)
            created = True
        except FileExistsError:
            created = False
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise CacheError(f"cannot use the build cache directory {path} ({_why(exc)}); "
                         f"set KCBATCH_CACHE_DIR to a writable directory of your own") from None
    try:
        st = os.fstat(fd)
        problem = _unsafe(st)
        if problem is not None:
            raise CacheError(f"build cache directory {path} {problem}: a library planted in it "
                             f"would run in kcbatch; chmod 700 it if it is yours, or set "
                             f"KCBATCH_CACHE_DIR to a directory of your own")
        if created and stat.S_IMODE(st.st_mode) != DIR_MODE:
            os.fchmod(fd, DIR_MODE)  # the umask may have taken bits away
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_private(name: str, dir_fd: int) -> int | None:
    """A read descriptor of the file ``name`` in ``dir_fd`` if it is a regular file
    (not a symbolic link) of this user that no one else can write, else None."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                     dir_fd=dir_fd)
    except OSError:  # absent, a symbolic link (ELOOP), unreadable
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or _unsafe(st) is not None:
        os.close(fd)
        return None
    return fd


def _digest(fd: int) -> str:
    """The SHA-256 (hex) of the whole file open as ``fd``."""
    h = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 20):
        h.update(chunk)
    return h.hexdigest()


def _checked(name: str, dir_fd: int) -> int | None:
    """A descriptor of the cached library ``name`` if it and its record pass the
    checks of the module docstring, else None (to be rebuilt)."""
    lib = _open_private(name, dir_fd)
    if lib is None:
        return None
    rec = _open_private(name + RECORD_SUFFIX, dir_fd)
    try:
        if rec is not None and os.read(rec, 256).decode("ascii", "replace").strip() == \
                _digest(lib):
            return lib
    finally:
        if rec is not None:
            os.close(rec)
    os.close(lib)
    return None


def _compile(cxx: str, stem: str, source: str, flags: tuple[str, ...], name: str,
             path: Path, dir_fd: int) -> int:
    """Compile ``source`` into ``path/name`` (and its record) via a private
    temporary directory there; returns a descriptor of the library built."""
    tmp = f".build-{stem}-{secrets.token_hex(8)}"
    try:
        os.mkdir(tmp, DIR_MODE, dir_fd=dir_fd)
    except OSError as exc:
        raise CacheError(f"cannot build in the cache directory {path} ({_why(exc)}); "
                         f"set KCBATCH_CACHE_DIR to a writable directory of your own") from None
    try:
        cpp = path / tmp / f"{stem}.cpp"
        so = f"{tmp}/{stem}.so"
        try:
            cpp.write_text(source)
            proc = subprocess.run([cxx, *flags, str(cpp), "-o", str(path / so)],
                                  capture_output=True, text=True)
        except OSError as exc:  # $CXX names no runnable program, or the disk is full
            raise BuildError(f"compiling {stem} with {cxx} failed: {exc}") from exc
        if proc.returncode != 0:
            raise BuildError(f"compiling {stem} with {cxx} failed:\n{proc.stderr[-4000:]}")
        try:
            lib = os.open(so, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                          dir_fd=dir_fd)
            try:
                os.fchmod(lib, LIBRARY_MODE)  # as the compiler made it: the umask's mode
                st = os.fstat(lib)
                if not stat.S_ISREG(st.st_mode) or _unsafe(st) is not None:
                    raise CacheError(f"the library built in {path / tmp} is not a regular "
                                     f"file of this user alone; not loading it")
                record = f"{tmp}/{stem}.so{RECORD_SUFFIX}"
                rec = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                              RECORD_MODE, dir_fd=dir_fd)
                try:
                    os.fchmod(rec, RECORD_MODE)
                    os.write(rec, (_digest(lib) + "\n").encode())
                    os.fsync(rec)
                finally:
                    os.close(rec)
                # the library first: a record never names a library not yet in place
                os.replace(so, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                os.replace(record, name + RECORD_SUFFIX, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                os.close(lib)
                raise
        except OSError as exc:
            raise CacheError(f"cannot store the library built in {path} "
                             f"({_why(exc)}); set KCBATCH_CACHE_DIR to a writable "
                             f"directory of your own") from None
        return lib
    finally:
        shutil.rmtree(tmp, dir_fd=dir_fd, ignore_errors=True)


def _load(fd: int, path: Path) -> ctypes.CDLL:
    """The library open as ``fd`` (its file ``path``), loaded; ``fd`` is kept open
    when the library is loaded through it, else closed. CacheError when the
    dynamic loader refuses it (e.g. a cache on a filesystem mounted noexec)."""
    try:
        if os.path.isdir("/proc/self/fd"):
            lib = ctypes.CDLL(f"/proc/self/fd/{fd}")
            _loaded_fds.append(fd)
            return lib
        os.close(fd)
        return ctypes.CDLL(str(path))
    except OSError as exc:
        if fd not in _loaded_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        why = " ".join(str(exc).split())
        raise CacheError(f"cannot load {path} from the build cache ({why}); set "
                         f"KCBATCH_CACHE_DIR to a directory where programs may run") from None


def cache_problem() -> str | None:
    """Why the build cache cannot be used (one line), or None when it can: its
    directory is found, made if need be, and checked; nothing is built."""
    try:
        os.close(_open_dir(cache_dir()))
    except CacheError as exc:
        return str(exc)
    return None


def build(stem: str, source: str, flags: tuple[str, ...]) -> ctypes.CDLL:
    """Compile ``source`` with ``flags`` (or reuse the cached build) and load it.

    Raises :class:`BuildError` when there is no compiler, it cannot be run
    or it fails, and :class:`CacheError` (a BuildError) when the cache
    directory cannot be used."""
    cxx = compiler()
    if cxx is None:
        raise BuildError("no C++ compiler (g++) found; install g++ or set CXX")
    key = hashlib.sha256("\0".join((source, cxx, *flags, host_signature())).encode())
    name = f"{stem}_{key.hexdigest()[:20]}.so"
    path = cache_dir()
    dir_fd = _open_dir(path)
    try:
        lib = _checked(name, dir_fd)
        if lib is None:
            lib = _compile(cxx, stem, source, flags, name, path, dir_fd)
    finally:
        os.close(dir_fd)
    return _load(lib, path / name)
