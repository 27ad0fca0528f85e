// The CPU engine's native RK4 pass: kcbatch.engines.cpu.stage.rk4_stage, the
// same arithmetic in the same order, over blocks of K taken one network at a time.
//
// Layout (kcbatch/engines/cpu/native.py packs it, on 64-byte cache lines): the nK
// systems of a row are cut into nb blocks of L = V * W lanes (W = 8 float32 or
// 4 float64 lanes per 32-byte vector, V vectors per block; the last block
// padded with K = 0). Per block, a row's state is one record:
//   X     [nb, R, 2, L]   sin of its L stage points, then cos
//   theta [nb, R, L]      phase at the start of the step
//   acc   [nb, R, L]      running f1 + 2 f2 + 2 f3
// so that one neighbour's contribution to a block is 2 V contiguous vectors.
// A thread takes one network's rows of one block (a task) through a segment of
// a call's steps with no barrier (run_call, below), so its working set is that
// network's block, where the numba pass streams all nK of the batch every stage.
//
// Bit for bit the numba pass: every (row, K) adds its neighbours in CSR order
// from the first, forms f = om + (K w) (cos_i S - sin_i C), the same RK4
// combination and wrap, and the same Cody-Waite + minimax sin/cos with the
// libm fallback beyond its range. Compiled without FMA contraction or
// fast-math, as the numba pass and the CUDA kernels are; 32-byte vector
// arithmetic (GCC/Clang vector extensions) is the scalar IEEE operation per lane.

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(__AVX__)
#include <immintrin.h>
#endif

// Rows per tile: their stage points first, then their sin/cos (rows_stage).
#ifndef KC_TILE
#define KC_TILE 32
#endif
// Neighbour entries ahead to prefetch in the gathers (0: none).
#ifndef KC_PREFETCH
#define KC_PREFETCH 8
#endif

