/* kernels/reduce.cuh — the sums and maxima that many threads compute together,
 * in one place for every .cu file (conv.cu, batchnorm.cu, loss.cu).
 *
 * Warp level: a BUTTERFLY of __shfl_xor_sync with offsets 16, 8, 4, 2, 1.
 * At each step lane l adds the value of lane l^off, so after five steps
 * EVERY lane holds the total, and all lanes hold the same bits: lane l
 * computes a+b where its partner computes b+a, and float addition is
 * commutative. All 32 lanes of the warp must call it (full mask).
 *
 * Block level: each warp reduces its values (butterfly), lane 0 of each warp
 * puts the warp's total in shared memory, and warp 0 reduces those totals with
 * the same butterfly; a second barrier, then EVERY thread of the block reads
 * the total. blockDim.x must be a multiple of 32 (at most 1024) and every
 * thread of the block must call it (it contains barriers). The trailing
 * barrier also makes the shared array safe to reuse by the next call.
 *
 * Determinism: the shape of the tree depends only on blockDim.x, never on
 * timing, so the same inputs give the same bits on every run: no atomics.
 * The block sum works in double: batchnorm.cu needs it (a channel of 65536
 * values), and conv.cu's bias/depthwise gradients gain accuracy for free
 * (one double tree per block, the per-thread loops stay float).
 *
 * Include after kernels/cuda_common.h. No templates (the kernels are C-like
 * C++): warp_sum is overloaded for float and double.
 */
#ifndef DKD_REDUCE_CUH
#define DKD_REDUCE_CUH

#define FULL_WARP_MASK 0xffffffffu

/* Sum over the 32 lanes of the warp; the total in every lane. */
static __device__ __forceinline__ float warp_sum(float v) {
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(FULL_WARP_MASK, v, off);
    return v;
}
static __device__ __forceinline__ double warp_sum(double v) {
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(FULL_WARP_MASK, v, off);
    return v;
}

/* Maximum over the 32 lanes of the warp; the result in every lane. */
static __device__ __forceinline__ float warp_max(float v) {
    for (int off = 16; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(FULL_WARP_MASK, v, off));
    return v;
}

/* Sum of v over the whole (1-D) block; the total in EVERY thread. */
static __device__ inline double block_sum(double v) {
    SHARED(double, block_sum_partials, 33);   /* [0..31] warp totals, [32] the block total */
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0) block_sum_partials[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = warp_sum(lane < nwarps ? (double)block_sum_partials[lane] : 0.0);
        if (lane == 0) block_sum_partials[32] = v;
    }
    __syncthreads();
    return block_sum_partials[32];
}

#endif /* DKD_REDUCE_CUH */
