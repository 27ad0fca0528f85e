"""What another user who can write somewhere kcbatch reads or writes cannot make
it do: run code planted in the build cache (kcbatch/engines/cxx.py), truncate a
file through a symbolic link planted as a study's lock file, or leave a store
that can be neither resumed nor restarted (kcbatch/results/store.py). And what
an unusable cache directory or home directory costs: the numba pass, with the
same numbers, and one line saying why.

A planted library here is a real shared library whose constructor writes a
marker file: were it ever loaded, the marker would be there, and its entry
point answers 666 where the real build answers 42."""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_same_records, invoke, ok

from kcbatch.engines import cxx
from kcbatch.engines import sim as gpu_sim
from kcbatch.engines.cpu import CpuEngine, CpuSimulation
from kcbatch.engines.cpu import native as cpu_native
from kcbatch.inputs.pipeline import make_batch
from kcbatch.protocol.config import ConfigError, IntegrationSpec, StudyConfig
from kcbatch.results import store as store_mod
from kcbatch.results.store import (
    LOCK_NAME,
    STORE_NAME,
    Store,
    StoreError,
    StoreLocked,
    store_exists,
    study_lock,
)
from kcbatch.run.scan import create_scan, point_state, run_scan
from kcbatch.run.study import open_store, run_study

needs_cxx = pytest.mark.skipif(cxx.compiler() is None, reason="no C++ compiler")

TINY = 'extern "C" int kc_tiny_answer() { return 42; }\n'
TINY_FLAGS = ("-O1", "-shared", "-fPIC")
PLANTED = textwrap.dedent("""\
    #include <cstdio>
    __attribute__((constructor)) static void planted() {
        FILE* f = std::fopen(MARKER, "w");
        if (f) { std::fputs("ran", f); std::fclose(f); }
    }
    extern "C" int kc_tiny_answer() { return 666; }
    """)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """(a planted library, the marker its constructor writes)."""
    d = tmp_path_factory.mktemp("planted")
    marker = d / "constructor-ran"
    src = d / "planted.cpp"
    src.write_text(PLANTED)
    so = d / "planted.so"
    subprocess.run([cxx.compiler(), *TINY_FLAGS, f'-DMARKER="{marker}"', str(src), "-o", str(so)],
                   check=True, capture_output=True)
    return so, marker


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A cache directory holding the real build of TINY, made by another process:
    this one has loaded no library of that name, so a planted file there would
    be loaded afresh, not found among the libraries already loaded."""
    d = tmp_path_factory.mktemp("built") / "cache"
    code = (f"from kcbatch.engines import cxx; "
            f"assert cxx.build('kc_tiny', {TINY!r}, {TINY_FLAGS!r}).kc_tiny_answer() == 42")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2],
                   env={**os.environ, "KCBATCH_CACHE_DIR": str(d)}, timeout=120)
    return d


@pytest.fixture
def cache(monkeypatch, tmp_path, planted, built):
    """A private cache directory holding the real build of TINY (a copy of
    ``built``); returns the directory and the library's file."""
    d = tmp_path / "cache"
    shutil.copytree(built, d)
    monkeypatch.setenv("KCBATCH_CACHE_DIR", str(d))
    (lib,) = d.glob("kc_tiny_*.so")
    planted[1].unlink(missing_ok=True)
    return d, lib


def put(planted: Path, lib: Path) -> None:
    """``planted`` copied to ``lib`` as a new file (mode 0644)."""
    lib.unlink(missing_ok=True)
    shutil.copyfile(planted, lib)


def record(lib: Path) -> Path:
    return lib.with_name(lib.name + cxx.RECORD_SUFFIX)


def foreign(monkeypatch, path: Path) -> None:
    """Make os.fstat report the file ``path`` as another user's (a non-root test
    cannot chown)."""
    st = os.stat(path)
    ident = (st.st_dev, st.st_ino)
    real = os.fstat

    def fstat(fd):
        s = real(fd)
        if (s.st_dev, s.st_ino) != ident:
            return s
        fields = list(s[:10])
        fields[4] = s.st_uid + 1
        return os.stat_result(fields)

    monkeypatch.setattr(os, "fstat", fstat)