namespace {

// ---- 32-byte vectors (GCC/Clang vector extensions) ----------------------------
// The lanes of a block: 8 float32 or 4 float64 systems. Arithmetic on these
// types is IEEE per lane, exactly the scalar operations; only rounding to
// an integer needs an intrinsic to stay vectorised.

template <typename real> struct Lanes;
template <> struct Lanes<float> {
    typedef float v __attribute__((vector_size(32)));
    typedef int32_t vi __attribute__((vector_size(32)));
};
template <> struct Lanes<double> {
    typedef double v __attribute__((vector_size(32)));
    typedef int64_t vi __attribute__((vector_size(32)));
};
template <typename real> using vec = typename Lanes<real>::v;
template <typename real> using ivec = typename Lanes<real>::vi;
template <typename real> constexpr int lanes() { return 32 / sizeof(real); }

template <typename real> inline vec<real> load(const real *p) {
    vec<real> x;
    std::memcpy(&x, p, sizeof x);  // unaligned load
    return x;
}
template <typename real> inline void store(real *p, vec<real> x) { std::memcpy(p, &x, sizeof x); }

inline vec<float> round_even(vec<float> x) {
#if defined(__AVX__)
    return (vec<float>)_mm256_round_ps((__m256)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
    for (int l = 0; l < 8; ++l) x[l] = __builtin_rintf(x[l]);
    return x;
#endif
}
inline vec<double> round_even(vec<double> x) {
#if defined(__AVX__)
    return (vec<double>)_mm256_round_pd((__m256d)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
    for (int l = 0; l < 4; ++l) x[l] = __builtin_rint(x[l]);
    return x;
#endif
}
inline vec<float> floor_lanes(vec<float> x) {
#if defined(__AVX__)
    return (vec<float>)_mm256_floor_ps((__m256)x);
#else
    for (int l = 0; l < 8; ++l) x[l] = std::floor(x[l]);
    return x;
#endif
}
inline vec<double> floor_lanes(vec<double> x) {
#if defined(__AVX__)
    return (vec<double>)_mm256_floor_pd((__m256d)x);
#else
    for (int l = 0; l < 4; ++l) x[l] = std::floor(x[l]);
    return x;
#endif
}

inline bool all_set(ivec<float> m) {
#if defined(__AVX__)
    return _mm256_movemask_ps((__m256)m) == 0xff;
#else
    for (int l = 0; l < 8; ++l) if (m[l] == 0) return false;
    return true;
#endif
}
inline bool all_set(ivec<double> m) {
#if defined(__AVX__)
    return _mm256_movemask_pd((__m256d)m) == 0xf;
#else
    for (int l = 0; l < 4; ++l) if (m[l] == 0) return false;
    return true;
#endif
}

// ---- sin/cos: kcbatch/engines/cpu/trig.py, operation for operation ----------

template <typename real>
inline void quadrant(vec<real> s, vec<real> c, ivec<real> q, vec<real> &so, vec<real> &co) {
    const ivec<real> swap = (q & 1) != 0, flip = (q & 2) != 0;
    const vec<real> s1 = swap ? c : s;
    const vec<real> c1 = swap ? -s : c;
    so = flip ? -s1 : s1;
    co = flip ? -c1 : c1;
}

// constants as numba sees them: the Python float (double) rounded to float32
#define F32(x) static_cast<float>(x)

inline void sincos_poly(vec<float> x, vec<float> &so, vec<float> &co) {
    const vec<float> qf = round_even(x * F32(0.63661977236758134308));
    const vec<float> r = ((x - qf * F32(1.5703125)) - qf * F32(4.837512969970703125e-4))
                         - qf * F32(7.54978995489188216e-8);
    const vec<float> z = r * r;
    const vec<float> s = r + r * z * (F32(-1.6666654611e-1) + z * (F32(8.3321608736e-3)
                                      + z * F32(-1.9515295891e-4)));
    const vec<float> c = F32(1.0) - F32(0.5) * z + z * z * (F32(4.166664568298827e-2) + z * (
                             F32(-1.388731625493765e-3) + z * F32(2.443315711809948e-5)));
    quadrant<float>(s, c, __builtin_convertvector(qf, ivec<float>), so, co);
}

inline void sincos_poly(vec<double> x, vec<double> &so, vec<double> &co) {
    const vec<double> qf = round_even(x * 0.63661977236758134308);
    const vec<double> r = ((x - qf * 1.57079632673412561417e+00)
                           - qf * 6.07710050630396597660e-11) - qf * 2.02226624879595063154e-21;
    const vec<double> z = r * r;
    const vec<double> s = r + r * z * (-1.66666666666666324348e-01 + z * (
        8.33333333332248946124e-03 + z * (-1.98412698298579493134e-04 + z * (
            2.75573137070700676789e-06 + z * (-2.50507602534068634195e-08
                                              + z * 1.58969099521155010221e-10)))));
    const vec<double> c = 1.0 - 0.5 * z + z * z * (4.16666666666666019037e-02 + z * (
        -1.38888888888741095749e-03 + z * (2.48015872894767294178e-05 + z * (
            -2.75573143513906633035e-07 + z * (2.08757232129817482790e-09
                                               + z * -1.13596475577881948265e-11)))));
    quadrant<double>(s, c, __builtin_convertvector(qf, ivec<double>), so, co);
}

// cpu/trig.py's LIMIT32 / LIMIT64: beyond, the reduction loses accuracy and libm is used
template <typename real> constexpr real trig_limit();
template <> constexpr float trig_limit<float>() { return 6.0e4f; }
template <> constexpr double trig_limit<double>() { return 1.0e9; }

// sin/cos of a block's points: the polynomial, then libm for any lane beyond
// its range or not finite (cpu/trig.py's fix_large)
template <typename real>
inline void sincos_lanes(vec<real> x, vec<real> &so, vec<real> &co) {
    sincos_poly(x, so, co);
    constexpr real lim = trig_limit<real>();
    const ivec<real> inside = (x <= lim) & (x >= -lim);  // false for NaN
    if (!all_set(inside)) {
        for (int l = 0; l < lanes<real>(); ++l) {
            if (inside[l] == 0) {
                so[l] = std::sin(x[l]);
                co[l] = std::cos(x[l]);
            }
        }
    }
}

// ---- one RK4 stage of one row's block of systems ---------------------------

template <typename real>
struct Graph {
    const int64_t *indptr;   // [R+1]
    const int32_t *indices;  // [nnz]
    const real *weight;      // [R]
    const real *omega;       // [R]
    const int32_t *row_net;  // [R]
    int64_t nnz;
};

// The point of row i's next stage, pt [L] (and its RK4 bookkeeping): the
// neighbours' sums, the derivative, the RK4 combination (and wrap at stage 3).
template <typename real, int V>
inline void row_point(const Graph<real> &g, const real *cpl,  // cpl: [B, L] this block's K
                      const real *Xin,                       // [R, 2, L]
                      real *th, real *ac,                    // [R, L]
                      int64_t i, int stage, real dt, real half, real sixth, real two_pi,
                      real *pt) {
    constexpr int W = lanes<real>(), L = V * W;
    vec<real> ss[V], cc[V];
    const int64_t lo = g.indptr[i], hi = g.indptr[i + 1];
    if (hi > lo) {
        const real *x = Xin + static_cast<int64_t>(g.indices[lo]) * 2 * L;
        for (int v = 0; v < V; ++v) {
            ss[v] = load<real>(x + v * W);
            cc[v] = load<real>(x + L + v * W);
        }
        for (int64_t e = lo + 1; e < hi; ++e) {
#if KC_PREFETCH > 0
            // the gathers miss L2 (a block's X is 0.6-2.5 MB at 10^4 rows): ask for
            // every cache line of a record some entries ahead
            const int64_t ahead = e + KC_PREFETCH < g.nnz ? e + KC_PREFETCH : g.nnz - 1;
            const char *rec = reinterpret_cast<const char *>(
                Xin + static_cast<int64_t>(g.indices[ahead]) * 2 * L);
            for (int b = 0; b < static_cast<int>(2 * L * sizeof(real)); b += 64)
                __builtin_prefetch(rec + b);
#endif
            x = Xin + static_cast<int64_t>(g.indices[e]) * 2 * L;
            for (int v = 0; v < V; ++v) {
                ss[v] += load<real>(x + v * W);
                cc[v] += load<real>(x + L + v * W);
            }
        }
    } else {
        for (int v = 0; v < V; ++v) ss[v] = cc[v] = vec<real>{};
    }
    const real w = g.weight[i], om = g.omega[i];
    const real *kp = cpl + static_cast<int64_t>(g.row_net[i]) * L;
    const real *xi = Xin + i * 2 * L;
    for (int v = 0; v < V; ++v) {
        real *tp = th + i * L + v * W, *ap = ac + i * L + v * W;
        const vec<real> s_i = load<real>(xi + v * W), c_i = load<real>(xi + L + v * W);
        const vec<real> t = load<real>(tp);
        vec<real> f = om + load<real>(kp + v * W) * w * (c_i * ss[v] - s_i * cc[v]);
        if (stage == 0) {
            store<real>(ap, f);
            f = t + half * f;
        } else if (stage == 1) {
            store<real>(ap, load<real>(ap) + real(2.0) * f);
            f = t + half * f;
        } else if (stage == 2) {
            store<real>(ap, load<real>(ap) + real(2.0) * f);
            f = t + dt * f;
        } else {
            vec<real> u = t + sixth * (load<real>(ap) + f);
            u = u - two_pi * floor_lanes(u / two_pi);
            // floor rounding can leave u == 2pi or a hair below 0
            u = u >= two_pi ? u - two_pi : u;
            u = u < real(0.0) ? u + two_pi : u;
            store<real>(tp, u);
            f = u;
        }
        store<real>(pt + v * W, f);
    }
}

// One stage of rows [r0, r1): the points of a tile of rows first, then their
// sin/cos. Row by row, each row's trig waited on its own gather (a chain
// too long for the out-of-order window); a tile's trig is independent work.
template <typename real, int V>
inline void rows_stage(const Graph<real> &g, const real *cpl, const real *Xin, real *Xout,
                       real *th, real *ac, int64_t r0, int64_t r1, int stage, real dt,
                       real half, real sixth, real two_pi) {
    constexpr int W = lanes<real>(), L = V * W;
    alignas(64) real pt[KC_TILE * L];
    for (int64_t t0 = r0; t0 < r1; t0 += KC_TILE) {
        const int64_t t1 = t0 + KC_TILE < r1 ? t0 + KC_TILE : r1;
        for (int64_t i = t0; i < t1; ++i)
            row_point<real, V>(g, cpl, Xin, th, ac, i, stage, dt, half, sixth, two_pi,
                      pt + (i - t0) * L);
        for (int64_t i = t0; i < t1; ++i) {
            real *xo = Xout + i * 2 * L;
            for (int v = 0; v < V; ++v) {
                vec<real> so, co;
                sincos_lanes<real>(load<real>(pt + (i - t0) * L + v * W), so, co);
                store<real>(xo + v * W, so);
                store<real>(xo + L + v * W, co);
            }
        }
    }
}

// ---- a call: groups of blocks, their tasks, the threads ----------------------
//
// A call advances every system n_steps steps. Its K are in groups (native.py's
// plan), each cut into nb blocks of its own width. A block is independent of every
// other block through all the steps (its K are other systems), and within a block
// a network reads only its own rows (the batch is block-diagonal).
//
// Task groups: the threads take (network, block) tasks from a shared schedule
// (TaskSchedule), a segment of steps at a time, always the free task that is least
// advanced, so no thread idles while a task it could take is left; a task's steps
// run in order, by whichever thread holds it, and no thread waits for another before
// the call's end.
// With few tasks (fewer than native.py's TASKS_PER_THREAD per thread), segments are
// ~segment_work system-steps (a few ms), so a thread slowed by another process on
// its core (or descheduled) holds back at most one segment while the others take the
// rest; with many tasks, a task goes through the whole call at once (its state stays
// in one core's caches) and the schedule is a queue.
// Shared groups (fewer blocks than threads): all threads take chunks of one task's
// rows, a chunk at a time from a counter, then wait for each other (Barrier) at the
// end of every stage: a stage reads its neighbours' points of the stage before.
// Beside another busy process a team that waits at every stage can do less than one
// thread alone (the descheduled member holds up every stage): every solo_window_ns
// the last thread at a barrier compares the team's chunks per second with the
// fastest member's per second of computing (SoloWatch), and when the team's are
// below solo_ratio times those in two windows in a row (not counting the call's
// first), that member finishes the call's shared stages alone and the others
// leave; the next call starts as a team again.
//
// The threads are std::threads made per call and joined at its end (a thread with
// no work left exits; the join sleeps); a thread at a barrier spins for at most
// SPIN_NS and then sleeps, so a core that another process needs is never held by a
// waiting thread (OpenMP's
// libgomp spins ~0.3 M iterations at each barrier and after each parallel region
// unless OMP_WAIT_POLICY is set before it starts, which a library cannot ensure).
// Which thread computes a (row, K) value never changes it, so every value is the
// same whatever the threads, the groups, the segments or the schedule.

// cpu relax for a spin-wait
inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// Spin before sleeping: a wait this short is cheaper spun than slept and woken.
constexpr int64_t SPIN_NS = 20000;

// A reusable barrier for `n` threads: the last to arrive runs `on_last` (with
// every other thread still waiting), then releases them. Waiters spin up to
// SPIN_NS, then sleep on a condition variable.
class Barrier {
  public:
    explicit Barrier(int n) : n_(n) {}
    template <typename F> void wait(F on_last) {
        const int64_t g = gen_.load(std::memory_order_acquire);
        if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
            arrived_.store(0, std::memory_order_relaxed);
            on_last();
            {
                std::lock_guard<std::mutex> lock(m_);
                gen_.store(g + 1, std::memory_order_release);
            }
            cv_.notify_all();
            return;
        }
        const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(SPIN_NS);
        for (int i = 0;; ++i) {
            if (gen_.load(std::memory_order_acquire) != g) return;
            relax();
            if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) break;
        }
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [&] { return gen_.load(std::memory_order_acquire) != g; });
    }

