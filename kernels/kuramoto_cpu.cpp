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
// A thread takes one network's rows of one block through a call of n_steps
// steps with no barrier (run_steps), so its working set is that network's
// block, where the numba pass streams all nK of the batch every stage.
//
// Bit for bit the numba pass: every (row, K) adds its neighbours in CSR order
// from the first, forms f = om + (K w) (cos_i S - sin_i C), the same RK4
// combination and wrap, and the same Cody-Waite + minimax sin/cos with the
// libm fallback beyond its range. Compiled without FMA contraction or
// fast-math, as the numba pass and the CUDA kernels are; 32-byte vector
// arithmetic (GCC/Clang vector extensions) is the scalar IEEE operation per lane.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#include <omp.h>

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

// n_steps RK4 steps of every system, network by network: a network's rows read
// only its own rows (the batch is block-diagonal), so taking one network at a
// time keeps the working set one network's block, whatever the batch size.
// by_block: each thread takes (network, block) tasks through all the steps (no
// barrier; the task's state stays in its core's caches); else all threads
// share each task's rows, with a barrier per stage (for fewer tasks than
// threads). Either way every value is the same.
template <typename real, int V>
void run_steps(const Graph<real> &g, int64_t rows, int64_t n_networks,
               const int64_t *node_offset,               // [B + 1] first row of each network
               const real *couplings, int64_t n_k,       // [B, k_stride]: this call's nK
               int64_t k_stride,
               const int64_t *chunks,                    // row boundaries of equal work,
               const int64_t *chunk_offset,              // network b's: chunks[co[b]..co[b+1]]
               real *X0, real *X1,                       // [nb, R, 2, L] x 2
               real *theta, real *acc,                   // [nb, R, L]
               int64_t n_steps, real dt, real two_pi, int n_threads, int by_block,
               real *snap,                               // [n_snap, nb, R, 2, L] or null
               int64_t snap_first, int64_t snap_every) {
    // snapshots of X after steps snap_first, snap_first + snap_every, ... (1-based
    // within this call): the order parameter's samples are taken from them, so a
    // measurement is one call instead of one per sample
    constexpr int L = V * lanes<real>();
    const int64_t nb = (n_k + L - 1) / L;
    // [nb, B, L]: each block's couplings, padded with K = 0
    std::vector<real> cpl(static_cast<size_t>(nb * n_networks * L), real(0));
    for (int64_t b = 0; b < n_networks; ++b)
        for (int64_t k = 0; k < n_k; ++k)
            cpl[((k / L) * n_networks + b) * L + k % L] = couplings[b * k_stride + k];
    const real half = real(0.5) * dt;
    const real sixth = dt / real(6.0);
    const int64_t X_block = rows * 2 * L, T_block = rows * L;
    auto snap_index = [&](int64_t done) -> int64_t {  // -1: no snapshot after `done` steps
        if (snap == nullptr || done < snap_first || (done - snap_first) % snap_every) return -1;
        return (done - snap_first) / snap_every;
    };
    if (by_block) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
        for (int64_t task = 0; task < n_networks * nb; ++task) {
            const int64_t net = task / nb, blk = task % nb;
            real *X[2] = {X0 + blk * X_block, X1 + blk * X_block};
            real *th = theta + blk * T_block, *ac = acc + blk * T_block;
            const real *cb = cpl.data() + blk * n_networks * L;
            const int64_t r0 = node_offset[net], r1 = node_offset[net + 1];
            for (int64_t s = 0; s < n_steps; ++s) {
                for (int stage = 0; stage < 4; ++stage)
                    rows_stage<real, V>(g, cb, X[stage % 2], X[1 - stage % 2], th, ac, r0, r1,
                                        stage, dt, half, sixth, two_pi);
                const int64_t at = snap_index(s + 1);
                if (at >= 0)
                    std::memcpy(snap + (at * nb + blk) * X_block + r0 * 2 * L,
                                X[0] + r0 * 2 * L, (r1 - r0) * 2 * L * sizeof(real));
            }
        }
        return;
    }
#pragma omp parallel num_threads(n_threads)
    for (int64_t net = 0; net < n_networks; ++net) {
        for (int64_t blk = 0; blk < nb; ++blk) {
            real *X[2] = {X0 + blk * X_block, X1 + blk * X_block};
            real *th = theta + blk * T_block, *ac = acc + blk * T_block;
            const real *cb = cpl.data() + blk * n_networks * L;
            for (int64_t s = 0; s < n_steps; ++s) {
                for (int stage = 0; stage < 4; ++stage) {
#pragma omp for schedule(static)
                    for (int64_t c = chunk_offset[net]; c < chunk_offset[net + 1]; ++c)
                        rows_stage<real, V>(g, cb, X[stage % 2], X[1 - stage % 2], th, ac,
                                            chunks[c], chunks[c + 1], stage, dt, half, sixth,
                                            two_pi);
                }
                const int64_t at = snap_index(s + 1);
                if (at >= 0) {
#pragma omp for schedule(static)
                    for (int64_t c = chunk_offset[net]; c < chunk_offset[net + 1]; ++c)
                        std::memcpy(snap + (at * nb + blk) * X_block + chunks[c] * 2 * L,
                                    X[0] + chunks[c] * 2 * L,
                                    (chunks[c + 1] - chunks[c]) * 2 * L * sizeof(real));
                }
            }
        }
    }
}

}  // namespace

extern "C" {

// kc_cpu_steps_<real>_v<V>: run_steps for blocks of V vectors
#define KC_ENTRY(real, name, V)                                                              \
    void kc_cpu_steps_##name##_v##V(                                                         \
        const int64_t *indptr, const int32_t *indices, const real *weight, const real *omega, \
        const int32_t *row_net, int64_t rows, int64_t n_networks, const int64_t *node_offset, \
        const real *couplings, int64_t n_k, int64_t k_stride, const int64_t *chunks,         \
        const int64_t *chunk_offset, real *X0, real *X1, real *theta, real *acc,             \
        int64_t n_steps, real dt, real two_pi, int n_threads, int by_block, real *snap,      \
        int64_t snap_first, int64_t snap_every) {                                            \
        const Graph<real> g{indptr, indices, weight, omega, row_net, indptr[rows]};          \
        run_steps<real, V>(g, rows, n_networks, node_offset, couplings, n_k, k_stride,       \
                           chunks, chunk_offset, X0, X1, theta, acc, n_steps, dt, two_pi,    \
                           n_threads, by_block, snap, snap_first, snap_every);               \
    }

KC_ENTRY(float, float32, 1)
KC_ENTRY(float, float32, 2)
KC_ENTRY(float, float32, 3)
KC_ENTRY(float, float32, 4)
KC_ENTRY(double, float64, 1)
KC_ENTRY(double, float64, 2)
KC_ENTRY(double, float64, 3)
KC_ENTRY(double, float64, 4)

}  // extern "C"
