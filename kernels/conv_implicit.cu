/* kernels/conv_implicit.cu — the convolution forward as an IMPLICIT GEMM:
 * the product of kernels/conv.cu's im2col path, without the im2col buffer.
 * Read kernels/conv.cu (im2col + GEMM) and version 3 of kernels/gemm.cu
 * (register tiles) first: this file is that GEMM with one operand gathered.
 *
 * What it computes (as conv.cu; Cg = C/G, OCg = OC/G, CKK = Cg*K*K):
 *   y[n,o,oh,ow] = epilogue( sum_{k < CKK} w[o, k] * col[k, (n,oh,ow)] )
 *   col[(c,kh,kw), (n,oh,ow)] = x[n, g*Cg+c, oh*S-P+kh, ow*S-P+kw]  (0 outside the image)
 * i.e. per group g the GEMM  Y_g [OCg, N*OH*OW] = W_g [OCg, CKK] · col_g [CKK, N*OH*OW],
 * the batch folded into the columns as in conv.cu. The epilogue
 * (kernels/conv_epilogue.cuh) adds the bias, and for the fused op
 * conv2d_bn_eval also applies eval BN, the residual and the ReLU.
 *
 * Why: the im2col path writes col (Cg*K*K values per output position: nine
 * times the input for a 3x3 conv), reads it back in the GEMM, writes Y, and
 * copies Y to NCHW: three extra passes over memory, and a workspace of
 * C*K*K*N*OH*OW floats. Here a block loads the slice of col it needs straight
 * from x into shared memory (the "gather"), and writes its finished tile
 * straight into y [N,OC,OH,OW]. The 3x3 windows overlap, so neighbouring
 * columns read the same x values: the cache serves them.
 *
 * Tiles and threads: a block of 256 threads (a 16 x 16 grid, tx fastest)
 * computes a BM x BN tile of Y_g (grid: x over columns, y over rows, z over
 * groups); thread (tx, ty) owns a TM x TN micro-tile, TM = BM/16, TN = BN/16:
 * rows ty + 16r, columns tx + 16c, so 16 accumulators in registers for
 * every tile shape. Per step of BK = 8 along k, the block stages
 *   As[kk][m] = w[g*OCg + row0+m, k0+kk]   (BM x BK, loaded along k: coalesced)
 *   Bs[kk][n] = col[k0+kk, col0+n]         (BK x BN, gathered from x)
 * and every thread does TM*TN multiply-adds per kk from shared memory, as in
 * gemm.cu's version 3. Thread t always gathers column n = t % BN (256 is a
 * multiple of BN), so it decodes its column (image, oh, ow) once, before the
 * k loop, and per k only (c, kh, kw).
 * The tile shape follows OCg, the GEMM's row count, so that few rows are
 * padding: OCg <= 16 -> 16 x 256, <= 32 -> 32 x 128, else 64 x 64
 * (conv_implicit_tile_rows; kernels/README.md lists every model's convs and
 * the tile each gets). Depthwise convs never come here (conv.cu).
 *
 * Determinism and bits: each output is ONE thread's sum over k = 0..CKK-1 in
 * order (zeros past CKK): the order of every GEMM version, so this kernel
 * matches the im2col path's values (tests/emu_conv.cpp checks both against
 * the C reference, and bit-identity under every emulator schedule). The
 * backward (dx, dw) stays on the im2col path of conv.cu.
 */
#include "kernels/cuda_common.h"     // defines: LAUNCH, SHARED, SHARED_PTR, ceil_div
#include "kernels/conv_epilogue.cuh" // defines: ConvEpi, conv_epilogue, conv_implicit_forward

/* 256 threads as 16 x 16; BM x BN = 4096 outputs per block (16 per thread), BK = 8 along k */
enum { IG_THREADS = 256, IG_TY = 16, IG_TX = 16, IG_TILE = 4096, IG_BK = 8 };

/* Thread's column of col: image, top-left input corner, and whether it exists. */
typedef struct { const float *xg; int h0, w0, ok; } GatherCol;

static __device__ __forceinline__ GatherCol gather_col(const float *x, int j, int ncols, int OHW, int OW, int C,
                                                       int Cg, int g, int H, int W, int S, int P) {
    GatherCol q;
    q.ok = j < ncols;
    int n = q.ok ? j / OHW : 0, p = q.ok ? j % OHW : 0;
    q.h0 = (p / OW) * S - P;
    q.w0 = (p % OW) * S - P;
    q.xg = x + ((size_t)n * C + (size_t)g * Cg) * H * W;
    return q;
}

/* col[k, the thread's column]: x at (c, h0+kh, w0+kw), 0 outside the image or past CKK. */
static __device__ __forceinline__ float gather(const GatherCol &q, int k, int CKK, int K, int H, int W) {
    if (!q.ok || k >= CKK) return 0.0f;
    int c = k / (K * K), r = k % (K * K);
    int h = q.h0 + r / K, w = q.w0 + r % K;
    if (h < 0 || h >= H || w < 0 || w >= W) return 0.0f;
    return q.xg[((size_t)c * H + h) * W + w];
}