  private:
    const int n_;
    std::atomic<int> arrived_{0};
    std::atomic<int64_t> gen_{0};
    std::mutex m_;
    std::condition_variable cv_;
};

inline int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Consecutive slow windows after which a shared team leaves its stages to one member,
// and a call's first windows, which never count (its threads were just made and
// placed: quiet, 1 in 10 first windows of 2 ms had a team slower than one thread,
// 1 in 250 later ones). One slow window is a blip (another process woken for a
// moment), which must not leave the rest of the call to one thread.
constexpr int SOLO_AFTER = 2;
constexpr int SOLO_SKIP = 1;

// What each member of a shared team did in the current window: chunks computed
// and nanoseconds spent computing them (descheduled time included). A member
// writes only its own slots, before it reaches a barrier; the last thread at a
// barrier (every other one waiting in it) reads and resets them, so the barrier
// orders every access. The first window starts at the first barrier, after the
// threads are made.
struct SoloWatch {
    std::vector<int64_t> chunks, busy_ns;
    int64_t start = -1;
    int solo = -1;    // the member that goes on alone, once chosen
    int slow = 0;     // windows in a row in which the team was slower than ratio allows
    int windows = 0;  // windows ended so far
    double ratio;
    int64_t window_ns;

    SoloWatch(int team, double ratio_, int64_t window_ns_)
        : chunks(team, 0), busy_ns(team, 0), ratio(ratio_), window_ns(window_ns_) {}