# --------------------------------------------------------------- 1. the build cache

@needs_cxx
def test_a_build_is_private_and_recorded_whatever_the_umask(monkeypatch, tmp_path):
    d = tmp_path / "cache"
    monkeypatch.setenv("KCBATCH_CACHE_DIR", str(d))
    old = os.umask(0o002)
    try:
        assert cxx.build("kc_tiny", TINY, TINY_FLAGS).kc_tiny_answer() == 42
    finally:
        os.umask(old)
    (lib,) = d.glob("kc_tiny_*.so")
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE(lib.stat().st_mode) == 0o700
    assert stat.S_IMODE(record(lib).stat().st_mode) == 0o600
    assert record(lib).read_text().strip() == sha256(lib)
    assert sorted(p.name for p in d.iterdir()) == sorted([lib.name, record(lib).name])


def _replaced(lib: Path, planted: Path, monkeypatch) -> None:
    """The library swapped for the planted one; its record left as it was."""
    put(planted, lib)


def _replaced_with_record_group_writable(lib, planted, monkeypatch):
    put(planted, lib)
    record(lib).write_text(sha256(planted) + "\n")
    lib.chmod(0o770)


def _record_group_writable(lib, planted, monkeypatch):
    put(planted, lib)
    record(lib).write_text(sha256(planted) + "\n")
    record(lib).chmod(0o620)


def _replaced_by_another_user(lib, planted, monkeypatch):
    put(planted, lib)
    lib.chmod(0o700)
    record(lib).write_text(sha256(planted) + "\n")
    foreign(monkeypatch, lib)


def _record_of_another_user(lib, planted, monkeypatch):
    put(planted, lib)
    record(lib).unlink()
    record(lib).write_text(sha256(planted) + "\n")
    record(lib).chmod(0o600)
    foreign(monkeypatch, record(lib))


def _symlinked_library(lib, planted, monkeypatch):
    lib.unlink()
    lib.symlink_to(planted)
    record(lib).write_text(sha256(planted) + "\n")


def _symlinked_record(lib, planted, monkeypatch):
    put(planted, lib)
    fake = lib.parent.parent / "fake.sha256"
    fake.write_text(sha256(planted) + "\n")
    record(lib).unlink()
    record(lib).symlink_to(fake)


def _no_record(lib, planted, monkeypatch):
    """As an older kcbatch left its builds: no record."""
    put(planted, lib)
    record(lib).unlink()


@needs_cxx
@pytest.mark.parametrize("plant", [_replaced, _replaced_with_record_group_writable,
                                   _record_group_writable, _replaced_by_another_user,
                                   _record_of_another_user, _symlinked_library,
                                   _symlinked_record, _no_record])
def test_a_planted_library_is_never_loaded_but_rebuilt(cache, planted, monkeypatch, plant):
    _, lib = cache
    so, marker = planted
    planted_hash = sha256(so)
    plant(lib, so, monkeypatch)
    assert cxx.build("kc_tiny", TINY, TINY_FLAGS).kc_tiny_answer() == 42
    monkeypatch.undo()  # os.fstat as it is
    assert not marker.exists(), "the planted library's constructor ran"
    assert sha256(so) == planted_hash  # a symbolic link's target is left alone
    for f in (lib, record(lib)):
        assert not f.is_symlink() and f.is_file()
    assert record(lib).read_text().strip() == sha256(lib) != planted_hash
    assert stat.S_IMODE(lib.stat().st_mode) == 0o700
    assert stat.S_IMODE(record(lib).stat().st_mode) == 0o600


