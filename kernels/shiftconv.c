/* kernels/shiftconv.c — "same" stride-1 convolutions straight from NCHW, with AVX-512 or AVX2
 * lane masks for the border: no padded copy, no column matrix, no output grid.
 *
 *   out[n,o,q] (+)= bias[o] + Σ_{c,t} w[o,c,t] · in[n, c, q + shift(t)]     (masked at the border)
 *   in [N,Cin,H,W]   w [OUT,Cin,K,K]   out [N,OUT,H,W]   q = oh·W + ow,  t = (kh,kw)
 *   shift(t) = (kh-P)·W + (kw-P),   2P = K-1 (so the output is as large as the input)
 *
 * The idea. In a "same" convolution output position q and its input under tap t are a
 * FIXED distance apart in the flat plane: shift(t). So 16 consecutive outputs (one zmm
 * vector; 8 in a ymm with AVX2) read 16 consecutive inputs, one unaligned load, for every
 * tap. The only catch is the border: near the top, bottom, left or right edge some of
 * those inputs lie in the padding (they must count as 0) or wrap around into the
 * neighbouring row. A lane
 * mask per (vector position, tap) zeroes exactly those lanes: _mm512_maskz_loadu_ps
 * loads the other lanes and writes 0 into the masked ones, and it never touches the
 * memory of a masked lane (no fault even before the first or after the last plane).
 * Every map of >= 16 positions works: a vector may cover several short rows (8x8: 2
 * rows, 4x4: the whole plane), the masks say which lanes are inside.
 *
 * The register tile (the GEMM micro-kernel's idea, see gemm.c): 8 output channels x 3
 * vectors of 16 positions = 24 zmm accumulators (of 32). Per (c, t) it loads 3 input
 * vectors (masked) and broadcasts 8 weights, then does 24 FMAs: 11 loads per 24 FMAs,
 * so the two FMA units, not the loads, set the pace. The 3 vectors need not be
 * neighbours: each is any (image, 16-position block) of the slice, so the small maps
 * (8x8 = 4 vectors per image, 4x4 = 1) fill whole tiles by taking several images (a
 * slice's last tile repeats its first vector where it runs out: summed, not stored). The
 * weights are packed once per call in strips of 8 output channels, Ap[strip][c·T+t][r]
 * (rows past OUT are zeros, their results are not stored).
 *
 * Why not the implicit GEMM of conv.c on these layers? It needs the padded copy of
 * every image (one pass), computes junk columns on its wider grid (3% at 32x32, 11% at
 * 8x8, 25% at 4x4) and copies the grid into the output (one more pass); its tile is 6 x
 * 32 (12 accumulators, 8 loads per 12 FMAs). Measured on one core of an AVX-512 Xeon
 * (a 3x3 layer C -> C, batch 64): see kernels/README.md.
 *
 * Order of the sums: every output is bias (or 0) + Σ over c, then t, in increasing order,
 * one fused multiply-add each, one thread per output: deterministic for any thread count.
 * It differs from the implicit GEMM's (k-blocked by GEMM_KC) only by rounding.
 *
 * Per tile, a table of its taps (Step: the shift, the lanes of each vector, and whether
 * all of them are whole) is set up once; where a tap's lanes are all whole the tile loads
 * without masks (AVX2: with every tap whole the tile ran 15-25% faster than with every
 * tap masked).
 *
 * AVX2 + FMA (e.g. AMD Zen 1): the same code, through the vector macros below. 8-lane ymm
 * vectors; no mask registers: _mm256_maskload_ps takes the mask as a vector of int32 (all
 * ones: load the lane). Unlike the AVX-512 load it may read a masked lane's memory: Intel's
 * manual promises no fault from one, AMD's calls it implementation dependent, and qemu 7.2
 * reads all 32 bytes (a SIGSEGV before the first plane of a page-aligned tensor, found by
 * scripts/qemu_isa_check.sh). So a tile (or dW tile, or range of depthwise planes) whose
 * loads all lie in the input tensor's pages uses the plain load (V_MASKLOAD), and the few
 * at a tensor's first and last rows the checked one (V_LOADZ: given an address known to
 * lie inside the tensor, it loads lane by lane a vector whose 32 bytes leave that page).
 * The masks are kept as bits and expanded through a 256-row table (lane_mask), or once per
 * call into a table of vectors (Taps3). Only 16 ymm registers, so the tiles are halved:
 * forward 4 output channels x 3 vectors (12 accumulators + 3 inputs + 1 broadcast = 16;
 * 6 x 2 measured within the noise of it: +10% on 64 channels @8x8, -3% on 16 channels,
 * and it wastes 12.5% of its rows on 16 or 32 channels), weight gradient 4 rows x 3 taps
 * (12 accumulators + 3 inputs + 1 dy vector). Measured on one
 * core of an AVX-512 Xeon forced onto the AVX2 path (DKD_ISA=avx2, batch 64, GFLOP/s,
 * this file vs the paths it replaces): 3x3 dW 1.2-1.5x (32 @16x16: 59 -> 89, 64 @16x16:
 * 59 -> 91, 16 @32x32: 61 -> 74); depthwise 48 @16x16 forward 13.5 -> 34, dW 10.5 -> 19;
 * 1x1 dW 12->72 @16x16 27 -> 34. The 3x3 forward is level with Winograd only on small
 * layers (32 @16x16: 90-96 vs 90-94; 32 @8x8: 97 vs 64) and behind it from C·OC·H·W = 2^18
 * on (64 @8x8: 94-98 vs 102-104; 64 @16x16: 93 vs 134 effective GFLOP/s: Winograd's
 * F(2x2, 3x3) does 2.25x fewer multiplications; the AVX2 peak here is ~130), so conv.c
 * sends those layers' forward and dx to Winograd (winograd_beats_shiftconv, conv.c).
 *
 * Built for AVX-512 and for AVX2 + FMA (the per-ISA objects of build.sh); in the scalar
 * build shiftconv_applies() is 0 and conv.c keeps its other paths. */