    // at a barrier, by its last thread: at the end of a window, choose the
    // fastest member to go on alone if the team did fewer chunks per second
    // than ratio x what that member did per second of its computing
    void decide() {
        if (solo >= 0 || ratio <= 0.0) return;
        const int64_t now = now_ns();
        if (start >= 0 && now - start < window_ns) return;
        if (start >= 0 && ++windows > SOLO_SKIP) {
            const double span = static_cast<double>(now - start > 0 ? now - start : 1);
            double team = 0.0, best = 0.0;
            int fastest = 0;
            for (size_t t = 0; t < chunks.size(); ++t) {
                team += static_cast<double>(chunks[t]);
                const double rate = busy_ns[t] > 0 ? chunks[t] / static_cast<double>(busy_ns[t])
                                                   : 0.0;
                if (rate > best) {
                    best = rate;
                    fastest = static_cast<int>(t);
                }
            }
            slow = best > 0.0 && team / span < ratio * best ? slow + 1 : 0;
            if (slow >= SOLO_AFTER) solo = fastest;
        }
        for (size_t t = 0; t < chunks.size(); ++t) chunks[t] = busy_ns[t] = 0;
        start = now;
    }
};

// Runs body(thread) on up to n_threads threads (the caller's among them) and
// returns when all have; setup(team) first, once the team is known (the threads
// that did start: a thread that cannot be made is done without).
template <typename S, typename F> void run_team(int n_threads, S setup, F body) {
    std::mutex m;
    std::condition_variable cv;
    int team = -1;  // set once the threads are made
    auto member = [&](int id) {
        {
            std::unique_lock<std::mutex> lock(m);
            cv.wait(lock, [&] { return team >= 0; });
        }
        body(id);
    };
    std::vector<std::thread> threads;
    for (int id = 1; id < n_threads; ++id) {
        try {
            threads.emplace_back(member, id);
        } catch (...) {  // no more threads: the team is those made
            break;
        }
    }
    setup(1 + static_cast<int>(threads.size()));
    {
        std::lock_guard<std::mutex> lock(m);
        team = 1 + static_cast<int>(threads.size());
    }
    cv.notify_all();
    body(0);
    for (auto &t : threads) t.join();
}