@needs_cxx
@pytest.mark.parametrize("mode, who", [(0o770, "its group"), (0o707, "everyone")])
def test_a_cache_directory_others_can_write_is_refused(cache, planted, monkeypatch, mode, who):
    d, lib = cache
    so, marker = planted
    put(so, lib)
    record(lib).write_text(sha256(so) + "\n")  # a consistent plant, to be sure
    d.chmod(mode)
    with pytest.raises(cxx.CacheError) as err:
        cxx.build("kc_tiny", TINY, TINY_FLAGS)
    text = str(err.value)
    assert "\n" not in text and str(d) in text and f"writable by {who}" in text
    assert f"mode {mode:04o}" in text and "chmod 700" in text
    assert not marker.exists()
    assert cxx.cache_problem() == text
    assert gpu_sim.unavailable_reason() == f"gpu-sim: {text}"


@needs_cxx
def test_a_cache_directory_of_another_user_is_refused(cache, planted, monkeypatch):
    d, lib = cache
    so, marker = planted
    put(so, lib)
    record(lib).write_text(sha256(so) + "\n")
    uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: uid + 1)  # every file is now another's
    with pytest.raises(cxx.CacheError) as err:
        cxx.build("kc_tiny", TINY, TINY_FLAGS)
    text = str(err.value)
    assert "\n" not in text and str(d) in text
    assert f"owned by uid {uid}, not by this user (uid {uid + 1})" in text
    assert not marker.exists()


def _file_in_the_way(tmp_path, monkeypatch) -> Path:
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("KCBATCH_CACHE_DIR", str(tmp_path / "file" / "cache"))
    return tmp_path / "file" / "cache"


