/* kernels/conv.cu — 2-D convolution on the GPU: im2col + GEMM (the GEMM is
 * kernels/gemm.cu), col2im as a gather, and a direct kernel for depthwise
 * convolutions. The forward runs, by default, on the implicit GEMM of
 * kernels/conv_implicit.cu (the same product without the im2col buffer);
 * the im2col forward below stays as its reference. Read kernels/conv.c (the C reference, same signatures with
 * suffix _cpu; its top holds the plain seven-loop convolution) first: this
 * file computes the same thing.
 *
 * What it computes (shapes in the legend of dkd.h; Cg = C/G, OCg = OC/G):
 *   x [N,C,H,W], w [OC,Cg,K,K], b [OC] or NULL -> y [N,OC,OH,OW],
 *   OH = (H+2P-K)/S+1, OW likewise,
 *   y[n,o,oh,ow] = b[o] + sum_{c<Cg, kh<K, kw<K} w[o,c,kh,kw] * x[n, g*Cg+c, oh*S-P+kh, ow*S-P+kw]
 *   (g = o / OCg the group of o; x outside the image is 0: zero padding).
 * Backward, given dy [N,OC,OH,OW]: dx [N,C,H,W] is ACCUMULATED (+=; dx may be
 * NULL when the input needs no gradient), dw [OC,Cg,K,K] and db [OC] are
 * OVERWRITTEN (=; db may be NULL when the layer has no bias).
 *
 * How: the convolution becomes a matrix product. im2col copies, for every
 * output position, the Cg*K*K input values it sees into one column:
 *     cols [C*K*K, Nc*OH*OW]      row (c,kh,kw), column (image, oh, ow)
 * and then, for every group g (rows g*Cg*K*K.. of cols, rows g*OCg.. of w):
 *     forward   Y_g   [OCg, Nc*OHW] = W_g [OCg, Cg*K*K] · cols_g
 *     weights   dW_g  [OCg, Cg*K*K] = dY_g · cols_g^T          (sum over images AND positions)
 *     inputs    dcols_g [Cg*K*K, Nc*OHW] = W_g^T · dY_g, then col2im
 * The groups are the batch index (grid z) of one batched GEMM launch.
 * The BATCH IS FOLDED INTO THE GEMM: the columns of all Nc images sit side by
 * side, so one GEMM per group does the work of Nc small ones. That keeps the
 * GEMMs large even for 8x8 feature maps (64 columns per image) and, for dW,
 * makes the sum over the batch part of the GEMM's K loop: a FIXED summation
 * order, no float atomics, bit-reproducible results. Y and dY live in the
 * workspace as [OC, Nc*OHW]; two small copy kernels move them from/to the NCHW
 * tensors (the forward one adds the bias on the way).
 * Images are processed in chunks of Nc so the workspace stays below
 * WS_CAP_FLOATS; the chunk size depends only on the shapes, so results do too.
 *
 * col2im is a GATHER: one thread per dx element loops over the (kh, kw) that
 * touched it and sums the matching dcols entries. (The scatter form, one
 * thread per dcols entry adding into dx, would need atomics: several columns
 * hit the same input pixel, and their order would change from run to run.)
 *
 * Depthwise (G == C == OC, MobileNetV2): each output channel reads ONE input
 * channel, K*K weights — far too little work for a GEMM, so a direct kernel
 * computes one output element per thread; its backward gathers dx the same
 * way and reduces dw with one block per weight (block_sum of reduce.cuh).
 *
 * Why no Winograd here (kernels/winograd.c uses it on the CPU): see
 * kernels/README.md, "Winograd on the GPU".
 *
 * Thread mapping: the copy kernels (im2col, col2im, layouts, depthwise) use one
 * thread per output element, 1-D blocks of conv_cuda_set_block_size() threads
 * (default 256), consecutive threads on consecutive addresses (coalesced).
 * The bias gradient is one block per output channel (a block reduction).
 *
 * Which forward (conv_forward_epi): depthwise -> the direct kernel; every
 * other conv -> the implicit GEMM, or im2col + GEMM with DKD_CUDA_IMPLICIT=0
 * (or conv_cuda_set_implicit(0)). The backward is always im2col + GEMM.
 * Every forward kernel ends with the epilogue of kernels/conv_epilogue.cuh:
 * the bias, and for the fused eval op conv2d_bn_eval also BN, the residual
 * and the ReLU, so that op is these kernels with a longer epilogue.
 *
 * Knobs (tests and benchmarks): DKD_GEMM_VERSION=1..4 or
 * gemm_cuda_set_version(v) picks the GEMM kernel (kernels/gemm.cu);
 * conv_cuda_set_block_size(n) sets the 1-D block size (a multiple of 32).
 */
