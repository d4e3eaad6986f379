/* kernels/conv.cu — 2-D convolution on the GPU: im2col + GEMM, col2im as a
 * gather, a direct kernel for depthwise convolutions, and the SGEMM itself in
 * three versions of increasing speed. Read kernels/conv.c (the C reference,
 * same signatures with suffix _cpu) first: this file computes the same thing.
 *
 * What it computes (shapes in the legend of dkd.h; Cg = C/G, OCg = OC/G):
 *   x [N,C,H,W], w [OC,Cg,K,K], b [OC] or NULL -> y [N,OC,OH,OW],
 *   OH = (H+2P-K)/S+1, OW likewise,
 *   y[n,o,oh,ow] = b[o] + sum_{c<Cg, kh<K, kw<K} w[o,c,kh,kw] * x[n, g*Cg+c, oh*S-P+kh, ow*S-P+kw]
 *   (g = o / OCg the group of o; x outside the image is 0: zero padding).
 * Backward (dy [N,OC,OH,OW] given): dx += (may be NULL), dw = , db = (may be NULL).
 *
 * How: the convolution becomes a matrix product. im2col copies, for every
 * output position, the Cg*K*K input values it sees into one column:
 *     cols [C*K*K, Nc*OH*OW]      row (c,kh,kw), column (image, oh, ow)
 * and then, for every group g (rows g*Cg*K*K.. of cols, rows g*OCg.. of w):
 *     forward   Y_g   [OCg, Nc*OHW] = W_g [OCg, Cg*K*K] · cols_g
 *     weights   dW_g  [OCg, Cg*K*K] = dY_g · cols_g^T          (sum over images AND positions)
 *     inputs    dcols_g [Cg*K*K, Nc*OHW] = W_g^T · dY_g, then col2im
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
 * way and reduces dw with one block per weight (fixed-order tree reduction).
 *
 * Thread mapping: the copy kernels (im2col, col2im, layouts, depthwise) use one
 * thread per output element, 1-D blocks of conv_cuda_set_block_size() threads
 * (default 256), consecutive threads on consecutive addresses (coalesced).
 * The bias gradient is one block per output channel (a block reduction).
 * The GEMM versions are described where they are defined.
 *
 * Knobs (tests and benchmarks): DKD_GEMM_VERSION=1|2|3 or
 * gemm_cuda_set_version(v) picks the SGEMM kernel (default: the fastest, 3);
 * conv_cuda_set_block_size(n) sets the 1-D block size (a multiple of 32).
 * All versions give the same result up to the sign of zero sums: each sums
 * its K products in the same order k = 0, 1, ..., K-1.
 */
#include "kernels/cuda_common.h"   // defines: LAUNCH, SHARED, cudaCheck, ceil_div
#include "kernels/cuda_ops.h"      // defines: the *_cuda declarations (extern "C")

extern "C" {
/* Tuning knobs of this file (declared here; not part of the dkd.h contract). */
void gemm_cuda_set_version(int v);       /* 1, 2, 3; 0 = default (env DKD_GEMM_VERSION, else 3) */
int gemm_cuda_version(void);             /* the version in use */
void conv_cuda_set_block_size(int n);    /* threads of the 1-D kernels: multiple of 32 in 32..1024; 0 = 256 */
void conv_cuda_set_workspace_cap(size_t floats); /* workspace limit that sets the chunk size; 0 = default */
}

enum { GEMM_VERSIONS = 3, GEMM_FASTEST = 3 };
static const size_t WS_CAP_FLOATS = (size_t)1 << 25;   /* 128 MiB of workspace at most, unless one image needs more */
static size_t g_ws_cap = WS_CAP_FLOATS;

static int g_gemm_version = 0;   /* 0: not chosen yet */
static int g_block = 256;

void gemm_cuda_set_version(int v) { g_gemm_version = (v >= 1 && v <= GEMM_VERSIONS) ? v : 0; }
int gemm_cuda_version(void) {
    if (g_gemm_version == 0) {
        const char *e = getenv("DKD_GEMM_VERSION");
        int v = e ? atoi(e) : GEMM_FASTEST;
        if (v < 1 || v > GEMM_VERSIONS) {
            fprintf(stderr, "dkd: DKD_GEMM_VERSION=%s is not 1..%d: using %d\n", e, GEMM_VERSIONS, GEMM_FASTEST);
            v = GEMM_FASTEST;
        }
        g_gemm_version = v;
    }
    return g_gemm_version;
}
void conv_cuda_set_block_size(int n) { g_block = (n >= 32 && n <= 1024 && n % 32 == 0) ? n : 256; }
/* Tests use a tiny cap to exercise the chunked path (one image per chunk). */
void conv_cuda_set_workspace_cap(size_t floats) { g_ws_cap = floats ? floats : WS_CAP_FLOATS; }