// What a call shares between its groups.
template <typename real>
struct Call {
    Graph<real> g;
    int64_t rows, n_networks;
    const int64_t *node_offset;   // [B + 1] first row of each network
    const int64_t *chunks;        // row boundaries of equal work,
    const int64_t *chunk_offset;  // network b's: chunks[co[b]..co[b+1]]
    int64_t n_steps;
    real dt, half, sixth, two_pi;
    int64_t snap_first, snap_every;  // snapshots after steps first, first + every, ... (from 1)
    // the snapshot index after `done` steps of this call, -1 for none
    int64_t snap_index(const real *snap, int64_t done) const {
        if (snap == nullptr || done < snap_first || (done - snap_first) % snap_every) return -1;
        return (done - snap_first) / snap_every;
    }
};

// One group: nb blocks of L = V * W lanes.
template <typename real>
struct Group {
    int vecs;
    int64_t L, nb;
    real *X0, *X1, *theta, *acc;  // [nb, R, 2, L] x 2, [nb, R, L] x 2
    real *snap;                   // [n_snap, nb, R, 2, L] or null
    std::vector<real> cpl;        // [nb, B, L]: each block's couplings, padded with K = 0
};

// One stage of rows [r0, r1) of block blk at step s (0-based) of a shared group;
// after stage 3, their snapshot if step s + 1 is a sampling step.
template <typename real, int V>
void block_stage(const Call<real> &c, const Group<real> &gr, int64_t blk, int64_t r0,
                 int64_t r1, int64_t s, int stage) {
    constexpr int L = V * lanes<real>();
    const int64_t X_block = c.rows * 2 * L, T_block = c.rows * L;
    real *X[2] = {gr.X0 + blk * X_block, gr.X1 + blk * X_block};
    rows_stage<real, V>(c.g, gr.cpl.data() + blk * c.n_networks * L, X[stage % 2],
                        X[1 - stage % 2], gr.theta + blk * T_block, gr.acc + blk * T_block, r0,
                        r1, stage, c.dt, c.half, c.sixth, c.two_pi);
    const int64_t at = stage == 3 ? c.snap_index(gr.snap, s + 1) : -1;
    if (at >= 0)
        std::memcpy(gr.snap + (at * gr.nb + blk) * X_block + r0 * 2 * L, X[0] + r0 * 2 * L,
                    (r1 - r0) * 2 * L * sizeof(real));
}