#include "shiftconv.h"

#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>

/* ---- the vector vocabulary: every algorithm below is written once with these -------
 * Vec: SHIFT_V floats. A lane mask is kept as bits (Bits, bit l = lane l: the tables
 * border_masks fills) and turned into the ISA's form where a load or store uses it:
 * LANES(bits); the 3x3 layers keep a table of them (Taps3). V_LOADZ(lanes, p, near): the
 * lanes of p, 0 in the masked ones (their memory never faults), near: an element of the
 * tensor within a page of p (the vector's own position; AVX2 needs it); V_STOREM: the lanes
 * only. SHIFT_R: output channels of the forward tile (x SHIFT_NV vectors); SHIFT_DR: rows
 * of the weight-gradient tile (x 3 columns). */
#if defined(__AVX512F__)
enum { SHIFT_V = 16, SHIFT_R = 8, SHIFT_NV = 3, SHIFT_DR = 8 };
typedef __m512 Vec;
typedef __mmask16 Lanes;
#define V_ZERO()          _mm512_setzero_ps()
#define V_SET1(x)         _mm512_set1_ps(x)
#define V_LOADU(p)        _mm512_loadu_ps(p)
#define V_STOREU(p, v)    _mm512_storeu_ps(p, v)
#define V_ADD(a, b)       _mm512_add_ps(a, b)
#define V_FMADD(a, b, c)  _mm512_fmadd_ps(a, b, c)
#define V_REDUCE(v)       _mm512_reduce_add_ps(v)
#define LANES(bits)       ((__mmask16)(bits))
#define V_LOADZ(m, p, near) _mm512_maskz_loadu_ps(m, p)
#define V_MASKLOAD(m, p)  _mm512_maskz_loadu_ps(m, p)
#define V_STOREM(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define V_RELU(v)         _mm512_maskz_mov_ps(~_mm512_cmp_ps_mask(v, V_ZERO(), _CMP_LE_OQ), v)
#else
/* AVX2 + FMA: 8 lanes and 16 ymm registers (AVX-512 has 32), so half the rows per tile;
 * no mask registers: vmaskmovps takes the mask as a vector of int32 (all ones: load the
 * lane), here one 32-byte row of lane_mask per 8-bit pattern (8 KiB, read-only). */
enum { SHIFT_V = 8, SHIFT_R = 4, SHIFT_NV = 3, SHIFT_DR = 4 };
typedef __m256 Vec;
typedef __m256i Lanes;
#define LANE_MASK1(m)                                                                                                  \
    { -((m) & 1), -((m) >> 1 & 1), -((m) >> 2 & 1), -((m) >> 3 & 1),                                                  \
      -((m) >> 4 & 1), -((m) >> 5 & 1), -((m) >> 6 & 1), -((m) >> 7 & 1) }
#define LANE_MASK4(m)  LANE_MASK1(m), LANE_MASK1((m) + 1), LANE_MASK1((m) + 2), LANE_MASK1((m) + 3)
#define LANE_MASK16(m) LANE_MASK4(m), LANE_MASK4((m) + 4), LANE_MASK4((m) + 8), LANE_MASK4((m) + 12)
#define LANE_MASK64(m) LANE_MASK16(m), LANE_MASK16((m) + 16), LANE_MASK16((m) + 32), LANE_MASK16((m) + 48)
static const int32_t lane_mask[256][8] __attribute__((aligned(32))) = {
    LANE_MASK64(0), LANE_MASK64(64), LANE_MASK64(128), LANE_MASK64(192)};
/* The masked load (see the top): one vmaskmovps when its 32 bytes lie in the 4 KiB page of near
 * (an element of the tensor, so that page is mapped; x86's smallest page), else lane by lane.
 * (The forward's tile decides once whether all its loads stay inside the input tensor's
 * pages and then loads with V_MASKLOAD, tile_sums: checked per load, on 32x32 maps, where
 * each plane is a page and every top-row tap reaches into the previous one, resnet20's
 * 16-channel layers ran 20-34% slower.) */