/* ========================================================================= */
/* SGEMM: C[M,N] = alpha * op(A)[M,K] · op(B)[K,N] + beta * C   (row-major)   */
/*   op(A)[i,k] = tA ? A[k*lda + i] : A[i*lda + k]                            */
/*   op(B)[k,j] = tB ? B[j*ldb + k] : B[k*ldb + j]                            */
/* Batched over blockIdx.z: matrix z starts at A + z*sA, B + z*sB, C + z*sC   */
/* (conv uses z = group). beta == 0 never reads C (it may hold NaN garbage).   */
/* ========================================================================= */

static __device__ __forceinline__ float load_a(const float *A, int tA, int lda, int M, int K, int i, int k) {
    if (i >= M || k >= K) return 0.0f;
    return tA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
}
static __device__ __forceinline__ float load_b(const float *B, int tB, int ldb, int K, int N, int k, int j) {
    if (k >= K || j >= N) return 0.0f;
    return tB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
}
static __device__ __forceinline__ void store_c(float *C, int ldc, int i, int j, float acc, float alpha, float beta) {
    float *c = C + (size_t)i * ldc + j;
    *c = beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;
}

/* Version 1 — the C loop body, with the two outer loops (i over rows, j over
 * columns) mapped to threads: one thread per element of C, 16x16 blocks.
 * Every thread reads a whole row of A and a whole column of B from global
 * memory: 2K loads per 2K flops, so it runs at the speed of memory (L2 hits
 * help a little), far below the arithmetic peak.
 * measured gain: not yet measured on a GPU (the baseline). */
__global__ void sgemm_kernel1(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                              const float *B, int ldb, float beta, float *C, int ldc,
                              long long sA, long long sB, long long sC) {
    A += blockIdx.z * sA; B += blockIdx.z * sB; C += blockIdx.z * sC;
    int j = blockIdx.x * blockDim.x + threadIdx.x;   /* consecutive threads: consecutive columns */
    int i = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= M || j >= N) return;
    float acc = 0.0f;
    for (int k = 0; k < K; k++) acc += load_a(A, tA, lda, M, K, i, k) * load_b(B, tB, ldb, K, N, k, j);
    store_c(C, ldc, i, j, acc, alpha, beta);
}

/* Version 2 — shared-memory tiling. A 16x16 block computes a 16x16 tile of C;
 * it walks along K in steps of 16: the block loads a 16x16 tile of A and one
 * of B into shared memory (each thread loads one element of each), waits
 * (__syncthreads), and every thread does 16 multiply-adds from shared memory.
 * Each global load now serves 16 threads: global traffic drops 16-fold, and
 * the kernel becomes limited by shared-memory bandwidth (2 shared loads per
 * multiply-add). Out-of-range elements are loaded as 0, so edges need no
 * special case. The second __syncthreads keeps a fast thread from
 * overwriting a tile that a slow one is still reading.
 * measured gain: not yet measured on a GPU. */
#define T2 16
__global__ void sgemm_kernel2(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                              const float *B, int ldb, float beta, float *C, int ldc,
                              long long sA, long long sB, long long sC) {
    SHARED(float, As, T2 * T2);   /* As[ty][kk] = op(A)[row0+ty, k0+kk] */
    SHARED(float, Bs, T2 * T2);   /* Bs[kk][tx] = op(B)[k0+kk, col0+tx] */
    A += blockIdx.z * sA; B += blockIdx.z * sB; C += blockIdx.z * sC;
    int tx = threadIdx.x, ty = threadIdx.y;
    int i = blockIdx.y * T2 + ty, j = blockIdx.x * T2 + tx;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += T2) {
        As[ty * T2 + tx] = load_a(A, tA, lda, M, K, i, k0 + tx);
        Bs[ty * T2 + tx] = load_b(B, tB, ldb, K, N, k0 + ty, j);
        __syncthreads();
        for (int kk = 0; kk < T2; kk++) acc += As[ty * T2 + kk] * Bs[kk * T2 + tx];
        __syncthreads();
    }
    if (i < M && j < N) store_c(C, ldc, i, j, acc, alpha, beta);
}

