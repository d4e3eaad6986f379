/* kernels/relu.cu — ReLU on the GPU (reference: kernels/relu.c).
 *
 * What it computes (n elements, any shape):
 *   forward   y[i]  = max(x[i], 0)
 *   backward  dx[i] += dy[i]  unless y[i] <= 0  (relu'(0) = 0, as in PyTorch;
 *             the mask uses the OUTPUT y, so the input need not be kept)
 *   NaN stays NaN (relu(NaN) = NaN, as in PyTorch): the comparisons are written so
 *   that NaN, for which every comparison is false, takes the branch that keeps it.
 *
 * How work maps to threads: one thread per element, 256 threads per block,
 * ceil(n / 256) blocks. Consecutive threads touch consecutive floats, so every
 * warp reads and writes whole 128-byte lines (coalesced). There is nothing to
 * share between threads, so there are no barriers and no shared memory: this is
 * the C loop of relu.c with the loop index replaced by the thread index.
 * The index is computed in size_t: activation arenas can exceed 2^31 floats.
 */
#include "kernels/cuda_common.h"   // defines: LAUNCH, ceil_div_sz, cudaCheck
#include "kernels/cuda_ops.h"      // defines: the _cuda declarations

enum { RELU_THREADS = 256 };

/* y may be x (an in-place ReLU): no __restrict__ here. */
__global__ void relu_forward_kernel(float *y, const float *x, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float v = x[i];
        y[i] = v <= 0.0f ? 0.0f : v;   /* -0 -> +0, NaN -> NaN */
    }
}

__global__ void relu_backward_kernel(float *__restrict__ dx, const float *__restrict__ dy,
                                     const float *__restrict__ y, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && !(y[i] <= 0.0f)) dx[i] += dy[i];
}

extern "C" void relu_forward_cuda(float *y, const float *x, size_t n) {
    if (n == 0) return;
    LAUNCH(relu_forward_kernel, ceil_div_sz(n, RELU_THREADS), RELU_THREADS, 0, y, x, n);
}

/* dx (+=, may be NULL: nothing to do) */
extern "C" void relu_backward_cuda(float *dx, const float *dy, const float *y, size_t n) {
    if (n == 0 || !dx) return;
    LAUNCH(relu_backward_kernel, ceil_div_sz(n, RELU_THREADS), RELU_THREADS, 0, dx, dy, y, n);
}