// f(std::integral_constant<int, V>) for the group's block width V (vectors).
template <typename F>
void with_vecs(int vecs, F &&f) {
    switch (vecs) {
        case 1: f(std::integral_constant<int, 1>{}); break;
        case 2: f(std::integral_constant<int, 2>{}); break;
        case 3: f(std::integral_constant<int, 3>{}); break;
        default: f(std::integral_constant<int, 4>{}); break;
    }
}

// Steps [s0, s1) of one network's rows [r0, r1) of block blk, stage after stage
// (the snapshots of those rows after each sampling step).
template <typename real>
void group_steps(const Call<real> &c, const Group<real> &gr, int64_t blk, int64_t r0, int64_t r1,
                 int64_t s0, int64_t s1) {
    with_vecs(gr.vecs, [&](auto v) {
        for (int64_t s = s0; s < s1; ++s)
            for (int stage = 0; stage < 4; ++stage)
                block_stage<real, decltype(v)::value>(c, gr, blk, r0, r1, s, stage);
    });
}

template <typename real>
void group_stage(const Call<real> &c, const Group<real> &gr, int64_t blk, int64_t r0, int64_t r1,
                 int64_t s, int stage) {
    with_vecs(gr.vecs, [&](auto v) {
        block_stage<real, decltype(v)::value>(c, gr, blk, r0, r1, s, stage);
    });
}

// The (group, network, block) tasks of the task groups and their progress.
// claim() gives the free task with the fewest steps done (ties: the task this
// thread ran last, whose state is in its caches, then the first), for up to its
// segment of steps; release() records them. With segment_work 0, a task's
// segment is the whole call and tasks are handed out in order.
struct TaskSchedule {
    struct Task {
        int group;
        int64_t net, blk, segment;  // segment: steps per claim
    };
    std::vector<Task> tasks;
    std::vector<int64_t> done;
    std::vector<char> busy;
    int64_t n_steps = 0;
    bool whole = true;
    std::atomic<int64_t> next{0};  // whole: the next task
    std::mutex m;

