"""How the time per run grows with N and with m.

    python bench/scaling.py --device cpu --out bench/measurements/scaling_cpu.json
    python bench/scaling.py --device gpu --batch 64 --out bench/measurements/scaling_gpu.json
    python bench/scaling.py --plot        # bench/scaling.png from the JSONs there are

Each point is one BA network (``--batch`` networks for a GPU, where one small network
cannot fill the device) with nK = 50 couplings and the default protocol's dt, float32.
Only the cost per RK4 step matters, so each point times a few steps (fewer for larger
N) after one untimed warm-up step and reports

    time per run = (seconds per step) x 200 (the default run's steps) / batch,

the best of ``--repeats`` timings, in wall-clock and in CPU seconds of this process
(``cpu_s_per_run``: on a shared machine other processes stretch the wall clock of a
multi-threaded run far more than its CPU time; ``--threads`` sets numba's threads).
The timed steps go through ``Simulation.measure`` with a single sample, whose result is
a host array, so a GPU has finished them.

Points: N = 10^3, 10^4, 10^5, 10^6 at m = 3, and m = 1, 2, 3, 5, 10 at N = 10^4
(``--nodes``, ``--m`` and ``--k-num`` change them: ``bench/gpu_check --device gpu-sim``
runs a tiny set). A point whose ``--batch`` exceeds the kernels' 32-bit indexing or,
on a GPU, what ``--batch auto`` would fit in free memory runs with that smaller batch
(N = 10^6 at 64 would need ~75 GiB; 42 networks is the indexing limit there); each
point records its batch.

The plot marks where a GPU kernel that keeps a whole network in one block's shared
memory stops fitting (``smem_node_limit``), with the layout of ``integrate_shared``
(kernels/kuramoto.cu; row pointers stay in global memory): per node the (sin, cos)
float2 (8 bytes) and a uint16 neighbour index per edge entry (2 x mean degree 2m
bytes), plus per block 1024 double2 reduction slots and ~300 hub-chunk partial sums,
against 227 KB per block on an H100.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MEASUREMENTS = HERE / "measurements"
N_VALUES = (1_000, 10_000, 100_000, 1_000_000)
M_VALUES = (1, 2, 3, 5, 10)
N_FOR_M = 10_000
M_FOR_N = 3
K_NUM = 50
RUN_STEPS = 200  # the default run: (5 + 5) / 0.05
# Shared memory per block (H100, opt-in maximum) and the bytes a node needs there.
SMEM_BYTES = 227 * 1024
SMEM_SINCOS = 8
SMEM_INDEX = 2
SMEM_PER_BLOCK = 1024 * 16 + 300 * 8  # reduction slots, hub-chunk partial sums


def smem_node_limit(m: int) -> int:
    """Largest N whose BA(m) network (mean degree 2m) fits one block's shared memory."""
    return (SMEM_BYTES - SMEM_PER_BLOCK) // (SMEM_SINCOS + SMEM_INDEX * 2 * m)


