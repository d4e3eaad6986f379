/* kernels/conv.c — 2-D convolution by im2col + GEMM (lead's reference version). */
#include "dkd.h"
#include <math.h>
#include <string.h>
#include <stdlib.h>

/* ---- the GEMM kernels (register-blocked, vectorised) -------------------------------
 * v8 = 8 floats = one AVX register (GCC/Clang vector extension). We let the compiler
 * fuse `c += a * b` into one FMA instruction in these two functions only; the rest of
 * the project is built with -std=c11, which forbids that contraction. */
typedef float v8 __attribute__((vector_size(32)));
static inline v8 v8_load(const float *p) { v8 v; memcpy(&v, p, sizeof v); return v; }
static inline void v8_store(float *p, v8 v) { memcpy(p, &v, sizeof v); }
#if defined(__clang__)
#define FMA_OK _Pragma("clang fp contract(fast)")
#define FMA_FUNC
#else
#define FMA_OK
#define FMA_FUNC __attribute__((optimize("fp-contract=fast")))
#endif

/* Micro-kernel: a 4 x 24 tile of C (12 registers) += A[4 rows, K] * B[K, 24 columns].
 * A(i,k) = A[i*ars + k*acs], B row k at B + k*ldb. */
FMA_FUNC static void tile_4x24(int K, const float *A, int ars, int acs, const float *B, int ldb, float *C, int ldc, int acc) {
    FMA_OK
    v8 c00 = {0}, c01 = {0}, c02 = {0}, c10 = {0}, c11 = {0}, c12 = {0};
    v8 c20 = {0}, c21 = {0}, c22 = {0}, c30 = {0}, c31 = {0}, c32 = {0};
    for (int k = 0; k < K; k++) {
        const float *b = B + (size_t)k * ldb, *a = A + (size_t)k * acs;
        v8 b0 = v8_load(b), b1 = v8_load(b + 8), b2 = v8_load(b + 16);
        float a0 = a[0], a1 = a[ars], a2 = a[2 * (size_t)ars], a3 = a[3 * (size_t)ars];
        c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2;
        c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2;
        c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2;
        c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2;
    }
    v8 t[4][3] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32}};
    for (int r = 0; r < 4; r++)
        for (int v = 0; v < 3; v++) {
            float *c = C + (size_t)r * ldc + 8 * v;
            v8_store(c, acc ? v8_load(c) + t[r][v] : t[r][v]);
        }
}

/* C[M,N] (= or +=) A[M,K] * B[K,N]; A element (i,k) at A[i*ars + k*acs]; B, C row-major.
 * Everything goes through the 4x24 micro-kernel: a ragged right edge (N % 24 columns)
 * or bottom edge (M % 4 rows) is first copied into a zero-padded per-thread buffer, and
 * only the valid part of the resulting tile is stored. */
static _Thread_local float *edge_buf;
static _Thread_local size_t edge_cap;
static float *edge_scratch(size_t n) {
    if (n > edge_cap) { free(edge_buf); edge_buf = (float *)xmalloc(n * sizeof(float)); edge_cap = n; }
    return edge_buf;
}
static void gemm_nn(int M, int N, int K, const float *A, int ars, int acs, const float *B, int ldb, float *C, int ldc, int acc) {
    int M4 = M / 4 * 4, N24 = N / 24 * 24, nr = N - N24, mr = M - M4;
    float *Bedge = NULL, *Aedge = NULL;
    if (nr || mr) {
        float *buf = edge_scratch((size_t)K * 24 + (size_t)4 * K);
        Bedge = buf; Aedge = buf + (size_t)K * 24;
        if (nr) for (int k = 0; k < K; k++)
            for (int j = 0; j < 24; j++) Bedge[(size_t)k * 24 + j] = j < nr ? B[(size_t)k * ldb + N24 + j] : 0.0f;
        if (mr) for (int r = 0; r < 4; r++)
            for (int k = 0; k < K; k++) Aedge[(size_t)r * K + k] = r < mr ? A[(size_t)(M4 + r) * ars + (size_t)k * acs] : 0.0f;
    }
    float tile[4 * 24];
    for (int i0 = 0; i0 < M; i0 += 4) {
        int rows = i0 < M4 ? 4 : mr;
        const float *a = i0 < M4 ? A + (size_t)i0 * ars : Aedge;
        int as = i0 < M4 ? ars : K, ac = i0 < M4 ? acs : 1;
        for (int j0 = 0; j0 < N; j0 += 24) {
            if (rows == 4 && j0 < N24) {
                tile_4x24(K, a, as, ac, B + j0, ldb, C + (size_t)i0 * ldc + j0, ldc, acc);
                continue;
            }
            const float *b = j0 < N24 ? B + j0 : Bedge;
            tile_4x24(K, a, as, ac, b, j0 < N24 ? ldb : 24, tile, 24, 0);
            int cols = j0 < N24 ? 24 : nr;
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < cols; j++) {
                    float *c = C + (size_t)(i0 + r) * ldc + j0 + j;
                    *c = acc ? *c + tile[r * 24 + j] : tile[r * 24 + j];
                }
        }
    }
}