def _home_is_a_file(tmp_path, monkeypatch) -> Path:
    (tmp_path / "home").write_text("x")
    monkeypatch.delenv("KCBATCH_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home" / ".cache" / "kcbatch"


def _no_home(tmp_path, monkeypatch) -> str:
    monkeypatch.delenv("KCBATCH_CACHE_DIR", raising=False)

    def home():
        raise RuntimeError("Could not determine home directory.")
    monkeypatch.setattr(Path, "home", staticmethod(home))
    return "no home directory for the build cache"


def _cannot_write(tmp_path, monkeypatch) -> str:
    """A directory this user may not write in (root writes anywhere: mkdir refuses)."""
    monkeypatch.setenv("KCBATCH_CACHE_DIR", str(tmp_path / "cache"))
    real = os.mkdir

    def mkdir(path, *args, **kw):
        if str(path).startswith(".build-"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real(path, *args, **kw)
    monkeypatch.setattr(os, "mkdir", mkdir)
    return f"cannot build in the cache directory {tmp_path / 'cache'} (Permission denied"


UNUSABLE = [_file_in_the_way, _home_is_a_file, _no_home, _cannot_write]


@needs_cxx
@pytest.mark.parametrize("unusable", UNUSABLE)
def test_an_unusable_cache_is_one_line(monkeypatch, tmp_path, unusable):
    where = str(unusable(tmp_path, monkeypatch))
    with pytest.raises(cxx.CacheError) as err:
        cxx.build("kc_tiny", TINY, TINY_FLAGS)
    text = str(err.value)
    assert "\n" not in text and where in text and "KCBATCH_CACHE_DIR" in text
    if unusable is not _cannot_write:  # the directory itself is fine there
        assert cxx.cache_problem() == text


@needs_cxx
def test_a_library_the_loader_refuses_is_one_line(monkeypatch, tmp_path):
    """As on a cache mounted noexec: dlopen fails, the build is a CacheError."""
    monkeypatch.setenv("KCBATCH_CACHE_DIR", str(tmp_path / "cache"))
    cxx.build("kc_tiny", TINY, TINY_FLAGS)
    (lib,) = (tmp_path / "cache").glob("kc_tiny_*.so")
    opened = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None

    def refuse(name, *args, **kw):
        raise OSError(f"{name}: failed to map segment from shared object")

    monkeypatch.setattr(cxx.ctypes, "CDLL", refuse)
    with pytest.raises(cxx.CacheError) as err:
        cxx.build("kc_tiny", TINY, TINY_FLAGS)
    text = str(err.value)
    assert "\n" not in text and f"cannot load {lib} from the build cache" in text
    assert "failed to map segment" in text and "KCBATCH_CACHE_DIR" in text
    if opened is not None:  # the refused library's descriptor is closed
        assert len(os.listdir("/proc/self/fd")) == opened


NATIVE_WHY = cpu_native.unavailable_reason()
SPEC = IntegrationSpec(dt=0.05, n_transient=6, n_measure=8, sample_every=3)


@pytest.fixture
def forgotten_build():
    """native's remembered build forgotten for the test, and again after it (with
    the environment restored: monkeypatch's undo runs first), so that later tests
    load the real one."""
    cpu_native._built.cache_clear()
    yield
    cpu_native._built.cache_clear()


@pytest.mark.skipif(NATIVE_WHY is not None, reason=f"native CPU pass: {NATIVE_WHY}")
@pytest.mark.parametrize("unusable", [_file_in_the_way, _home_is_a_file])
def test_with_an_unusable_cache_the_engine_runs_numba_with_the_same_numbers(
        monkeypatch, tmp_path, forgotten_build, unusable):
    cfg = StudyConfig(seed=5, nodes=120, m=2, k_num=9, k_min=0.0, k_max=4.0)
    batch = make_batch([0, 1], cfg).batch
    native = CpuEngine()
    assert native.native_reason() is None
    want = native.integrate(batch, SPEC)
    cpu_native._built.cache_clear()
    where = str(unusable(tmp_path, monkeypatch))
    eng = CpuEngine()
    reason = eng.native_reason()
    assert reason is not None and "\n" not in reason and where in reason
    assert reason.startswith("cannot use the build cache directory")
    assert reason in eng.describe() and eng.describe().startswith("cpu: numba")
    assert type(eng.start(batch, SPEC.dt)) is CpuSimulation
    np.testing.assert_array_equal(eng.integrate(batch, SPEC), want)
    # kcbatch info says so, without a traceback
    text = ok(["info"]).stdout
    assert f"native pass: {reason}" in text
    assert f"device gpu-sim : unusable: gpu-sim: {reason}" in text


# --------------------------------------------------------------- 2. the lock file

def test_a_symlinked_lock_file_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("precious\n")
    study = tmp_path / "study"
    study.mkdir()
    (study / LOCK_NAME).symlink_to(victim)
    with pytest.raises(StoreError) as err:
        with study_lock(study):
            pass
    text = str(err.value)
    assert "\n" not in text and str(study / LOCK_NAME) in text and "symbolic link" in text
    assert victim.read_text() == "precious\n"
    # a dangling one is refused too (nothing is created where it points)
    (study / LOCK_NAME).unlink()
    (study / LOCK_NAME).symlink_to(tmp_path / "nowhere")
    with pytest.raises(StoreError, match="symbolic link"):
        with study_lock(study):
            pass
    assert not (tmp_path / "nowhere").exists()


def test_a_lock_file_that_is_not_a_regular_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / LOCK_NAME)
    with pytest.raises(StoreError, match="not a regular file"):
        with study_lock(tmp_path):
            pass


def test_the_lock_file_is_made_private_and_removed_at_the_end(tmp_path):
    old = os.umask(0)
    try:
        with study_lock(tmp_path):
            st = os.lstat(tmp_path / LOCK_NAME)
            assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644
            assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    finally:
        os.umask(old)
    assert not (tmp_path / LOCK_NAME).exists()
    # also when the study ends in an exception
    with pytest.raises(KeyError), study_lock(tmp_path):
        raise KeyError("boom")
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_dead_holders_lock_file_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (tmp_path / LOCK_NAME).write_text(dead.stdout)  # its PID, no flock: the process is gone
    with study_lock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_lock_file_removed_while_being_taken_is_not_trusted(tmp_path, monkeypatch):
    """A holder removes its file on release: a process that opened the old file
    just before may lock it, but it is no longer the file at the path; it must
    take the file there now, which a third process holds."""
    import fcntl
    real_flock = fcntl.flock
    third = []

    def flock(fd, op):
        if not third:  # between our open and our flock: released, then taken anew
            os.unlink(tmp_path / LOCK_NAME)
            fh = open(tmp_path / LOCK_NAME, "a+")
            fh.write("424242\n")
            fh.flush()
            real_flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            third.append(fh)
        return real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    try:
        with pytest.raises(StoreLocked, match=r"\(pid 424242\)"):
            with study_lock(tmp_path):
                pass
    finally:
        for fh in third:
            fh.close()


# --------------------------------------------------------------- 3. creating a store

CFG = dict(runs=3, nodes=60, m=2, k_num=4, t_transient=0.5, t_measure=0.5, sample_every=2,
           seed=2, device="cpu")


def _config(out: Path) -> StudyConfig:
    return StudyConfig(**CFG, out=str(out))


def _assert_fresh(out: Path) -> None:
    """A new study starts in ``out`` (a store with its meta), and nothing but the
    store is left of the failed creation."""
    cfg = _config(out)
    with open_store(cfg, resume=False) as st:
        assert st.config == cfg.to_dict() and st.done_runs() == set()
        np.testing.assert_array_equal(st.k_values, cfg.k_values)
    with Store.open(out / STORE_NAME) as st:
        assert st.config == cfg.to_dict()
    left = {p.name for p in out.iterdir()} - {STORE_NAME, LOCK_NAME}
    assert not [n for n in left if ".creating" in n or n.endswith("-journal")], left


def test_a_failure_while_creating_leaves_no_store(tmp_path, monkeypatch):
    out = tmp_path / "study"
    out.mkdir()

    def full_disk(a):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store_mod, "_dump_array", full_disk)  # after the CREATE TABLEs
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        open_store(_config(out), resume=False)
    monkeypatch.undo()
    assert not store_exists(out / STORE_NAME)
    assert list(out.iterdir()) == []
    with pytest.raises(StoreError, match="nothing to resume"):
        open_store(_config(out), resume=True)
    _assert_fresh(out)