    // (task, s0, s1), or task -1 when no free task has steps left
    void claim(int64_t last, int64_t &task, int64_t &s0, int64_t &s1) {
        task = -1;
        if (whole) {
            const int64_t t = next.fetch_add(1);
            if (t < static_cast<int64_t>(tasks.size())) {
                task = t;
                s0 = 0;
                s1 = n_steps;
            }
            return;
        }
        std::lock_guard<std::mutex> lock(m);
        for (int64_t t = 0; t < static_cast<int64_t>(tasks.size()); ++t) {
            if (busy[t] || done[t] >= n_steps) continue;
            if (task < 0 || done[t] < done[task] || (done[t] == done[task] && t == last))
                task = t;
        }
        if (task < 0) return;
        busy[task] = 1;
        s0 = done[task];
        s1 = s0 + tasks[task].segment < n_steps ? s0 + tasks[task].segment : n_steps;
    }
    void release(int64_t task, int64_t s1) {
        if (whole) return;
        std::lock_guard<std::mutex> lock(m);
        done[task] = s1;
        busy[task] = 0;
    }
};

// n_steps RK4 steps of every system of the call's groups (see above); 1 when a
// shared team left its stages to one member (SoloWatch), else 0.
template <typename real>
int64_t run_call(const Call<real> &c, std::vector<Group<real>> &groups,
                 const int64_t *desc,  // [n_groups, 4]: k0, k1, vecs, by_block
                 const real *couplings, int64_t k_stride, int n_threads,
                 int64_t segment_work, double solo_ratio, int64_t solo_window_ns) {
    TaskSchedule sched;
    sched.n_steps = c.n_steps;
    std::vector<int> shared;
    for (int gi = 0; gi < static_cast<int>(groups.size()); ++gi) {
        Group<real> &gr = groups[gi];
        const int64_t k0 = desc[gi * 4], n_k = desc[gi * 4 + 1] - k0;
        gr.L = gr.vecs * lanes<real>();
        gr.nb = (n_k + gr.L - 1) / gr.L;
        gr.cpl.assign(static_cast<size_t>(gr.nb * c.n_networks * gr.L), real(0));
        for (int64_t b = 0; b < c.n_networks; ++b)
            for (int64_t k = 0; k < n_k; ++k)
                gr.cpl[((k / gr.L) * c.n_networks + b) * gr.L + k % gr.L] =
                    couplings[b * k_stride + k0 + k];
        if (!desc[gi * 4 + 3]) {
            shared.push_back(gi);
            continue;
        }
        for (int64_t net = 0; net < c.n_networks; ++net) {
            const int64_t net_rows = c.node_offset[net + 1] - c.node_offset[net];
            const int64_t work = (net_rows > 0 ? net_rows : 1) * gr.L;  // system-steps per step
            const int64_t seg = segment_work > 0 ? segment_work / work : c.n_steps;
            for (int64_t blk = 0; blk < gr.nb; ++blk)
                sched.tasks.push_back({gi, net, blk, seg > 1 ? seg : 1});
        }
    }
    sched.whole = segment_work <= 0;
    sched.done.assign(sched.tasks.size(), 0);
    sched.busy.assign(sched.tasks.size(), 0);
    if (static_cast<int64_t>(sched.tasks.size()) < n_threads && shared.empty())
        n_threads = static_cast<int>(sched.tasks.size());  // idle threads: not made
    if (n_threads < 1) n_threads = 1;
    std::unique_ptr<Barrier> barrier;  // shared groups: one per team
    std::unique_ptr<SoloWatch> watch;
    std::atomic<int64_t> next_chunk{0};
    run_team(n_threads, [&](int team) {
        if (!shared.empty()) {
            barrier.reset(new Barrier(team));
            watch.reset(new SoloWatch(team, solo_ratio, solo_window_ns));
        }
    }, [&](int id) {
        int64_t last = -1, task, s0 = 0, s1 = 0;
        for (;;) {
            sched.claim(last, task, s0, s1);
            if (task < 0) break;
            const TaskSchedule::Task &t = sched.tasks[task];
            group_steps<real>(c, groups[t.group], t.blk, c.node_offset[t.net],
                              c.node_offset[t.net + 1], s0, s1);
            sched.release(task, s1);
            last = task;
        }
        // shared groups: every thread takes the next chunk of the stage's rows
        // until none is left, then waits for the chunks still running; once a
        // solo member is chosen it takes every chunk, with no barrier, and the
        // others are done
        bool alone = false;
        for (int gi : shared) {
            const Group<real> &gr = groups[gi];
            for (int64_t net = 0; net < c.n_networks; ++net) {
                const int64_t *ch = c.chunks + c.chunk_offset[net];
                const int64_t n_chunks = c.chunk_offset[net + 1] - c.chunk_offset[net];
                for (int64_t blk = 0; blk < gr.nb; ++blk) {
                    for (int64_t s = 0; s < c.n_steps; ++s) {
                        for (int stage = 0; stage < 4; ++stage) {
                            if (alone) {
                                for (int64_t k = 0; k < n_chunks; ++k)
                                    group_stage<real>(c, gr, blk, ch[k], ch[k + 1], s, stage);
                                continue;
                            }
                            int64_t mine = 0;
                            const int64_t t0 = now_ns();
                            for (;;) {
                                const int64_t k = next_chunk.fetch_add(1);
                                if (k >= n_chunks) break;
                                group_stage<real>(c, gr, blk, ch[k], ch[k + 1], s, stage);
                                ++mine;
                            }
                            watch->chunks[id] += mine;
                            watch->busy_ns[id] += now_ns() - t0;
                            barrier->wait([&] {
                                next_chunk.store(0);
                                watch->decide();
                            });
                            if (watch->solo >= 0) {
                                if (watch->solo != id) return;
                                alone = true;
                            }
                        }
                    }
                }
            }
        }
    });
    return watch && watch->solo >= 0 ? 1 : 0;
}

}  // namespace