static __attribute__((noinline, cold)) __m256 v_loadz_lanes(__m256i m, const float *p) {
    int32_t k[8];
    float v[8];
    _mm256_storeu_si256((__m256i *)k, m);
    for (int l = 0; l < 8; l++) v[l] = k[l] < 0 ? p[l] : 0.0f;
    return _mm256_loadu_ps(v);
}
static inline __attribute__((always_inline)) __m256 v_loadz(__m256i m, const float *p, const float *near) {
    uintptr_t a = (uintptr_t)p, page = (uintptr_t)near >> 12;
    if (a >> 12 == page && (a + 31) >> 12 == page) return _mm256_maskload_ps(p, m);
    return v_loadz_lanes(m, p);
}
static inline float v_reduce(__m256 v) {   /* the two halves, then pairs, then the last two */
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
#define V_ZERO()          _mm256_setzero_ps()
#define V_SET1(x)         _mm256_set1_ps(x)
#define V_LOADU(p)        _mm256_loadu_ps(p)
#define V_STOREU(p, v)    _mm256_storeu_ps(p, v)
#define V_ADD(a, b)       _mm256_add_ps(a, b)
#define V_FMADD(a, b, c)  _mm256_fmadd_ps(a, b, c)
#define V_REDUCE(v)       v_reduce(v)
#define LANES(bits)       _mm256_load_si256((const __m256i *)lane_mask[bits])
#define V_LOADZ(m, p, near) v_loadz(m, p, near)
#define V_MASKLOAD(m, p)  _mm256_maskload_ps(p, m)   /* (only where every lane's page is mapped) */
#define V_STOREM(p, m, v) _mm256_maskstore_ps(p, m, v)
#define V_RELU(v)         _mm256_andnot_ps(_mm256_cmp_ps(v, V_ZERO(), _CMP_LE_OQ), v)
#endif

enum {
    SHIFT_ALL = (1 << SHIFT_V) - 1,            /* the bits of a whole vector             */
    SHIFT_MAX_VECS = SHIFT_MAX_HW / SHIFT_V,   /* vectors of the largest map             */
    SHIFT_TAPS = SHIFT_MAX_K * SHIFT_MAX_K
};
typedef uint16_t Bits;
/* The first n lanes (all of them from n = SHIFT_V up). */
static Bits first_lanes(int n) { return n >= SHIFT_V ? (Bits)SHIFT_ALL : (Bits)((1u << n) - 1); }

int shiftconv_applies(int Cin, int H, int W, int K, int S, int P, int G) {
    return K >= 1 && K <= SHIFT_MAX_K && S == 1 && 2 * P == K - 1 && G == 1 && Cin >= 1 && H * W >= SHIFT_MIN_HW &&
           H * W <= SHIFT_MAX_HW;
}

size_t shiftconv_packed_floats(int OUT, int Cin, int K) {
    return (size_t)(OUT + SHIFT_R - 1) / SHIFT_R * SHIFT_R * Cin * K * K;
}

void shiftconv_pack_weights(float *Ap, const float *w, int OUT, int Cin, int K) {
    size_t KK = (size_t)Cin * K * K;
    for (int o0 = 0; o0 < OUT; o0 += SHIFT_R, Ap += KK * SHIFT_R)
        for (size_t k = 0; k < KK; k++)
            for (int r = 0; r < SHIFT_R; r++)
                Ap[k * SHIFT_R + r] = o0 + r < OUT ? w[(size_t)(o0 + r) * KK + k] : 0.0f;
}

/* 1 if the floats lo .. hi lie in the pages of the tensor base[0 .. n): those are mapped
 * (for V_MASKLOAD, whose masked-off lanes may be read on AVX2). */
static int in_pages(const float *lo, const float *hi, const float *base, size_t n) {
    return (uintptr_t)lo >> 12 >= (uintptr_t)base >> 12 && (uintptr_t)hi >> 12 <= (uintptr_t)(base + n - 1) >> 12;
}

/* One vector of the tile: where its SHIFT_V inputs (channel 0) and outputs (channel 0)
 * start, its border masks per tap, and which lanes are real outputs. */
typedef struct {
    const float *in;
    float *out;
    const float *res;   /* the residual's vector at out's place (conv_epilogue), or NULL */
    const Bits *mask;   /* [T] */
    Bits store;
} Lane;
/* One tap t of a tile, set up once per tile: its shift, the lanes of each vector to load,
 * and whether they are all whole (then plain loads: with AVX2 ~20% faster than vmaskmovps,
 * which costs a second uop on an FMA port of Intel cores). */
typedef struct {
    Lanes lanes[SHIFT_NV];
    int shift, whole;
} Step;

/* Keep v in a register: without this gcc may fold the load of v into every FMA that
 * uses it (a memory operand each: see the weight gradient below). The empty asm claims
 * to change v, so it must be loaded once, before. */
#define IN_REGISTER(v) __asm__("" : "+v"(v))

/* The SHIFT_R x SHIFT_NV tile's sums over all Cin·T steps (c, t), into
 * sum[r][j·V .. j·V+V). acc must live in registers: UNROLL asks gcc to unroll the r and j
 * loops before it decides where arrays live; unrolled later (plain -O3), the 1.5 KB acc
 * array stayed in memory and all 24 accumulators were stored on every step (75 instead
 * of ~180 GFLOP/s). */
#define UNROLL _Pragma("GCC unroll 16")
static inline __attribute__((always_inline)) void tile_sums_body(int edge, const Lane *v, const Step *step,
                                                                  const float *restrict ap, int Cin, int T,
                                                                  size_t plane,
                                                                  float sum[SHIFT_R][SHIFT_NV * SHIFT_V]) {
    Vec acc[SHIFT_R][SHIFT_NV];
    const float *in[SHIFT_NV];
    UNROLL for (int j = 0; j < SHIFT_NV; j++) in[j] = v[j].in;
    UNROLL for (int r = 0; r < SHIFT_R; r++)
        UNROLL for (int j = 0; j < SHIFT_NV; j++) acc[r][j] = V_ZERO();
    for (int c = 0; c < Cin; c++) {
        const Step *s = step;
        for (int t = 0; t < T; t++, s++, ap += SHIFT_R) {
            Vec b[SHIFT_NV];
            if (s->whole) {
                UNROLL for (int j = 0; j < SHIFT_NV; j++) b[j] = V_LOADU(in[j] + s->shift);
            } else if (!edge) {
                UNROLL for (int j = 0; j < SHIFT_NV; j++) b[j] = V_MASKLOAD(s->lanes[j], in[j] + s->shift);
            } else {
                UNROLL for (int j = 0; j < SHIFT_NV; j++) b[j] = V_LOADZ(s->lanes[j], in[j] + s->shift, in[j]);
            }
            UNROLL for (int j = 0; j < SHIFT_NV; j++) IN_REGISTER(b[j]);
            UNROLL for (int r = 0; r < SHIFT_R; r++) {
                Vec a = V_SET1(ap[r]);
                UNROLL for (int j = 0; j < SHIFT_NV; j++) acc[r][j] = V_FMADD(a, b[j], acc[r][j]);
            }
        }
        UNROLL for (int j = 0; j < SHIFT_NV; j++) in[j] += plane;
    }
    UNROLL for (int r = 0; r < SHIFT_R; r++)
        UNROLL for (int j = 0; j < SHIFT_NV; j++) V_STOREU(&sum[r][j * SHIFT_V], acc[r][j]);
}
/* The tiles whose masked loads all lie in the input tensor's pages (all but those at its
 * first and last rows), and the others, whose AVX2 loads check their pages (V_LOADZ: a call
 * in its rare case, and a call anywhere in the loop made gcc keep accumulators in memory:
 * resnet20's 16-channel layers 9% slower). */
static __attribute__((noinline)) void tile_sums(const Lane *v, const Step *step, const float *restrict ap, int Cin,
                                                int T, size_t plane, float sum[SHIFT_R][SHIFT_NV * SHIFT_V]) {
    tile_sums_body(0, v, step, ap, Cin, T, plane, sum);
}
static __attribute__((noinline)) void tile_sums_edge(const Lane *v, const Step *step, const float *restrict ap, int Cin,
                                                     int T, size_t plane, float sum[SHIFT_R][SHIFT_NV * SHIFT_V]) {
    tile_sums_body(1, v, step, ap, Cin, T, plane, sum);
}

/* out rows [0, rows) of the tile's vectors (+)= sum (+ bias) (+ the residual, then the
 * ReLU: kernels/epilogue.h's rule, v <= 0 -> +0 with NaN kept), the real lanes only. */
static void tile_store(int nv, const Lane *v, float sum[SHIFT_R][SHIFT_NV * SHIFT_V], int rows, size_t plane,
                       const float *bias, float beta, int relu) {
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < nv; j++) {
            float *o = v[j].out + (size_t)r * plane;
            Vec s = V_LOADU(&sum[r][j * SHIFT_V]);
            if (bias) s = V_ADD(s, V_SET1(bias[r]));
            if (beta != 0.0f) s = V_ADD(s, V_LOADZ(LANES(v[j].store), o, o));
            if (v[j].res) {
                const float *res = v[j].res + (size_t)r * plane;
                s = V_ADD(s, V_LOADZ(LANES(v[j].store), res, res));
            }
            if (relu) s = V_RELU(s);
            V_STOREM(o, LANES(v[j].store), s);
        }
}

