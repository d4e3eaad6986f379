/* kernels/elementwise.cu — the data-movement ops of the networks on the GPU
 * (reference: kernels/elementwise.c). Shapes use dkd.h's legend; HW = H*W.
 *
 *   add       y = a + b (n elements)                backward: da += dy, db += dy
 *   concat    a [N,Ca,HW], b [N,Cb,HW] -> y [N,Ca+Cb,HW] (along channels)
 *             backward: da += dy[:, :Ca], db += dy[:, Ca:]
 *   split     y [N,Cs,HW] = x[:, c0:c0+Cs] of x [N,C,HW]
 *             backward: dx[:, c0:c0+Cs] += dy (the other channels are untouched)
 *   shuffle   G groups, Cg = C/G: out channel i*G+j = in channel j*Cg+i
 *             (view [N,G,Cg,HW] -> transpose to [N,Cg,G,HW]); backward: the
 *             inverse permutation, accumulated.
 *
 * How work maps to threads: one thread per OUTPUT element (the element that is
 * written), 256 threads per block, ceil(count / 256) blocks. Each thread turns
 * its flat index into (n, channel, hw), computes where its source element
 * lives, and copies (or adds). Writes are coalesced; reads are coalesced too,
 * because inside one channel plane consecutive hw stay consecutive. Every
 * output element is written by exactly one thread, so the backward "+=" needs
 * no atomics and is deterministic: each is the C loop body of elementwise.c.
 * Input-gradient pointers may be NULL (that input needs no gradient): skipped.
 */
#include "kernels/cuda_common.h"   // defines: LAUNCH, ceil_div_sz
#include "kernels/cuda_ops.h"      // defines: the _cuda declarations

enum { EW_THREADS = 256 };

/* ---------------------------------------------------------------- add */
__global__ void add_forward_kernel(float *__restrict__ y, const float *__restrict__ a,
                                   const float *__restrict__ b, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a[i] + b[i];
}

/* da and db may be the same buffer (y = a + a): no __restrict__ on them. */
__global__ void add_backward_kernel(float *da, float *db, const float *__restrict__ dy, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float g = dy[i];
        if (da) da[i] += g;
        if (db) db[i] += g;
    }
}

extern "C" void add_forward_cuda(float *y, const float *a, const float *b, size_t n) {
    if (n == 0) return;
    LAUNCH(add_forward_kernel, ceil_div_sz(n, EW_THREADS), EW_THREADS, 0, y, a, b, n);
}
extern "C" void add_backward_cuda(float *da, float *db, const float *dy, size_t n) {
    if (n == 0 || (!da && !db)) return;
    LAUNCH(add_backward_kernel, ceil_div_sz(n, EW_THREADS), EW_THREADS, 0, da, db, dy, n);
}

/* ------------------------------------------------------------- concat */
/* Concat, split and shuffle each have one index map, "element i of the output
 * comes from element src of the input", shared by the forward (a gather:
 * y[i] = x[src]) and the backward (the same map read the other way: dx[src] += dy[i]). */

/* Element i of y [N, Ca+Cb, HW]: *from_b says whether it comes from b (channel
 * >= Ca) or a; the return value is its index in that input. */
__device__ static inline size_t concat_source(size_t i, int Ca, int Cb, int HW, int *from_b) {
    int Cy = Ca + Cb;
    int hw = (int)(i % HW);
    int c = (int)((i / HW) % Cy);
    int n = (int)(i / ((size_t)HW * Cy));
    *from_b = c >= Ca;
    return c < Ca ? ((size_t)n * Ca + c) * HW + hw : ((size_t)n * Cb + (c - Ca)) * HW + hw;
}

/* One thread per element of y [N, Ca+Cb, HW]: channels < Ca come from a. */
__global__ void concat_forward_kernel(float *__restrict__ y, const float *__restrict__ a,
                                      const float *__restrict__ b, int N, int Ca, int Cb, int HW) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * (Ca + Cb) * HW) return;
    int from_b;
    size_t src = concat_source(i, Ca, Cb, HW, &from_b);
    y[i] = from_b ? b[src] : a[src];
}

/* One thread per element of dy [N, Ca+Cb, HW]: it adds into da or db. */
__global__ void concat_backward_kernel(float *__restrict__ da, float *__restrict__ db,
                                       const float *__restrict__ dy, int N, int Ca, int Cb, int HW) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * (Ca + Cb) * HW) return;
    int from_b;
    size_t src = concat_source(i, Ca, Cb, HW, &from_b);
    float *d = from_b ? db : da;
    if (d) d[src] += dy[i];
}

