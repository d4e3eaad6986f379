/* kernels/winograd.c — 3x3 convolution by Winograd's minimal filtering, F(2x2, 3x3).
 *
 * This is a CPU speed path of conv.c (the CUDA conv, conv.cu, stays im2col + GEMM):
 * conv.c sends it the 3x3 / stride 1 / pad 1 layers, which are almost all the work of
 * the CIFAR ResNets, WRNs and VGGs, for the forward and for dx (dx of such a layer is
 * again such a convolution, of dy with the flipped kernel: see conv.c). Set
 * DKD_WINOGRAD=0 to use the implicit GEMM of conv.c instead (to compare).
 *
 * The idea (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016)
 * -----------------------------------------------------------------------------------
 * Two outputs of a 3-tap filter, y0 = d0·g0 + d1·g1 + d2·g2, y1 = d1·g0 + d2·g1 + d3·g2,
 * take 6 multiplications done directly, but only 4 done as
 *     m0 = (d0 - d2)·g0          m1 = (d1 + d2)·(g0 + g1 + g2)/2
 *     m3 = (d1 - d3)·g2          m2 = (d2 - d1)·(g0 - g1 + g2)/2
 *     y0 = m0 + m1 + m2          y1 = m1 - m2 - m3
 * In matrices, y = A^T [(G g) ⊙ (B^T d)] with
 *     B^T = | 1  0 -1  0 |     G = | 1    0    0  |     A^T = | 1  1  1  0 |
 *           | 0  1  1  0 |         | 1/2  1/2  1/2|           | 0  1 -1 -1 |
 *           | 0 -1  1  0 |         | 1/2 -1/2  1/2|
 *           | 0  1  0 -1 |         | 0    0    1  |
 * Nesting it in both directions gives a 2x2 output tile of a 3x3 filter from a 4x4
 * input tile d with 16 multiplications instead of 36:
 *     Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A
 * For a layer, the sum over input channels c moves inside the brackets, so with
 *     U[ξ][o][c] = (G g_oc G^T)[ξ]          (weights, once per call)
 *     V[ξ][c][t] = (B^T d_ct B)[ξ]          (input tile t of channel c)
 *     M[ξ][o][t] = Σ_c U[ξ][o][c] · V[ξ][c][t]   (16 matrix products, ξ = 0..15)
 *     Y_ot = A^T M[·][o][t] A
 * the multiply-adds are 16·OC·C per 4 outputs instead of 36: 2.25x fewer. The
 * transforms are only additions, and they are done once per tile and channel, not per
 * channel pair. The price: the transformed data are 4x the input (16 numbers per tile
 * of 4 outputs), and rounding differs from a direct sum (the 1/2 in G is exact; the
 * extra additions add a few ulps: the golden tests against PyTorch report the size).
 *
 * How it runs (winograd_images: a few images on the calling thread)
 * --------------------------------------------------------------
 * 1. Copy the images into zero-bordered buffers (1 zero row/column around each, rounded
 *    up to whole tiles), so no tile needs bounds checks, split into their even and odd
 *    columns so that the transforms read contiguous runs (split_image). Small maps
 *    (8x8: 16 tiles, 4x4: 4) are done several images at a time, so that a block still
 *    has WINO_TB tiles for the GEMMs (winograd_images_per_call). Which images share a
 *    call changes nothing in the results: every tile is computed on its own.
 * 2. For a block of up to WINO_TB tiles (their V and M then stay in L2): the input
 *    transform writes V directly in the order the GEMM micro-kernel reads B (strips of
 *    NR tiles: gemm.h), done as row transforms (d B, along a tile row) then column
 *    transforms (B^T ·), each a loop over the tiles of a row that the compiler
 *    vectorises (a first version with one tile per iteration, all scalar, took twice
 *    as long as the GEMMs).
 * 3. 16 products M[ξ] = U[ξ] · V[ξ] with gemm_packed (U was packed once per call).
 * 4. The output transform turns M into 2x2 output tiles (bias added, or added to y).
 * Every number is computed by one thread in a fixed order: deterministic.
 */
#include "dkd.h"
#include "gemm.h"
#include "winograd.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { WINO_TB = 64 };   /* tiles per block (a multiple of GEMM_NR) */