/* Dot products of 4 rows of G with 3 rows of X over n floats (the weight gradient
 * reduces over output positions): out[r][q] = sum_p G[r][p] * X[q][p]. Eight lanes
 * accumulate separately and are added in a fixed order at the end. */
FMA_FUNC static void dots_4x3(int n, const float *G, int gs, const float *X, int xs, float out[4][3]) {
    FMA_OK
    v8 a[4][3] = {{{0}}};
    int n8 = n / 8 * 8;
    for (int p = 0; p < n8; p += 8) {
        v8 x0 = v8_load(X + p), x1 = v8_load(X + xs + p), x2 = v8_load(X + 2 * (size_t)xs + p);
        for (int r = 0; r < 4; r++) {
            v8 g = v8_load(G + (size_t)r * gs + p);
            a[r][0] += g * x0; a[r][1] += g * x1; a[r][2] += g * x2;
        }
    }
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 3; q++) {
            float s = 0.0f;
            for (int l = 0; l < 8; l++) s += a[r][q][l];
            for (int p = n8; p < n; p++) s += G[(size_t)r * gs + p] * X[(size_t)q * xs + p];
            out[r][q] = s;
        }
}

void sgemm_cpu(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) for (int j = 0; j < N; j++) {
        float s = 0;
        for (int k = 0; k < K; k++) s += (tA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) * (tB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
        C[(size_t)i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * C[(size_t)i * ldc + j]);
    }
}

size_t conv2d_workspace_floats(int N, int C, int H, int W, int OC, int K, int S, int P, int G) {
    int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
    if (G == C && G == OC) return 1;
    return (size_t)N * (C / G) * K * K * OH * OW;
}

/* col [Cg*K*K, OH*OW] of image channels c0..c0+Cg-1 */
static void im2col(float *col, const float *x, int Cg, int H, int W, int K, int S, int P, int OH, int OW) {
    for (int c = 0; c < Cg; c++) for (int kh = 0; kh < K; kh++) for (int kw = 0; kw < K; kw++) {
        float *row = col + ((size_t)(c * K + kh) * K + kw) * OH * OW;
        const float *xc = x + (size_t)c * H * W;
        for (int oh = 0; oh < OH; oh++) {
            int ih = oh * S - P + kh;
            float *r = row + oh * OW;
            if (ih < 0 || ih >= H) { for (int ow = 0; ow < OW; ow++) r[ow] = 0; continue; }
            for (int ow = 0; ow < OW; ow++) { int iw = ow * S - P + kw; r[ow] = (iw >= 0 && iw < W) ? xc[ih * W + iw] : 0.0f; }
        }
    }
}
static void col2im_add(float *dx, const float *col, int Cg, int H, int W, int K, int S, int P, int OH, int OW) {
    for (int c = 0; c < Cg; c++) for (int kh = 0; kh < K; kh++) for (int kw = 0; kw < K; kw++) {
        const float *row = col + ((size_t)(c * K + kh) * K + kw) * OH * OW;
        float *xc = dx + (size_t)c * H * W;
        for (int oh = 0; oh < OH; oh++) {
            int ih = oh * S - P + kh; if (ih < 0 || ih >= H) continue;
            for (int ow = 0; ow < OW; ow++) { int iw = ow * S - P + kw; if (iw >= 0 && iw < W) xc[ih * W + iw] += row[oh * OW + ow]; }
        }
    }
}

void conv2d_forward_cpu(float *y, const float *x, const float *w, const float *b, int N, int C, int H, int W, int OC, int K, int S, int P, int G, float *ws) {
    int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1, PP = OH * OW;
    if (G == C && G == OC) {
        #pragma omp parallel for
        for (int nc = 0; nc < N * C; nc++) {
            int c = nc % C; const float *xc = x + (size_t)nc * H * W; float *yc = y + (size_t)nc * PP; const float *wc = w + (size_t)c * K * K;
            for (int oh = 0; oh < OH; oh++) for (int ow = 0; ow < OW; ow++) {
                float s = 0;
                for (int kh = 0; kh < K; kh++) { int ih = oh * S - P + kh; if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < K; kw++) { int iw = ow * S - P + kw; if (iw < 0 || iw >= W) continue; s += wc[kh * K + kw] * xc[ih * W + iw]; } }
                yc[oh * OW + ow] = s + (b ? b[c] : 0.0f);
            }
        }
        return;
    }
    int Cg = C / G, OCg = OC / G, KK = Cg * K * K;
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        float *col = ws + (size_t)n * KK * PP;
        for (int g = 0; g < G; g++) {
            im2col(col, x + ((size_t)n * C + g * Cg) * H * W, Cg, H, W, K, S, P, OH, OW);
            float *yg = y + ((size_t)n * OC + g * OCg) * PP;
            gemm_nn(OCg, PP, KK, w + (size_t)g * OCg * KK, KK, 1, col, PP, yg, PP, 0);
            if (b) for (int o = 0; o < OCg; o++) for (int p = 0; p < PP; p++) yg[(size_t)o * PP + p] += b[g * OCg + o];
        }
    }
}