/* Version 3 — register blocking. A block of 256 threads computes a 64x64 tile
 * of C; each thread owns a 4x4 micro-tile (rows ty+16r, columns tx+16c) held
 * in 16 registers. Per step along K (BK = 8) the block stages a 64x8 slice of
 * A (stored transposed, As[k][m], so a thread's 4 A values sit in one row)
 * and an 8x64 slice of B in shared memory; then for each k a thread loads 4
 * values of A and 4 of B into registers and does 16 multiply-adds: 8 shared
 * loads per 16 FMAs instead of 2 per 1 in version 2, so the arithmetic units,
 * not shared memory, become the limit. The strided micro-tile (stride 16, not
 * 4 adjacent elements) keeps the 16 threads of a half-warp on 16 consecutive
 * shared-memory words (no bank conflicts) and on consecutive C addresses when
 * storing (coalesced). Global loads are arranged so consecutive threads read
 * consecutive addresses for either transpose flag.
 * measured gain: not yet measured on a GPU. */
#define BM3 64
#define BN3 64
#define BK3 8
#define TM3 4
#define TN3 4
__global__ __launch_bounds__(256) void sgemm_kernel3(int tA, int tB, int M, int N, int K, float alpha,
                                                     const float *A, int lda, const float *B, int ldb,
                                                     float beta, float *C, int ldc,
                                                     long long sA, long long sB, long long sC) {
    SHARED(float, As, BK3 * BM3);   /* As[kk][m] = op(A)[row0+m, k0+kk] */
    SHARED(float, Bs, BK3 * BN3);   /* Bs[kk][n] = op(B)[k0+kk, col0+n] */
    A += blockIdx.z * sA; B += blockIdx.z * sB; C += blockIdx.z * sC;
    int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    int row0 = blockIdx.y * BM3, col0 = blockIdx.x * BN3;
    float acc[TM3][TN3];
    for (int r = 0; r < TM3; r++)
        for (int c = 0; c < TN3; c++) acc[r][c] = 0.0f;
    for (int k0 = 0; k0 < K; k0 += BK3) {
        /* stage the tiles: 512 elements each, 2 per thread */
        for (int e = tid; e < BM3 * BK3; e += 256) {
            int m, kk;
            if (tA) { m = e % BM3; kk = e / BM3; }   /* A stored [K][M]: walk along m */
            else    { kk = e % BK3; m = e / BK3; }   /* A stored [M][K]: walk along k */
            As[kk * BM3 + m] = load_a(A, tA, lda, M, K, row0 + m, k0 + kk);
        }
        for (int e = tid; e < BK3 * BN3; e += 256) {
            int n, kk;
            if (tB) { kk = e % BK3; n = e / BK3; }   /* B stored [N][K]: walk along k */
            else    { n = e % BN3; kk = e / BN3; }   /* B stored [K][N]: walk along n */
            Bs[kk * BN3 + n] = load_b(B, tB, ldb, K, N, k0 + kk, col0 + n);
        }
        __syncthreads();
        for (int kk = 0; kk < BK3; kk++) {
            float a[TM3], b[TN3];
            for (int r = 0; r < TM3; r++) a[r] = As[kk * BM3 + ty + 16 * r];
            for (int c = 0; c < TN3; c++) b[c] = Bs[kk * BN3 + tx + 16 * c];
            for (int r = 0; r < TM3; r++)
                for (int c = 0; c < TN3; c++) acc[r][c] += a[r] * b[c];
        }
        __syncthreads();
    }
    for (int r = 0; r < TM3; r++) {
        int i = row0 + ty + 16 * r;
        if (i >= M) continue;
        for (int c = 0; c < TN3; c++) {
            int j = col0 + tx + 16 * c;
            if (j < N) store_c(C, ldc, i, j, acc[r][c], alpha, beta);
        }
    }
}

/* One launcher for the three versions; `batch` matrices (grid z). */
static void gemm_batched(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda, long long sA,
                         const float *B, int ldb, long long sB, float beta, float *C, int ldc, long long sC, int batch) {
    if (M <= 0 || N <= 0 || batch <= 0) return;
    switch (gemm_cuda_version()) {
    case 1: {
        dim3 grid(ceil_div(N, 16), ceil_div(M, 16), batch), block(16, 16);
        LAUNCH(sgemm_kernel1, grid, block, 0, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, sA, sB, sC);
        break;
    }
    case 2: {
        dim3 grid(ceil_div(N, T2), ceil_div(M, T2), batch), block(T2, T2);
        LAUNCH(sgemm_kernel2, grid, block, 0, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, sA, sB, sC);
        break;
    }
    default: {
        dim3 grid(ceil_div(N, BN3), ceil_div(M, BM3), batch);
        LAUNCH(sgemm_kernel3, grid, 256, 0, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, sA, sB, sC);
        break;
    }
    }
}