/* mask[q][t]: the lanes of vector q (outputs q·V .. q·V+V-1) whose input under tap
 * t = (kh, kw) lies inside the image (and that are outputs at all: q·V + l < H·W). */
static void border_masks(Bits mask[][SHIFT_TAPS], int nvec, int H, int W, int K) {
    int P = (K - 1) / 2;
    for (int q = 0; q < nvec; q++) {
        int oh[SHIFT_V], ow[SHIFT_V];
        for (int l = 0; l < SHIFT_V; l++) { oh[l] = (q * SHIFT_V + l) / W; ow[l] = (q * SHIFT_V + l) % W; }
        for (int t = 0; t < K * K; t++) {
            int dh = t / K - P, dw = t % K - P;
            Bits m = 0;
            for (int l = 0; l < SHIFT_V; l++) {
                int ih = oh[l] + dh, iw = ow[l] + dw;
                if (oh[l] < H && ih >= 0 && ih < H && iw >= 0 && iw < W) m |= (Bits)(1u << l);
            }
            mask[q][t] = m;
        }
    }
}

void shiftconv(float *out, const float *in, int ni, const float *Ap, const float *bias, float beta, int Cin, int H,
                 int W, int K, int OUT, const float *res, int relu) {
    int HW = H * W, T = K * K, P = (K - 1) / 2, nvec = (HW + SHIFT_V - 1) / SHIFT_V;
    int shift[SHIFT_TAPS];
    Bits mask[SHIFT_MAX_VECS][SHIFT_TAPS];
    for (int t = 0; t < T; t++) shift[t] = (t / K - P) * W + (t % K - P);
    border_masks(mask, nvec, H, W, K);
    size_t KK = (size_t)Cin * T, plane = (size_t)HW;
    int total = ni * nvec;   /* vectors of the slice: (image, block) in order */
    for (int e0 = 0; e0 < total; e0 += SHIFT_NV) {
        Lane v[SHIFT_NV];
        int nv = total - e0 < SHIFT_NV ? total - e0 : SHIFT_NV;
        for (int j = 0; j < SHIFT_NV; j++) {
            int e = j < nv ? e0 + j : e0;   /* past the last vector: the first again (summed, not stored) */
            int n = e / nvec, q = e % nvec, q0 = q * SHIFT_V;
            v[j].in = in + (size_t)n * Cin * plane + q0;
            v[j].out = out + (size_t)n * OUT * plane + q0;
            v[j].res = res ? res + (size_t)n * OUT * plane + q0 : NULL;
            v[j].mask = mask[q];
            v[j].store = first_lanes(HW - q0);
        }
        Step step[SHIFT_TAPS];
        int inside = 1;   /* (every load of the tile, every channel, in the input tensor's pages) */
        for (int t = 0; t < T; t++) {
            step[t].shift = shift[t];
            step[t].whole = 1;
            for (int j = 0; j < SHIFT_NV; j++) {
                step[t].lanes[j] = LANES(v[j].mask[t]);
                step[t].whole &= v[j].mask[t] == SHIFT_ALL;
                const float *lo = v[j].in + shift[t], *hi = lo + (size_t)(Cin - 1) * plane + SHIFT_V - 1;
                inside &= in_pages(lo, hi, in, (size_t)ni * Cin * plane);
            }
        }
        const float *ap = Ap;
        for (int o0 = 0; o0 < OUT; o0 += SHIFT_R, ap += KK * SHIFT_R) {
            int rows = OUT - o0 < SHIFT_R ? OUT - o0 : SHIFT_R;
            Lane w[SHIFT_NV];
            for (int j = 0; j < SHIFT_NV; j++) {
                w[j] = v[j];
                w[j].out += (size_t)o0 * plane;
                if (w[j].res) w[j].res += (size_t)o0 * plane;
            }
            float sum[SHIFT_R][SHIFT_NV * SHIFT_V];
            (inside ? tile_sums : tile_sums_edge)(w, step, ap, Cin, T, plane, sum);
            tile_store(nv, w, sum, rows, plane, bias ? bias + o0 : NULL, beta, relu);
        }
    }
}

