/* kernels/winograd.c — 3x3 convolution by Winograd's minimal filtering: F(2x2, 3x3), and
 * F(4x4, 3x3) for eval-mode forwards.
 *
 * This is a CPU speed path of conv.c (the CUDA conv, conv.cu, stays im2col + GEMM):
 * conv.c sends it the wide 3x3 / stride 1 / pad 1 layers, which are almost all the work
 * of the CIFAR ResNets, WRNs and VGGs, for the forward and for dx (dx of such a layer is
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
 * F(4x4, 3x3): the same with 4 outputs per direction from 6 inputs, interpolating at
 * the points 0, ±1, ±2 and ∞ (the 6x6 B^T, 6x3 G and 4x6 A^T are written out at bt4,
 * g_rows4 and at4 below): a 4x4 tile from a 6x6 one with 36 multiplications instead of
 * 144, 4x fewer, and 2.25 transformed numbers per output instead of 4. The larger
 * constants (4, 5, 8, 1/6, 1/24) cost precision: against the direct sum in double, a
 * 64 -> 64 layer on 16x16 maps (inputs in [-1, 1], weights in [-0.1, 0.1]) is off by
 * 7.2e-6 of max|y| with F(4x4) and 3.1e-7 with F(2x2); the models' eval logits against
 * PyTorch (tests/test_golden.c) by 1.0e-6 to 1.7e-6 of max|logit| (resnet8x4, vgg8,
 * wrn_16_2; 4.5e-7 to 9.7e-7 with F(2x2)). In a training step that error reached the
 * gradients (resnet8x4: a global relative L2 of 1.8e-3 against PyTorch instead of
 * 4.7e-7), so conv.c takes F(4x4) only for eval-mode forwards (teacher forwards,
 * evaluation, inference: conv2d_forward_eval_cpu) and keeps F(2x2) for training.
 *
 * How it runs (winograd_images: a few images on the calling thread; m = 2 or 4)
 * ----------------------------------------------------------------------------
 * 1. Copy the images into zero-bordered buffers (1 zero row/column around each, rounded
 *    up to whole tiles), so no tile needs bounds checks, split into m column phases
 *    (column q to phase q % m) so that a tile's columns are contiguous runs of the
 *    phases (split_image). Small maps (8x8: 16 tiles of 2x2, 4x4: 4) are done several
 *    images at a time, so that a block still has enough tiles for the GEMMs
 *    (winograd_images_per_call). Which images share a call changes nothing in the
 *    results: every tile is computed on its own.
 * 2. For a block of up to WINO_TB (F(4x4): WINO_TB4) tiles, their V and M then in L2,
 *    channel by channel: the a x a inputs of every tile are gathered into D (one copy
 *    per tile row and input position), then B^T d B runs on 8 tiles at a time as
 *    vectors and writes V directly in the order the GEMM micro-kernel reads B (strips of
 *    NR tiles: gemm.h). Vectors over tiles, not over the columns of one tile row: on 8x8
 *    and 4x4 maps a tile row has 2 to 4 tiles, and the first version (one tile row per
 *    loop) spent more time in its scalar remainders than in the GEMMs.
 * 3. a² products M[ξ] = U[ξ] · V[ξ] with gemm_packed (U was packed once per call).
 * 4. The output transform A^T M A, again 8 tiles at a time, then each tile's m x m
 *    outputs are spread into the output rows (bias added, or added to y).
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

enum {
    WINO_TB = 64,    /* F(2x2) tiles per block (a multiple of GEMM_NR) */
    WINO_TB4 = 32,   /* F(4x4) tiles per block */
};

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

