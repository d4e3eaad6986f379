/* kernels/pool.cu — max and average pooling on the GPU (reference: kernels/pool.c).
 *
 * What it computes (dkd.h legend), x [N,C,H,W] -> y [N,C,OH,OW]:
 *   max pool  K x K, stride S, no padding, OH = (H-K)/S+1:
 *             y = the max of the window; ties go to the FIRST element in
 *             row-major window order (the comparison is a strict '>'); a NaN
 *             in the window wins, as in PyTorch.
 *             backward: dy goes to the window's argmax, recomputed from x.
 *   avg pool  K x K, stride S, padding P, OH = (H+2P-K)/S+1,
 *             count_include_pad=True: the sum of the window's elements inside
 *             the image, divided by K*K always. Global average pooling is
 *             K = H = W, S = K, P = 0.
 *             backward: every element receives dy/(K*K) from each window
 *             that covers it.
 *
 * How work maps to threads: one thread per element that is WRITTEN.
 *   forward:  one thread per output y[n,c,oh,ow]; it loops over its window.
 *   backward: one thread per INPUT gradient dx[n,c,h,w] (a "gather"): it
 *             loops over the windows that cover (h,w) in increasing (oh, ow)
 *             order and adds their contributions, starting from the dx value
 *             already there. The obvious "scatter" (one thread per window,
 *             dx[argmax] += dy) would need atomics when windows overlap
 *             (K > S) and its sum would depend on thread timing; the gather
 *             has one writer per element and a fixed order, so it is
 *             deterministic and adds in the same order as the C loop over
 *             windows of pool.c.
 * The windows covering row h are those oh with oh*S - P <= h <= oh*S - P + K-1,
 * i.e. ceil((h+P-K+1)/S) <= oh <= floor((h+P)/S), clipped to [0, OH); same
 * for columns. 256 threads per block; consecutive threads take consecutive
 * w (or ow), so loads and stores are coalesced along rows.
 */
#include "kernels/cuda_common.h"   // defines: LAUNCH, ceil_div_sz
#include "kernels/cuda_ops.h"      // defines: the _cuda declarations

enum { POOL_THREADS = 256 };

/* Output size of a window K, stride S, padding P over H positions. */
__host__ __device__ static inline int pool_out(int H, int K, int S, int P) { return (H + 2 * P - K) / S + 1; }

/* Element e of a stack of planes [rows, cols]: its row *r, column *c, and
 * the plane (n*C + c of the tensor) as the return value. */
__device__ static inline size_t plane_pos(size_t e, int rows, int cols, int *r, int *c) {
    *c = (int)(e % cols);
    *r = (int)((e / cols) % rows);
    return e / ((size_t)rows * cols);
}

/* The first output index whose window (start o*S - P, length K) reaches h:
 * ceil((h + P - K + 1) / S), never below 0. */
__device__ static inline int first_window(int h, int K, int S, int P) {
    int t = h + P - K + 1;
    return t <= 0 ? 0 : (t + S - 1) / S;
}
/* The last output index whose window starts at or before h, capped at O-1. */
__device__ static inline int last_window(int h, int S, int P, int O) {
    int t = (h + P) / S;   /* h + P >= 0 */
    return t < O - 1 ? t : O - 1;
}

/* Position (row-major, kh*K + kw) of the maximum of window (oh, ow) of one
 * plane xp [H,W]: strict '>' keeps the first of equal values; a NaN wins
 * (v != v), as in PyTorch and pool.c. */
__device__ static inline int window_argmax(const float *xp, int W, int K, int S, int oh, int ow) {
    const float *w0 = xp + (size_t)(oh * S) * W + ow * S;
    float best = w0[0];
    int arg = 0;
    for (int kh = 0; kh < K; kh++)
        for (int kw = 0; kw < K; kw++) {
            float v = w0[kh * W + kw];
            if (v > best || v != v) { best = v; arg = kh * K + kw; }
        }
    return arg;
}

/* ------------------------------------------------------------ max pool */
__global__ void maxpool_forward_kernel(float *__restrict__ y, const float *__restrict__ x,
                                       int N, int C, int H, int W, int K, int S) {
    int OH = pool_out(H, K, S, 0), OW = pool_out(W, K, S, 0), oh, ow;
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)N * C * OH * OW) return;
    const float *xp = x + plane_pos(e, OH, OW, &oh, &ow) * H * W;
    int arg = window_argmax(xp, W, K, S, oh, ow);
    y[e] = xp[(size_t)(oh * S + arg / K) * W + ow * S + arg % K];
}