/* Shared set-up of the 3x3 pad-1 layers (weight gradient, depthwise): shifts and lanes
 * per (vector, tap) of a layer on H x W (with AVX2 36 KiB: one vmovdqa per masked load),
 * the last vector's lanes. */
typedef struct {
    int nvec, plane, shift[9];
    Bits last;
    Lanes lanes[SHIFT_MAX_VECS][9];
} Taps3;
static void taps3(Taps3 *T, int H, int W) {
    int HW = H * W;
    Bits mask[SHIFT_MAX_VECS][SHIFT_TAPS];
    T->nvec = (HW + SHIFT_V - 1) / SHIFT_V;
    T->plane = HW;
    for (int t = 0; t < 9; t++) T->shift[t] = (t / 3 - 1) * W + (t % 3 - 1);
    border_masks(mask, T->nvec, H, W, 3);
    for (int q = 0; q < T->nvec; q++)
        for (int t = 0; t < 9; t++) T->lanes[q][t] = LANES(mask[q][t]);
    T->last = first_lanes(HW - (T->nvec - 1) * SHIFT_V);
}

/* ---- the weight gradient (3x3 layers) ----------------------------------------------
 *
 *   dw[o, c, kh, kw] = Σ_n Σ_q dy[n,o,q] · in[n, c, q + (kh-1)·W + (kw-1)]     (masked as above)
 *
 * Here the sum runs over positions, so the vectors run along q (lane l sums the q ≡ l
 * mod V). A tile is SHIFT_DR output channels x the 3 taps of one kernel row (c, kh): 24
 * vectors of partial sums (AVX2: 4 x 3 = 12). Per V positions it loads SHIFT_DR vectors
 * of dy and 3 masked input vectors, which lie 1 float apart (one pointer, constant
 * offsets), and does 3·SHIFT_DR FMAs.
 * (A first version took 4 channels x 6 arbitrary steps (c, t): ten pointers and six mask
 * indices per step ran out of x86's 16 general registers, and gcc reloaded them from the
 * stack in the hot loop: ~100 GFLOP/s per core instead of ~150.)
 * Loops: images in groups of at least SHIFT_DW_GROUP positions (1 image of 32x32, 4 of
 * 16x16, 16 of 8x8, 64 of 4x4); per group, per tile of output channels (their dy,
 * 8 x 1024 floats, stay in L1), every (c, kh) tile; after each group the lanes of
 * every sum are added in a fixed order onto dw (after every image, the small maps spent
 * more time adding lanes than multiplying).
 * Threads split the (block of SHIFT_DW_ROWS output channels, input channel) pieces of
 * dw, not the images: each dw element is one thread's sum over the whole batch in a
 * fixed order, so there are no partial sums to add and the result does not depend on the
 * thread count (up to OUT/8 x Cin threads: 32 for the 16-channel layers). */
enum { SHIFT_DW_GROUP = 1024 };   /* positions per group of images */

/* (IN_REGISTER on the dy vectors: without it gcc folded each dy load into all three FMAs
 * that use it, a memory operand each: 24 loads per 24 FMAs instead of 8, 76 instead of
 * ~150 GFLOP/s.) */

/* The tile's 3 columns are 3 inputs xstep floats apart: the 3 taps of a kernel row
 * (xstep 1), or 3 channels of a 1x1 layer (xstep = the plane); nk < 3 at a last edge.
 * lanes [nvec][9]: the lanes of x to load per vector, column j at [q][j]; NULL: all of them
 * (plain loads: 1x1 layers on whole vectors). last: the lanes of the map's last vector.
 * xnear (xstep 1): xn + xnear is the vector's own position, inside the map (V_LOADZ's near;
 * with 3 channels, each column's own start is). */