/* F(4x4) does 36 multiply-adds per 16 outputs where F(2x2) does 64, and its transformed
 * tiles hold 2.25 numbers per output where F(2x2)'s hold 4; but a 4x4 map is one 6x6 tile
 * (36 numbers for 16 outputs, and 36 transformed weight matrices, 2.25x F(2x2)'s 16, to
 * stream for a single tile per image): F(2x2) wins there. Forward, ms, batch 64, one
 * thread, AVX-512 Xeon, F(2x2) vs F(4x4): 64 @16x16 8.6 vs 6.7, 128 @16x16 23.5 vs 17.8,
 * 256 @8x8 21.3 vs 18.9, 128->256 @8x8 12.1 vs 10.2, 512 @4x4 24.8 vs 42.9, 256->512
 * @4x4 12.6 vs 20.8; the same order with DKD_ISA=avx2 and scalar. */
int winograd_tile(int H, int W) {
    static int forced = -1;
    if (forced < 0) {
        const char *e = getenv("DKD_WINO_TILE");
        forced = e && (e[0] == '2' || e[0] == '4') ? e[0] - '0' : 0;
    }
    if (forced) return forced;
    return H >= 8 && W >= 8 ? 4 : 2;
}

/* ---- weights: U[ξ] = G g G^T for every (o, c), then packed for the GEMM ------------ */

size_t winograd_u_floats(int m, int C, int OC) { return (size_t)(m + 2) * (m + 2) * gemm_packed_a_floats(OC, C); }

/* u[ξ] = (G g G^T)[ξ] for one 3x3 kernel g (row-major), F(2x2, 3x3) */
static void transform_kernel2(const float *g, float u[16]) {
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

/* G·(g0, g1, g2) for F(4x4, 3x3): the 6 values of a 3-tap filter at the points
 * 0, 1, -1, 2, -2, ∞ (with the 1/4, 1/6, 1/24 of the interpolation folded in) */
static void g_rows4(float g0, float g1, float g2, float r[6]) {
    r[0] = g0 / 4.0f;
    r[1] = -(g0 + g1 + g2) / 6.0f;
    r[2] = -(g0 - g1 + g2) / 6.0f;
    r[3] = g0 / 24.0f + g1 / 12.0f + g2 / 6.0f;
    r[4] = g0 / 24.0f - g1 / 12.0f + g2 / 6.0f;
    r[5] = g2;
}
static void transform_kernel4(const float *g, float u[36]) {
    float Gg[6][3];   /* G·g, column by column */
    for (int k = 0; k < 3; k++) {
        float r[6];
        g_rows4(g[k], g[3 + k], g[6 + k], r);
        for (int i = 0; i < 6; i++) Gg[i][k] = r[i];
    }
    for (int i = 0; i < 6; i++) g_rows4(Gg[i][0], Gg[i][1], Gg[i][2], u + 6 * i);   /* (G·g)·G^T */
}

/* Written straight into the GEMM's packed order (gemm_a_strip: a strip of hp rows holds
 * element (o, c) at first·C + c·hp + o - first), strip by strip: for each input channel
 * the strip's rows are transformed into u[ξ][row], then each ξ gets one run of hp floats.
 * So every store stream is sequential: for VGG-13's 512-channel layers U is 16 MB
 * (F(2x2)) or 38 MB (F(4x4)), and writing it kernel by kernel (nx scattered floats
 * each) took more time than the layer's GEMMs. */
void winograd_weights(int m, float *U, const float *w, int C, int OC) {
    size_t packed = gemm_packed_a_floats(OC, C);
    int nx = (m + 2) * (m + 2);
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < OC; o++) {
        int first, rows, hp;
        gemm_a_strip(OC, o, &first, &rows, &hp);
        if (o != first) continue;   /* (one iteration per strip: its first row) */
        float u[36][GEMM_MR], k[36];
        for (int c = 0; c < C; c++) {
            for (int r = 0; r < hp; r++) {
                if (r < rows && m == 4) transform_kernel4(w + ((size_t)(first + r) * C + c) * 9, k);
                else if (r < rows) transform_kernel2(w + ((size_t)(first + r) * C + c) * 9, k);
                for (int xi = 0; xi < nx; xi++) u[xi][r] = r < rows ? k[xi] : 0.0f;   /* padding rows: zeros */
            }
            for (int xi = 0; xi < nx; xi++)
                memcpy(U + (size_t)xi * packed + (size_t)first * C + (size_t)c * hp, u[xi], (size_t)hp * sizeof(float));
        }
    }
}