#include "kernels/cuda_common.h"   // defines: LAUNCH, SHARED, cudaCheck, ceil_div
#include "kernels/cuda_ops.h"      // defines: the *_cuda declarations (extern "C"), gemm_cuda_batched
#include "kernels/reduce.cuh"      // defines: block_sum
#include "kernels/conv_epilogue.cuh" // defines: ConvEpi, conv_epilogue, conv_implicit_forward

#include <string.h>

extern "C" {
/* Tuning knobs of this file (declared here; not part of the dkd.h contract). */
void conv_cuda_set_block_size(int n);    /* threads of the 1-D kernels: multiple of 32 in 32..1024; 0 = 256 */
void conv_cuda_set_workspace_cap(size_t floats); /* workspace limit that sets the chunk size; 0 = default */
void conv_cuda_set_implicit(int on);     /* forward: 1 implicit GEMM, 0 im2col + GEMM, -1 = DKD_CUDA_IMPLICIT */
}

static const size_t WS_CAP_FLOATS = (size_t)1 << 25;   /* 128 MiB of workspace at most, unless one image needs more */
static size_t g_ws_cap = WS_CAP_FLOATS;
static int g_block = 256;
static int g_implicit = -1;   /* -1: read DKD_CUDA_IMPLICIT (0 = off) at first use */

void conv_cuda_set_implicit(int on) { g_implicit = on < 0 ? -1 : !!on; }
static int implicit_on(void) {
    if (g_implicit < 0) {
        const char *e = getenv("DKD_CUDA_IMPLICIT");
        g_implicit = !(e && !strcmp(e, "0"));
    }
    return g_implicit;
}

void conv_cuda_set_block_size(int n) { g_block = (n >= 32 && n <= 1024 && n % 32 == 0) ? n : 256; }
/* Tests use a tiny cap to exercise the chunked path (one image per chunk). */
void conv_cuda_set_workspace_cap(size_t floats) { g_ws_cap = floats ? floats : WS_CAP_FLOATS; }

/* ========================================================================= */
/* Layout kernels (one thread per element written)                           */
/* ========================================================================= */

/* im2col for images n0..n0+Nc-1: cols [C*K*K, Nc*OH*OW]. */
__global__ void im2col_kernel(float *cols, const float *x, int n0, int Nc, int C, int H, int W,
                              int K, int S, int P, int OH, int OW) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t OHW = (size_t)OH * OW, ncols = (size_t)Nc * OHW, total = (size_t)C * K * K * ncols;
    if (i >= total) return;
    int row = (int)(i / ncols);              /* (c, kh, kw) */
    size_t col = i % ncols;                  /* (image, oh, ow) */
    int c = row / (K * K), kh = (row / K) % K, kw = row % K;
    int n = (int)(col / OHW), p = (int)(col % OHW);
    int h = (p / OW) * S - P + kh, w = (p % OW) * S - P + kw;
    float v = 0.0f;
    if (h >= 0 && h < H && w >= 0 && w < W) v = x[(((size_t)(n0 + n) * C + c) * H + h) * W + w];
    cols[i] = v;
}

/* The output position o whose window put input position h under tap k
 * (o*S - P + k = h), or -1 when none did: h + P - k is not a multiple of S,
 * or lies before the first window or past the last. The backward gathers
 * (col2im, depthwise dx) ask it once per row tap and once per column tap. */
__device__ static inline int tap_output(int h, int k, int S, int P, int O) {
    int t = h + P - k;
    if (t < 0 || t % S) return -1;
    int o = t / S;
    return o < O ? o : -1;
}

/* col2im as a gather, accumulating: dx[n0+n, c, h, w] += sum over the (kh, kw)
 * whose window put (h, w) into a column, of dcols[(c,kh,kw), (n,oh,ow)]. */
__global__ void col2im_kernel(float *dx, const float *dcols, int n0, int Nc, int C, int H, int W,
                              int K, int S, int P, int OH, int OW) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t total = (size_t)Nc * C * H * W;
    if (i >= total) return;
    int w = (int)(i % W), h = (int)((i / W) % H), c = (int)((i / ((size_t)W * H)) % C);
    int n = (int)(i / ((size_t)W * H * C));
    size_t OHW = (size_t)OH * OW, ncols = (size_t)Nc * OHW;
    float acc = 0.0f;
    for (int kh = 0; kh < K; kh++) {
        int oh = tap_output(h, kh, S, P, OH);
        if (oh < 0) continue;
        for (int kw = 0; kw < K; kw++) {
            int ow = tap_output(w, kw, S, P, OW);
            if (ow < 0) continue;
            acc += dcols[(size_t)((c * K + kh) * K + kw) * ncols + (size_t)n * OHW + (size_t)oh * OW + ow];
        }
    }
    dx[(size_t)n0 * C * H * W + i] += acc;
}

