/* kernels/step.cu — the bookkeeping of a training step on the GPU (reference
 * and the formulas: kernels/step.c). Each reads the step number from device
 * memory, so a training step captured once as a CUDA graph takes the next
 * batch, and records into the next slot, at every replay.
 *
 * Sizes are tiny (a batch of indices, [B,3] loss terms, B rows of 100
 * logits): one small block each; they exist to keep the host out of the step,
 * not for speed.
 *   counter_add   one thread.
 *   batch_gather  one thread per batch entry b (grid over B).
 *   step_record   ONE block of STEP_THREADS threads: every thread reads s =
 *                 *step first; threads copy the rows (strided) and count
 *                 top-1 hits over rows b = tid, tid + STEP_THREADS, ...; the
 *                 per-thread counts meet in shared memory and thread 0 adds
 *                 them in thread order (an int sum: exact in any order), then
 *                 writes hits[s] and *step = s + 1 after the barrier, so no
 *                 thread reads the step after it moved.
 */
#include "kernels/cuda_common.h"   // defines: LAUNCH, SHARED, ceil_div
#include "kernels/cuda_ops.h"      // defines: the _cuda declarations

enum { STEP_THREADS = 128, GATHER_THREADS = 128 };

__global__ void counter_add_kernel(int64_t *c, int64_t inc) { c[0] += inc; }

__global__ void batch_gather_kernel(int *__restrict__ idx, int *__restrict__ lab, const int *__restrict__ order,
                                    const int *__restrict__ labels, const int *__restrict__ step, int B, int n) {
    int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= B) return;
    long long k = (long long)*step * B + b;
    if (k >= n) return;
    int i = order[k];
    idx[b] = i;
    if (lab) lab[b] = labels[i];
}

__global__ void step_record_kernel(float *__restrict__ rec, int *__restrict__ hits, int *step,
                                   const float *__restrict__ rows, int W, const float *__restrict__ z,
                                   const int *__restrict__ lab, int B, int nb, int NC) {
    SHARED(int, part, STEP_THREADS);
    int tid = threadIdx.x;
    int s = *step;
    float *dst = rec + (size_t)s * B * W;
    for (size_t i = tid; i < (size_t)nb * W; i += STEP_THREADS) dst[i] = rows[i];
    int h = 0;
    for (int b = tid; hits && b < nb; b += STEP_THREADS) {
        const float *r = z + (size_t)b * NC;
        int am = 0;   /* the first maximum, as step.c's row_top1 */
        for (int j = 1; j < NC; j++)
            if (r[j] > r[am]) am = j;
        h += am == lab[b];
    }
    part[tid] = h;
    __syncthreads();
    if (tid == 0) {
        int t = 0;
        for (int i = 0; i < STEP_THREADS; i++) t += part[i];
        if (hits) hits[s] = t;
        *step = s + 1;
    }
}

extern "C" void counter_add_cuda(int64_t *c, int64_t inc) { LAUNCH(counter_add_kernel, 1, 1, 0, c, inc); }

extern "C" void batch_gather_cuda(int *idx, int *lab, const int *order, const int *labels, const int *step, int B, int n) {
    if (B <= 0) return;
    LAUNCH(batch_gather_kernel, ceil_div(B, GATHER_THREADS), GATHER_THREADS, 0, idx, lab, order, labels, step, B, n);
}

extern "C" void step_record_cuda(float *rec, int *hits, int *step, const float *rows, int W, const float *z,
                                 const int *lab, int B, int nb, int NC) {
    LAUNCH(step_record_kernel, 1, STEP_THREADS, 0, rec, hits, step, rows, W, z, lab, B, nb, NC);
}
