/* kernels/conv.c — 2-D convolution by im2col + GEMM (lead's reference version). */
#include "dkd.h"
#include <math.h>
#include <string.h>
#include <stdlib.h>

/* C[M,N] (+)= A[M,K] * B[K,N]; A element (i,k) at A[i*ars + k*acs]; B, C row-major with ldb, ldc. */
static void gemm_nn(int M, int N, int K, const float *A, int ars, int acs, const float *B, int ldb, float *C, int ldc, int acc) {
    enum { RB = 4, CB = 64 };
    for (int i0 = 0; i0 < M; i0 += RB) {
        int mr = M - i0 < RB ? M - i0 : RB;
        for (int j0 = 0; j0 < N; j0 += CB) {
            int nc = N - j0 < CB ? N - j0 : CB;
            float t[RB][CB];
            for (int r = 0; r < RB; r++) for (int j = 0; j < CB; j++) t[r][j] = 0.0f;
            if (mr == RB && nc == CB) {
                for (int k = 0; k < K; k++) {
                    const float *b = B + (size_t)k * ldb + j0;
                    float a0 = A[(size_t)(i0) * ars + (size_t)k * acs], a1 = A[(size_t)(i0 + 1) * ars + (size_t)k * acs];
                    float a2 = A[(size_t)(i0 + 2) * ars + (size_t)k * acs], a3 = A[(size_t)(i0 + 3) * ars + (size_t)k * acs];
                    for (int j = 0; j < CB; j++) { float bv = b[j]; t[0][j] += a0 * bv; t[1][j] += a1 * bv; t[2][j] += a2 * bv; t[3][j] += a3 * bv; }
                }
            } else {
                for (int k = 0; k < K; k++) {
                    const float *b = B + (size_t)k * ldb + j0;
                    for (int r = 0; r < mr; r++) { float a = A[(size_t)(i0 + r) * ars + (size_t)k * acs]; for (int j = 0; j < nc; j++) t[r][j] += a * b[j]; }
                }
            }
            for (int r = 0; r < mr; r++) {
                float *c = C + (size_t)(i0 + r) * ldc + j0;
                if (acc) for (int j = 0; j < nc; j++) c[j] += t[r][j]; else for (int j = 0; j < nc; j++) c[j] = t[r][j];
            }
        }
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
        /* dW[o, k] = sum_n sum_p dy_n[o, p] col_n[k, p] : rows o in parallel, images in order */
        #pragma omp parallel for collapse(2)
        for (int o = 0; o < OCg; o++) for (int k0 = 0; k0 < KK; k0 += 8) {
            int kn = KK - k0 < 8 ? KK - k0 : 8;
            float acc[8] = {0};
            for (int n = 0; n < N; n++) {
                const float *gr = dy + ((size_t)n * OC + g * OCg + o) * PP;
                const float *cb = ws + (size_t)n * KK * PP + (size_t)k0 * PP;
                for (int kk = 0; kk < kn; kk++) {
                    const float *cr = cb + (size_t)kk * PP; float s = 0;
                    for (int p = 0; p < PP; p++) s += gr[p] * cr[p];
                    acc[kk] += s;
                }
            }
            for (int kk = 0; kk < kn; kk++) dw[(size_t)(g * OCg + o) * KK + k0 + kk] = acc[kk];
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