/* y[n0+n, o, p] = epilogue(Y[o, n*OHW + p])    (Y: the GEMM result [OC, Nc*OHW];
 * the epilogue adds the bias, and for conv2d_bn_eval applies BN, res, ReLU) */
__global__ void gemm_to_nchw_kernel(float *y, const float *Y, ConvEpi epi, int n0, int Nc, int OC, int OHW) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;   /* index within the chunk of y */
    size_t total = (size_t)Nc * OC * OHW;
    if (i >= total) return;
    int p = (int)(i % OHW), o = (int)((i / OHW) % OC), n = (int)(i / ((size_t)OHW * OC));
    size_t iy = (size_t)n0 * OC * OHW + i;
    y[iy] = conv_epilogue(epi, o, iy, Y[(size_t)o * Nc * OHW + (size_t)n * OHW + p]);
}

/* dY[o, n*OHW + p] = dy[n0+n, o, p]: the layout the backward GEMMs read. */
__global__ void nchw_to_gemm_kernel(float *dY, const float *dy, int n0, int Nc, int OC, int OHW) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;   /* index within dY */
    size_t ncols = (size_t)Nc * OHW, total = (size_t)OC * ncols;
    if (i >= total) return;
    int o = (int)(i / ncols);
    size_t col = i % ncols;
    int n = (int)(col / OHW), p = (int)(col % OHW);
    dY[i] = dy[((size_t)(n0 + n) * OC + o) * OHW + p];
}

/* ========================================================================= */
/* Bias gradient (a block reduction per output channel)                      */
/* ========================================================================= */

/* db[o] = sum over n, p of dy[n, o, p]: one block per output channel; thread
 * t sums elements t, t+blockDim, ... in order, then the block adds up. */
__global__ void bias_grad_kernel(float *db, const float *dy, int N, int OC, int OHW) {
    int o = blockIdx.x;
    size_t count = (size_t)N * OHW;
    float acc = 0.0f;
    for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
        size_t n = e / OHW, p = e % OHW;
        acc += dy[(n * OC + o) * OHW + p];
    }
    acc = (float)block_sum((double)acc);
    if (threadIdx.x == 0) db[o] = acc;
}

/* ========================================================================= */
/* Depthwise convolution (G == C == OC): w [C,1,K,K]                         */
/* ========================================================================= */

__global__ void depthwise_forward_kernel(float *y, const float *x, const float *w, ConvEpi epi,
                                         int N, int C, int H, int W, int K, int S, int P, int OH, int OW) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t total = (size_t)N * C * OH * OW;
    if (i >= total) return;
    int ow = (int)(i % OW), oh = (int)((i / OW) % OH);
    size_t nc = i / ((size_t)OW * OH);        /* n*C + c */
    int c = (int)(nc % C);
    const float *xp = x + nc * H * W, *wp = w + (size_t)c * K * K;
    float acc = 0.0f;
    for (int kh = 0; kh < K; kh++) {
        int h = oh * S - P + kh;
        if (h < 0 || h >= H) continue;
        for (int kw = 0; kw < K; kw++) {
            int ww = ow * S - P + kw;
            if (ww < 0 || ww >= W) continue;
            acc += wp[kh * K + kw] * xp[h * W + ww];
        }
    }
    y[i] = conv_epilogue(epi, c, i, acc);
}

/* dx[n,c,h,w] += sum over taps (kh,kw) with (h+P-kh, w+P-kw) = S*(oh, ow) of w[c,kh,kw] * dy[n,c,oh,ow] */
__global__ void depthwise_backward_dx_kernel(float *dx, const float *dy, const float *w,
                                             int N, int C, int H, int W, int K, int S, int P, int OH, int OW) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t total = (size_t)N * C * H * W;
    if (i >= total) return;
    int ww = (int)(i % W), h = (int)((i / W) % H);
    size_t nc = i / ((size_t)W * H);
    int c = (int)(nc % C);
    const float *dyp = dy + nc * OH * OW, *wp = w + (size_t)c * K * K;
    float acc = 0.0f;
    for (int kh = 0; kh < K; kh++) {
        int oh = tap_output(h, kh, S, P, OH);
        if (oh < 0) continue;
        for (int kw = 0; kw < K; kw++) {
            int ow = tap_output(ww, kw, S, P, OW);
            if (ow < 0) continue;
            acc += wp[kh * K + kw] * dyp[oh * OW + ow];
        }
    }
    dx[i] += acc;
}

