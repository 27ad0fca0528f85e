// Kuramoto RK4 over a block-diagonal CSR batch of B networks x nK couplings.
//
// R = total rows (nodes of all networks), nK = couplings per network.
// State is [R, nK] row-major, K fastest: a neighbour read serves the nK systems
// of its network and neighbouring threads touch neighbouring addresses.
// Each RK4 stage is ONE launch of rk4_stage: it gathers the neighbours'
// (sin, cos) of the stage point, forms the derivative with
//   sum_j sin(t_j - t_i) = cos t_i * sum_j sin t_j - sin t_i * sum_j cos t_j,
// accumulates the RK4 weights, and writes the (sin, cos) of the NEXT stage point
// of its own (row, K), so trig is done once per (row, K) per stage, not per edge.
// The CPU twin is kcbatch/engines/cpu/engine.py (class CpuEngine), its RK4 stage
// kcbatch/engines/cpu/stage.py (function rk4_stage).
//
// Compile-time options (the Python side prepends a #define preamble):
//   KC_FAST_MATH  1: float32 uses the __sincosf intrinsic (fast, ~1e-6 abs error)
//
// Every kernel but integrate_shared is 1-D, has no barriers, no shared memory,
// no atomics and no warp intrinsics: each thread's result depends on global
// memory only, which makes the results deterministic and lets
// kernels/cuda_sim.h run them as loops. integrate_shared (the shared-memory
// strategy, at the end of this file) uses block barriers and dynamic shared
// memory, no atomics and no warp intrinsics; cuda_sim.h runs each of its
// blocks as an OpenMP team.

#ifndef KC_FAST_MATH
#define KC_FAST_MATH 0
#endif

template <typename T> struct kc_vec2;
template <> struct kc_vec2<float> { typedef float2 type; };
template <> struct kc_vec2<double> { typedef double2 type; };

__device__ __forceinline__ void kc_sincos(float x, float* s, float* c) {
#if KC_FAST_MATH
    __sincosf(x, s, c);
#else
    sincosf(x, s, c);
#endif
}

__device__ __forceinline__ void kc_sincos(double x, double* s, double* c) {
    sincos(x, s, c);
}

// Wrap into [0, 2pi); floor's rounding can leave exactly 2pi or a hair below 0.
template <typename T>
__device__ __forceinline__ T kc_wrap(T t) {
    const T two_pi = (T)6.283185307179586476925286766559;
    t = t - two_pi * floor(t / two_pi);
    if (t >= two_pi) t -= two_pi;
    if (t < (T)0) t += two_pi;
    return t;
}

// theta[i, k] = theta0[i]; sc[i, k] = (sin, cos)(theta0[i]).
template <typename T>
__global__ void init_state(const T* __restrict__ theta0,                  // [R]
                           T* __restrict__ theta,                         // [R, nK]
                           typename kc_vec2<T>::type* __restrict__ sc,    // [R, nK]
                           int total,                                     // R * nK < 2^31
                           int n_k) {
    const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (unsigned)total) return;
    const unsigned i = t / (unsigned)n_k;
    T th = theta0[i];
    T s, c;
    kc_sincos(th, &s, &c);
    theta[t] = th;
    typename kc_vec2<T>::type v;
    v.x = s;
    v.y = c;
    sc[t] = v;
}