def timed_steps(nodes: int) -> int:
    """Steps to time at N nodes: ~10^6 node-steps, at least 2."""
    return max(2, min(100, 1_000_000 // nodes))


def fitting_batch(device: str, cfg, engine, batch: int) -> int:
    """``batch``, or fewer networks where the kernels' 32-bit indexing or (on a GPU)
    the free device memory would not take it: N=10^6 at batch 64 needs ~75 GiB."""
    from kcbatch.run.batching import batch_shape, unit_shape
    fit = min(batch, engine.batch_limit(batch_shape(cfg)))
    if device == "gpu":
        fit = min(fit, engine.auto_batch(unit_shape(cfg)))
    return max(1, fit)


def measure_point(device: str, nodes: int, m: int, batch: int, repeats: int,
                  k_num: int = K_NUM) -> dict:
    from kcbatch.engines import get_engine
    from kcbatch.inputs.pipeline import make_batch
    from kcbatch.protocol.config import StudyConfig

    cfg = StudyConfig(seed=2026, nodes=nodes, m=m, k_num=k_num, device=device)
    engine = get_engine(device)
    batch = fitting_batch(device, cfg, engine, batch)
    b = make_batch(list(range(batch)), cfg).batch
    sim = engine.start(b, cfg.spec.dt)
    steps = timed_steps(nodes)
    sim.measure(1, 1)  # warm-up: compilation, first touch of the state
    best, best_cpu = np.inf, np.inf
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        sim.measure(steps, steps)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    per_step = best / steps
    return {"nodes": nodes, "m": m, "batch": batch, "nnz": int(b.nnz), "timed_steps": steps,
            "s_per_step": per_step, "s_per_run": per_step * RUN_STEPS / batch,
            "cpu_s_per_run": best_cpu / steps * RUN_STEPS / batch,
            "ns_per_edge_k": per_step / (b.nnz * k_num) * 1e9}


def run(device: str, batch: int, repeats: int, out: Path, n_values=N_VALUES,
        m_values=M_VALUES, k_num: int = K_NUM) -> None:
    from kcbatch.engines import get_engine

    points = []
    todo = [(n, M_FOR_N) for n in n_values] + [(N_FOR_M, m) for m in m_values if m != M_FOR_N]
    for nodes, m in todo:
        p = measure_point(device, nodes, m, batch, repeats, k_num)
        note = f" (batch {p['batch']}: {batch} does not fit)" if p["batch"] != batch else ""
        print(f"N={nodes:>9,} m={m:>2}: {p['s_per_run']:.4g} s per run, "
              f"{p['cpu_s_per_run']:.4g} CPU s ({p['ns_per_edge_k']:.3g} ns per edge entry "
              f"and K){note}", flush=True)
        points.append(p)
    import numba
    doc = {"device": device, "engine": get_engine(device).describe(),
           "machine": platform.processor() or platform.machine(),
           "numba_threads": numba.get_num_threads(), "k_num": k_num, "run_steps": RUN_STEPS,
           "date": time.strftime("%Y-%m-%d"), "points": points}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")


def plot(out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = [json.loads(p.read_text()) for p in sorted(MEASUREMENTS.glob("scaling_*.json"))]
    if not docs:
        sys.exit(f"no scaling_*.json in {MEASUREMENTS}: run with --device first")
    fig, (ax_n, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for doc in docs:
        # the CPU's own seconds: its wall clock on a shared machine measures the others
        key = "cpu_s_per_run" if doc["device"] == "cpu" else "s_per_run"
        # the engine's first clause ("cpu: native pass (...)", "gpu: NVIDIA H200, ..."):
        # the whole description does not fit a legend
        label = textwrap.shorten(doc["engine"].split(";")[0], 48, placeholder="...")
        if key != "s_per_run":
            label += ", CPU seconds"
        by_n = sorted((p for p in doc["points"] if p["m"] == M_FOR_N), key=lambda p: p["nodes"])
        by_m = sorted((p for p in doc["points"] if p["nodes"] == N_FOR_M), key=lambda p: p["m"])
        ax_n.loglog([p["nodes"] for p in by_n], [p[key] for p in by_n], "o-", label=label)
        ax_m.plot([p["m"] for p in by_m], [p[key] for p in by_m], "o-", label=label)
    limit_n = smem_node_limit(M_FOR_N)
    ax_n.axvline(limit_n, color="grey", ls="--",
                 label=f"shared-memory limit, m={M_FOR_N}: N={limit_n:,}")
    m_fit = [m for m in M_VALUES if smem_node_limit(m) >= N_FOR_M]
    if m_fit:
        ax_m.axvspan(min(M_VALUES) - 0.5, max(m_fit) + 0.5, color="grey", alpha=0.15,
                     label=f"fits shared memory at N={N_FOR_M:,}")
    ax_n.set(xlabel="nodes N (BA, m=3)", ylabel="seconds per run (50 K, 200 RK4 steps)",
             title="time per run vs N")
    ax_m.set(xlabel=f"m (BA, N={N_FOR_M:,}; mean degree 2m)", ylabel="seconds per run",
             yscale="log", title="time per run vs m")
    for ax in (ax_n, ax_m):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"shared memory per block {SMEM_BYTES // 1024} KB (H100): "
                 f"{SMEM_SINCOS} + {SMEM_INDEX} x 2m bytes per node + "
                 f"{SMEM_PER_BLOCK // 1024} KB per block",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


def table(out=sys.stdout) -> None:
    """The README's table (markdown) from the JSONs there are."""
    docs = [json.loads(p.read_text()) for p in sorted(MEASUREMENTS.glob("scaling_*.json"))]
    print("| N | m | " + " | ".join(f"{d['device']} ({d['numba_threads']} numba threads) s/run"
                                    if d["device"] == "cpu" else f"{d['device']} s/run"
                                    for d in docs) + " |", file=out)
    print("|---|---|" + "---|" * len(docs), file=out)
    keys = sorted({(p["nodes"], p["m"]) for d in docs for p in d["points"]},
                  key=lambda k: (k[1] != M_FOR_N, k[0], k[1]))
    for n, m in keys:
        cells = []
        for d in docs:
            p = [q for q in d["points"] if (q["nodes"], q["m"]) == (n, m)]
            if not p:
                cells.append("")
            elif d["device"] == "cpu":  # host CPU seconds mean something only there
                cells.append(f"{p[0]['s_per_run']:.3g} ({p[0]['cpu_s_per_run']:.3g} CPU s)")
            else:
                cells.append(f"{p[0]['s_per_run']:.3g}")
        print(f"| {n:,} | {m} | " + " | ".join(cells) + " |", file=out)


def _ints(text: str) -> tuple[int, ...]:
    """'1000,10000' -> (1000, 10000); argparse reports a bad list with its text."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be >= 1")
    return values


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", choices=["cpu", "gpu", "gpu-sim"])
    ap.add_argument("--batch", type=int, default=1, help="networks per batch (default 1)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, help="numba threads (default: numba's)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--nodes", type=_ints, default=N_VALUES,
                    help=f"N of the points at m={M_FOR_N}, comma-separated (default "
                         f"{','.join(map(str, N_VALUES))})")
    ap.add_argument("--m", type=_ints, default=M_VALUES,
                    help=f"m of the points at N={N_FOR_M} "
                         f"(default {','.join(map(str, M_VALUES))})")
    ap.add_argument("--k-num", type=int, default=K_NUM, help=f"couplings K (default {K_NUM})")
    ap.add_argument("--plot", action="store_true", help=f"write {HERE / 'scaling.png'}")
    ap.add_argument("--table", action="store_true", help="print the README table")
    a = ap.parse_args(argv)
    if a.device:
        if (a.batch < 1 or a.repeats < 1 or a.k_num < 1
                or (a.threads is not None and a.threads < 1)):
            ap.error("--batch, --repeats, --k-num and --threads must be >= 1")
        if a.threads is not None:
            import numba
            numba.set_num_threads(min(a.threads, numba.config.NUMBA_NUM_THREADS))
        run(a.device, a.batch, a.repeats,
            a.out or MEASUREMENTS / f"scaling_{a.device}.json", a.nodes, a.m, a.k_num)
    if a.plot:
        plot(HERE / "scaling.png")
    if a.table:
        table()
    if not (a.device or a.plot or a.table):
        ap.error("nothing to do: give --device, --plot or --table")


if __name__ == "__main__":
    main()