extern "C" {

// kc_cpu_run_<real>: run_call, and what it returns. groups [n_groups, 4]: k0, k1
// (its K columns), vecs (1-4), by_block (1: tasks, 0: rows shared); buffers
// [n_groups, 5]: its X0, X1, theta, acc and snapshots (null: none) as native.py's
// _GroupState lays them out.
#define KC_ENTRY(real, name)                                                                 \
    int64_t kc_cpu_run_##name(                                                               \
        const int64_t *indptr, const int32_t *indices, const real *weight, const real *omega, \
        const int32_t *row_net, int64_t rows, int64_t n_networks, const int64_t *node_offset, \
        const int64_t *chunks, const int64_t *chunk_offset, const real *couplings,           \
        int64_t k_stride, int64_t n_groups, const int64_t *groups, real *const *buffers,    \
        int64_t n_steps, real dt, real two_pi, int n_threads, int64_t segment_work,          \
        int64_t snap_first, int64_t snap_every, double solo_ratio, int64_t solo_window_ns) {  \
        const Call<real> c{{indptr, indices, weight, omega, row_net, indptr[rows]},          \
                           rows, n_networks, node_offset, chunks, chunk_offset, n_steps, dt,  \
                           real(0.5) * dt, dt / real(6.0), two_pi, snap_first, snap_every};  \
        std::vector<Group<real>> gs(static_cast<size_t>(n_groups));                          \
        for (int64_t i = 0; i < n_groups; ++i) {                                             \
            gs[i].vecs = static_cast<int>(groups[i * 4 + 2]);                                \
            gs[i].X0 = buffers[i * 5];                                                       \
            gs[i].X1 = buffers[i * 5 + 1];                                                   \
            gs[i].theta = buffers[i * 5 + 2];                                                \
            gs[i].acc = buffers[i * 5 + 3];                                                  \
            gs[i].snap = buffers[i * 5 + 4];                                                 \
        }                                                                                    \
        return run_call<real>(c, gs, groups, couplings, k_stride, n_threads, segment_work,   \
                       solo_ratio, solo_window_ns);                                          \
    }

KC_ENTRY(float, float32)
KC_ENTRY(double, float64)

}  // extern "C"