void sgemm_cuda(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc) {
    gemm_batched(tA, tB, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

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
        int t = h + P - kh;                   /* = oh*S if this tap touched (h, w) */
        if (t < 0 || t % S) continue;
        int oh = t / S;
        if (oh >= OH) continue;
        for (int kw = 0; kw < K; kw++) {
            int u = w + P - kw;
            if (u < 0 || u % S) continue;
            int ow = u / S;
            if (ow >= OW) continue;
            acc += dcols[(size_t)((c * K + kh) * K + kw) * ncols + (size_t)n * OHW + (size_t)oh * OW + ow];
        }
    }
    dx[(size_t)n0 * C * H * W + i] += acc;
}

/* y[n0+n, o, p] = Y[o, n*OHW + p] + b[o]    (Y: the GEMM result [OC, Nc*OHW]) */
__global__ void gemm_to_nchw_kernel(float *y, const float *Y, const float *b, int n0, int Nc, int OC, int OHW) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;   /* index within the chunk of y */
    size_t total = (size_t)Nc * OC * OHW;
    if (i >= total) return;
    int p = (int)(i % OHW), o = (int)((i / OHW) % OC), n = (int)(i / ((size_t)OHW * OC));
    float v = Y[(size_t)o * Nc * OHW + (size_t)n * OHW + p];
    y[(size_t)n0 * OC * OHW + i] = b ? v + b[o] : v;
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
/* Reductions (bias gradient, depthwise weight gradient)                     */
/* ========================================================================= */

/* Sum of v over the block, valid in thread 0. blockDim.x: a multiple of 32.
 * Fixed order: lanes fold by halves (shuffles), then warp sums likewise. */
static __device__ float block_sum(float v) {
    SHARED(float, warp_sums, 32);
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    v = 0.0f;
    if (warp == 0) {
        v = lane < nwarps ? warp_sums[lane] : 0.0f;
        for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
    }
    return v;
}

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
    acc = block_sum(acc);
    if (threadIdx.x == 0) db[o] = acc;
}

/* ========================================================================= */
/* Depthwise convolution (G == C == OC): w [C,1,K,K]                         */
/* ========================================================================= */

__global__ void depthwise_forward_kernel(float *y, const float *x, const float *w, const float *b,
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
    y[i] = b ? acc + b[c] : acc;
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
        int t = h + P - kh;
        if (t < 0 || t % S) continue;
        int oh = t / S;
        if (oh >= OH) continue;
        for (int kw = 0; kw < K; kw++) {
            int u = ww + P - kw;
            if (u < 0 || u % S) continue;
            int ow = u / S;
            if (ow >= OW) continue;
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
    acc = block_sum(acc);
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

void conv2d_forward_cuda(float *y, const float *x, const float *w, const float *b,
                         int N, int C, int H, int W, int OC, int K, int S, int P, int G, float *ws) {
    int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
    if (N <= 0 || OH <= 0 || OW <= 0) return;
    int OHW = OH * OW, bs = g_block;
    if (is_depthwise(C, OC, G)) {
        size_t total = (size_t)N * C * OHW;
        LAUNCH(depthwise_forward_kernel, ceil_div_sz(total, bs), bs, 0, y, x, w, b, N, C, H, W, K, S, P, OH, OW);
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
        gemm_batched(0, 0, OCg, ncols, CgKK, 1.0f, w, CgKK, (long long)OCg * CgKK,
                     cols, ncols, (long long)CgKK * ncols, 0.0f, Y, ncols, (long long)OCg * ncols, G);
        total = (size_t)cur * OC * OHW;
        LAUNCH(gemm_to_nchw_kernel, ceil_div_sz(total, bs), bs, 0, y, Y, b, n0, cur, OC, OHW);
    }
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
        gemm_batched(0, 1, OCg, CgKK, ncols, 1.0f, dY, ncols, (long long)OCg * ncols,
                     cols, ncols, (long long)CgKK * ncols, n0 == 0 ? 0.0f : 1.0f, dw, CgKK, (long long)OCg * CgKK, G);
        if (dx) {
            /* dcols_g [CgKK, ncols] = W_g^T · dY_g, written over cols (no longer needed) */
            gemm_batched(1, 0, CgKK, ncols, OCg, 1.0f, w, CgKK, (long long)OCg * CgKK,
                         dY, ncols, (long long)OCg * ncols, 0.0f, cols, ncols, (long long)CgKK * ncols, G);
            total = (size_t)cur * C * H * W;
            LAUNCH(col2im_kernel, ceil_div_sz(total, bs), bs, 0, dx, cols, n0, cur, C, H, W, K, S, P, OH, OW);
        }
    }
}