// One RK4 stage (stage = 0..3) for every (row, K) system.
//   f       = omega_i + K[b, k] * w_i * (c_i * sum_j s_j - s_i * sum_j c_j)
// where w_i = weight[i] is the coupling normalisation of row i (1/max(k_i, 1),
// 1, 1/<k> or 1/N of its network: kcbatch/protocol/coupling.py), rounded to T.
//   stage 0: acc  = f;      next point = theta + dt/2 f
//   stage 1: acc += 2 f;    next point = theta + dt/2 f
//   stage 2: acc += 2 f;    next point = theta + dt f
//   stage 3: theta = wrap(theta + dt/6 (acc + f)); next point = new theta
// sc_out receives (sin, cos) of the next point.
template <typename T>
__global__ void rk4_stage(const long long* __restrict__ indptr,                    // [R+1]
                          const int* __restrict__ indices,                         // [nnz]
                          const T* __restrict__ weight,                            // [R]
                          const T* __restrict__ omega,                             // [R]
                          const int* __restrict__ row_net,                         // [R]
                          const T* __restrict__ couplings,                         // [B, nK]
                          const typename kc_vec2<T>::type* __restrict__ sc_in,     // [R, nK]
                          typename kc_vec2<T>::type* __restrict__ sc_out,          // [R, nK]
                          T* __restrict__ theta,                                   // [R, nK]
                          T* __restrict__ acc,                                     // [R, nK]
                          int total,                                               // R * nK < 2^31
                          int n_k,
                          int stage,
                          T dt) {
    // 32-bit index arithmetic (the launch wrapper guarantees R * nK < 2^31):
    // 64-bit division is emulated and cost ~12% of this kernel on an H100.
    const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (unsigned)total) return;
    const unsigned i = t / (unsigned)n_k;
    const unsigned k = t - i * (unsigned)n_k;
    T ss = (T)0, cc = (T)0;
    const int e1 = (int)indptr[i + 1];
    for (int e = (int)indptr[i]; e < e1; ++e) {
        typename kc_vec2<T>::type v = sc_in[(unsigned)indices[e] * (unsigned)n_k + k];
        ss += v.x;
        cc += v.y;
    }
    typename kc_vec2<T>::type own = sc_in[t];
    T f = omega[i] + couplings[(unsigned)row_net[i] * (unsigned)n_k + k] * weight[i] *
                         (own.y * ss - own.x * cc);
    T th = theta[t];
    T point;
    if (stage == 0) {
        acc[t] = f;
        point = th + (T)0.5 * dt * f;
    } else if (stage == 1) {
        acc[t] += (T)2 * f;
        point = th + (T)0.5 * dt * f;
    } else if (stage == 2) {
        acc[t] += (T)2 * f;
        point = th + dt * f;
    } else {
        point = kc_wrap<T>(th + dt / (T)6 * (acc[t] + f));
        theta[t] = point;
    }
    T s, c;
    kc_sincos(point, &s, &c);
    typename kc_vec2<T>::type v;
    v.x = s;
    v.y = c;
    sc_out[t] = v;
}

// Partial sums of (cos, sin) of the current phases over chunks of rows:
// one thread per (network b, chunk q, K k), rows [off_b + q*chunk_rows, ...).
// Accumulates in double so float32 runs lose nothing in the sum of N terms.
template <typename T>
__global__ void sample_partial(const typename kc_vec2<T>::type* __restrict__ sc,  // [R, nK]
                               const long long* __restrict__ node_offset,         // [B+1]
                               double* __restrict__ partial,                      // [B, nQ, nK, 2]
                               long long total,                                   // B * nQ * nK
                               int n_k,
                               int n_chunks,
                               int chunk_rows) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= total) return;
    int k = (int)(t % n_k);
    long long bq = t / n_k;
    int q = (int)(bq % n_chunks);
    long long b = bq / n_chunks;
    long long r0 = node_offset[b] + (long long)q * chunk_rows;
    long long r1 = r0 + chunk_rows;
    if (r1 > node_offset[b + 1]) r1 = node_offset[b + 1];
    double sc_sum = 0.0, ss_sum = 0.0;
    for (long long r = r0; r < r1; ++r) {
        typename kc_vec2<T>::type v = sc[r * n_k + k];
        ss_sum += (double)v.x;
        sc_sum += (double)v.y;
    }
    partial[2 * t] = sc_sum;
    partial[2 * t + 1] = ss_sum;
}

// r[b, k] = |sum of chunk partials| / N_b into samples[b, k, sample], chunks in
// a fixed order so the result is deterministic.
__global__ void sample_finalize(const double* __restrict__ partial,         // [B, nQ, nK, 2]
                                const long long* __restrict__ node_offset,  // [B+1]
                                double* __restrict__ samples,               // [B, nK, nS]
                                long long total,                            // B * nK
                                int n_k,
                                int n_chunks,
                                int n_samples,
                                int sample) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= total) return;
    long long b = t / n_k;
    int k = (int)(t - b * n_k);
    double x = 0.0, y = 0.0;
    for (int q = 0; q < n_chunks; ++q) {
        long long p = 2 * ((b * n_chunks + q) * n_k + k);
        x += partial[p];
        y += partial[p + 1];
    }
    double n = (double)(node_offset[b + 1] - node_offset[b]);
    samples[t * n_samples + sample] = sqrt(x * x + y * y) / n;
}