void conv2d_backward_cpu(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int N, int C, int H, int W, int OC, int K, int S, int P, int G, float *ws) {
    int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1, PP = OH * OW;
    if (db) {
        #pragma omp parallel for
        for (int o = 0; o < OC; o++) { float s = 0; for (int n = 0; n < N; n++) for (int p = 0; p < PP; p++) s += dy[((size_t)n * OC + o) * PP + p]; db[o] = s; }
    }
    if (G == C && G == OC) {
        #pragma omp parallel for
        for (int c = 0; c < C; c++) {
            for (int kh = 0; kh < K; kh++) for (int kw = 0; kw < K; kw++) {
                float s = 0;
                for (int n = 0; n < N; n++) { const float *xc = x + ((size_t)n * C + c) * H * W, *g = dy + ((size_t)n * C + c) * PP;
                    for (int oh = 0; oh < OH; oh++) { int ih = oh * S - P + kh; if (ih < 0 || ih >= H) continue;
                        for (int ow = 0; ow < OW; ow++) { int iw = ow * S - P + kw; if (iw < 0 || iw >= W) continue; s += g[oh * OW + ow] * xc[ih * W + iw]; } } }
                dw[((size_t)c * K + kh) * K + kw] = s;
            }
        }
        if (dx) {
            #pragma omp parallel for
            for (int nc = 0; nc < N * C; nc++) {
                int c = nc % C; float *d = dx + (size_t)nc * H * W; const float *g = dy + (size_t)nc * PP; const float *wc = w + (size_t)c * K * K;
                for (int oh = 0; oh < OH; oh++) for (int ow = 0; ow < OW; ow++) {
                    float gv = g[oh * OW + ow];
                    for (int kh = 0; kh < K; kh++) { int ih = oh * S - P + kh; if (ih < 0 || ih >= H) continue;
                        for (int kw = 0; kw < K; kw++) { int iw = ow * S - P + kw; if (iw < 0 || iw >= W) continue; d[ih * W + iw] += wc[kh * K + kw] * gv; } }
                }
            }
        }
        return;
    }
    int Cg = C / G, OCg = OC / G, KK = Cg * K * K;
    for (int g = 0; g < G; g++) {
        #pragma omp parallel for
        for (int n = 0; n < N; n++) im2col(ws + (size_t)n * KK * PP, x + ((size_t)n * C + g * Cg) * H * W, Cg, H, W, K, S, P, OH, OW);
        /* dW[o, k] = sum_n sum_p dy_n[o, p] col_n[k, p]: (o, k) tiles in parallel, images in order */
        int to = (OCg + 3) / 4, tk = (KK + 2) / 3;
        #pragma omp parallel for schedule(static)
        for (int t = 0; t < to * tk; t++) {
            int o0 = (t / tk) * 4, k0 = (t % tk) * 3;
            float acc[4][3] = {{0}}, part[4][3];
            float zero[1] = {0};
            for (int n = 0; n < N; n++) {
                const float *gr = dy + ((size_t)n * OC + g * OCg) * PP;
                const float *cb = ws + (size_t)n * KK * PP;
                if (o0 + 4 <= OCg && k0 + 3 <= KK) {
                    dots_4x3(PP, gr + (size_t)o0 * PP, PP, cb + (size_t)k0 * PP, PP, part);
                } else {
                    for (int r = 0; r < 4; r++) for (int q = 0; q < 3; q++) {
                        float sum = 0.0f;
                        if (o0 + r < OCg && k0 + q < KK)
                            for (int p = 0; p < PP; p++) sum += gr[(size_t)(o0 + r) * PP + p] * cb[(size_t)(k0 + q) * PP + p];
                        part[r][q] = sum;
                    }
                }
                for (int r = 0; r < 4; r++) for (int q = 0; q < 3; q++) acc[r][q] += part[r][q];
                (void)zero;
            }
            for (int r = 0; r < 4; r++) for (int q = 0; q < 3; q++)
                if (o0 + r < OCg && k0 + q < KK) dw[(size_t)(g * OCg + o0 + r) * KK + k0 + q] = acc[r][q];
        }
        if (dx) {
            #pragma omp parallel for
            for (int n = 0; n < N; n++) {
                float *dcol = ws + (size_t)n * KK * PP;   /* col_n is no longer needed: reuse it */
                gemm_nn(KK, PP, OCg, w + (size_t)g * OCg * KK, 1, KK, dy + ((size_t)n * OC + g * OCg) * PP, PP, dcol, PP, 0);
                col2im_add(dx + ((size_t)n * C + g * Cg) * H * W, dcol, Cg, H, W, K, S, P, OH, OW);
            }
        }
    }
}