extern "C" void concat_forward_cuda(float *y, const float *a, const float *b, int N, int Ca, int Cb, int HW) {
    size_t count = (size_t)N * (Ca + Cb) * HW;
    if (count == 0) return;
    LAUNCH(concat_forward_kernel, ceil_div_sz(count, EW_THREADS), EW_THREADS, 0, y, a, b, N, Ca, Cb, HW);
}
extern "C" void concat_backward_cuda(float *da, float *db, const float *dy, int N, int Ca, int Cb, int HW) {
    size_t count = (size_t)N * (Ca + Cb) * HW;
    if (count == 0 || (!da && !db)) return;
    LAUNCH(concat_backward_kernel, ceil_div_sz(count, EW_THREADS), EW_THREADS, 0, da, db, dy, N, Ca, Cb, HW);
}

/* -------------------------------------------------------------- split */
/* Element i of the slice y [N, Cs, HW]: its index in x [N, C, HW], where
 * channel c of the slice is channel c0 + c of x. */
__device__ static inline size_t split_source(size_t i, int C, int HW, int c0, int Cs) {
    int hw = (int)(i % HW);
    int c = (int)((i / HW) % Cs);
    int n = (int)(i / ((size_t)HW * Cs));
    return ((size_t)n * C + c0 + c) * HW + hw;
}

/* One thread per element of y [N, Cs, HW] (forward) or of dy (backward). */
__global__ void split_forward_kernel(float *__restrict__ y, const float *__restrict__ x,
                                     int N, int C, int HW, int c0, int Cs) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (size_t)N * Cs * HW) y[i] = x[split_source(i, C, HW, c0, Cs)];
}

__global__ void split_backward_kernel(float *__restrict__ dx, const float *__restrict__ dy,
                                      int N, int C, int HW, int c0, int Cs) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (size_t)N * Cs * HW) dx[split_source(i, C, HW, c0, Cs)] += dy[i];
}

extern "C" void split_forward_cuda(float *y, const float *x, int N, int C, int HW, int c0, int Cs) {
    size_t count = (size_t)N * Cs * HW;
    if (count == 0) return;
    LAUNCH(split_forward_kernel, ceil_div_sz(count, EW_THREADS), EW_THREADS, 0, y, x, N, C, HW, c0, Cs);
}
extern "C" void split_backward_cuda(float *dx, const float *dy, int N, int C, int HW, int c0, int Cs) {
    size_t count = (size_t)N * Cs * HW;
    if (count == 0 || !dx) return;
    LAUNCH(split_backward_kernel, ceil_div_sz(count, EW_THREADS), EW_THREADS, 0, dx, dy, N, C, HW, c0, Cs);
}

/* ------------------------------------------------------------ shuffle */
/* Element e of y [N, C, HW]: its index in x. Output channel co = i*G + j
 * (i < Cg, j < G) reads input channel j*Cg + i. */
__device__ static inline size_t shuffle_source(size_t e, int C, int HW, int G) {
    int Cg = C / G;
    int hw = (int)(e % HW);
    int co = (int)((e / HW) % C);
    int n = (int)(e / ((size_t)HW * C));
    int ci = (co % G) * Cg + co / G;
    return ((size_t)n * C + ci) * HW + hw;
}

/* One thread per element of y [N, C, HW]. */
__global__ void shuffle_forward_kernel(float *__restrict__ y, const float *__restrict__ x,
                                       int N, int C, int HW, int G) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e < (size_t)N * C * HW) y[e] = x[shuffle_source(e, C, HW, G)];
}

/* One thread per element of dy: it adds into the input channel it came from
 * (a permutation, so every dx element has exactly one writer). */
__global__ void shuffle_backward_kernel(float *__restrict__ dx, const float *__restrict__ dy,
                                        int N, int C, int HW, int G) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e < (size_t)N * C * HW) dx[shuffle_source(e, C, HW, G)] += dy[e];
}

extern "C" void shuffle_forward_cuda(float *y, const float *x, int N, int C, int HW, int G) {
    size_t count = (size_t)N * C * HW;
    if (count == 0 || G <= 0) return;
    LAUNCH(shuffle_forward_kernel, ceil_div_sz(count, EW_THREADS), EW_THREADS, 0, y, x, N, C, HW, G);
}
extern "C" void shuffle_backward_cuda(float *dx, const float *dy, int N, int C, int HW, int G) {
    size_t count = (size_t)N * C * HW;
    if (count == 0 || G <= 0 || !dx) return;
    LAUNCH(shuffle_backward_kernel, ceil_div_sz(count, EW_THREADS), EW_THREADS, 0, dx, dy, N, C, HW, G);
}