// ---------------------------------------------------------------------------
// The shared-memory strategy: integrate_shared runs the WHOLE protocol
// (init, n_transient steps, n_measure steps with r samples) in one launch.
// With `mode` it also runs a piece of one: starting from the phases in
// `theta` and/or leaving them there (SharedSimulation, kcbatch/engines/shared.py,
// continues a batch launch by launch for converged transients, refinement and
// adiabatic sweeps).
//
// One block per (network b, K k) system: blockIdx.x = b * nK + k. The block
// copies its network's neighbour lists (uint16 row ids local to the network)
// into dynamic shared memory and keeps the (sin, cos) of the current stage
// point of all its rows there, so every neighbour gather hits shared memory,
// never L2 or DRAM. Thread t owns rows t, t + blockDim, ... (at most
// kc_shared_rows<T> of them: 10 float rows fill the 64 registers a 1024-thread
// block allows, without spills; bench/kernel_resources.txt): their theta, RK4
// accumulator and next stage point live in registers. omega, w_i and the row
// edge ranges are read-only coalesced global reads (the default network's
// row pointers would not fit beside the rest in 227 KB).
//
// Load balance: a row of degree > split (a BA hub: ~300 against a mean of 6)
// is cut by the host into chunks of at most `split` edges (chunk_edges; the
// row's chunks are row_chunks[r]), and the block's threads take the chunks
// round-robin before their own light rows; after a barrier the hub's owner adds its chunks' partial sums in chunk
// order. split >= the largest degree turns splitting off: every row is summed
// by its owner in edge order, exactly as rk4_stage does. Row and chunk edge
// ranges are local to the network (32-bit); row_edges replaces the 64-bit
// global indptr so no thread keeps 64-bit row offsets in registers.
//
// Per RK4 stage: phase A gathers (reads sc only), barrier, phase B writes the
// (sin, cos) of each own row's next point into sc, barrier. The r samples
// are a fixed-shape tree reduction in double over the threads, so the result
// never depends on scheduling.
//
// Shared layout (the host computes the same bytes in shared_bytes,
// kcbatch/engines/shared.py): sc [n] T2 | red [blockDim] double2 |
// part [chunks] T2 | idx [nnz] uint16, each part starting 16-byte aligned.

#ifndef KC_SHARED_ROWS_FLOAT
#define KC_SHARED_ROWS_FLOAT 10
#endif
#ifndef KC_SHARED_ROWS_DOUBLE
#define KC_SHARED_ROWS_DOUBLE 8
#endif
#ifndef KC_SHARED_BLOCK_FLOAT
#define KC_SHARED_BLOCK_FLOAT 1024
#endif
#ifndef KC_SHARED_BLOCK_DOUBLE
#define KC_SHARED_BLOCK_DOUBLE 512
#endif
// integrate_shared's mode bits: start from theta [R, nK] instead of theta0 [R]
// (a continued simulation), and leave the final phases in theta. The phases
// are the whole state between launches: (sin, cos) is recomputed from them,
// bit for bit what the global kernels carry, and the RK4 accumulator is
// scratch within a step.
#define KC_SHARED_FROM_STATE 1
#define KC_SHARED_TO_STATE 2

#ifndef KC_SHARED_BUFFER
#define KC_SHARED_BUFFER(name) extern __shared__ __align__(16) unsigned char name[]
#endif

// Rows owned per thread and the most threads per block (__launch_bounds__):
// the state arrays th, acc, pt take 3 registers per float row, 6 per double
// row, within 64 registers at 1024 threads and 128 at 512.
template <typename T> struct kc_shared_rows;
template <> struct kc_shared_rows<float> {
    enum { value = KC_SHARED_ROWS_FLOAT, block = KC_SHARED_BLOCK_FLOAT };
};
template <> struct kc_shared_rows<double> {
    enum { value = KC_SHARED_ROWS_DOUBLE, block = KC_SHARED_BLOCK_DOUBLE };
};
#if KC_SHARED_ROWS_FLOAT > 32 || KC_SHARED_ROWS_DOUBLE > 32
#error "integrate_shared keeps one bit per own row in a 32-bit mask"
#endif

#ifndef KC_HAVE_TID
// threadIdx.x through volatile asm, re-read at every RK4 stage: ptxas cannot
// hoist the row addresses derived from it out of the step loop, where keeping
// them live for every own row spilled registers (hundreds of bytes at 10 rows).
__device__ __forceinline__ int kc_tid() {
    int x;
    asm volatile("mov.u32 %0, %%tid.x;" : "=r"(x));
    return x;
}
#endif