static inline __attribute__((always_inline)) void dw_tile(int whole, int checked, int nr, int nk, size_t xstep,
                                                           const float *dy,
                                                           size_t dy_row, size_t dy_image, const float *x,
                                                           size_t x_image, ptrdiff_t xnear, int ng, int nvec,
                                                           const Lanes *lanes, Bits last, float beta, float *dw,
                                                           size_t ldw) {
    Vec acc[SHIFT_DR][3];
    UNROLL for (int r = 0; r < SHIFT_DR; r++)
        UNROLL for (int j = 0; j < 3; j++) acc[r][j] = V_ZERO();
    for (int n = 0; n < ng; n++) {
        const float *g = dy + n * dy_image, *xn = x + n * x_image;
        for (int q = 0; q < nvec; q++, g += SHIFT_V, xn += SHIFT_V) {
            Vec b[3];
            UNROLL for (int j = 0; j < 3; j++)
                b[j] = j >= nk ? V_ZERO()
                       : lanes && !checked ? V_MASKLOAD(lanes[q * 9 + j], xn + j * xstep)
                       : lanes ? V_LOADZ(lanes[q * 9 + j], xn + j * xstep, xstep == 1 ? xn + xnear : xn + j * xstep)
                               : V_LOADU(xn + j * xstep);
            UNROLL for (int r = 0; r < SHIFT_DR; r++) {
                if (r >= nr) break;
                Vec gr = whole ? V_LOADU(g + r * dy_row)
                               : V_LOADZ(LANES(q == nvec - 1 ? last : SHIFT_ALL), g + r * dy_row, g + r * dy_row);
                IN_REGISTER(gr);
                UNROLL for (int j = 0; j < 3; j++) acc[r][j] = V_FMADD(gr, b[j], acc[r][j]);
            }
        }
    }
    UNROLL for (int r = 0; r < SHIFT_DR; r++)
        UNROLL for (int j = 0; j < 3; j++)
            if (r < nr && j < nk) {
                float *w = dw + r * ldw + j, s = V_REDUCE(acc[r][j]);
                *w = beta == 0.0f ? s : *w + s;
            }
}
/* whole: SHIFT_DR rows, 3 columns and maps of whole vectors (the CIFAR maps: 32x32 down to 4x4),
 * every load inside the input tensor's pages (V_MASKLOAD); the 1x1 one loads x without masks;
 * the edge one checks its loads' pages (checked: V_LOADZ), for the tiles at a tensor's first
 * and last rows and partial tiles (see tile_sums for why the two are kept apart) */
static __attribute__((noinline)) void dw_tile_taps(const float *dy, size_t dy_row, size_t dy_image, const float *x,
                                                   size_t x_image, ptrdiff_t xnear, int ng, int nvec,
                                                   const Lanes *lanes, float beta, float *dw, size_t ldw) {
    dw_tile(1, 0, SHIFT_DR, 3, 1, dy, dy_row, dy_image, x, x_image, xnear, ng, nvec, lanes, SHIFT_ALL, beta, dw, ldw);
}
static __attribute__((noinline)) void dw_tile_channels(size_t xstep, const float *dy, size_t dy_row, size_t dy_image,
                                                       const float *x, size_t x_image, int ng, int nvec, float beta,
                                                       float *dw, size_t ldw) {
    dw_tile(1, 0, SHIFT_DR, 3, xstep, dy, dy_row, dy_image, x, x_image, 0, ng, nvec, NULL, SHIFT_ALL, beta, dw, ldw);
}
static __attribute__((noinline)) void dw_tile_edge(int nr, int nk, size_t xstep, const float *dy, size_t dy_row,
                                                   size_t dy_image, const float *x, size_t x_image, ptrdiff_t xnear,
                                                   int ng, int nvec, const Lanes *lanes, Bits last, float beta,
                                                   float *dw, size_t ldw) {
    dw_tile(0, 1, nr, nk, xstep, dy, dy_row, dy_image, x, x_image, xnear, ng, nvec, lanes, last, beta, dw, ldw);
}

void shiftconv_dw(float *dw, const float *dy, const float *in, int ni, int Cin, int H, int W, int OUT, int o_begin,
                  int o_end, int c_begin, int c_end) {
    int HW = H * W;
    Taps3 T;
    taps3(&T, H, W);
    size_t plane = (size_t)HW, KK = (size_t)Cin * 9;
    int group = HW >= SHIFT_DW_GROUP ? 1 : (SHIFT_DW_GROUP + HW - 1) / HW;
    for (int n0 = 0; n0 < ni; n0 += group) {
        int ng = ni - n0 < group ? ni - n0 : group;
        float beta = n0 == 0 ? 0.0f : 1.0f;   /* the first group overwrites, later ones add */
        for (int o0 = o_begin; o0 < o_end; o0 += SHIFT_DR) {
            int nr = o_end - o0 < SHIFT_DR ? o_end - o0 : SHIFT_DR;
            const float *g = dy + ((size_t)n0 * OUT + o0) * plane;
            for (int c = c_begin; c < c_end; c++)
                for (int kh = 0; kh < 3; kh++) {
                    /* tap (kh, kw) of output q reads x[q + (kh-1)·W + kw-1]: x + kw from here */
                    const float *x = in + ((size_t)n0 * Cin + c) * plane + (kh - 1) * W - 1;
                    float *w = dw + (size_t)o0 * KK + (size_t)c * 9 + kh * 3;
                    ptrdiff_t xnear = (ptrdiff_t)(1 - kh) * W + 1;   /* x + xnear: the plane's position 0 */
                    const float *x_end = x + (size_t)(ng - 1) * Cin * plane + (size_t)T.nvec * SHIFT_V + 1;
                    if (nr == SHIFT_DR && T.last == SHIFT_ALL && in_pages(x, x_end, in, (size_t)ni * Cin * plane))
                        dw_tile_taps(g, plane, OUT * plane, x, Cin * plane, xnear, ng, T.nvec, &T.lanes[0][kh * 3],
                                     beta, w, KK);
                    else
                        dw_tile_edge(nr, 3, 1, g, plane, OUT * plane, x, Cin * plane, xnear, ng, T.nvec,
                                     &T.lanes[0][kh * 3], T.last, beta, w, KK);
                }
        }
    }
}