/* One thread per dx[n,c,h,w]: add dy of every covering window whose argmax is (h,w). */
__global__ void maxpool_backward_kernel(float *__restrict__ dx, const float *__restrict__ dy,
                                        const float *__restrict__ x, int N, int C, int H, int W, int K, int S) {
    int OH = pool_out(H, K, S, 0), OW = pool_out(W, K, S, 0), h, w;
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)N * C * H * W) return;
    size_t plane = plane_pos(e, H, W, &h, &w);
    const float *xp = x + plane * H * W;
    const float *dyp = dy + plane * OH * OW;
    int oh0 = first_window(h, K, S, 0), oh1 = last_window(h, S, 0, OH);
    int ow0 = first_window(w, K, S, 0), ow1 = last_window(w, S, 0, OW);
    if (oh0 > oh1 || ow0 > ow1) return;   /* no window covers (h,w): nothing to add */
    float acc = dx[e];
    for (int oh = oh0; oh <= oh1; oh++)
        for (int ow = ow0; ow <= ow1; ow++) {
            int arg = window_argmax(xp, W, K, S, oh, ow);
            if (oh * S + arg / K == h && ow * S + arg % K == w) acc += dyp[oh * OW + ow];
        }
    dx[e] = acc;
}

extern "C" void maxpool_forward_cuda(float *y, const float *x, int N, int C, int H, int W, int K, int S) {
    int OH = pool_out(H, K, S, 0), OW = pool_out(W, K, S, 0);
    size_t count = (size_t)N * C * OH * OW;
    if (count == 0 || K > H || K > W) return;
    LAUNCH(maxpool_forward_kernel, ceil_div_sz(count, POOL_THREADS), POOL_THREADS, 0, y, x, N, C, H, W, K, S);
}
extern "C" void maxpool_backward_cuda(float *dx, const float *dy, const float *x, int N, int C, int H, int W, int K, int S) {
    size_t count = (size_t)N * C * H * W;
    if (count == 0 || !dx || K > H || K > W) return;
    LAUNCH(maxpool_backward_kernel, ceil_div_sz(count, POOL_THREADS), POOL_THREADS, 0, dx, dy, x, N, C, H, W, K, S);
}

/* ------------------------------------------------------------ avg pool */
__global__ void avgpool_forward_kernel(float *__restrict__ y, const float *__restrict__ x,
                                       int N, int C, int H, int W, int K, int S, int P) {
    int OH = pool_out(H, K, S, P), OW = pool_out(W, K, S, P), oh, ow;
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)N * C * OH * OW) return;
    const float *xp = x + plane_pos(e, OH, OW, &oh, &ow) * H * W;
    float sum = 0.0f;
    for (int kh = 0; kh < K; kh++) {
        int h = oh * S - P + kh;
        if (h < 0 || h >= H) continue;   /* padding rows add zero */
        for (int kw = 0; kw < K; kw++) {
            int w = ow * S - P + kw;
            if (w >= 0 && w < W) sum += xp[(size_t)h * W + w];
        }
    }
    y[e] = sum / (float)(K * K);
}

/* One thread per dx[n,c,h,w]: add dy/(K*K) of every window covering (h,w). */
__global__ void avgpool_backward_kernel(float *__restrict__ dx, const float *__restrict__ dy,
                                        int N, int C, int H, int W, int K, int S, int P) {
    int OH = pool_out(H, K, S, P), OW = pool_out(W, K, S, P), h, w;
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)N * C * H * W) return;
    const float *dyp = dy + plane_pos(e, H, W, &h, &w) * OH * OW;
    int oh0 = first_window(h, K, S, P), oh1 = last_window(h, S, P, OH);
    int ow0 = first_window(w, K, S, P), ow1 = last_window(w, S, P, OW);
    if (oh0 > oh1 || ow0 > ow1) return;
    float kk = (float)(K * K);
    float acc = dx[e];
    for (int oh = oh0; oh <= oh1; oh++)
        for (int ow = ow0; ow <= ow1; ow++) acc += dyp[oh * OW + ow] / kk;
    dx[e] = acc;
}

extern "C" void avgpool_forward_cuda(float *y, const float *x, int N, int C, int H, int W, int K, int S, int P) {
    int OH = pool_out(H, K, S, P), OW = pool_out(W, K, S, P);
    if (N <= 0 || C <= 0 || OH <= 0 || OW <= 0 || K <= 0) return;
    size_t count = (size_t)N * C * OH * OW;
    LAUNCH(avgpool_forward_kernel, ceil_div_sz(count, POOL_THREADS), POOL_THREADS, 0, y, x, N, C, H, W, K, S, P);
}
extern "C" void avgpool_backward_cuda(float *dx, const float *dy, int N, int C, int H, int W, int K, int S, int P) {
    int OH = pool_out(H, K, S, P), OW = pool_out(W, K, S, P);
    if (!dx || N <= 0 || C <= 0 || H <= 0 || W <= 0 || OH <= 0 || OW <= 0 || K <= 0) return;
    size_t count = (size_t)N * C * H * W;
    LAUNCH(avgpool_backward_kernel, ceil_div_sz(count, POOL_THREADS), POOL_THREADS, 0, dx, dy, N, C, H, W, K, S, P);
}