__device__ __forceinline__ unsigned kc_align16(unsigned x) { return (x + 15u) & ~15u; }

// Out-of-line helpers: inlined into each of a thread's unrolled rows (and
// twice, for the gather and the publish phase) they made NVRTC take ~30 s for
// this kernel against ~1.5 s for all the others; as calls, ~4 s per
// instantiation. They run once per row and stage (sincos), per step
// (wrap) or for hub rows only (chunk sums); the per-edge gather stays inline.
template <typename T>
__device__ __noinline__ void kc_sincos_call(T x, T* s, T* c) { kc_sincos(x, s, c); }

template <typename T>
__device__ __noinline__ T kc_wrap_call(T t) { return kc_wrap<T>(t); }

template <typename V>
__device__ __noinline__ V kc_chunk_sum(const V* part, int c0, int c1) {
    V sum;
    sum.x = 0;
    sum.y = 0;
    for (int c = c0; c < c1; ++c) {
        sum.x += part[c].x;
        sum.y += part[c].y;
    }
    return sum;
}

// The RK4 bookkeeping of rk4_stage, the same operations in the same order:
// stage 0 acc = f, stages 1-2 acc += 2 f, point th + (dt/2) f (stage 2: dt f);
// stage 3 th = wrap(th + dt/6 (acc + f)).
template <typename T>
__device__ __forceinline__ T kc_rk4_point(int stage, T f, T& th, T& acc, T dt) {
    if (stage < 3) {
        acc = stage == 0 ? f : acc + (T)2 * f;
        return th + (stage == 2 ? dt : (T)0.5 * dt) * f;
    }
    th = kc_wrap_call<T>(th + dt / (T)6 * (acc + f));
    return th;
}