/* The weight gradient of a 1x1 stride-1 layer (group g's slice: Cg inputs, OUT outputs),
 * rows [o_begin, o_end): dw[o][c] = Σ_n Σ_q dy[n,o,q] · x[n,c,q]. The same tile, its
 * three columns three input channels a plane apart, no border (every mask is the lanes
 * inside the map). */
void shiftconv_dw_1x1(float *dw, const float *dy, const float *x, int N, int Cg, int HW, size_t dy_image,
                      size_t x_image, int o_begin, int o_end) {
    int nvec = (HW + SHIFT_V - 1) / SHIFT_V;
    Bits last = first_lanes(HW - (nvec - 1) * SHIFT_V);
    Lanes lanes[SHIFT_MAX_VECS][9];   /* (the tile reads [q][0..2]) */
    for (int q = 0; q < nvec; q++) lanes[q][0] = lanes[q][1] = lanes[q][2] = LANES(q == nvec - 1 ? last : SHIFT_ALL);
    size_t plane = (size_t)HW;
    int group = HW >= SHIFT_DW_GROUP ? 1 : (SHIFT_DW_GROUP + HW - 1) / HW;
    for (int n0 = 0; n0 < N; n0 += group) {
        int ng = N - n0 < group ? N - n0 : group;
        float beta = n0 == 0 ? 0.0f : 1.0f;
        for (int o0 = o_begin; o0 < o_end; o0 += SHIFT_DR) {
            int nr = o_end - o0 < SHIFT_DR ? o_end - o0 : SHIFT_DR;
            const float *g = dy + n0 * dy_image + (size_t)o0 * plane;
            for (int c = 0; c < Cg; c += 3) {
                int nk = Cg - c < 3 ? Cg - c : 3;
                const float *xc = x + n0 * x_image + (size_t)c * plane;
                float *w = dw + (size_t)o0 * Cg + c;
                if (nr == SHIFT_DR && nk == 3 && last == SHIFT_ALL)
                    dw_tile_channels(plane, g, plane, dy_image, xc, x_image, ng, nvec, beta, w, Cg);
                else
                    dw_tile_edge(nr, nk, plane, g, plane, dy_image, xc, x_image, 0, ng, nvec, &lanes[0][0], last, beta,
                                 w, Cg);
            }
        }
    }
}

/* ---- depthwise 3x3 layers (MobileNetV2, the ShuffleNets) -------------------------------
 *
 *   out[n,c,q] (+)= bias[c] + Σ_t w[c,t] · in[n,c, q + shift(t)]          (one channel in, one out)
 *   dw[c,t]      = Σ_n Σ_q dy[n,c,q] · in[n,c, q + shift(t)]
 *
 * With one input channel per output there is nothing to reuse across channels: per V
 * outputs, 9 masked loads and 9 FMAs (the 9 weights of the channel stay in registers,
 * with AVX2's 16 too). The input gradient is the same sum with the kernel flipped
 * (t -> 8-t: shift(8-t) = -shift(t), and the masks of a "same" layer are symmetric), so
 * it is this forward run on dy with flipped weights, added to dx (beta 1). The weight
 * gradient keeps one vector of partial sums per tap (9) over the whole batch and adds
 * the lanes once. Work items are planes (forward) or channels (dW): one thread each,
 * fixed order. */
/* Planes p0 .. p1-1 of the depthwise forward (channel p mod C). checked: the loads check
 * their pages (V_LOADZ); else every load lies in mapped pages (V_MASKLOAD): two functions,
 * as tile_sums explains, each over a range of planes (a call per 4x4 plane cost 15%). */
static inline __attribute__((always_inline)) void dw_planes_body(int checked, float *out, const float *in,
                                                                 const float *w, const float *bias, float beta,
                                                                 int C, long p0, long p1, const Taps3 *T) {
    size_t plane = (size_t)T->plane;
    for (long p = p0; p < p1; p++) {
        int c = (int)(p % C);
        const float *xp = in + p * plane;
        float *op = out + p * plane;
        Vec wv[9];
        UNROLL for (int t = 0; t < 9; t++) wv[t] = V_SET1(w[(size_t)c * 9 + t]);
        for (int q = 0; q < T->nvec; q++) {
            const float *x = xp + q * SHIFT_V;
            Vec acc = V_SET1(bias ? bias[c] : 0.0f);
            UNROLL for (int t = 0; t < 9; t++)
                acc = V_FMADD(wv[t], checked ? V_LOADZ(T->lanes[q][t], x + T->shift[t], x)
                                             : V_MASKLOAD(T->lanes[q][t], x + T->shift[t]), acc);
            Bits m = q == T->nvec - 1 ? T->last : SHIFT_ALL;
            float *o = op + q * SHIFT_V;
            if (beta != 0.0f) acc = V_ADD(acc, checked ? V_LOADZ(LANES(m), o, o) : V_MASKLOAD(LANES(m), o));
            V_STOREM(o, LANES(m), acc);
        }
    }
}
static __attribute__((noinline)) void dw_planes(float *out, const float *in, const float *w, const float *bias,
                                                float beta, int C, long p0, long p1, const Taps3 *T) {
    dw_planes_body(0, out, in, w, bias, beta, C, p0, p1, T);
}
static __attribute__((noinline)) void dw_planes_checked(float *out, const float *in, const float *w, const float *bias,
                                                        float beta, int C, long p0, long p1, const Taps3 *T) {
    dw_planes_body(1, out, in, w, bias, beta, C, p0, p1, T);
}