/* ---- a group of images ------------------------------------------------------------------ */
typedef struct {
    int C, H, W, OC, ni;
    int m, a, nx;       /* output tile m x m (2 or 4), input tile a x a (a = m + 2), nx = a² products */
    int TH, TW, T;      /* tiles per image: TH x TW (outputs m·ty.., m·tx..); T of all ni images,
                           numbered image by image, row by row (tile row R = n·TH + ty) */
    int Hp, Wh;         /* zero-bordered image: Hp = m·TH + 2 rows; m column phases of Wh = TW + 1 */
    int Tb;             /* tiles per block, rounded up to whole strips of NR */
    size_t ds;          /* row stride of D: Tb + 8 (slack for gather_tiles' 8-float copies) */
    float *xp;          /* the bordered images, split into m column phases: phase p holds the
                           bordered columns q with q % m == p, at index q / m */
    float *D;           /* one channel's input tiles, gathered: [a·a][Tb] (value (k, l) of tile t) */
    float *V, *M;       /* the block's transformed inputs and products */
    float *Y;           /* one output channel's tiles after A^T M A: [m·m][Tb] */
} Wino;

/* Tiles per block: F(2x2) blocks of 64 tiles; F(4x4)'s transformed tiles are 2.25x
 * larger (36 numbers, not 16), so its blocks hold fewer tiles for V and M to stay in L2. */
static int wino_block(int m) { return m == 4 ? WINO_TB4 : WINO_TB; }

/* The sizes, and (slot given) where each buffer sits in the slot, one after the other;
 * *floats: the slot's size. */