template <typename T>
__global__ void __launch_bounds__(kc_shared_rows<T>::block, 1)
integrate_shared(const int* __restrict__ row_edges,                // [R, 2] edge range within the network
                 const unsigned short* __restrict__ local_indices,  // [nnz] rows within the network
                 const T* __restrict__ weight,                      // [R]
                 const T* __restrict__ omega,                       // [R]
                 const T* __restrict__ theta0,                      // [R]
                 const long long* __restrict__ node_offset,         // [B+1]
                 const long long* __restrict__ edge_offset,         // [B+1]
                 const T* __restrict__ couplings,                   // [B, nK]
                 const int* __restrict__ row_chunks,                // [R, 2] chunk range, empty: not split
                 const int* __restrict__ chunk_edges,               // [C, 2] edge range within the network
                 const long long* __restrict__ chunk_offset,        // [B+1]
                 double* __restrict__ samples,                      // [B, nK, nS]
                 T* __restrict__ theta,                             // [R, nK] state (mode)
                 int mode,                                          // KC_SHARED_FROM_STATE | KC_SHARED_TO_STATE
                 int n_k,
                 int n_transient,
                 int n_measure,
                 int sample_every,
                 int n_samples,
                 T dt) {
    typedef typename kc_vec2<T>::type V;
    const int bd = (int)blockDim.x, t = (int)threadIdx.x;
    const unsigned b = blockIdx.x / (unsigned)n_k;
    const unsigned k = blockIdx.x - b * (unsigned)n_k;
    const long long r0 = node_offset[b];
    const int n = (int)(node_offset[b + 1] - r0);
    const long long e0 = edge_offset[b];
    const int nnz = (int)(edge_offset[b + 1] - e0);
    const long long c0 = chunk_offset[b];
    const int n_chunks = (int)(chunk_offset[b + 1] - c0);
    // This network's rows and chunks: 32-bit local indices from here on.
    const int2* rows = (const int2*)row_edges + r0;
    const T* om = omega + r0;
    const T* w = weight + r0;
    const int2* chunks = (const int2*)chunk_edges + c0;
    const int2* row_ch = (const int2*)row_chunks + r0;

    KC_SHARED_BUFFER(kc_smem);
    unsigned off = kc_align16((unsigned)n * sizeof(V));
    V* sc = (V*)kc_smem;
    double2* red = (double2*)(kc_smem + off);
    off += kc_align16((unsigned)bd * sizeof(double2));
    V* part = (V*)(kc_smem + off);
    off += kc_align16((unsigned)n_chunks * sizeof(V));
    unsigned short* idx = (unsigned short*)(kc_smem + off);

    for (int e = t; e < nnz; e += bd) idx[e] = local_indices[e0 + e];
    const T kk = couplings[b * (unsigned)n_k + k];
    enum { ROWS = kc_shared_rows<T>::value };
    T th[ROWS], acc[ROWS], pt[ROWS];
    unsigned split_rows = 0;  // bit j: own row j is summed in chunks
#pragma unroll
    for (int j = 0; j < ROWS; ++j) {
        const int r = t + j * bd;
        th[j] = (T)0;
        acc[j] = (T)0;
        pt[j] = (T)0;
        if (r < n) {
            th[j] = (mode & KC_SHARED_FROM_STATE) ? theta[(r0 + r) * n_k + k] : theta0[r0 + r];
            V v;
            kc_sincos_call<T>(th[j], &v.x, &v.y);
            sc[r] = v;
            const int2 rc = row_ch[r];
            if (rc.y > rc.x) split_rows |= 1u << j;
        }
    }
    __syncthreads();

    const int n_steps = n_transient + n_measure;
    for (int step = 0; step < n_steps; ++step) {
        for (int stage = 0; stage < 4; ++stage) {
            const int t = kc_tid();  // shadows the outer t on purpose: see kc_tid
            // Phase A: chunks of split rows (round-robin), then own unsplit rows.
            for (int c = t; c < n_chunks; c += bd) {
                const int2 ch = chunks[c];
                T ss = (T)0, cc = (T)0;
                for (int e = ch.x; e < ch.y; ++e) {
                    const V v = sc[idx[e]];
                    ss += v.x;
                    cc += v.y;
                }
                V p;
                p.x = ss;
                p.y = cc;
                part[c] = p;
            }
#pragma unroll
            for (int j = 0; j < ROWS; ++j) {
                const int r = t + j * bd;
                if (r < n && !(split_rows >> j & 1u)) {
                    const int2 re = rows[r];
                    T ss = (T)0, cc = (T)0;
                    for (int e = re.x; e < re.y; ++e) {
                        const V v = sc[idx[e]];
                        ss += v.x;
                        cc += v.y;
                    }
                    const V own = sc[r];
                    const T f = om[r] + kk * w[r] * (own.y * ss - own.x * cc);
                    pt[j] = kc_rk4_point<T>(stage, f, th[j], acc[j], dt);
                }
            }
            __syncthreads();
            // Phase B: split rows add their chunks in order; every own row
            // publishes the (sin, cos) of its next point. No thread gathers here.
#pragma unroll
            for (int j = 0; j < ROWS; ++j) {
                const int r = t + j * bd;
                if (r < n) {
                    V own = sc[r];
                    if (split_rows >> j & 1u) {
                        const int2 rc = row_ch[r];
                        const V sum = kc_chunk_sum<V>(part, rc.x, rc.y);
                        const T ss = sum.x, cc = sum.y;
                        const T f = om[r] + kk * w[r] * (own.y * ss - own.x * cc);
                        pt[j] = kc_rk4_point<T>(stage, f, th[j], acc[j], dt);
                    }
                    kc_sincos_call<T>(pt[j], &own.x, &own.y);
                    sc[r] = own;
                }
            }
            __syncthreads();
        }
        const int s = step - n_transient;
        if (s >= 0 && s % sample_every == 0) {
            double x = 0.0, y = 0.0;
#pragma unroll
            for (int j = 0; j < ROWS; ++j) {
                const int r = t + j * bd;
                if (r < n) {
                    x += (double)sc[r].y;
                    y += (double)sc[r].x;
                }
            }
            double2 v;
            v.x = x;
            v.y = y;
            red[t] = v;
            __syncthreads();
            // Pairwise tree over thread ids: a fixed order whatever the schedule.
            for (int h = 1; h < bd; h <<= 1) {
                if ((t & (2 * h - 1)) == 0 && t + h < bd) {
                    red[t].x += red[t + h].x;
                    red[t].y += red[t + h].y;
                }
                __syncthreads();
            }
            // red is next written after a whole step of barriers: no race with this read.
            if (t == 0) {
                const double2 sum = red[0];
                samples[(long long)(b * (unsigned)n_k + k) * n_samples + s / sample_every] =
                    sqrt(sum.x * sum.x + sum.y * sum.y) / (double)n;
            }
        }
    }
    if (mode & KC_SHARED_TO_STATE) {
#pragma unroll
        for (int j = 0; j < ROWS; ++j) {
            const int r = t + j * bd;
            if (r < n) theta[(r0 + r) * n_k + k] = th[j];
        }
    }
}