void shiftconv_depthwise(float *out, const float *in, const float *w, const float *bias, float beta, int C, int H,
                         int W, long p_begin, long p_end) {
    Taps3 T;
    taps3(&T, H, W);
    size_t plane = (size_t)H * W;
    /* the first and last plane check their loads' pages, the ones between need not
     * (their shifted reads stay within the planes next to them) */
    size_t n = (size_t)(p_end - p_begin) * plane;
    long m0 = p_begin + 1, m1 = p_end - 1;
    int inside = m1 > m0 && in_pages(in + m0 * plane - W - 1, in + m1 * plane + W + SHIFT_V, in + p_begin * plane, n) &&
                 in_pages(out + m0 * plane, out + m1 * plane + SHIFT_V - 1, out + p_begin * plane, n);
    if (!inside) m0 = m1 = p_end;
    dw_planes_checked(out, in, w, bias, beta, C, p_begin, m0, &T);
    dw_planes(out, in, w, bias, beta, C, m0, m1, &T);
    dw_planes_checked(out, in, w, bias, beta, C, m1, p_end, &T);
}

/* Channel c of the depthwise dW over the N images: dw[c·9 + t] = Σ_n Σ_q dy[n,c,q] ·
 * x[n,c, q + shift(t)] (checked: as dw_planes_body) */
static inline __attribute__((always_inline)) void dwdw_channel_body(int checked, float *dw, const float *dy,
                                                                    const float *in, int N, int C, int c,
                                                                    const Taps3 *T) {
    size_t plane = (size_t)T->plane;
    Vec acc[9];
    UNROLL for (int t = 0; t < 9; t++) acc[t] = V_ZERO();
    for (int n = 0; n < N; n++) {
        const float *g = dy + ((size_t)n * C + c) * plane, *x = in + ((size_t)n * C + c) * plane;
        for (int q = 0; q < T->nvec; q++, g += SHIFT_V, x += SHIFT_V) {
            Lanes m = LANES(q == T->nvec - 1 ? T->last : SHIFT_ALL);
            Vec gv = checked ? V_LOADZ(m, g, g) : V_MASKLOAD(m, g);
            IN_REGISTER(gv);
            UNROLL for (int t = 0; t < 9; t++)
                acc[t] = V_FMADD(gv, checked ? V_LOADZ(T->lanes[q][t], x + T->shift[t], x)
                                             : V_MASKLOAD(T->lanes[q][t], x + T->shift[t]), acc[t]);
        }
    }
    UNROLL for (int t = 0; t < 9; t++) dw[(size_t)c * 9 + t] = V_REDUCE(acc[t]);
}
static __attribute__((noinline)) void dwdw_channel(float *dw, const float *dy, const float *in, int N, int C, int c,
                                                   const Taps3 *T) {
    dwdw_channel_body(0, dw, dy, in, N, C, c, T);
}
static __attribute__((noinline)) void dwdw_channel_checked(float *dw, const float *dy, const float *in, int N, int C,
                                                           int c, const Taps3 *T) {
    dwdw_channel_body(1, dw, dy, in, N, C, c, T);
}

void shiftconv_depthwise_dw(float *dw, const float *dy, const float *in, int N, int C, int H, int W, int c_begin,
                            int c_end) {
    Taps3 T;
    taps3(&T, H, W);
    /* channels 0 and C-1 hold the tensors' first and last planes: their loads check their
     * pages; every other plane's shifted reads stay within the planes next to it */
    for (int c = c_begin; c < c_end; c++)
        (c == 0 || c == C - 1 ? dwdw_channel_checked : dwdw_channel)(dw, dy, in, N, C, c, &T);
}

#else /* neither AVX-512 nor AVX2 + FMA in this build of the kernels: conv.c never calls the others */

int shiftconv_applies(int Cin, int H, int W, int K, int S, int P, int G) { return 0; }
size_t shiftconv_packed_floats(int OUT, int Cin, int K) { return 0; }
void shiftconv_pack_weights(float *Ap, const float *w, int OUT, int Cin, int K) {}
void shiftconv(float *out, const float *in, int ni, const float *Ap, const float *bias, float beta, int Cin, int H,
                 int W, int K, int OUT, const float *res, int relu) {}
void shiftconv_dw(float *dw, const float *dy, const float *in, int ni, int Cin, int H, int W, int OUT, int o_begin,
                  int o_end, int c_begin, int c_end) {}
void shiftconv_depthwise(float *out, const float *in, const float *w, const float *bias, float beta, int C, int H,
                         int W, long p_begin, long p_end) {}
void shiftconv_dw_1x1(float *dw, const float *dy, const float *x, int N, int Cg, int HW, size_t dy_image,
                      size_t x_image, int o_begin, int o_end) {}
void shiftconv_depthwise_dw(float *dw, const float *dy, const float *in, int N, int C, int H, int W, int c_begin,
                            int c_end) {}

#endif