static Wino wino_geometry(int m, int C, int H, int W, int OC, int ni, float *slot, size_t *floats) {
    Wino g;
    g.C = C; g.H = H; g.W = W; g.OC = OC; g.ni = ni;
    g.m = m; g.a = m + 2; g.nx = g.a * g.a;
    g.TH = (H + m - 1) / m; g.TW = (W + m - 1) / m; g.T = ni * g.TH * g.TW;
    g.Hp = m * g.TH + 2; g.Wh = g.TW + 1;
    int Tr = (g.T + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    g.Tb = Tr < wino_block(m) ? Tr : wino_block(m);
    g.ds = (size_t)g.Tb + 8;
    size_t sizes[5] = {
        (size_t)m * ni * C * g.Hp * g.Wh + 8,   /* xp (+ slack for gather_tiles) */
        (size_t)g.nx * g.ds,                /* D */
        (size_t)g.nx * C * g.Tb,            /* V: nx x [Tb/NR strips][C][NR] */
        (size_t)g.nx * OC * g.Tb,           /* M: nx x [OC][Tb] */
        (size_t)m * m * g.Tb,               /* Y */
    };
    float **at[5] = {&g.xp, &g.D, &g.V, &g.M, &g.Y};
    size_t off = 0;
    for (int i = 0; i < 5; i++) {
        *at[i] = slot ? slot + off : NULL;
        off += sizes[i];
    }
    if (floats) *floats = off;
    return g;
}

size_t winograd_slot_floats(int m, int C, int H, int W, int OC, int ni) {
    size_t floats;
    wino_geometry(m, C, H, W, OC, ni, NULL, &floats);
    return floats;
}

int winograd_images_per_call(int m, int N, int H, int W) {
    int per_image = ((H + m - 1) / m) * ((W + m - 1) / m), procs = dkd_num_procs();
    int ni = (wino_block(m) + per_image - 1) / per_image;   /* a whole block of tiles ...     */
    int share = (N + procs - 1) / procs;                    /* ... but work for every core     */
    if (ni > share) ni = share;
    return ni < 1 ? 1 : ni;
}

/* Step 1: the image with a border of zeros (pixel (ih, iw) at row ih+1, column iw+1),
 * stored as m column phases: bordered column q is phase q % m, index q / m. For F(2x2)
 * a tile's 4 columns 2tx..2tx+3 are then e[tx], o[tx], e[tx+1], o[tx+1] (e, o: phases
 * 0 and 1); for F(4x4) its 6 columns are p0..p3[tx], p0[tx+1], p1[tx+1]: the row
 * transforms below read only contiguous runs, which vectorise. */
static float *phase(const Wino *g, int p) { return g->xp + (size_t)p * g->ni * g->C * g->Hp * g->Wh; }
static void split_row2(int W, const float *restrict xr, float *restrict e, float *restrict o) {
    /* pixel iw is bordered column iw + 1: odd pixels go to e[(iw+1)/2], even to o[iw/2] */
    for (int m = 0; m < W / 2; m++) { o[m] = xr[2 * m]; e[m + 1] = xr[2 * m + 1]; }
    if (W % 2) o[W / 2] = xr[W - 1];
}
static void split_row4(int W, const float *restrict xr, float *restrict p0, float *restrict p1, float *restrict p2,
                       float *restrict p3) {
    /* pixel iw is bordered column iw + 1: pixels 4q, 4q+1, 4q+2 go to p1, p2, p3 at q,
     * pixel 4q+3 to p0 at q + 1 */
    int q = 0;
    for (; 4 * q + 3 < W; q++) { p1[q] = xr[4 * q]; p2[q] = xr[4 * q + 1]; p3[q] = xr[4 * q + 2]; p0[q + 1] = xr[4 * q + 3]; }
    float *tail[3] = {p1, p2, p3};
    for (int iw = 4 * q; iw < W; iw++) tail[iw - 4 * q][q] = xr[iw];
}
static void split_image(const Wino *g, const float *x) {
    size_t plane = (size_t)g->Hp * g->Wh;
    memset(g->xp, 0, (size_t)g->m * g->ni * g->C * plane * sizeof(float));
    for (int c = 0; c < g->ni * g->C; c++)   /* (image n, channel c) planes follow each other */
        for (int ih = 0; ih < g->H; ih++) {
            const float *xr = x + ((size_t)c * g->H + ih) * g->W;
            size_t at = c * plane + (size_t)(ih + 1) * g->Wh;
            if (g->m == 2) split_row2(g->W, xr, phase(g, 0) + at, phase(g, 1) + at);
            else split_row4(g->W, xr, phase(g, 0) + at, phase(g, 1) + at, phase(g, 2) + at, phase(g, 3) + at);
        }
}

/* ---- the transforms, 8 tiles at a time ---------------------------------------------------
 * Every transform runs over tiles as the vector lanes: for a channel, the a x a input
 * values of the block's tiles are first gathered into D[k·a + l][t] (value (k, l) of tile
 * t, contiguous in t: copies of runs of the phase arrays), then B^T d B is plain vector
 * arithmetic on 8 tiles at once, whatever the map size (a 4x4 map has 1 tile per image, a
 * 32x32 one 64 or 256: tiles of several tile rows and images share the lanes). Likewise
 * A^T M A reads M's rows (contiguous in t) and writes Y[a·m + b][t], which is then spread
 * into the output rows. Rows first, then columns, in both: the same float operations as
 * the formulas (d B, then B^T ·), so the order never depends on the lanes. */
/* (the scalar build has no 32-byte registers: gcc warns that passing vf8 by value would
 * change the ABI; every function taking one is inlined, so no call ever passes one) */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float vf8 __attribute__((vector_size(32), aligned(4), may_alias));
#define INLINE static inline __attribute__((always_inline))   /* (m then is a constant: loops unroll) */
INLINE vf8 load8(const float *p) { return *(const vf8 *)p; }
INLINE void store8(float *p, vf8 v) { *(vf8 *)p = v; }

/* B^T for F(2x2): | 1  0 -1  0 |      for F(4x4): | 4  0 -5  0  1  0 |
 *                 | 0  1  1  0 |                  | 0 -4 -4  1  1  0 |
 *                 | 0 -1  1  0 |                  | 0  4 -4 -1  1  0 |
 *                 | 0  1  0 -1 |                  | 0 -2 -1  2  1  0 |
 *                                                 | 0  2 -1 -2  1  0 |
 *                                                 | 0  4  0 -5  0  1 |
 * applied to d[0..a-1] (vectors of 8 tiles): o[j] = Σ_k B^T[j][k] d[k] */
INLINE void bt2(const vf8 *d, vf8 *o) {
    o[0] = d[0] - d[2]; o[1] = d[1] + d[2]; o[2] = d[2] - d[1]; o[3] = d[1] - d[3];
}
INLINE void bt4(const vf8 *d, vf8 *o) {
    o[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    o[1] = -4.0f * (d[1] + d[2]) + d[3] + d[4];
    o[2] = 4.0f * (d[1] - d[2]) - d[3] + d[4];
    o[3] = 2.0f * (d[3] - d[1]) - d[2] + d[4];
    o[4] = 2.0f * (d[1] - d[3]) - d[2] + d[4];
    o[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}
/* A^T for F(2x2): | 1  1  1  0 |      for F(4x4): | 1  1  1  1  1  0 |
 *                 | 0  1 -1 -1 |                  | 0  1 -1  2 -2  0 |
 *                                                 | 0  1  1  4  4  0 |
 *                                                 | 0  1 -1  8 -8  1 | */
INLINE void at2(const vf8 *r, vf8 *o) { o[0] = r[0] + r[1] + r[2]; o[1] = r[1] - r[2] - r[3]; }
INLINE void at4(const vf8 *r, vf8 *o) {
    vf8 p12 = r[1] + r[2], m12 = r[1] - r[2], p34 = r[3] + r[4], m34 = r[3] - r[4];
    o[0] = r[0] + p12 + p34; o[1] = m12 + 2.0f * m34; o[2] = p12 + 4.0f * p34; o[3] = m12 + 8.0f * m34 + r[5];
}

/* V[ξ·vs + lane] = (B^T d B)[ξ] for 8 tiles whose values are D[(k·a + l)·ds] */
INLINE void input_transform(int m, const float *D, size_t ds, float *V, size_t vs) {
    int a = m + 2;
    vf8 d[6], e[6][6], col[6], out[6];
    for (int k = 0; k < a; k++) {   /* row k: (d B)[k][j] */
        for (int l = 0; l < a; l++) d[l] = load8(D + (size_t)(k * a + l) * ds);
        if (m == 4) bt4(d, e[k]); else bt2(d, e[k]);
    }
    for (int j = 0; j < a; j++) {   /* column j: B^T (d B) */
        for (int k = 0; k < a; k++) col[k] = e[k][j];
        if (m == 4) bt4(col, out); else bt2(col, out);
        for (int i = 0; i < a; i++) store8(V + (size_t)(i * a + j) * vs, out[i]);
    }
}
/* Y[(i·m + j)·ys] = (A^T M A)[i][j] for 8 tiles whose products are Mo[ξ·ms] */
INLINE void output_transform(int m, const float *Mo, size_t ms, float *Y, size_t ys) {
    int a = m + 2;
    vf8 r[6], s[6][4], col[6], out[4];
    for (int k = 0; k < a; k++) {   /* row k of M: (M A)[k] */
        for (int l = 0; l < a; l++) r[l] = load8(Mo + (size_t)(k * a + l) * ms);
        if (m == 4) at4(r, s[k]); else at2(r, s[k]);
    }
    for (int j = 0; j < m; j++) {   /* A^T (M A) */
        for (int k = 0; k < a; k++) col[k] = s[k][j];
        if (m == 4) at4(col, out); else at2(col, out);
        for (int i = 0; i < m; i++) store8(Y + (size_t)(i * m + j) * ys, out[i]);
    }
}

/* The tiles of tile row R (R = n·TH + ty, over all images) that lie in the block of nb
 * tiles from tile b0: tx in [*txa, *txb). */
static void row_span(const Wino *g, int R, int b0, int nb, int *txa, int *txb) {
    int R0 = b0 / g->TW, R1 = (b0 + nb - 1) / g->TW;
    *txa = R == R0 ? b0 % g->TW : 0;
    *txb = R == R1 ? (b0 + nb - 1) % g->TW + 1 : g->TW;
}

/* D[(k·a + l)·ds + t - b0] = bordered x of channel c at (m·ty + k, m·tx + l), for the
 * block's tiles t: column m·tx + l is phase l % m at index tx + l / m, so each (k, l) of a
 * tile row is one contiguous run of the phase array, copied 8 floats at a time (D's rows
 * and the slot have 8 floats of slack for the last, partial, copy). */
INLINE void gather_tiles(const Wino *g, int m, int c, int b0, int nb) {
    int a = m + 2, TW = g->TW, TH = g->TH;
    size_t plane = (size_t)g->Hp * g->Wh, Wh = g->Wh, ds = g->ds;
    float *D = g->D;   /* (the fields in locals: the vector stores may alias anything) */
    const float *ph[4];
    for (int p = 0; p < m; p++) ph[p] = phase(g, p) + (size_t)c * plane;
    for (int R = b0 / TW, txa, txb; R <= (b0 + nb - 1) / TW; R++) {
        row_span(g, R, b0, nb, &txa, &txb);
        int n = R / TH, ty = R % TH, t = R * TW + txa - b0, len = txb - txa;
        size_t at = (size_t)n * g->C * plane + (size_t)m * ty * Wh + txa;
        for (int k = 0; k < a; k++, at += Wh)
            for (int l = 0; l < a; l++) {
                const float *src = ph[l % m] + at + l / m;
                float *dst = D + (size_t)(k * a + l) * ds + t;
                store8(dst, load8(src));
                for (int i = 8; i < len; i += 8) store8(dst + i, load8(src + i));
            }
    }
    if (nb % 8)   /* the last 8 lanes' unused part: zeros (never garbage that could be denormal) */
        for (int v = 0; v < g->nx; v++) memset(D + (size_t)v * ds + nb, 0, (size_t)(8 - nb % 8) * sizeof(float));
}

/* Input transforms of channel c for the block's nb tiles, into V in the GEMM's strip
 * order (strip t / NR, lane t % NR; NR is a multiple of 8). Lanes past nb hold values
 * the GEMM reads but never stores. */
INLINE void input_transforms_m(const Wino *g, int m, int c, int b0, int nb) {
    gather_tiles(g, m, c, b0, nb);
    size_t vs = (size_t)g->C * g->Tb, ds = g->ds, strip = (size_t)g->C * GEMM_NR;
    const float *D = g->D;
    float *V = g->V + (size_t)c * GEMM_NR;
    for (int t = 0; t < nb; t += 8) input_transform(m, D + t, ds, V + (size_t)(t / GEMM_NR) * strip + t % GEMM_NR, vs);
}
static void input_transforms(const Wino *g, int c, int b0, int nb) {
    if (g->m == 4) input_transforms_m(g, 4, c, b0, nb);
    else input_transforms_m(g, 2, c, b0, nb);
}

/* One output row: yr[m·tx + j] (+)= p[j][tx] for tiles tx < n, of which the last has
 * only last_cols columns inside the image; beta 0: overwrite, + bias, then the ReLU if
 * relu (kernels/relu.c's rule: v <= 0 -> +0, NaN kept; only with beta 0). */
INLINE void spread_row(int m, float *restrict yr, const float *const p[4], int n, int last_cols, float bias, float beta,
                       int relu) {
    int full = last_cols == m ? n : n - 1;
    if (beta != 0.0f)
        for (int tx = 0; tx < full; tx++)
            for (int j = 0; j < m; j++) yr[m * tx + j] += p[j][tx];
    else if (relu)
        for (int tx = 0; tx < full; tx++)
            for (int j = 0; j < m; j++) {
                float v = p[j][tx] + bias;
                yr[m * tx + j] = v <= 0.0f ? 0.0f : v;
            }
    else
        for (int tx = 0; tx < full; tx++)
            for (int j = 0; j < m; j++) yr[m * tx + j] = p[j][tx] + bias;
    for (int j = 0; full < n && j < last_cols; j++) {
        float v = beta != 0.0f ? yr[m * full + j] + p[j][full] : p[j][full] + bias;
        yr[m * full + j] = relu && v <= 0.0f ? 0.0f : v;
    }
}

/* Output transforms of channel o for the block's tiles: Y = A^T M A, then each tile's
 * m x m outputs are written to y (beta 0, + bias) or added to it (beta 1); tiles that
 * stick out of the image (H or W not a multiple of m) drop their extra rows/columns. */
INLINE void output_transforms_m(const Wino *g, int m, float *y, int o, int b0, int nb, float bias, float beta,
                                int relu) {
    const float *Mo = g->M + (size_t)o * g->Tb;
    float *Y = g->Y;
    size_t ms = (size_t)g->OC * g->Tb, ys = g->Tb;
    for (int t = 0; t < nb; t += 8) output_transform(m, Mo + t, ms, Y + t, ys);
    for (int R = b0 / g->TW, txa, txb; R <= (b0 + nb - 1) / g->TW; R++) {
        row_span(g, R, b0, nb, &txa, &txb);
        int n = R / g->TH, oh = m * (R % g->TH), t0 = R * g->TW + txa - b0;
        int rows = g->H - oh < m ? g->H - oh : m, last_cols = g->W - m * (txb - 1) < m ? g->W - m * (txb - 1) : m;
        for (int i = 0; i < rows; i++) {
            const float *p[4];
            for (int j = 0; j < m; j++) p[j] = g->Y + (size_t)(i * m + j) * g->Tb + t0;
            spread_row(m, y + (((size_t)n * g->OC + o) * g->H + oh + i) * g->W + m * txa, p, txb - txa, last_cols,
                       bias, beta, relu);
        }
    }
}
static void output_transforms(const Wino *g, float *y, int o, int b0, int nb, float bias, float beta, int relu) {
    if (g->m == 4) output_transforms_m(g, 4, y, o, b0, nb, bias, beta, relu);
    else output_transforms_m(g, 2, y, o, b0, nb, bias, beta, relu);
}

void winograd_images(int m, float *y, const float *x, int ni, const float *U, const float *bias, float beta, int C,
                     int H, int W, int OC, float *slot, int relu) {
    Wino g = wino_geometry(m, C, H, W, OC, ni, slot, NULL);
    split_image(&g, x);                                                  /* 1 */
    size_t packed = gemm_packed_a_floats(OC, C);
    for (int b0 = 0; b0 < g.T; b0 += g.Tb) {
        int nb = g.T - b0 < g.Tb ? g.T - b0 : g.Tb;
        for (int c = 0; c < C; c++) input_transforms(&g, c, b0, nb);    /* 2 */
        for (int xi = 0; xi < g.nx; xi++)                                /* 3 */
            gemm_packed(OC, nb, C, U + (size_t)xi * packed, g.V + (size_t)xi * C * g.Tb, 0.0f,
                        g.M + (size_t)xi * OC * g.Tb, g.Tb);
        for (int o = 0; o < OC; o++)                                     /* 4 */
            output_transforms(&g, y, o, b0, nb, bias ? bias[o] : 0.0f, beta, relu);
    }
}