int winograd_applies(int C, int OC, int K, int S, int P, int G) {
    static int enabled = -1;
    if (enabled < 0) {
        const char *e = getenv("DKD_WINOGRAD");
        enabled = !(e && e[0] == '0');
    }
    /* Below 32 channels the transforms (per channel) cost as much as the multiply-adds
     * they save (per channel pair): one thread, batch 64, 3x3 layer C -> C, forward:
     *   16 ch @ 32x32: Winograd 11.7 ms, implicit GEMM 10.4 ms
     *   32 ch @ 16x16: 8.0 vs 10.8        64 ch @ 8x8: 7.0 vs 11.2
     * Maps of any size are fine: small ones go several images at a time. */
    return enabled && K == 3 && S == 1 && P == 1 && G == 1 && C >= 32 && OC >= 32;
}

/* ---- weights: U[ξ] = G g G^T for every (o, c), then packed for the GEMM ------------ */

size_t winograd_u_floats(int C, int OC) { return 16 * gemm_packed_a_floats(OC, C); }

/* u[ξ] = (G g G^T)[ξ] for one 3x3 kernel g (row-major) */
static void transform_kernel(const float *g, float u[16]) {
    float Gg[4][3];   /* G·g */
    for (int k = 0; k < 3; k++) {
        float g0 = g[k], g1 = g[3 + k], g2 = g[6 + k];
        Gg[0][k] = g0;
        Gg[1][k] = 0.5f * (g0 + g1 + g2);
        Gg[2][k] = 0.5f * (g0 - g1 + g2);
        Gg[3][k] = g2;
    }
    for (int i = 0; i < 4; i++) {   /* (G·g)·G^T */
        u[4 * i + 0] = Gg[i][0];
        u[4 * i + 1] = 0.5f * (Gg[i][0] + Gg[i][1] + Gg[i][2]);
        u[4 * i + 2] = 0.5f * (Gg[i][0] - Gg[i][1] + Gg[i][2]);
        u[4 * i + 3] = Gg[i][2];
    }
}

/* Written straight into the GEMM's packed order (gemm_a_strip says where row o goes),
 * so the 16 matrices are written once: for VGG-13's 512-channel layers they are 16 MB,
 * and a plain copy first, packed after, cost a fifth of the layer's time. */
void winograd_weights(float *U, const float *w, int C, int OC) {
    size_t packed = gemm_packed_a_floats(OC, C);
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < OC; o++) {
        int first, rows, hp;
        gemm_a_strip(OC, o, &first, &rows, &hp);
        float *dst = U + (size_t)first * C + (o - first);   /* element (o, c) at dst[c·hp] */
        for (int c = 0; c < C; c++) {
            float u[16];
            transform_kernel(w + ((size_t)o * C + c) * 9, u);
            for (int xi = 0; xi < 16; xi++) dst[(size_t)xi * packed + (size_t)c * hp] = u[xi];
        }
        if (o == first + rows - 1)   /* the strip's padding rows (if any) are zeros */
            for (int r = rows; r < hp; r++)
                for (int c = 0; c < C; c++)
                    for (int xi = 0; xi < 16; xi++) U[(size_t)xi * packed + (size_t)first * C + (size_t)c * hp + r] = 0.0f;
    }
}

/* ---- a group of images ------------------------------------------------------------------ */

typedef struct {
    int C, H, W, OC, ni;
    int TH, TW, T;      /* tiles per image: TH x TW (outputs 2ty..2ty+1, 2tx..2tx+1); T of all ni
                           images, numbered image by image, row by row (tile row R = n·TH + ty) */
    int Hp, Wh;         /* zero-bordered image: Hp = 2·TH + 2 rows of 2·Wh = 2·TW + 2 columns */
    int Tb;             /* tiles per block, rounded up to whole strips of NR */
    float *xe, *xo;     /* the bordered images, split into their even and odd columns */
    float *E;           /* row transforms of one channel: [Hp][4][TW] */
    float *V, *M;       /* the block's transformed inputs and products */
    float *out;         /* 4 x TW: one tile row of outputs before interleaving */
} Wino;

/* The sizes, and (slot given) where each buffer sits in the slot, one after the other;
 * *floats: the slot's size. */