/* dw[c,kh,kw] = sum over n, oh, ow of dy[n,c,oh,ow] * x[n,c,oh*S-P+kh,ow*S-P+kw]:
 * one block per weight (grid K*K x C), a fixed-order block reduction. */
__global__ void depthwise_backward_dw_kernel(float *dw, const float *dy, const float *x,
                                             int N, int C, int H, int W, int K, int S, int P, int OH, int OW) {
    int tap = blockIdx.x, c = blockIdx.y, kh = tap / K, kw = tap % K;
    size_t OHW = (size_t)OH * OW, count = (size_t)N * OHW;
    float acc = 0.0f;
    for (size_t e = threadIdx.x; e < count; e += blockDim.x) {
        size_t n = e / OHW;
        int p = (int)(e % OHW), oh = p / OW, ow = p % OW;
        int h = oh * S - P + kh, ww = ow * S - P + kw;
        if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
        acc += dy[(n * C + c) * OHW + p] * x[((n * C + c) * H + h) * W + ww];
    }
    acc = (float)block_sum((double)acc);
    if (threadIdx.x == 0) dw[(size_t)c * K * K + tap] = acc;
}

/* ========================================================================= */
/* The conv ops                                                              */
/* ========================================================================= */

static int is_depthwise(int C, int OC, int G) { return G == C && OC == C; }

/* Images per chunk: as many as fit in the workspace cap (at least one), at most N. */
static int chunk_images(int N, int C, int OC, int K, int OHW) {
    size_t per_image = ((size_t)C * K * K + (size_t)OC) * (size_t)OHW;
    size_t nc = per_image ? g_ws_cap / per_image : (size_t)N;
    if (nc < 1) nc = 1;
    if (nc > (size_t)N) nc = (size_t)N;
    return (int)nc;
}

size_t conv2d_workspace_floats_cuda(int N, int C, int H, int W, int OC, int K, int S, int P, int G) {
    if (is_depthwise(C, OC, G) || N <= 0) return 0;
    int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
    if (OH <= 0 || OW <= 0) return 0;
    size_t OHW = (size_t)OH * OW;
    int nc = chunk_images(N, C, OC, K, (int)OHW);
    return (size_t)nc * ((size_t)C * K * K + (size_t)OC) * OHW;
}

/* The forward with its epilogue: depthwise -> the direct kernel; else the
 * implicit GEMM (kernels/conv_implicit.cu) unless switched off, else im2col. */
static void conv_forward_epi(float *y, const float *x, const float *w, ConvEpi epi,
                             int N, int C, int H, int W, int OC, int K, int S, int P, int G, float *ws) {
    int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
    if (N <= 0 || OH <= 0 || OW <= 0) return;
    int OHW = OH * OW, bs = g_block;
    if (is_depthwise(C, OC, G)) {
        size_t total = (size_t)N * C * OHW;
        LAUNCH(depthwise_forward_kernel, ceil_div_sz(total, bs), bs, 0, y, x, w, epi, N, C, H, W, K, S, P, OH, OW);
        return;
    }
    if (implicit_on()) {
        conv_implicit_forward(y, x, w, epi, N, C, H, W, OC, K, S, P, G);
        return;
    }
    int Cg = C / G, OCg = OC / G, CgKK = Cg * K * K;
    int nc = chunk_images(N, C, OC, K, OHW);
    float *cols = ws;                                      /* [C*K*K, nc*OHW] */
    float *Y = ws + (size_t)nc * C * K * K * OHW;          /* [OC, nc*OHW] */
    for (int n0 = 0; n0 < N; n0 += nc) {
        int cur = N - n0 < nc ? N - n0 : nc;
        int ncols = cur * OHW;
        size_t total = (size_t)C * K * K * ncols;
        LAUNCH(im2col_kernel, ceil_div_sz(total, bs), bs, 0, cols, x, n0, cur, C, H, W, K, S, P, OH, OW);
        /* per group g: Y_g [OCg, ncols] = W_g [OCg, CgKK] · cols_g [CgKK, ncols] */
        gemm_cuda_batched(0, 0, OCg, ncols, CgKK, 1.0f, w, CgKK, (long long)OCg * CgKK,
                     cols, ncols, (long long)CgKK * ncols, 0.0f, Y, ncols, (long long)OCg * ncols, G);
        total = (size_t)cur * OC * OHW;
        LAUNCH(gemm_to_nchw_kernel, ceil_div_sz(total, bs), bs, 0, y, Y, epi, n0, cur, OC, OHW);
    }
}

