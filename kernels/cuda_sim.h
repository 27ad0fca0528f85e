// gpu-sim: lets the CUDA C sources of kernels/ compile as plain C++ (g++) so the
// GPU engine's launch sequence can run on the CPU, where CI has no GPU.
//
// Two kinds of launch:
// * KC_SIM_LAUNCH: loops over the grid (blocks spread over OpenMP threads,
//   threads of a block in order). Faithful ONLY for kernels without barriers,
//   shared memory, warp intrinsics or atomics whose threads do not read what
//   other threads of the same launch write: every kernel of kuramoto.cu but
//   integrate_shared.
// * KC_SIM_LAUNCH_BLOCKS: blocks one after another, each run by an OpenMP team
//   of exactly blockDim threads (threadIdx = the OpenMP thread number), with
//   __syncthreads as `omp barrier` and one host buffer (filled with 0xFF bytes) as the block's
//   dynamic shared memory. Faithful for kernels that use barriers and dynamic
//   shared memory but no warp intrinsics, atomics or static __shared__ arrays
//   (integrate_shared).
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include <vector>

struct dim3 {
    unsigned x, y, z;
};
struct float2 {
    float x, y;
};
struct int2 {
    int x, y;
};
struct double2 {
    double x, y;
};

static thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __restrict__ __restrict
#define __launch_bounds__(...)

// The block's dynamic shared memory: set by KC_SIM_LAUNCH_BLOCKS before each
// block's team starts, read by every thread of the team.
static unsigned char* kc_sim_shared;
#define KC_SHARED_BUFFER(name) unsigned char* const name = kc_sim_shared

// kuramoto.cu reads the thread index through PTX on the GPU.
#define KC_HAVE_TID 1
inline int kc_tid() { return (int)threadIdx.x; }

// An orphaned barrier binds to the team of the enclosing parallel region: the block.
inline void __syncthreads() { _Pragma("omp barrier") }

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

// Runs `call` block by block, each block as a team of block_x threads sharing
// smem_bytes of memory filled with 0xFF bytes (NaN as floats, so a read of
// shared memory the kernel never wrote shows in its results). Sets kc_status to 1 when OpenMP gave a smaller
// team (OMP_THREAD_LIMIT), in which case the results are not to be used.
#define KC_SIM_LAUNCH_BLOCKS(grid_x, block_x, smem_bytes, kc_status, call)     \
    do {                                                                       \
        const unsigned kc_gx = (grid_x), kc_bx = (block_x);                    \
        std::vector<double2> kc_buf(((size_t)(smem_bytes) + 15) / 16 + 1);    \
        omp_set_dynamic(0);                                                    \
        kc_status = 0;                                                         \
        for (unsigned kc_b = 0; kc_b < kc_gx && kc_status == 0; ++kc_b) {      \
            memset(kc_buf.data(), 0xFF, kc_buf.size() * sizeof(double2));         \
            kc_sim_shared = (unsigned char*)kc_buf.data();                     \
            _Pragma("omp parallel num_threads(kc_bx)")                         \
            {                                                                  \
                if ((unsigned)omp_get_num_threads() != kc_bx) {                \
                    _Pragma("omp single") kc_status = 1;                       \
                } else {                                                       \
                    gridDim = dim3{kc_gx, 1, 1};                               \
                    blockDim = dim3{kc_bx, 1, 1};                              \
                    blockIdx = dim3{kc_b, 0, 0};                               \
                    threadIdx = dim3{(unsigned)omp_get_thread_num(), 0, 0};    \
                    call;                                                      \
                }                                                              \
            }                                                                  \
        }                                                                      \
    } while (0)
