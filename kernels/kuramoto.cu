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
// The CPU twin is kcbatch/engines/cpu.py (class CpuEngine, function _rk4_stage).
//
// Compile-time options (the Python side prepends a #define preamble):
//   KC_FAST_MATH  1: float32 uses the __sincosf intrinsic (fast, ~1e-6 abs error)
//
// Every kernel is 1-D, has no barriers, no shared memory, no atomics and no
// warp intrinsics: each thread's result depends on global memory only, which
// makes the results deterministic and lets kernels/cuda_sim.h run them as loops.

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
// 1, 1/<k> or 1/N of its network: kcbatch/coupling.py), rounded to T.
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