void conv2d_forward_cuda(float *y, const float *x, const float *w, const float *b,
                         int N, int C, int H, int W, int OC, int K, int S, int P, int G, float *ws) {
    ConvEpi epi = {b, NULL, NULL, NULL, NULL, NULL, 0.0f, 0};
    conv_forward_epi(y, x, w, epi, N, C, H, W, OC, K, S, P, G, ws);
}

/* The fused op (dkd.h): the same kernels with BN, res and ReLU in the epilogue;
 * 0 = declined because fusion is off (DKD_CUDA_FUSED=0 or cuda_fused = 0). */
int conv2d_bn_eval_cuda(float *y, const float *x, const float *w, const float *b, int N, int C, int H, int W,
                        int OC, int K, int S, int P, int G, float *ws, const float *res, const float *gamma,
                        const float *beta, const float *run_mean, const float *run_var, float eps, int relu) {
    if (!cuda_fused_on()) return 0;
    ConvEpi epi = {b, gamma, beta, run_mean, run_var, res, eps, relu};
    conv_forward_epi(y, x, w, epi, N, C, H, W, OC, K, S, P, G, ws);
    return 1;
}

void conv2d_backward_cuda(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                          int N, int C, int H, int W, int OC, int K, int S, int P, int G, float *ws) {
    int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
    if (N <= 0 || OH <= 0 || OW <= 0) return;
    int OHW = OH * OW, bs = g_block;
    if (db) LAUNCH(bias_grad_kernel, OC, bs, 0, db, dy, N, OC, OHW);
    if (is_depthwise(C, OC, G)) {
        dim3 grid(K * K, C);
        LAUNCH(depthwise_backward_dw_kernel, grid, bs, 0, dw, dy, x, N, C, H, W, K, S, P, OH, OW);
        if (dx) {
            size_t total = (size_t)N * C * H * W;
            LAUNCH(depthwise_backward_dx_kernel, ceil_div_sz(total, bs), bs, 0, dx, dy, w, N, C, H, W, K, S, P, OH, OW);
        }
        return;
    }
    int Cg = C / G, OCg = OC / G, CgKK = Cg * K * K;
    int nc = chunk_images(N, C, OC, K, OHW);
    float *cols = ws;                                      /* [C*K*K, nc*OHW]: cols, then dcols */
    float *dY = ws + (size_t)nc * C * K * K * OHW;         /* [OC, nc*OHW] */
    for (int n0 = 0; n0 < N; n0 += nc) {
        int cur = N - n0 < nc ? N - n0 : nc;
        int ncols = cur * OHW;
        size_t total = (size_t)C * K * K * ncols;
        LAUNCH(im2col_kernel, ceil_div_sz(total, bs), bs, 0, cols, x, n0, cur, C, H, W, K, S, P, OH, OW);
        total = (size_t)OC * ncols;
        LAUNCH(nchw_to_gemm_kernel, ceil_div_sz(total, bs), bs, 0, dY, dy, n0, cur, OC, OHW);
        /* dW_g [OCg, CgKK] (+)= dY_g [OCg, ncols] · cols_g^T: the batch is in the K loop.
         * The first chunk overwrites dw, later chunks add to it (in chunk order). */
        gemm_cuda_batched(0, 1, OCg, CgKK, ncols, 1.0f, dY, ncols, (long long)OCg * ncols,
                     cols, ncols, (long long)CgKK * ncols, n0 == 0 ? 0.0f : 1.0f, dw, CgKK, (long long)OCg * CgKK, G);
        if (dx) {
            /* dcols_g [CgKK, ncols] = W_g^T · dY_g, written over cols (no longer needed) */
            gemm_cuda_batched(1, 0, CgKK, ncols, OCg, 1.0f, w, CgKK, (long long)OCg * CgKK,
                         dY, ncols, (long long)OCg * ncols, 0.0f, cols, ncols, (long long)CgKK * ncols, G);
            total = (size_t)cur * C * H * W;
            LAUNCH(col2im_kernel, ceil_div_sz(total, bs), bs, 0, dx, cols, n0, cur, C, H, W, K, S, P, OH, OW);
        }
    }
}