static Wino wino_geometry(int C, int H, int W, int OC, int ni, float *slot, size_t *floats) {
    Wino g;
    g.C = C; g.H = H; g.W = W; g.OC = OC; g.ni = ni;
    g.TH = (H + 1) / 2; g.TW = (W + 1) / 2; g.T = ni * g.TH * g.TW;
    g.Hp = 2 * g.TH + 2; g.Wh = g.TW + 1;
    int Tr = (g.T + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    g.Tb = Tr < WINO_TB ? Tr : WINO_TB;
    size_t sizes[6] = {
        (size_t)ni * C * g.Hp * g.Wh,   /* xe */
        (size_t)ni * C * g.Hp * g.Wh,   /* xo */
        (size_t)g.Hp * 4 * g.TW,        /* E */
        (size_t)16 * C * g.Tb,          /* V: 16 x [Tb/NR strips][C][NR] */
        (size_t)16 * OC * g.Tb,         /* M: 16 x [OC][Tb] */
        (size_t)4 * g.TW,               /* out */
    };
    float **at[6] = {&g.xe, &g.xo, &g.E, &g.V, &g.M, &g.out};
    size_t off = 0;
    for (int i = 0; i < 6; i++) {
        *at[i] = slot ? slot + off : NULL;
        off += sizes[i];
    }
    if (floats) *floats = off;
    return g;
}

size_t winograd_slot_floats(int C, int H, int W, int OC, int ni) {
    size_t floats;
    wino_geometry(C, H, W, OC, ni, NULL, &floats);
    return floats;
}

int winograd_images_per_call(int N, int H, int W) {
    int per_image = ((H + 1) / 2) * ((W + 1) / 2), procs = dkd_num_procs();
    int ni = (WINO_TB + per_image - 1) / per_image;    /* a whole block of tiles ...     */
    int share = (N + procs - 1) / procs;               /* ... but work for every core     */
    if (ni > share) ni = share;
    return ni < 1 ? 1 : ni;
}

/* Step 1: the image with a border of zeros (pixel (ih, iw) at row ih+1, column iw+1),
 * stored as its even columns xe and odd columns xo: bordered column 2m is xe[m],
 * 2m+1 is xo[m]. A tile's 4 columns 2tx..2tx+3 are then xe[tx], xo[tx], xe[tx+1],
 * xo[tx+1]: the row transforms below read only contiguous runs, which vectorise. */
static void split_row(int W, const float *restrict xr, float *restrict e, float *restrict o) {
    /* pixel iw is bordered column iw + 1: odd pixels go to e[(iw+1)/2], even to o[iw/2] */
    for (int m = 0; m < W / 2; m++) { o[m] = xr[2 * m]; e[m + 1] = xr[2 * m + 1]; }
    if (W % 2) o[W / 2] = xr[W - 1];
}
static void split_image(const Wino *g, const float *x) {
    size_t plane = (size_t)g->Hp * g->Wh;
    memset(g->xe, 0, 2 * (size_t)g->ni * g->C * plane * sizeof(float));
    for (int c = 0; c < g->ni * g->C; c++)   /* (image n, channel c) planes follow each other */
        for (int ih = 0; ih < g->H; ih++) {
            const float *xr = x + ((size_t)c * g->H + ih) * g->W;
            float *e = g->xe + c * plane + (size_t)(ih + 1) * g->Wh, *o = g->xo + c * plane + (size_t)(ih + 1) * g->Wh;
            split_row(g->W, xr, e, o);
        }
}

/* Row transforms (d B) of channel c for bordered rows [r0, r1): for every tile column,
 * E[r][j][tx] = Σ_k d[r][2tx + k] B[k][j]. */
static void row_transform(int TW, const float *restrict e, const float *restrict o, float *restrict E0,
                          float *restrict E1, float *restrict E2, float *restrict E3) {
    for (int t = 0; t < TW; t++) {   /* d0..d3 = e[t], o[t], e[t+1], o[t+1] */
        E0[t] = e[t] - e[t + 1];
        E1[t] = o[t] + e[t + 1];
        E2[t] = e[t + 1] - o[t];
        E3[t] = o[t] - o[t + 1];
    }
}
static void row_transforms(const Wino *g, int c, int r0, int r1) {   /* c: plane n·C + c */
    size_t plane = (size_t)g->Hp * g->Wh;
    int TW = g->TW;
    for (int r = r0; r < r1; r++) {
        float *E0 = g->E + (size_t)r * 4 * TW;
        row_transform(TW, g->xe + c * plane + (size_t)r * g->Wh, g->xo + c * plane + (size_t)r * g->Wh,
                      E0, E0 + TW, E0 + 2 * TW, E0 + 3 * TW);
    }
}
/* The hot loops get plain arguments: with the sizes read through the Wino struct
 * inside the loop, gcc does not vectorise them. */
static void column_transform(int n, const float *restrict e0, const float *restrict e1, const float *restrict e2,
                             const float *restrict e3, float *restrict v0, float *restrict v1, float *restrict v2,
                             float *restrict v3) {
    for (int k = 0; k < n; k++) {
        v0[k] = e0[k] - e2[k];
        v1[k] = e1[k] + e2[k];
        v2[k] = e2[k] - e1[k];
        v3[k] = e1[k] - e3[k];
    }
}

/* Column transforms (B^T ·) of channel c for tiles tx in [txa, txb) of tile row ty, the
 * first being tile t0 of the block: V[ξ = 4i + j] into the GEMM's strip order. Runs of
 * tiles inside one strip are contiguous there, so each run is a vector loop. */
static void column_transforms(const Wino *g, int c, int ty, int txa, int txb, int t0) {
    size_t vstride = (size_t)g->C * g->Tb;   /* floats per ξ */
    for (int tx = txa; tx < txb;) {
        int t = t0 + tx - txa, lane = t % GEMM_NR;
        int run = GEMM_NR - lane < txb - tx ? GEMM_NR - lane : txb - tx;
        float *v = g->V + (size_t)(t / GEMM_NR) * g->C * GEMM_NR + (size_t)c * GEMM_NR + lane;
        for (int j = 0; j < 4; j++) {
            const float *e0 = g->E + ((size_t)(2 * ty) * 4 + j) * g->TW + tx;
            size_t es = (size_t)4 * g->TW;   /* from one bordered row's E to the next */
            column_transform(run, e0, e0 + es, e0 + 2 * es, e0 + 3 * es, v + (size_t)(0 + j) * vstride,
                             v + (size_t)(4 + j) * vstride, v + (size_t)(8 + j) * vstride, v + (size_t)(12 + j) * vstride);
        }
        tx += run;
    }
}

/* y00..y11[i]: the 2x2 outputs A^T M A of n tiles, from m[ξ·ms + i] */
static void output_transform(int n, const float *restrict m, size_t ms, float *restrict y00, float *restrict y01,
                             float *restrict y10, float *restrict y11) {
    for (int i = 0; i < n; i++) {
        /* s[r][0..1] = (M A)[r] for the 4 rows r of M (ξ = 4r + j) */
        float s00 = m[0 * ms + i] + m[1 * ms + i] + m[2 * ms + i], s01 = m[1 * ms + i] - m[2 * ms + i] - m[3 * ms + i];
        float s10 = m[4 * ms + i] + m[5 * ms + i] + m[6 * ms + i], s11 = m[5 * ms + i] - m[6 * ms + i] - m[7 * ms + i];
        float s20 = m[8 * ms + i] + m[9 * ms + i] + m[10 * ms + i], s21 = m[9 * ms + i] - m[10 * ms + i] - m[11 * ms + i];
        float s30 = m[12 * ms + i] + m[13 * ms + i] + m[14 * ms + i], s31 = m[13 * ms + i] - m[14 * ms + i] - m[15 * ms + i];
        y00[i] = s00 + s10 + s20; y01[i] = s01 + s11 + s21;   /* A^T (M A) */
        y10[i] = s10 - s20 - s30; y11[i] = s11 - s21 - s31;
    }
}
/* yr[2i] (+)= p0[i], yr[2i+1] (+)= p1[i] for i < n; beta 0: overwrite, + bias */
static void interleave_row(int n, float *restrict yr, const float *restrict p0, const float *restrict p1, float bias,
                           float beta) {
    if (beta != 0.0f)
        for (int i = 0; i < n; i++) { yr[2 * i] += p0[i]; yr[2 * i + 1] += p1[i]; }
    else
        for (int i = 0; i < n; i++) { yr[2 * i] = p0[i] + bias; yr[2 * i + 1] = p1[i] + bias; }
}

/* 2x2 outputs of channel o for tiles tx in [txa, txb) of tile row ty (block tile t0
 * first): Y = A^T M A, written to y (beta 0, + bias) or added to it (beta 1). The
 * arithmetic runs over the tiles as vectors (M's rows are contiguous in t); then the
 * four outputs of each tile are interleaved into the two output rows. */
static void output_transforms(const Wino *g, float *y, int o, int ty, int txa, int txb, int t0, float bias,
                              float beta) {
    int n = txb - txa;
    float *y00 = g->out, *y01 = y00 + g->TW, *y10 = y01 + g->TW, *y11 = y10 + g->TW;
    output_transform(n, g->M + (size_t)o * g->Tb + t0, (size_t)g->OC * g->Tb, y00, y01, y10, y11);
    int oh = 2 * ty, rows = oh + 1 < g->H ? 2 : 1;
    for (int a = 0; a < rows; a++) {
        float *yr = y + ((size_t)o * g->H + oh + a) * g->W + 2 * txa;
        const float *p0 = a == 0 ? y00 : y10, *p1 = a == 0 ? y01 : y11;
        int full = 2 * txb <= g->W ? n : n - 1;   /* tiles with both columns inside */
        interleave_row(full, yr, p0, p1, bias, beta);
        if (full < n) yr[2 * full] = beta != 0.0f ? yr[2 * full] + p0[full] : p0[full] + bias;
    }
}

/* The tiles of tile row R (R = n·TH + ty, over all images) that lie in the block of nb
 * tiles from tile b0: tx in [*txa, *txb). */
static void row_span(const Wino *g, int R, int b0, int nb, int *txa, int *txb) {
    int R0 = b0 / g->TW, R1 = (b0 + nb - 1) / g->TW;
    *txa = R == R0 ? b0 % g->TW : 0;
    *txb = R == R1 ? (b0 + nb - 1) % g->TW + 1 : g->TW;
}

void winograd_images(float *y, const float *x, int ni, const float *U, const float *bias, float beta, int C, int H,
                     int W, int OC, float *slot) {
    Wino g = wino_geometry(C, H, W, OC, ni, slot, NULL);
    split_image(&g, x);                                                  /* 1 */
    size_t packed = gemm_packed_a_floats(OC, C), ysz = (size_t)OC * H * W;
    for (int b0 = 0; b0 < g.T; b0 += g.Tb) {
        int nb = g.T - b0 < g.Tb ? g.T - b0 : g.Tb;
        int R0 = b0 / g.TW, R1 = (b0 + nb - 1) / g.TW;                   /* tile rows of the block */
        for (int c = 0; c < C; c++)                                      /* 2 */
            for (int n = R0 / g.TH; n <= R1 / g.TH; n++) {               /* the images in the block */
                int tya = n == R0 / g.TH ? R0 % g.TH : 0, tyb = n == R1 / g.TH ? R1 % g.TH : g.TH - 1;
                row_transforms(&g, n * C + c, 2 * tya, 2 * tyb + 4);
                for (int ty = tya, R = n * g.TH + ty, txa, txb; ty <= tyb; ty++, R++) {
                    row_span(&g, R, b0, nb, &txa, &txb);
                    column_transforms(&g, c, ty, txa, txb, R * g.TW + txa - b0);
                }
            }
        for (int xi = 0; xi < 16; xi++)                                  /* 3 */
            gemm_packed(OC, nb, C, U + (size_t)xi * packed, g.V + (size_t)xi * C * g.Tb, 0.0f,
                        g.M + (size_t)xi * OC * g.Tb, g.Tb);
        for (int o = 0; o < OC; o++)                                     /* 4 */
            for (int R = R0, txa, txb; R <= R1; R++) {
                row_span(&g, R, b0, nb, &txa, &txb);
                output_transforms(&g, y + (size_t)(R / g.TH) * ysz, o, R % g.TH, txa, txb, R * g.TW + txa - b0,
                                  bias ? bias[o] : 0.0f, beta);
            }
    }
}