/* The block's As and Bs slices at step k0 (see the header for the layouts). */
template <int BM>
static __device__ __forceinline__ void stage(SHARED_PTR(float) As, SHARED_PTR(float) Bs, const float *wg,
                                             const GatherCol &q, int tid, int row0, int k0, int OCg, int CKK, int K,
                                             int H, int W) {
    constexpr int BN = IG_TILE / BM;
    for (int e = tid; e < BM * IG_BK; e += IG_THREADS) {
        int kk = e % IG_BK, m = e / IG_BK, k = k0 + kk, o = row0 + m;
        As[kk * BM + m] = (o < OCg && k < CKK) ? wg[(size_t)o * CKK + k] : 0.0f;
    }
    for (int kk = tid / BN; kk < IG_BK; kk += IG_THREADS / BN)
        Bs[kk * BN + tid % BN] = gather(q, k0 + kk, CKK, K, H, W);
}

template <int BM>   /* the tile: BM rows x BN = IG_TILE / BM columns */
__global__ __launch_bounds__(IG_THREADS) void conv_implicit_kernel(float *y, const float *__restrict__ x,
                                                                   const float *__restrict__ w, ConvEpi epi,
                                                                   int N, int C, int H, int W, int OC, int K,
                                                                   int S, int P, int G, int OH, int OW) {
    constexpr int BN = IG_TILE / BM, TM = BM / IG_TY, TN = BN / IG_TX;
    SHARED(float, As, IG_BK * BM);   /* As[kk][m] = W_g[row0+m, k0+kk] */
    SHARED(float, Bs, IG_BK * BN);   /* Bs[kk][n] = col_g[k0+kk, col0+n] */
    int g = blockIdx.z, Cg = C / G, OCg = OC / G, CKK = Cg * K * K, OHW = OH * OW, ncols = N * OHW;
    int tid = threadIdx.x, tx = tid % IG_TX, ty = tid / IG_TX;
    int row0 = blockIdx.y * BM, col0 = blockIdx.x * BN;
    const float *wg = w + (size_t)g * OCg * CKK;
    GatherCol q = gather_col(x, col0 + tid % BN, ncols, OHW, OW, C, Cg, g, H, W, S, P);
    float acc[TM][TN] = {};
    for (int k0 = 0; k0 < CKK; k0 += IG_BK) {
        stage<BM>(As, Bs, wg, q, tid, row0, k0, OCg, CKK, K, H, W);
        __syncthreads();
        for (int kk = 0; kk < IG_BK; kk++) {
            float a[TM], b[TN];
            for (int r = 0; r < TM; r++) a[r] = As[kk * BM + ty + IG_TY * r];
            for (int c = 0; c < TN; c++) b[c] = Bs[kk * BN + tx + IG_TX * c];
            for (int r = 0; r < TM; r++)
                for (int c = 0; c < TN; c++) acc[r][c] += a[r] * b[c];
        }
        __syncthreads();
    }
    for (int c = 0; c < TN; c++) {   /* the epilogue, straight into y [N, OC, OHW] */
        int j = col0 + tx + IG_TX * c;
        if (j >= ncols) continue;
        size_t n = (size_t)(j / OHW), p = (size_t)(j % OHW);
        for (int r = 0; r < TM; r++) {
            int o = row0 + ty + IG_TY * r;
            if (o >= OCg) continue;
            int oc = g * OCg + o;
            size_t i = (n * OC + oc) * OHW + p;
            y[i] = conv_epilogue(epi, oc, i, acc[r][c]);
        }
    }
}

int conv_implicit_tile_rows(int OCg) { return OCg <= 16 ? 16 : OCg <= 32 ? 32 : 64; }

template <int BM>
static void launch_tile(float *y, const float *x, const float *w, ConvEpi epi, int N, int C, int H, int W, int OC,
                        int K, int S, int P, int G, int OH, int OW) {
    dim3 grid(ceil_div(N * OH * OW, IG_TILE / BM), ceil_div(OC / G, BM), G);
    LAUNCH(conv_implicit_kernel<BM>, grid, IG_THREADS, 0, y, x, w, epi, N, C, H, W, OC, K, S, P, G, OH, OW);
}

void conv_implicit_forward(float *y, const float *x, const float *w, ConvEpi epi,
                           int N, int C, int H, int W, int OC, int K, int S, int P, int G) {
    int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
    if (N <= 0 || OH <= 0 || OW <= 0) return;
    switch (conv_implicit_tile_rows(OC / G)) {
    case 16: launch_tile<16>(y, x, w, epi, N, C, H, W, OC, K, S, P, G, OH, OW); break;
    case 32: launch_tile<32>(y, x, w, epi, N, C, H, W, OC, K, S, P, G, OH, OW); break;
    default: launch_tile<64>(y, x, w, epi, N, C, H, W, OC, K, S, P, G, OH, OW); break;
    }
}