def test_a_process_killed_while_creating_leaves_a_restartable_directory(tmp_path):
    out = tmp_path / "study"
    out.mkdir()
    code = textwrap.dedent(f"""\
        import os, signal, sys
        from kcbatch.results import store
        from kcbatch.protocol.config import StudyConfig
        from kcbatch.run.study import open_store
        def die(a):
            os.kill(os.getpid(), signal.SIGKILL)
        store._dump_array = die  # killed inside the creating transaction
        open_store(StudyConfig(**{CFG!r}, out=sys.argv[1]), resume=False)
        """)
    proc = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True,
                          text=True, cwd=Path(__file__).parents[2], timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not store_exists(out / STORE_NAME)
    left = {p.name for p in out.iterdir()}
    assert f"{STORE_NAME}.creating" in left and STORE_NAME not in left, left
    _assert_fresh(out)  # the killed creation's files replaced, none left


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def _tables_without_meta(path: Path) -> None:
    """What an older kcbatch left when killed after its CREATE TABLEs (each
    committed alone) and before its meta."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.execute("CREATE TABLE runs (run INTEGER PRIMARY KEY)")
    con.execute("PRAGMA journal_mode=WAL")
    con.close()


def _meta_table_only(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.close()


@pytest.mark.parametrize("leftover", [_zero_bytes, _tables_without_meta, _meta_table_only])
def test_an_empty_store_left_by_a_kill_is_restartable(tmp_path, leftover):
    out = tmp_path / "study"
    out.mkdir()
    leftover(out / STORE_NAME)
    assert not store_exists(out / STORE_NAME)
    with pytest.raises(StoreError, match="nothing to resume"):
        open_store(_config(out), resume=True)
    _assert_fresh(out)


@pytest.mark.parametrize("leftover", [_zero_bytes, _tables_without_meta])
def test_an_empty_leftover_blocks_no_scan(tmp_path, leftover):
    """A scan starts in a directory whose store is an empty leftover, and a
    point whose creation was killed is started again like a missing one: its
    records are those of the point as a study of its own."""
    out = tmp_path / "scan"
    out.mkdir()
    leftover(out / STORE_NAME)
    plan = create_scan(StudyConfig(**CFG), "m", [2, 3], out)
    point = plan.point_config(2)
    Path(point.out).mkdir(parents=True)
    leftover(Path(point.out) / STORE_NAME)
    assert point_state(point) == "missing"
    run_scan(plan)
    assert point_state(point) == "done"
    alone = run_study(point.replace(out=str(tmp_path / "alone")))
    with Store.open(Path(point.out) / STORE_NAME) as st:
        assert_same_records(st.records(), alone.records)


def test_a_directory_with_a_store_holding_rows_is_no_scan(tmp_path):
    out = tmp_path / "scan"
    out.mkdir()
    _with_a_row(out / STORE_NAME)
    with pytest.raises(ConfigError, match="holds a study, not a scan"):
        create_scan(StudyConfig(**CFG), "m", [2, 3], out)


def _merge_fails(tmp_path, monkeypatch, where):
    """``kcbatch merge`` into a directory holding an empty leftover, one shard,
    out of space at ``where``: (the merged directory, the shard, the result)."""
    shard = tmp_path / "shard"
    run_study(_config(shard))
    out = tmp_path / "merged"
    out.mkdir()
    _tables_without_meta(out / STORE_NAME)

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / STORE_NAME))
    monkeypatch.setattr(*where, full)
    result = invoke(["merge", out, shard])
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    return out, shard, result


def test_a_merge_failing_before_its_store_exists_says_merge_again(tmp_path, monkeypatch):
    out, shard, result = _merge_fails(tmp_path, monkeypatch, (store_mod, "_dump_array"))
    assert not store_exists(out / STORE_NAME)
    assert result.stderr.endswith("free some space or fix the permissions, then merge again\n")
    ok(["merge", out, shard])  # as it said: nothing to remove
    with Store.open(out / STORE_NAME) as merged, Store.open(shard / STORE_NAME) as one:
        assert_same_records(merged.records(), one.records())


def test_a_merge_failing_after_its_store_exists_says_remove_it(tmp_path, monkeypatch):
    out, _, result = _merge_fails(tmp_path, monkeypatch, (Store, "copy_runs_from"))
    assert store_exists(out / STORE_NAME)
    assert result.stderr.endswith(f"then remove {out} and merge again\n")


def _with_a_row(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.execute("INSERT INTO meta VALUES ('note', 'x')")
    con.commit()
    con.close()


def _another_database(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE photos (name TEXT)")
    con.close()


def _not_sqlite(path: Path) -> None:
    path.write_text("not a database, but someone's file\n" * 10)


@pytest.mark.parametrize("kept", [_with_a_row, _another_database, _not_sqlite])
def test_a_file_that_holds_anything_is_never_replaced(tmp_path, kept):
    out = tmp_path / "study"
    out.mkdir()
    kept(out / STORE_NAME)
    before = (out / STORE_NAME).read_bytes()
    assert store_exists(out / STORE_NAME)
    with pytest.raises(Exception, match="already holds a study"):
        open_store(_config(out), resume=False)
    with pytest.raises(StoreError, match="already exists"):
        Store.create(out / STORE_NAME, {}, np.array([1.0]), "x")
    assert (out / STORE_NAME).read_bytes() == before


def test_creation_never_replaces_a_store_made_meanwhile(tmp_path, monkeypatch):
    """Between the check and the move, another process creates the store: the
    move refuses rather than replace it."""
    (tmp_path / "other").mkdir()
    other = tmp_path / "other" / STORE_NAME
    Store.create(other, {"other": 1}, np.array([2.0]), "other").close()
    path = tmp_path / "study" / STORE_NAME
    path.parent.mkdir()
    real = store_mod._create_schema

    def meanwhile(conn, *args):
        real(conn, *args)
        shutil.copyfile(other, path)

    monkeypatch.setattr(store_mod, "_create_schema", meanwhile)
    with pytest.raises(StoreError, match="already exists"):
        Store.create(path, {"mine": 1}, np.array([1.0]), "x")
    monkeypatch.undo()
    with Store.open(path) as st:
        assert st.config == {"other": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == [STORE_NAME]

