// gpu-sim: lets the CUDA C sources of kernels/ compile as plain C++ (g++) so the
// GPU engine's launch sequence can run on the CPU, where CI has no GPU.
//
// A launch becomes loops over the grid (blocks spread over OpenMP threads,
// threads of a block in order). That is faithful ONLY for kernels without
// barriers, shared memory, warp intrinsics or atomics whose threads do not read
// what other threads of the same launch write — true of every kernel in
// kuramoto.cu (see its header comment); a kernel that breaks this rule must not
// be run here.
#include <math.h>
#include <stdint.h>

struct dim3 {
    unsigned x, y, z;
};
struct float2 {
    float x, y;
};
struct double2 {
    double x, y;
};

static thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict

// The CUDA math intrinsics used by the kernels, mapped onto libm.
inline void __sincosf(float x, float* s, float* c) { sincosf(x, s, c); }

// Runs kernel body `call` for every thread of a 1-D grid.
#define KC_SIM_LAUNCH(grid_x, block_x, call)                              \
    do {                                                                  \
        const unsigned kc_gx = (grid_x), kc_bx = (block_x);               \
        _Pragma("omp parallel for schedule(static)")                      \
        for (long long kc_b = 0; kc_b < (long long)kc_gx; ++kc_b) {       \
            gridDim = dim3{kc_gx, 1, 1};                                  \
            blockDim = dim3{kc_bx, 1, 1};                                 \
            blockIdx = dim3{(unsigned)kc_b, 0, 0};                        \
            for (unsigned kc_t = 0; kc_t < kc_bx; ++kc_t) {               \
                threadIdx = dim3{kc_t, 0, 0};                             \
                call;                                                     \
            }                                                             \
        }                                                                 \
    } while (0)
