/* kernels/conv.c — 2-D convolution (cross-correlation) on the CPU: forward and backward.
 *
 *   y[n,o,oh,ow] = b[o] + Σ_{c,kh,kw} w[o,c,kh,kw] · x[n, g·Cg + c, oh·S-P+kh, ow·S-P+kw]
 *   x [N,C,H,W]   w [OC,Cg,K,K]   b [OC] or NULL   y [N,OC,OH,OW]
 *   G groups: output channel o belongs to group g = o / OCg and sees input channels
 *   g·Cg .. g·Cg+Cg-1 (Cg = C/G, OCg = OC/G); OH = (H+2P-K)/S+1, OW likewise;
 *   x outside the image reads as 0 (zero padding).
 *
 * Read conv2d_forward_direct first (right below the includes): the definition above
 * as seven plain loops, in double. It is the reference the tests hold every fast path
 * to (tests/test_ops.c, with finite differences of it for the gradients). Everything
 * after it computes the same numbers faster, by one of these paths:
 *
 * Which path a layer takes (conv_geometry decides; PP = OH·OW output positions)
 * ------------------------------------------------------------------------------
 * On CPUs with AVX-512 or AVX2+FMA (shiftconv.c; DKD_SHIFTCONV=0 turns it off), stride-1 layers
 * whose output is as large as the input ("same": 2P = K-1) on maps of 16 to 1024
 * positions are read straight from NCHW, every tap a fixed shift of the flat plane
 * with the border lanes masked:
 *  layer shape                         forward         dx               dW
 *  3x3 "same", G = 1, small or narrow  shiftconv       shiftconv of dy  shiftconv dW
 *    (resnet20/32/56/110, WRN's         (8 x 48 tile)   (flipped kernel) (8 x 3 taps)
 *    32-channel layers)
 *  3x3 "same", G = 1, wide: C·OC·H·W   Winograd        Winograd of dy   shiftconv dW
 *    >= 2^20 (AVX2: 2^18), and with     F(2x2); eval-   F(2x2)
 *    AVX-512 C·OC >= 2048 (F(4x4)) or   mode forwards
 *    4096 (F(2x2)): resnet32x4/8x4,     F(4x4) on maps
 *    VGG, WRN-40-2's wider layers,      from 8x8
 *    ResNet50 (winograd_beats_shiftconv)
 *  depthwise 3x3 / s1 / pad 1          shiftconv       shiftconv of dy  shiftconv dW
 *    (MobileNetV2, ShuffleNets)         depthwise       (flipped)        depthwise
 *  1x1 / s1, maps 4x4 (PP >= 64)       GEMM on the     GEMM W^T·dY      shiftconv dW
 *    to 16x16                          image           into dx          (3 channels per tile)
 * Everything else, and every layer on CPUs without AVX-512:
 *  depthwise (G == C == OC)            direct loops    direct loops     direct loops
 *    (stride 1: on a zero-bordered copy of the plane; 4x4 and smaller: tap tables)
 *  3x3 / s1 / pad 1, G = 1,            Winograd        Winograd of dy   implicit GEMM if OW >= 16,
 *    C and OC >= 32                    (as above)      with the flipped im2col + GEMM below
 *                                                      kernel           (or when PP < 64)
 *  other KxK (K > 1) stride 1,         implicit GEMM   implicit GEMM    as above
 *    PP >= 64, G < C                   (no col)        of dy, flipped
 *  1x1 / s1 / pad 0, PP >= 64          GEMM on the     GEMM W^T·dY      GEMM dY·x^T
 *    (MobileNetV2, ShuffleNets,        image itself    straight into dx
 *    ResNet50 bottlenecks)             (no col; W packed
 *                                      once per call:
 *                                      pointwise_image)
 *  everything else: stride 2,          im2col + GEMM   GEMM + col2im    im2col + GEMM
 *    maps with PP < 64 (4x4, 2x2),     (several images per GEMM when PP < 64)
 *    the 3-channel stems on small maps
 * Why: shiftconv reads no copy and writes no junk; per 24 FMAs its tile makes ~14 loads,
 * and the masks cost 10-20%, still ahead of the implicit GEMM's padded copy, wider grid
 * and copy-out (measured per layer in kernels/README.md). Winograd does 2.25x (F(2x2))
 * or 4x (F(4x4)) fewer multiply-adds but its transforms cost per channel, so it pays
 * from 32 channels up (timings in winograd.c's winograd_applies), and beats shiftconv
 * only on the wide layers (winograd_beats_shiftconv); F(4x4)'s larger rounding error
 * keeps it out of training (winograd.c); the implicit GEMM saves building col (as big as
 * the layer's arithmetic for 3x3 layers with few channels); a 1x1 stride-1 col would
 * be a copy of the image; strided layers and tiny maps are a small share of the work,
 * and im2col handles any geometry. dx of a stride-1 convolution is itself a stride-1
 * convolution (of dy with the kernel flipped and its in/out channels swapped, padding
 * K-1-P), which is why the forward paths serve dx too. DKD_WINOGRAD=0 sends
 * Winograd's layers to the implicit GEMM.
 *
 * im2col: convolution as a matrix product
 * ---------------------------------------
 * For one image and one group, the "column matrix" col [KK, PP] (KK = Cg·K·K rows,
 * one per (c,kh,kw); PP = OH·OW columns, one per output position p = (oh,ow)) holds
 * in column p the input patch that output p sees:
 *     col[(c,kh,kw)][(oh,ow)] = x[c, oh·S-P+kh, ow·S-P+kw]      (0 in the padding)
 * Then, with W_g = w viewed as [OCg, KK] and Y, dY as [OCg, PP] per image:
 *     forward         Y  = W_g · col                  (M=OCg, N=PP, K=KK)
 *     weight grad     dW_g = Σ_n dY_n · col_n^T       (M=OCg, N=KK, K=PP per image)
 *     input grad      dcol = W_g^T · dY_n             (M=KK, N=PP, K=OCg)
 *                     dx += col2im(dcol)
 * The last line is the chain rule through im2col: each x element was copied into
 * every column whose patch covers it, so its gradient is the SUM of the dcol entries
 * at those places; col2im adds each dcol row back onto the shifted window of dx it
 * came from. db[o] = Σ_{n,p} dy[n,o,p].
 *
 * Slices. The products above are per image, so images are independent units of
 * work: threads take whole images (OpenMP, static schedule) and each thread builds
 * its own col in its slot of the workspace. When an image has few output positions
 * (PP < 64: 4x4 and 2x2 maps of VGG, ResNet50, ShuffleNets) a product with N = PP
 * would be mostly tile edges, so a "slice" of ceil(64/PP) images is done as ONE
 * product with N = (images)·PP columns (col gets the columns of every image of the
 * slice side by side; y and dy are copied to/from [OCg, images·PP] staging
 * matrices). We keep per-image products otherwise: batching all 64 images into one
 * GEMM (N = 64·1024) gains nothing at these sizes (N = 1024 already fills the
 * micro-kernel, see gemm.c) but needs a 64x larger col and a scatter of y back
 * into NCHW.
 *
 * Making it fast (one image of resnet20's first stage: a 16x144 by 144x1024 product,
 * 2.4M multiply-adds, but col alone is 147k floats, so moving col around costs as
 * much as multiplying it; measured on this project's 2-core Zen 1 VM, batch 64):
 *  - stride-1 layers (almost all the work) skip col entirely: the "implicit GEMM"
 *    below reads the zero-padded image through a table of row offsets, and their dx
 *    is computed as a convolution of dy with the flipped kernel, and their dW by a
 *    kernel that reads dy and the padded image in place (1-thread bench of a 16->16
 *    3x3 layer on 32x32: forward 12.8 -> 11.0 ms, dW 19.0 -> 13.1 ms);
 *  - im2col of a "same" convolution (stride 1, output size = input size) copies each
 *    row of col as one shifted block of the input plane, then zeroes the few entries
 *    that wrapped around an edge (im2col_row); col2im is the mirror image (both still
 *    serve the small maps and the dW of 8x8 layers);
 *  - a 1x1 stride-1 convolution needs no col at all: col IS the input (is_pointwise).
 *
 * Determinism. Forward, dx and db: every output element is computed by one thread
 * in a fixed order. dW sums over images: the slices are cut into at most
 * CONV_DW_CHUNKS chunks (a function of N and PP only, not of the thread count);
 * each chunk's partial dW (its slices in order) goes to its own buffer, and the
 * chunks are added in chunk order at the end. So results are bit-identical for
 * any number of threads.
 *
 * Workspace (conv2d_workspace_floats, sized once for the largest batch N):
 *   per thread slot: col [KK, cols] (+ a staging matrix [OCg, cols] when slices
 *   hold several images), cols = images per slice · PP, or the implicit GEMM's padded
 *   image + output grid + offsets, whichever is larger;
 *   dW partials: chunks · OC · KK floats (none when there is a single chunk);
 *   implicit layers: the flipped kernel for dx, OC · KK floats.
 * Slots: min(dkd_num_procs(), number of slices). A call uses at most that many
 * threads (more threads than processors never help), so the workspace stays valid
 * whatever thread count is set later. Largest layer of resnet56/resnet20 at batch 64
 * on 2 processors (64x64 3x3 on 8x8 maps): 424k floats (1.7 MB); the GEMM adds
 * 1.1 MB of packing buffers per thread (gemm.c).
 *
 * Depthwise (G == C == OC: MobileNetV2, ShuffleNets): one input channel per output
 * channel, KK = K·K = 9, so a GEMM would be all overhead; direct loops instead
 * (conv_dw_* below), same formulas. With stride 1 each plane is first copied into a
 * zero-bordered plane so that every tap is one long vector loop (the padded-plane
 * form, see dw_padded); its scratch is the workspace (min(processors, C) slots of a
 * few planes). Threads take planes (forward, dx) or channels (dW, summed over the
 * images in order): deterministic too.
 */
#include "dkd.h"
#include "epilogue.h"
#include "gemm.h"
#include "shiftconv.h"
#include "winograd.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- the definition: seven loops ----------------------------------------------------- */

/* y [N,OC,OH,OW] = the convolution of x [N,C,H,W] with w [OC,C/G,K,K] (+ b [OC], or
 * NULL), summed in double in the order (c, kh, kw): the formula at the top of this
 * file and nothing else. Slow (no blocking, no threads) and exact enough to judge the
 * float paths; the tests' reference. */
void conv2d_forward_direct(double *y, const double *x, const double *w, const double *b,
                           int N, int C, int H, int W, int OC, int K, int S, int P, int G) {
    int Cg = C / G, OCg = OC / G, OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            int g = o / OCg;   /* the group of output channel o */
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double s = b ? b[o] : 0.0;
                    for (int c = 0; c < Cg; c++)
                        for (int kh = 0; kh < K; kh++)
                            for (int kw = 0; kw < K; kw++) {
                                int ih = oh * S - P + kh, iw = ow * S - P + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;   /* zero padding */
                                s += w[(((size_t)o * Cg + c) * K + kh) * K + kw] *
                                     x[(((size_t)n * C + (size_t)g * Cg + c) * H + ih) * W + iw];
                            }
                    y[(((size_t)n * OC + o) * OH + oh) * OW + ow] = s;
                }
        }
}

enum {
    CONV_MIN_COLS = 64,     /* a slice holds ceil(64/PP) images when PP < 64 */
    CONV_DW_CHUNKS = 8,     /* dW is summed over at most 8 image chunks, then added */
    IMPLICIT_DW_MIN_OW = 16, /* implicit dW only on maps this wide: on 8x8 (rows of 72 grid
                                positions, 11% junk) im2col + GEMM is faster (64 ch, batch
                                64, 1 thread: 14.0 vs 16.2 ms) */
};

/* A 3x3 "same" layer that both shiftconv.c and Winograd (tile m) can take: is Winograd
 * faster? Its GEMMs need big products, so it wins from a work C·OC·H·W up (and, with
 * AVX-512, not on layers too narrow for its 12x32 GEMM tile: 32 -> 32, and 32 -> 64 with
 * F(2x2)). Measured forward
 * times, ms, batch 64, one thread, on the AVX-512 Xeon, shiftconv / F(2x2) / F(4x4):
 *   AVX-512   32 @32x32 9.6 / 13.4 / 10.0    64 @8x8 2.16 / 2.69 / 2.17
 *             64 @16x16 9.0 / 8.6 / 6.7      128 @8x8 8.3 / 7.0 / 5.8
 *             32->64 @32x32 18.6 / 20.0 / 14.2    128 @4x4 2.14 / 2.22 / -
 *             256 @4x4 9.5 / 6.6 / 9.7       512 @4x4 38.2 / 24.8 / 42.9
 *   AVX2      32 @8x8 0.90 / 1.06 / 0.93     32 @16x16 4.2 / 4.1 / 3.0
 *   (DKD_ISA  32 @32x32 17.0 / 15.6 / 11.5   64 @8x8 3.8 / 3.1 / 2.4
 *    =avx2)   128 @4x4 3.8 / 2.8 / 3.2       64 @16x16 16.8 / 9.8 / 7.6
 * (the tile itself: winograd_tile, F(4x4) on maps from 8x8, F(2x2) on smaller ones).
 * dx runs the same path as the forward (a convolution of dy). */
static int winograd_beats_shiftconv(int C, int OC, int H, int W, int m) {
    double work = (double)C * OC * H * W;
#if defined(__AVX512F__)
    return work >= (1 << 20) && C * OC >= (m == 4 ? 2048 : 4096);
#else
    (void)m;
    return work >= (1 << 18);
#endif
}

/* DKD_SHIFTCONV=0 in the environment sends the shiftconv.c layers back to Winograd or
 * the implicit GEMM (comparisons, tests). */
static int shiftconv_enabled(void) {
    static int enabled = -1;
    if (enabled < 0) {
        const char *e = getenv("DKD_SHIFTCONV");
        enabled = !(e && e[0] == '0');
    }
    return enabled;
}

/* Everything the loops need about one convolution, derived from the arguments. */
typedef struct {
    int N, C, H, W, OC, K, S, P, G;
    int Cg, OCg, KK;        /* channels per group in/out, rows of col (Cg·K·K) */
    int OH, OW, PP;         /* output size, PP = OH·OW */
    int per_slice, slices;  /* images per slice, number of slices */
    int chunks;             /* dW chunks (1: the partial is dw itself) */
    int slots;              /* thread slots in the workspace */
    size_t cols;            /* columns of a full slice: per_slice·PP */
    int ldcol;              /* row stride of col in a slot */
    size_t stage_off;       /* where the staging matrix starts in a slot (after col) */
    size_t row_off;         /* where im2col_strips' row buffer starts in a slot (after that) */
    size_t slot_floats;     /* col + staging, per slot */
    int implicit;           /* stride-1 layer on >= 64 positions: dW by implicit_dw (or im2col on narrow maps), forward and dx by implicit_conv unless wino is set */
    int wino;               /* forward and dx by Winograd (winograd.c): 3x3 pad-1 ungrouped, >= 32 channels;
                               the output tile m (2 or 4), 0 when not Winograd */
    int wino_n, wino_slices; /* images per Winograd call, number of calls */
    int shift;              /* forward and dx by shiftconv.c (AVX-512 and AVX2 builds): stride-1 "same" layers, before Winograd */
    int shift_dw;           /* dW by shiftconv.c: every stride-1 "same" 3x3 layer it can take */
    int dw_batch;           /* dW as one GEMM over the whole batch (small maps, many weights: dw_whole_batch) */
    int shift_1x1;          /* dW of 1x1 stride-1 layers (pointwise, any G) by shiftconv.c */
} Conv;

static size_t implicit_floats(int Cin, int H, int W, int P, int K, int OUT);   /* below */

/* dW = dY · col^T summed over the whole batch by ONE GEMM, K = N·PP: for the 3x3 layers on
 * 4x4 maps with many weights (VGG's 256 -> 512 and 512 -> 512), whose per-image sums are
 * too short for shiftconv's dW (16 positions: 24 vectors of partial sums reduced every 64
 * images) and for the sliced im2col GEMMs (K = 64 per call: the whole dW, 9 MB at 512
 * channels, re-read and re-written 16 times). Measured, dW only, batch 64, one thread,
 * AVX-512 Xeon, ms, shiftconv / sliced im2col / this: 512 @4x4 78-81 / 96 / 56,
 * 256->512 @4x4 40-41 / 41 / 25; not on smaller layers or larger maps: 128 @4x4 4.4 /
 * 4.5 / 6.1, 128->256 @8x8 34 / 29 / 33, 256 @8x8 65 / 62 / 69. The price: col of the
 * whole batch in the workspace (KK·N·PP floats, 19 MB at 512 @4x4), so only up to
 * DW_BATCH_MAX_FLOATS. dx is then Winograd's or shiftconv's (after the dW). */
enum { DW_BATCH_MIN_WEIGHTS = 1 << 20, DW_BATCH_MAX_FLOATS = 1 << 23 };
static int dw_whole_batch(const Conv *d) {
    return (d->wino || d->shift) && d->K == 3 && d->PP <= 16 && (double)d->OC * d->KK >= DW_BATCH_MIN_WEIGHTS &&
           (double)(d->KK + d->OC) * d->N * d->PP <= DW_BATCH_MAX_FLOATS;
}
/* its buffers, one after the other: B = col^T packed in GEMM strips (KK rounded up to
 * whole strips, x N·PP), A = dY packed, dY gathered as [OC, N·PP], one col row per thread */
static size_t dw_batch_cols(const Conv *d) { return (size_t)d->N * d->PP; }
static size_t dw_batch_bp_floats(const Conv *d) {
    return ((size_t)d->KK + GEMM_NR - 1) / GEMM_NR * GEMM_NR * dw_batch_cols(d);
}
static size_t dw_batch_floats(const Conv *d) {
    if (!d->dw_batch) return 0;
    size_t cols = dw_batch_cols(d);
    return dw_batch_bp_floats(d) + gemm_packed_a_floats(d->OC, (int)cols) + (size_t)d->OC * cols +
           (size_t)dkd_num_procs() * cols;
}

static Conv conv_geometry(int N, int C, int H, int W, int OC, int K, int S, int P, int G, int eval) {
    Conv d;
    d.N = N; d.C = C; d.H = H; d.W = W; d.OC = OC; d.K = K; d.S = S; d.P = P; d.G = G;
    d.Cg = C / G; d.OCg = OC / G; d.KK = d.Cg * K * K;
    d.OH = (H + 2 * P - K) / S + 1; d.OW = (W + 2 * P - K) / S + 1; d.PP = d.OH * d.OW;
    d.per_slice = d.PP >= CONV_MIN_COLS ? 1 : (CONV_MIN_COLS + d.PP - 1) / d.PP;
    if (d.per_slice > N) d.per_slice = N > 0 ? N : 1;
    d.slices = (N + d.per_slice - 1) / d.per_slice;
    d.chunks = d.slices < CONV_DW_CHUNKS ? d.slices : CONV_DW_CHUNKS;
    if (d.chunks < 1) d.chunks = 1;
    d.cols = (size_t)d.per_slice * d.PP;
    /* col's row stride: at least cols rounded up to GEMM_NR, and an odd number of 64-byte
     * cache lines, so that consecutive rows fall into different L1 sets (a stride of
     * 1024 floats = 4 KiB would put every row of a strip into the same set). */
    d.ldcol = (int)((d.cols + GEMM_NR - 1) / GEMM_NR * GEMM_NR);
    d.ldcol = (d.ldcol + 15) / 16 * 16;
    if ((d.ldcol / 16) % 2 == 0) d.ldcol += 16;
    d.stage_off = (size_t)d.KK * d.ldcol;
    d.row_off = d.stage_off + (d.per_slice > 1 ? (size_t)d.OCg * d.cols : 0);
    d.slot_floats = d.row_off + d.cols;   /* + one row of col (im2col_strips) */
    /* stride-1 layers with K > 1 on maps of >= 64 positions run as an implicit GEMM
     * (forward, and dx as the convolution of dy: see "implicit GEMM" below); its
     * buffers share the slot with col (the backward uses one, then the other). */
    d.implicit = K > 1 && S == 1 && G < C && d.per_slice == 1 && H * W >= CONV_MIN_COLS && P < K;
    if (d.implicit) {
        size_t f = implicit_floats(d.Cg, H, W, P, K, d.OCg), b = implicit_floats(d.OCg, d.OH, d.OW, K - 1 - P, K, d.Cg);
        if (f > d.slot_floats) d.slot_floats = f;
        if (b > d.slot_floats) d.slot_floats = b;
    }
    /* (G = 1: never depthwise). F(4x4) only in eval-mode forwards: see winograd_tile */
    d.wino = winograd_applies(C, OC, K, S, P, G) ? (eval ? winograd_tile(H, W) : 2) : 0;
    d.shift = shiftconv_enabled() && K > 1 && shiftconv_applies(C, H, W, K, S, P, G) &&
              !(d.wino && winograd_beats_shiftconv(C, OC, H, W, d.wino));
    if (d.shift) d.wino = 0;
    /* (its dx is then Winograd's or shiftconv's, done after the dW loop) */
    d.shift_dw = (d.shift || d.wino) && shiftconv_enabled() && K == 3 && shiftconv_applies(C, H, W, K, S, P, G);
    d.dw_batch = dw_whole_batch(&d);
    if (d.dw_batch) d.shift_dw = 0;
    if (d.wino) {   /* Winograd takes wino_n images per call: wino_slices calls */
        d.wino_n = winograd_images_per_call(d.wino, N, H, W);
        d.wino_slices = (N + d.wino_n - 1) / d.wino_n;
        size_t f = winograd_slot_floats(d.wino, C, H, W, OC, d.wino_n),
               b = winograd_slot_floats(d.wino, OC, d.OH, d.OW, C, d.wino_n);
        if (f > d.slot_floats) d.slot_floats = f;
        if (b > d.slot_floats) d.slot_floats = b;
    }
    /* (maps of up to 16x16: on 32x32 the per-image GEMM is faster, e.g. 64->128 dW 12.3
     * vs 19.3 ms, where on 16x16 shiftconv wins 2-3x: 12->72 0.41 vs 0.97 ms, 240->60 in
     * 3 groups 2.6 vs 3.7 ms; batch 64, 1 thread, AVX-512 Xeon) */
    d.shift_1x1 = shiftconv_enabled() && K == 1 && S == 1 && P == 0 && d.per_slice == 1 && H * W <= 256 &&
                  shiftconv_applies(d.Cg, H, W, 1, 1, 0, 1);
#if !defined(__AVX512F__)
    /* (AVX2: only narrow layers; on wide ones the GEMM wins: 72->12 @16x16 0.55 vs 0.86 ms,
     * but 128->256 @8x8 4.76 vs 3.69 ms; 1 thread, DKD_ISA=avx2 on the AVX-512 Xeon) */
    if (d.Cg * d.OCg >= 4096) d.shift_1x1 = 0;
#endif
    int procs = dkd_num_procs();
    d.slots = procs < d.slices ? procs : d.slices;
    if (d.slots < 1) d.slots = 1;
    return d;
}

/* Threads used by a call: what OpenMP would use, capped by the workspace slots. */
static int conv_threads(const Conv *d) {
    int t = dkd_num_threads();
    return t < d->slots ? t : d->slots;
}
static int wino_threads(const Conv *d) {
    int t = conv_threads(d);
    return t < d->wino_slices ? t : d->wino_slices;
}
/* Depthwise: work items are planes (forward, dx) or channels (dW); slots for the
 * padded-plane scratch: min(processors, channels). */
static int dw_slots(const Conv *d) {
    int procs = dkd_num_procs();
    int s = procs < d->C ? procs : d->C;
    return s < 1 ? 1 : s;
}
static int dw_threads(const Conv *d) {
    int t = dkd_num_threads(), s = dw_slots(d);
    return t < s ? t : s;
}
static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static int is_depthwise(int C, int OC, int G) { return G == C && G == OC; }

/* 1x1, stride 1, no padding, one image per slice: col IS the image (x_g viewed as
 * [Cg, PP]), so no im2col copy, and dx gets W_g^T·dY added directly (col2im of a 1x1
 * convolution is the identity). MobileNetV2, the ShuffleNets and ResNet50 are mostly
 * such convolutions. */
static int is_pointwise(const Conv *d) { return d->K == 1 && d->S == 1 && d->P == 0 && d->per_slice == 1; }

/* ---- im2col / col2im --------------------------------------------------------------- */

/* Output columns ow whose input column iw = ow·S - P + kw lies inside [0, W):
 * ow in [*lo, *hi). */
static void valid_range(int W, int OW, int S, int P, int kw, int *lo, int *hi) {
    int a = P - kw;                             /* need ow·S >= P - kw */
    *lo = a <= 0 ? 0 : (a + S - 1) / S;
    int b = W - 1 + P - kw;                     /* need ow·S <= W - 1 + P - kw */
    *hi = b < 0 ? 0 : b / S + 1;
    if (*hi > OW) *hi = OW;
    if (*lo > *hi) *lo = *hi;
}

/* "Same" convolutions (stride 1, output as large as the input: P = (K-1)/2, the
 * 3x3 convolutions that make up almost all the work) have a fast im2col: row (c,kh,kw)
 * of col is the input plane shifted by (kh-P)·W + (kw-P) elements, i.e. ONE contiguous
 * copy, after which the positions that wrapped around a row edge (ow outside
 * [lo, hi)) and the rows above/below the image are set to 0. */
static int same_shape(const Conv *d) { return d->S == 1 && d->OH == d->H && d->OW == d->W; }

/* row[i·PP + oh·OW + ow] = x_i[c][oh·S-P+kh][ow·S-P+kw] (0 outside the image) for the
 * ni images of a slice: row (c,kh,kw) of col. x points at image 0, channel 0 of the group. */
static void im2col_row(float *restrict row, const float *restrict x, int ni, int c, int kh, int kw, const Conv *d) {
    int lo, hi;
    valid_range(d->W, d->OW, d->S, d->P, kw, &lo, &hi);
    int HW = d->H * d->W;
    for (int i = 0; i < ni; i++) {
        const float *restrict xc = x + ((size_t)i * d->C + c) * HW;
        float *restrict r = row + (size_t)i * d->PP;
        if (same_shape(d)) {
            int shift = (kh - d->P) * d->W + (kw - d->P);
            int p0 = shift < 0 ? -shift : 0, p1 = HW - shift < d->PP ? HW - shift : d->PP;
            if (p1 < p0) p1 = p0;
            for (int p = 0; p < p0; p++) r[p] = 0.0f;
            for (int p = p0; p < p1; p++) r[p] = xc[p + shift];
            for (int p = p1; p < d->PP; p++) r[p] = 0.0f;
            if (lo > 0 || hi < d->OW)
                for (int oh = 0; oh < d->OH; oh++) {
                    for (int ow = 0; ow < lo; ow++) r[oh * d->OW + ow] = 0.0f;
                    for (int ow = hi; ow < d->OW; ow++) r[oh * d->OW + ow] = 0.0f;
                }
            continue;
        }
        for (int oh = 0; oh < d->OH; oh++) {
            float *restrict ro = r + (size_t)oh * d->OW;
            int ih = oh * d->S - d->P + kh;
            if (ih < 0 || ih >= d->H) { for (int ow = 0; ow < d->OW; ow++) ro[ow] = 0.0f; continue; }
            const float *xr = xc + (size_t)ih * d->W - d->P + kw;   /* xr[ow·S] = x[ih][ow·S-P+kw] */
            for (int ow = 0; ow < lo; ow++) ro[ow] = 0.0f;
            if (d->S == 1) for (int ow = lo; ow < hi; ow++) ro[ow] = xr[ow];
            else           for (int ow = lo; ow < hi; ow++) ro[ow] = xr[ow * d->S];
            for (int ow = hi; ow < d->OW; ow++) ro[ow] = 0.0f;
        }
    }
}

/* col [KK, ni·PP] of a slice, row k at col + k·ldcol; the columns from ni·PP up to the
 * next multiple of GEMM_NR are set to 0 (the GEMM reads B in whole strips). */
static void im2col(float *col, const float *x, int ni, const Conv *d) {
    int cols = ni * d->PP, padded = (cols + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    for (int c = 0, k = 0; c < d->Cg; c++)
        for (int kh = 0; kh < d->K; kh++)
            for (int kw = 0; kw < d->K; kw++, k++) {
                float *row = col + (size_t)k * d->ldcol;
                im2col_row(row, x, ni, c, kh, kw, d);
                for (int q = cols; q < padded; q++) row[q] = 0.0f;
            }
}

/* col of a slice straight in the GEMM's packed-B order (gemm.h: strips of GEMM_NR columns,
 * Bp[s·KK·NR + k·NR + c] = col[k][s·NR + c], zeros past the last column), so that the
 * forward's product needs no packing of B and its A (the weights) is packed once per
 * call, not once per image (stride-2 layers, 1 thread: 64->128 @32x32 117 -> see
 * kernels/README.md). row: scratch of ni·PP floats. */
static void im2col_strips(float *Bp, float *row, const float *x, int ni, const Conv *d) {
    int cols = ni * d->PP, strips = (cols + GEMM_NR - 1) / GEMM_NR;
    for (int c = 0, k = 0; c < d->Cg; c++)
        for (int kh = 0; kh < d->K; kh++)
            for (int kw = 0; kw < d->K; kw++, k++) {
                im2col_row(row, x, ni, c, kh, kw, d);
                for (int s = 0; s < strips; s++) {
                    float *dst = Bp + ((size_t)s * d->KK + k) * GEMM_NR;
                    int n = cols - s * GEMM_NR < GEMM_NR ? cols - s * GEMM_NR : GEMM_NR;
                    memcpy(dst, row + (size_t)s * GEMM_NR, (size_t)n * sizeof(float));
                    for (int j = n; j < GEMM_NR; j++) dst[j] = 0.0f;
                }
            }
}

/* dx += col2im(dcol): the transpose of im2col, dcol laid out as col. Adds every
 * entry of dcol row (c,kh,kw) back onto the input position it was copied from.
 * dcol is scratch: the same-shape path zeroes its wrapped entries, then adds the
 * whole row as one shifted vector. */
static void col2im_add(float *dx, float *dcol, int ni, const Conv *d) {
    int HW = d->H * d->W;
    for (int c = 0; c < d->Cg; c++)
        for (int kh = 0; kh < d->K; kh++)
            for (int kw = 0; kw < d->K; kw++) {
                float *row = dcol + ((size_t)(c * d->K + kh) * d->K + kw) * d->ldcol;
                int lo, hi;
                valid_range(d->W, d->OW, d->S, d->P, kw, &lo, &hi);
                for (int i = 0; i < ni; i++) {
                    float *restrict xc = dx + ((size_t)i * d->C + c) * HW;
                    float *restrict r = row + (size_t)i * d->PP;
                    if (same_shape(d)) {
                        int shift = (kh - d->P) * d->W + (kw - d->P);
                        int p0 = shift < 0 ? -shift : 0, p1 = HW - shift < d->PP ? HW - shift : d->PP;
                        if (lo > 0 || hi < d->OW)
                            for (int oh = 0; oh < d->OH; oh++) {
                                for (int ow = 0; ow < lo; ow++) r[oh * d->OW + ow] = 0.0f;
                                for (int ow = hi; ow < d->OW; ow++) r[oh * d->OW + ow] = 0.0f;
                            }
                        for (int p = p0; p < p1; p++) xc[p + shift] += r[p];
                        continue;
                    }
                    for (int oh = 0; oh < d->OH; oh++) {
                        int ih = oh * d->S - d->P + kh;
                        if (ih < 0 || ih >= d->H) continue;
                        const float *restrict ro = r + (size_t)oh * d->OW;
                        float *restrict xr = xc + (size_t)ih * d->W - d->P + kw;
                        if (d->S == 1) for (int ow = lo; ow < hi; ow++) xr[ow] += ro[ow];
                        else           for (int ow = lo; ow < hi; ow++) xr[ow * d->S] += ro[ow];
                    }
                }
            }
}

/* ---- implicit GEMM: stride-1 convolutions without a column matrix ---------------- */

/* im2col copies every input pixel K·K times, and for the thin layers of the CIFAR
 * ResNets (16-64 channels) that copy costs a third as much as the multiply itself.
 * For a stride-1 convolution it can be avoided. Copy the image once into rows of
 * Wp = W+P floats: its W pixels, then P zeros, which serve as the right border of this
 * row AND the left border of the next one; P zero rows above and below (Hp = H+2P
 * rows) and P zeros in front. Pixel (ih, iw) then sits at P + (ih+P)·Wp + iw of its
 * channel's plane (plane = P + Hp·Wp floats; iw = -P lands in the previous row's
 * zeros). Number the outputs on the same wider grid, q = oh·Wp + ow: the input under
 * tap (c,kh,kw) of output q, pixel (oh-P+kh, ow-P+kw), is
 *     xp[c·plane + kh·Wp + kw + q]
 * so row k = (c,kh,kw) of the column matrix is the padded buffer read from offset
 * off[k] = c·plane + kh·Wp + kw: no copy needed, just a table of K·K·C offsets, and
 * gemm_serial_offsets reads B through it. The grid has Wp - OW junk columns per row
 * (outputs that wrap around the border, computed and thrown away: 3% at 32x32, 11%
 * at 8x8), and its result is copied into y row by row. The padding is a cheap copy
 * of the input (one pass, not K·K).
 *
 * The input gradient of a stride-1 convolution is itself a stride-1 convolution:
 *   dx[c,ih,iw] = Σ_{o,kh,kw} w[o,c,kh,kw] · dy[o, ih+P-kh, iw+P-kw]
 *              = Σ_{o,kh,kw} wt[c,o,kh,kw] · dy[o, ih-(K-1-P)+kh, iw-(K-1-P)+kw]
 * with the flipped, transposed kernel wt[c,o,kh,kw] = w[o,c,K-1-kh,K-1-kw] and padding
 * K-1-P: a convolution of dy (OC channels of OH x OW) giving C channels of H x W. So
 * the backward computes dx with the same implicit GEMM (implicit_conv on dy),
 * where dcol = W^T·dY + col2im would run a GEMM with the short K = OC and then a
 * scattered add. */

/* The implicit GEMM's view of one image: padded input xp, grid of Q = OH·Wp outputs
 * (Qn: rounded up to NR), and the offset of every row k = (c,kh,kw). */
typedef struct {
    int Hp, Wp, OH, OW, Q, Qn, KK;
    size_t plane;     /* floats per padded channel: P + Hp·Wp */
    size_t xp_floats; /* the padded input + slack (the last strips read past Q) */
    float *xp, *grid;
    int *off;
} Implicit;

static Implicit implicit_geometry(int Cin, int H, int W, int P, int K) {
    Implicit m;
    m.Hp = H + 2 * P; m.Wp = W + P; m.OH = m.Hp - K + 1; m.OW = W + 2 * P - K + 1;
    m.Q = m.OH * m.Wp; m.Qn = (m.Q + GEMM_NR - 1) / GEMM_NR * GEMM_NR; m.KK = Cin * K * K;
    m.plane = P + (size_t)m.Hp * m.Wp;
    m.xp_floats = (size_t)Cin * m.plane + K + GEMM_NR;
    m.xp = m.grid = NULL; m.off = NULL;
    return m;
}
/* Floats of an implicit-GEMM slot: the padded input, the output grid [OUT, Qn] and the
 * offset table (Cin·K·K ints, stored in float-sized cells). */
static size_t implicit_floats(int Cin, int H, int W, int P, int K, int OUT) {
    Implicit m = implicit_geometry(Cin, H, W, P, K);
    return m.xp_floats + (size_t)OUT * m.Qn + (size_t)m.KK;
}

static Implicit implicit_setup(const float *in, int Cin, int H, int W, int P, int K, float *slot) {
    Implicit m = implicit_geometry(Cin, H, W, P, K);
    m.xp = slot;
    m.grid = slot + m.xp_floats;
    /* the padded input, and zero slack after it (the last strips read past Q) */
    memset(m.xp, 0, m.xp_floats * sizeof(float));
    for (int c = 0; c < Cin; c++)
        for (int ih = 0; ih < H; ih++)
            memcpy(m.xp + c * m.plane + P + (size_t)(ih + P) * m.Wp, in + ((size_t)c * H + ih) * W, (size_t)W * sizeof(float));
    return m;
}
/* off[k] for k = (c,kh,kw); OUT: rows of the grid (the table sits after it) */
static void implicit_offsets(Implicit *m, int Cin, int K, int OUT) {
    m->off = (int *)(m->grid + (size_t)OUT * m->Qn);
    for (int c = 0, k = 0; c < Cin; c++)
        for (int kh = 0; kh < K; kh++)
            for (int kw = 0; kw < K; kw++) m->off[k++] = (int)(c * m->plane) + kh * m->Wp + kw;
}

/* one image (and group): out [OUT, OH, OW] (+)= conv(in [Cin, H, W], w [OUT, Cin·K·K])
 * with padding P, stride 1; beta 0: out is overwritten (+ bias if given), 1: added to. */
static void implicit_conv(float *out, const float *in, const float *wg, const float *bias, float beta,
                          int Cin, int H, int W, int P, int K, int OUT, float *slot) {
    Implicit m = implicit_setup(in, Cin, H, W, P, K, slot);
    implicit_offsets(&m, Cin, K, OUT);
    gemm_serial_offsets(OUT, m.Q, m.KK, wg, m.KK, m.xp, m.off, 0.0f, m.grid, m.Qn);
    for (int o = 0; o < OUT; o++)   /* the grid's valid columns into out */
        for (int oh = 0; oh < m.OH; oh++) {
            const float *restrict g = m.grid + (size_t)o * m.Qn + (size_t)oh * m.Wp;
            float *restrict r = out + ((size_t)o * m.OH + oh) * m.OW;
            if (beta != 0.0f)  for (int ow = 0; ow < m.OW; ow++) r[ow] += g[ow];
            else if (bias)     for (int ow = 0; ow < m.OW; ow++) r[ow] = g[ow] + bias[o];
            else               memcpy(r, g, (size_t)m.OW * sizeof(float));
        }
}

/* The weight gradient of the same layer for one image:
 *   dw [OUT, Cin·K·K] (+)= Σ_q dy_grid[o][q] · xp[off[k] + q]
 * with dy placed on the grid (0 in the junk columns, so they add nothing):
 * gemm_serial_abt_offsets, no col, no packing. beta 0: overwrite, 1: add. */
static void implicit_dw(float *dw, const float *dy, const float *in, float beta, int Cin, int H, int W, int P, int K,
                        int OUT, float *slot) {
    Implicit m = implicit_setup(in, Cin, H, W, P, K, slot);
    implicit_offsets(&m, Cin, K, OUT);
    for (int o = 0; o < OUT; o++) {
        float *restrict g = m.grid + (size_t)o * m.Qn;
        for (int oh = 0; oh < m.OH; oh++) {
            memcpy(g + (size_t)oh * m.Wp, dy + ((size_t)o * m.OH + oh) * m.OW, (size_t)m.OW * sizeof(float));
            for (int ow = m.OW; ow < m.Wp; ow++) g[(size_t)oh * m.Wp + ow] = 0.0f;
        }
        for (int q = m.Q; q < m.Qn; q++) g[q] = 0.0f;
    }
    gemm_serial_abt_offsets(OUT, m.KK, m.Qn, m.grid, m.Qn, m.xp, m.off, beta, dw, m.KK);
}

/* wt, per group g: [Cg, OCg·K·K], wt_g[c][(o,kh,kw)] = w[g·OCg+o][c][K-1-kh][K-1-kw] */
static void flip_weights(float *wt, const float *w, const Conv *d) {
    int KK2 = d->K * d->K;
    for (int g = 0; g < d->G; g++)
        for (int c = 0; c < d->Cg; c++)
            for (int o = 0; o < d->OCg; o++)
                for (int t = 0; t < KK2; t++)
                    wt[(((size_t)g * d->Cg + c) * d->OCg + o) * KK2 + t] =
                        w[(((size_t)g * d->OCg + o) * d->Cg + c) * KK2 + (KK2 - 1 - t)];
}

/* Staging for multi-image slices: m [rows, ni·PP] <-> t [N, Ct, PP] at channel c0. */
static void gather_images(float *m, const float *t, int ni, int Ct, int c0, int rows, int PP) {
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < ni; i++)
            memcpy(m + (size_t)r * ni * PP + (size_t)i * PP, t + ((size_t)i * Ct + c0 + r) * PP, (size_t)PP * sizeof(float));
}
static void scatter_images(float *t, const float *m, int ni, int Ct, int c0, int rows, int PP) {
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < ni; i++)
            memcpy(t + ((size_t)i * Ct + c0 + r) * PP, m + (size_t)r * ni * PP + (size_t)i * PP, (size_t)PP * sizeof(float));
}

/* ---- depthwise: direct loops ------------------------------------------------------- */

/* One channel plane: y [OH,OW] = bias + Σ_{kh,kw} w[kh,kw] · x[oh·S-P+kh, ow·S-P+kw]. */
static void conv_dw_forward_plane(float *y, const float *x, const float *w, float bias, const Conv *d) {
    for (int i = 0; i < d->PP; i++) y[i] = bias;
    for (int kh = 0; kh < d->K; kh++)
        for (int kw = 0; kw < d->K; kw++) {
            float wv = w[kh * d->K + kw];
            int lo, hi;
            valid_range(d->W, d->OW, d->S, d->P, kw, &lo, &hi);
            for (int oh = 0; oh < d->OH; oh++) {
                int ih = oh * d->S - d->P + kh;
                if (ih < 0 || ih >= d->H) continue;
                float *yr = y + (size_t)oh * d->OW;
                const float *xr = x + (size_t)ih * d->W - d->P + kw;
                if (d->S == 1) for (int ow = lo; ow < hi; ow++) yr[ow] += wv * xr[ow];
                else           for (int ow = lo; ow < hi; ow++) yr[ow] += wv * xr[ow * d->S];
            }
        }
}

/* dx plane += Σ_{kh,kw} w[kh,kw] · dy shifted back to the input positions. */
static void conv_dw_dx_plane(float *dx, const float *dy, const float *w, const Conv *d) {
    for (int kh = 0; kh < d->K; kh++)
        for (int kw = 0; kw < d->K; kw++) {
            float wv = w[kh * d->K + kw];
            int lo, hi;
            valid_range(d->W, d->OW, d->S, d->P, kw, &lo, &hi);
            for (int oh = 0; oh < d->OH; oh++) {
                int ih = oh * d->S - d->P + kh;
                if (ih < 0 || ih >= d->H) continue;
                const float *g = dy + (size_t)oh * d->OW;
                float *xr = dx + (size_t)ih * d->W - d->P + kw;
                if (d->S == 1) for (int ow = lo; ow < hi; ow++) xr[ow] += wv * g[ow];
                else           for (int ow = lo; ow < hi; ow++) xr[ow * d->S] += wv * g[ow];
            }
        }
}

/* Tiny maps (4x4 and smaller: the last stages of MobileNetV2 and the ShuffleNets): the
 * loops above would run 9 taps x a few rows of 1-4 elements each, and the padded-plane
 * form below copies more than it computes. Instead a table, built once per call, lists
 * for every output position its taps that fall inside the image, in (kh, kw) order, as
 * (input index, weight index) pairs; a plane is then one pass down the table. Each output
 * is the same sum in the same order as the loops (bias, then the taps in (kh, kw) order;
 * only the additions of zeros from the padding are skipped). Measured (MobileNetV2
 * inference, batch 64, 2 threads): see the commit that added it. */
enum { DW_TINY_PP = 16, DW_TAPS_MAX = 16 * 49 };
typedef struct { int start[DW_TINY_PP + 1], q[DW_TAPS_MAX], t[DW_TAPS_MAX]; } DwTaps;
static int dw_tiny(const Conv *d) { return d->PP <= DW_TINY_PP && d->K <= 7; }
static void dw_taps(DwTaps *T, const Conv *d) {
    int e = 0;
    for (int oh = 0; oh < d->OH; oh++)
        for (int ow = 0; ow < d->OW; ow++) {
            T->start[oh * d->OW + ow] = e;
            for (int kh = 0; kh < d->K; kh++)
                for (int kw = 0; kw < d->K; kw++) {
                    int ih = oh * d->S - d->P + kh, iw = ow * d->S - d->P + kw;
                    if (ih < 0 || ih >= d->H || iw < 0 || iw >= d->W) continue;
                    T->q[e] = ih * d->W + iw; T->t[e] = kh * d->K + kw; e++;
                }
        }
    T->start[d->PP] = e;
}
static void conv_dw_forward_plane_taps(float *restrict y, const float *restrict x, const float *restrict w, float bias,
                                       const DwTaps *T, int PP) {
    for (int p = 0; p < PP; p++) {
        float s = bias;
        for (int e = T->start[p]; e < T->start[p + 1]; e++) s += w[T->t[e]] * x[T->q[e]];
        y[p] = s;
    }
}

/* The input gradient on tiny maps, by the same table read the other way: for every input
 * position its (output index, weight index) pairs in (kh, kw) order; dx[q] += (the sum of
 * its taps), the order of the padded-plane form. Inputs of up to 8x8 (a stride-2 layer
 * ending at 4x4). */
enum { DW_TINY_HW = 64 };
typedef struct { int start[DW_TINY_HW + 1], p[DW_TINY_HW * 49], t[DW_TINY_HW * 49]; } DwBack;
static int dw_tiny_dx(const Conv *d) { return dw_tiny(d) && d->H * d->W <= DW_TINY_HW; }
static void dw_taps_back(DwBack *T, const Conv *d) {
    int e = 0;
    for (int ih = 0; ih < d->H; ih++)
        for (int iw = 0; iw < d->W; iw++) {
            T->start[ih * d->W + iw] = e;
            for (int kh = 0; kh < d->K; kh++)
                for (int kw = 0; kw < d->K; kw++) {
                    int a = ih + d->P - kh, b = iw + d->P - kw;   /* = oh·S, ow·S */
                    if (a < 0 || b < 0 || a % d->S || b % d->S || a / d->S >= d->OH || b / d->S >= d->OW) continue;
                    T->p[e] = (a / d->S) * d->OW + b / d->S; T->t[e] = kh * d->K + kw; e++;
                }
        }
    T->start[d->H * d->W] = e;
}
static void conv_dw_dx_plane_taps(float *restrict dx, const float *restrict dy, const float *restrict w,
                                  const DwBack *T, int HW) {
    for (int q = 0; q < HW; q++) {
        float s = 0.0f;
        for (int e = T->start[q]; e < T->start[q + 1]; e++) s += w[T->t[e]] * dy[T->p[e]];
        dx[q] += s;
    }
}

/* dw[c][kh][kw] = Σ_n Σ_{oh,ow} dy[n,c,oh,ow] · x[n,c,oh·S-P+kh,ow·S-P+kw]: each output
 * row contributes a float dot product, the rows are added in double, in order. */
static void conv_dw_dw_channel(float *dwc, const float *dy, const float *x, int c, const Conv *d) {
    for (int kh = 0; kh < d->K; kh++)
        for (int kw = 0; kw < d->K; kw++) {
            int lo, hi;
            valid_range(d->W, d->OW, d->S, d->P, kw, &lo, &hi);
            double s = 0.0;
            for (int n = 0; n < d->N; n++) {
                const float *g = dy + ((size_t)n * d->C + c) * d->PP;
                const float *xc = x + ((size_t)n * d->C + c) * d->H * d->W;
                for (int oh = 0; oh < d->OH; oh++) {
                    int ih = oh * d->S - d->P + kh;
                    if (ih < 0 || ih >= d->H) continue;
                    const float *gr = g + (size_t)oh * d->OW, *xr = xc + (size_t)ih * d->W - d->P + kw;
                    float r = 0.0f;
                    if (d->S == 1) for (int ow = lo; ow < hi; ow++) r += gr[ow] * xr[ow];
                    else           for (int ow = lo; ow < hi; ow++) r += gr[ow] * xr[ow * d->S];
                    s += r;
                }
            }
            dwc[kh * d->K + kw] = (float)s;
        }
}

/* Stride 1: the padded-plane form. Copy the plane into a zero-bordered plane xp
 * [Hp = H+2P, Wp = W+2P] (+ K-1 zeros after it); then output (oh,ow) reads
 * xp[q + kh·Wp + kw] with q = oh·Wp + ow, so every tap (kh,kw) is ONE long vector
 * operation over q in [0, OH·Wp). The grid has Wp columns per row, of which the last
 * Wp - OW are junk (computed, never used; for the gradients they are set to 0). */
static int dw_padded(const Conv *d) { return d->S == 1; }
/* 3x3 stride-1 pad-1 depthwise layers on maps of >= 16 positions go to shiftconv.c
 * (AVX-512 and AVX2 builds): forward, dx (the forward of dy with the flipped kernel, kept at the
 * start of the workspace) and dW. */
static int dw_shift(const Conv *d) {
    return shiftconv_enabled() && d->K == 3 && d->P == 1 && shiftconv_applies(1, d->H, d->W, 3, d->S, 1, 1);
}
/* The planes (or channels) [i·n/parts, (i+1)·n/parts) of part i. */
static long part_begin(long n, int i, int parts) { return (long)((long long)i * n / parts); }
static size_t dw_plane_floats(const Conv *d) {   /* xp, or dxp: Hp·Wp + K - 1 */
    return (size_t)(d->H + 2 * d->P) * (d->W + 2 * d->P) + d->K;
}
static size_t dw_slot_floats(const Conv *d) {    /* xp + grid [OH·Wp] + dxp */
    return 2 * dw_plane_floats(d) + (size_t)d->OH * (d->W + 2 * d->P);
}
static void dw_pad_plane(float *restrict xp, const float *restrict x, const Conv *d) {
    int Wp = d->W + 2 * d->P;
    memset(xp, 0, dw_plane_floats(d) * sizeof(float));
    for (int ih = 0; ih < d->H; ih++)
        memcpy(xp + (size_t)(ih + d->P) * Wp + d->P, x + (size_t)ih * d->W, (size_t)d->W * sizeof(float));
}
/* dy [OH,OW] -> grid g [OH·Wp] with 0 in the junk columns */
static void dw_grid_from(float *restrict g, const float *restrict dy, const Conv *d) {
    int Wp = d->W + 2 * d->P;
    for (int oh = 0; oh < d->OH; oh++) {
        memcpy(g + (size_t)oh * Wp, dy + (size_t)oh * d->OW, (size_t)d->OW * sizeof(float));
        for (int ow = d->OW; ow < Wp; ow++) g[(size_t)oh * Wp + ow] = 0.0f;
    }
}

static void conv_dw_forward_plane_padded(float *y, const float *x, const float *w, float bias, float *slot, const Conv *d) {
    int Wp = d->W + 2 * d->P, Q = d->OH * Wp;
    float *restrict xp = slot, *restrict acc = slot + dw_plane_floats(d);
    dw_pad_plane(xp, x, d);
    for (int q = 0; q < Q; q++) acc[q] = bias;
    for (int kh = 0; kh < d->K; kh++)
        for (int kw = 0; kw < d->K; kw++) {
            float wv = w[kh * d->K + kw];
            const float *restrict src = xp + (size_t)kh * Wp + kw;
            for (int q = 0; q < Q; q++) acc[q] += wv * src[q];
        }
    for (int oh = 0; oh < d->OH; oh++) memcpy(y + (size_t)oh * d->OW, acc + (size_t)oh * Wp, (size_t)d->OW * sizeof(float));
}

static void conv_dw_dx_plane_padded(float *dx, const float *dy, const float *w, float *slot, const Conv *d) {
    int Wp = d->W + 2 * d->P, Q = d->OH * Wp;
    float *restrict g = slot + dw_plane_floats(d), *restrict dxp = g + Q;
    dw_grid_from(g, dy, d);
    memset(dxp, 0, dw_plane_floats(d) * sizeof(float));
    for (int kh = 0; kh < d->K; kh++)
        for (int kw = 0; kw < d->K; kw++) {
            float wv = w[kh * d->K + kw];
            float *restrict dst = dxp + (size_t)kh * Wp + kw;
            for (int q = 0; q < Q; q++) dst[q] += wv * g[q];
        }
    for (int ih = 0; ih < d->H; ih++) {
        float *restrict dr = dx + (size_t)ih * d->W;
        const float *restrict sr = dxp + (size_t)(ih + d->P) * Wp + d->P;
        for (int iw = 0; iw < d->W; iw++) dr[iw] += sr[iw];
    }
}

/* Σ_q a[q]·b[q] in float, 8 interleaved partial sums (fixed order, vectorisable). */
static float dot_lanes(const float *restrict a, const float *restrict b, int n) {
    float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int q = 0;
    for (; q + 8 <= n; q += 8)
        for (int j = 0; j < 8; j++) l[j] += a[q + j] * b[q + j];
    for (; q < n; q++) l[0] += a[q] * b[q];
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

static void conv_dw_dw_channel_padded(float *dwc, const float *dy, const float *x, int c, float *slot, const Conv *d) {
    int Wp = d->W + 2 * d->P, Q = d->OH * Wp, KK = d->K * d->K;
    float *xp = slot, *g = slot + dw_plane_floats(d);
    double s[CONV_MAX_TAPS];   /* K·K <= CONV_MAX_TAPS (checked by the caller) */
    for (int t = 0; t < KK; t++) s[t] = 0.0;
    for (int n = 0; n < d->N; n++) {
        dw_pad_plane(xp, x + ((size_t)n * d->C + c) * d->H * d->W, d);
        dw_grid_from(g, dy + ((size_t)n * d->C + c) * d->PP, d);
        for (int kh = 0; kh < d->K; kh++)
            for (int kw = 0; kw < d->K; kw++) s[kh * d->K + kw] += dot_lanes(g, xp + (size_t)kh * Wp + kw, Q);
    }
    for (int t = 0; t < KK; t++) dwc[t] = (float)s[t];
}

/* ---- the public functions ------------------------------------------------------------ */

/* Winograd layers: the transformed weights (of w for the forward, of wt for dx) sit at
 * the end of the workspace. */
static size_t wino_u_floats(const Conv *d) {
    if (!d->wino) return 0;
    size_t f = winograd_u_floats(d->wino, d->C, d->OC), b = winograd_u_floats(d->wino, d->OC, d->C);
    return f > b ? f : b;
}
/* Workspace after the slots: dW partials, the flipped kernel wt (implicit and Winograd
 * layers, for dx), Winograd's transformed weights. */
static float *conv_wt(float *ws, const Conv *d) {
    return ws + (size_t)d->slots * d->slot_floats + (d->chunks > 1 ? (size_t)d->chunks * d->OC * d->KK : 0);
}
static size_t flipped_floats(const Conv *d) { return d->implicit || d->wino || d->shift ? (size_t)d->OC * d->KK : 0; }
static float *wino_u(float *ws, const Conv *d) { return conv_wt(ws, d) + flipped_floats(d); }
/* shiftconv layers: the packed weights (of w for the forward, of wt for dx) */
static size_t shift_packed_floats(const Conv *d) {
    if (!d->shift) return 0;
    size_t f = shiftconv_packed_floats(d->OC, d->C, d->K), b = shiftconv_packed_floats(d->C, d->OC, d->K);
    return f > b ? f : b;
}
static float *shift_packed(float *ws, const Conv *d) { return wino_u(ws, d) + wino_u_floats(d); }
/* The im2col forward (every layer no other path takes): the weights packed once per
 * call, per group, for gemm_packed. */
static int im2col_forward(const Conv *d) {
    return !is_depthwise(d->C, d->OC, d->G) && !is_pointwise(d) && !d->implicit && !d->wino && !d->shift;
}
/* ... and the 1x1 stride-1 layers (B is the image, read in place: pointwise_image) */
static int packs_weights(const Conv *d) { return im2col_forward(d) || is_pointwise(d); }
static size_t packed_weights_floats(const Conv *d) {
    return packs_weights(d) ? (size_t)d->G * gemm_packed_a_floats(d->OCg, d->KK) : 0;
}

static float *packed_weights(float *ws, const Conv *d) { return shift_packed(ws, d) + shift_packed_floats(d); }
static float *dw_batch_buffer(float *ws, const Conv *d) { return packed_weights(ws, d) + packed_weights_floats(d); }

/* dw [OC, KK] = dY · col^T over all N images at once (dw_whole_batch). col^T is built
 * straight in the GEMM's packed-B order (row k of col, made by im2col_row, becomes lane
 * k % NR of strip k / NR), dY gathered and packed once; then the threads take runs of
 * strips, each dw element summed by one thread in k order: deterministic for any thread
 * count. (Through sgemm_cpu(0, 1, ...) the transposed packing of col, once per block of
 * rows of dY, took 30% of the time.) */
static void dw_batch_gemm(float *dw, const float *dy, const float *x, const Conv *d, float *ws) {
    size_t cols = dw_batch_cols(d);
    int strips = (d->KK + GEMM_NR - 1) / GEMM_NR;
    float *Bp = dw_batch_buffer(ws, d), *Ap = Bp + dw_batch_bp_floats(d);
    float *dyall = Ap + gemm_packed_a_floats(d->OC, (int)cols), *rows = dyall + (size_t)d->OC * cols;
    #pragma omp parallel for schedule(static)
    for (int j = 0; j < strips * GEMM_NR; j++) {
        float *row = rows + (size_t)thread_id() * cols, *dst = Bp + (size_t)(j / GEMM_NR) * cols * GEMM_NR + j % GEMM_NR;
        if (j < d->KK) im2col_row(row, x, d->N, j / (d->K * d->K), j / d->K % d->K, j % d->K, d);
        for (size_t q = 0; q < cols; q++) dst[q * GEMM_NR] = j < d->KK ? row[q] : 0.0f;
    }
    gather_images(dyall, dy, d->N, d->OC, 0, d->OC, d->PP);
    gemm_pack_a(Ap, dyall, (int)cols, d->OC, (int)cols);
    int threads = dkd_num_threads() < strips ? dkd_num_threads() : strips;
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int i = 0; i < threads; i++) {
        int s0 = (int)part_begin(strips, i, threads), s1 = (int)part_begin(strips, i + 1, threads);
        int j0 = s0 * GEMM_NR, j1 = s1 * GEMM_NR < d->KK ? s1 * GEMM_NR : d->KK;
        if (j1 > j0) gemm_packed(d->OC, j1 - j0, (int)cols, Ap, Bp + (size_t)s0 * cols * GEMM_NR, 0.0f, dw + j0, d->KK);
    }
}

/* y_g [OCg, PP] = W_g · x_g [Cg, PP] for one image of a 1x1 stride-1 layer, with the
 * weights Ap packed once per call (gemm_serial would pack them again for every image:
 * for 1024 -> 256 @8x8 that doubled the time). The image is B: on 8x8 maps read in
 * place (rows 256 bytes apart); on larger ones packed into the slot's col first, since
 * the kernel's K rows of B, PP·4 bytes apart, fall into the same few L1 sets when that is
 * a multiple of 1 KiB (on 32x32 in place ran at 22% of the peak, packed at 50%+). */
static void pointwise_image(float *yg, const float *xg, const float *Ap, float *col, const Conv *d) {
    if (d->PP <= 64 && d->PP % GEMM_NR == 0) {   /* (the kernel reads whole NR-wide strips) */
        int off[d->KK];
        for (int c = 0; c < d->KK; c++) off[c] = c * d->PP;
        gemm_packed_offsets(d->OCg, d->PP, d->KK, Ap, xg, off, 0.0f, yg, d->PP);
        return;
    }
    gemm_pack_b(col, xg, d->PP, d->KK, d->PP);
    gemm_packed(d->OCg, d->PP, d->KK, Ap, col, 0.0f, yg, d->PP);
}

/* out [N, OUT, H, W] (+)= conv(in [N, Cin, H, W]) by shiftconv.c with the packed
 * weights Ap: the images in one contiguous share per thread (forward: x -> y; backward:
 * dy -> dx with the flipped kernel, beta 1); res, relu: kernels/epilogue.h. */
static void shift_batch(float *out, const float *in, const float *Ap, const float *bias, float beta, int Cin, int OUT,
                        const Conv *d, const float *res, int relu) {
    size_t plane = (size_t)d->H * d->W;
    int threads = conv_threads(d);
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int i = 0; i < threads; i++) {
        int n0 = (int)part_begin(d->N, i, threads), n1 = (int)part_begin(d->N, i + 1, threads);
        size_t at = (size_t)n0 * OUT * plane;
        shiftconv(out + at, in + (size_t)n0 * Cin * plane, n1 - n0, Ap, bias, beta, Cin, d->H, d->W, d->K, OUT,
                  res ? res + at : NULL, relu);
    }
}

/* out [N, OUT, H, W] (+)= conv3x3(in [N, Cin, H, W]) by Winograd with the transformed
 * weights U, wino_n images per call, calls shared by the threads (forward: x -> y;
 * backward: dy -> dx with the flipped kernel's U, beta 1). */
static void wino_batch(float *out, const float *in, const float *U, const float *bias, float beta, int Cin, int OUT,
                       const Conv *d, float *ws, int relu) {
    size_t plane = (size_t)d->H * d->W;   /* (stride 1, pad 1: output as large as the input) */
    #pragma omp parallel for schedule(static) num_threads(wino_threads(d))
    for (int s = 0; s < d->wino_slices; s++) {
        int n0 = s * d->wino_n, ni = d->N - n0 < d->wino_n ? d->N - n0 : d->wino_n;
        winograd_images(d->wino, out + (size_t)n0 * OUT * plane, in + (size_t)n0 * Cin * plane, ni, U, bias, beta, Cin,
                        d->H, d->W, OUT, ws + (size_t)thread_id() * d->slot_floats, relu);
    }
}

static size_t workspace_floats(int N, int C, int H, int W, int OC, int K, int S, int P, int G, int eval) {
    Conv d = conv_geometry(N, C, H, W, OC, K, S, P, G, eval);
    if (is_depthwise(C, OC, G)) {
        size_t f = dw_padded(&d) && K * K <= CONV_MAX_TAPS ? (size_t)dw_slots(&d) * dw_slot_floats(&d) : 0;
        return dw_shift(&d) && f < (size_t)C * 9 ? (size_t)C * 9 : f;
    }
    size_t partials = d.chunks > 1 ? (size_t)d.chunks * OC * d.KK : 0;
    return (size_t)d.slots * d.slot_floats + partials + flipped_floats(&d) + wino_u_floats(&d) +
           shift_packed_floats(&d) + packed_weights_floats(&d) + dw_batch_floats(&d);
}

/* (one workspace serves the training and the eval-mode paths: the larger need) */
size_t conv2d_workspace_floats(int N, int C, int H, int W, int OC, int K, int S, int P, int G) {
    size_t train = workspace_floats(N, C, H, W, OC, K, S, P, G, 0), eval = workspace_floats(N, C, H, W, OC, K, S, P, G, 1);
    return train > eval ? train : eval;
}

/* What an eval-mode forward of a layer can keep between calls (conv2d_forward_eval_cpu's
 * cache): the weights in the form its path multiplies with, Winograd's U or shiftconv's
 * packing; other paths use w as it is, or pack it per call (not cached: whether they pack
 * depends on the batch). */
size_t conv2d_eval_cache_floats(int C, int H, int W, int OC, int K, int S, int P, int G) {
    Conv d = conv_geometry(1, C, H, W, OC, K, S, P, G, 1);   /* (shift and wino do not depend on N) */
    if (d.shift) return shiftconv_packed_floats(OC, C, K);
    return d.wino ? winograd_u_floats(d.wino, C, OC) : 0;
}

/* y[0..n) = 0, the threads taking equal parts. */
static void zero_pass(float *y, size_t n) {
    int threads = dkd_num_threads();
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int i = 0; i < threads; i++) {
        size_t a = (size_t)part_begin((long)n, i, threads), z = (size_t)part_begin((long)n, i + 1, threads);
        memset(y + a, 0, (z - a) * sizeof(float));
    }
}

/* conv_epilogue over n floats of y (and res), the threads taking equal parts. */
static void epilogue_pass(float *y, const float *res, int relu, size_t n) {
    if (!res && !relu) return;
    int threads = dkd_num_threads();
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int i = 0; i < threads; i++) {
        size_t a = (size_t)part_begin((long)n, i, threads), z = (size_t)part_begin((long)n, i + 1, threads);
        conv_epilogue(y + a, res ? res + a : NULL, z - a, relu);
    }
}

/* cache: NULL, or conv2d_eval_cache_floats floats that hold (cached = 1) or are to
 * receive (cached = 0) the transformed weights; res, relu: kernels/epilogue.h, applied by
 * shiftconv as it stores, by the other paths per slice of images or in one pass at the
 * end (depthwise layers; Winograd's residual) */
static void conv_forward(float *y, const float *x, const float *w, const float *b, int N, int C, int H, int W, int OC,
                         int K, int S, int P, int G, float *ws, int eval, float *cache, int cached, const float *res,
                         int relu) {
    Conv d = conv_geometry(N, C, H, W, OC, K, S, P, G, eval);
    if (is_depthwise(C, OC, G) && dw_shift(&d)) {
        int threads = dkd_num_threads();
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int i = 0; i < threads; i++)
            shiftconv_depthwise(y, x, w, b, 0.0f, C, H, W, part_begin((long)N * C, i, threads),
                                part_begin((long)N * C, i + 1, threads));
        epilogue_pass(y, res, relu, (size_t)N * OC * d.PP);
        return;
    }
    if (is_depthwise(C, OC, G)) {
        int tiny = dw_tiny(&d), padded = !tiny && dw_padded(&d) && K * K <= CONV_MAX_TAPS;
        DwTaps taps;
        if (tiny) dw_taps(&taps, &d);
        #pragma omp parallel for schedule(static) num_threads(padded ? dw_threads(&d) : dkd_num_threads())
        for (int nc = 0; nc < N * C; nc++) {
            int c = nc % C;
            float *yp = y + (size_t)nc * d.PP;
            float bias = b ? b[c] : 0.0f;
            const float *xp = x + (size_t)nc * H * W, *wc = w + (size_t)c * K * K;
            if (tiny) conv_dw_forward_plane_taps(yp, xp, wc, bias, &taps, d.PP);
            else if (padded) conv_dw_forward_plane_padded(yp, xp, wc, bias, ws + (size_t)thread_id() * dw_slot_floats(&d), &d);
            else conv_dw_forward_plane(yp, xp, wc, bias, &d);
        }
        epilogue_pass(y, res, relu, (size_t)N * OC * d.PP);
        return;
    }
    if (!cache) cached = 0;
    if (d.shift) {   /* stride-1 "same" layer read straight from x (shiftconv.c) */
        float *Ap = cache ? cache : shift_packed(ws, &d);
        if (!cached) shiftconv_pack_weights(Ap, w, OC, C, K);
        shift_batch(y, x, Ap, b, 0.0f, C, OC, &d, res, relu);
        return;
    }
    if (d.wino) {   /* Winograd (G = 1), wino_n images per call */
        float *U = cache ? cache : wino_u(ws, &d);
        if (!cached) winograd_weights(d.wino, U, w, C, OC);
        /* (the residual in a pass of its own: read while storing, its scattered cache
         * misses stalled the output transforms, resnet32x4 -10%; the ReLU alone costs
         * them nothing) */
        wino_batch(y, x, U, b, 0.0f, C, OC, &d, ws, relu && !res);
        if (res) epilogue_pass(y, res, relu, (size_t)N * OC * d.PP);
        return;
    }
    float *Ap = packed_weights(ws, &d);   /* (im2col and 1x1 layers: each group's weights, packed once) */
    if (packs_weights(&d))
        for (int g = 0; g < G; g++)
            gemm_pack_a(Ap + (size_t)g * gemm_packed_a_floats(d.OCg, d.KK), w + (size_t)g * d.OCg * d.KK, d.KK, d.OCg, d.KK);
    #pragma omp parallel for schedule(static) num_threads(conv_threads(&d))
    for (int s = 0; s < d.slices; s++) {
        int n0 = s * d.per_slice, ni = N - n0 < d.per_slice ? N - n0 : d.per_slice;
        int cols = ni * d.PP;
        float *col = ws + (size_t)thread_id() * d.slot_floats;
        float *stage = col + d.stage_off;                       /* [OCg, cols] when ni > 1 */
        for (int g = 0; g < G; g++) {
            const float *xg = x + ((size_t)n0 * C + (size_t)g * d.Cg) * H * W;
            const float *wg = w + (size_t)g * d.OCg * d.KK;
            float *yg = y + ((size_t)n0 * OC + (size_t)g * d.OCg) * d.PP;
            if (is_pointwise(&d)) {   /* B = the image itself, read in place; A packed once above */
                pointwise_image(yg, xg, Ap + (size_t)g * gemm_packed_a_floats(d.OCg, d.KK), col, &d);
                continue;
            }
            if (d.implicit) {
                implicit_conv(yg, xg, wg, b ? b + (size_t)g * d.OCg : NULL, 0.0f, d.Cg, H, W, P, K, d.OCg, col);
                continue;
            }
            im2col_strips(col, col + d.row_off, xg, ni, &d);   /* B packed as it is built */
            float *out = d.per_slice == 1 ? yg : stage;
            int ldo = d.per_slice == 1 ? d.PP : cols;
            gemm_packed(d.OCg, cols, d.KK, Ap + (size_t)g * gemm_packed_a_floats(d.OCg, d.KK), col, 0.0f, out, ldo);
            if (d.per_slice > 1) scatter_images(y + (size_t)n0 * OC * d.PP, stage, ni, OC, g * d.OCg, d.OCg, d.PP);
        }
        if (b && !d.implicit)   /* (the implicit and Winograd paths add the bias themselves) */
            for (int i = 0; i < ni; i++)
                for (int o = 0; o < OC; o++) {
                    float *yr = y + ((size_t)(n0 + i) * OC + o) * d.PP;
                    for (int p = 0; p < d.PP; p++) yr[p] += b[o];
                }
        size_t at = (size_t)n0 * OC * d.PP;   /* (the slice's output is still in the cache) */
        conv_epilogue(y + at, res ? res + at : NULL, (size_t)ni * OC * d.PP, relu);
    }
}

void conv2d_forward_cpu(float *y, const float *x, const float *w, const float *b,
                        int N, int C, int H, int W, int OC, int K, int S, int P, int G, float *ws) {
    conv_forward(y, x, w, b, N, C, H, W, OC, K, S, P, G, ws, 0, NULL, 0, NULL, 0);
}
void conv2d_forward_eval_cpu(float *y, const float *x, const float *w, const float *b, int N, int C, int H, int W,
                             int OC, int K, int S, int P, int G, float *ws, float *cache, int cached, const float *res,
                             int relu) {
    conv_forward(y, x, w, b, N, C, H, W, OC, K, S, P, G, ws, 1, cache, cached, res, relu);
}

/* dx_set: dx is written, not added to (its old contents never read): shiftconv and
 * Winograd store with beta 0; the paths that scatter-add (col2im, the GEMMs, the
 * depthwise loops) add onto dx zeroed here first. */
static void conv_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int N,
                          int C, int H, int W, int OC, int K, int S, int P, int G, float *ws, int dx_set) {
    Conv d = conv_geometry(N, C, H, W, OC, K, S, P, G, 0);
    float dx_beta = dx_set ? 0.0f : 1.0f;   /* (shiftconv, Winograd) */
    if (dx && dx_set && !(is_depthwise(C, OC, G) && dw_shift(&d)) && !d.shift && !d.wino)
        zero_pass(dx, (size_t)N * C * H * W);
    if (N <= 0) {   /* an empty batch: the sums are 0 */
        memset(dw, 0, (size_t)OC * (C / G) * K * K * sizeof(float));
        if (db) memset(db, 0, (size_t)OC * sizeof(float));
        return;
    }
    if (db) {   /* db[o] = Σ_n Σ_p dy[n,o,p]: per (n,o) a float sum, added in double in n order */
        #pragma omp parallel for schedule(static)
        for (int o = 0; o < OC; o++) {
            double s = 0.0;
            for (int n = 0; n < N; n++) {
                const float *g = dy + ((size_t)n * OC + o) * d.PP;
                float r = 0.0f;
                for (int p = 0; p < d.PP; p++) r += g[p];
                s += r;
            }
            db[o] = (float)s;
        }
    }
    if (is_depthwise(C, OC, G) && dw_shift(&d)) {
        int threads = dkd_num_threads();
        if (dx)
            for (int c = 0; c < C; c++)   /* the flipped kernel: tap t -> 8 - t */
                for (int t = 0; t < 9; t++) ws[c * 9 + t] = w[c * 9 + 8 - t];
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int i = 0; i < threads; i++) {
            shiftconv_depthwise_dw(dw, dy, x, N, C, H, W, (int)part_begin(C, i, threads), (int)part_begin(C, i + 1, threads));
            if (dx)
                shiftconv_depthwise(dx, dy, ws, NULL, dx_beta, C, H, W, part_begin((long)N * C, i, threads),
                                    part_begin((long)N * C, i + 1, threads));
        }
        return;
    }
    if (is_depthwise(C, OC, G)) {
        int padded = dw_padded(&d) && K * K <= CONV_MAX_TAPS;
        #pragma omp parallel for schedule(static) num_threads(padded ? dw_threads(&d) : dkd_num_threads())
        for (int c = 0; c < C; c++) {
            if (padded) conv_dw_dw_channel_padded(dw + (size_t)c * K * K, dy, x, c, ws + (size_t)thread_id() * dw_slot_floats(&d), &d);
            else conv_dw_dw_channel(dw + (size_t)c * K * K, dy, x, c, &d);
        }
        if (dx) {
            int tiny = dw_tiny_dx(&d);
            static _Thread_local DwBack back;   /* (17 KB: not on the stack) */
            if (tiny) dw_taps_back(&back, &d);
            const DwBack *bt = &back;
            #pragma omp parallel for schedule(static) num_threads(padded ? dw_threads(&d) : dkd_num_threads())
            for (int nc = 0; nc < N * C; nc++) {
                float *dxp = dx + (size_t)nc * H * W;
                const float *g = dy + (size_t)nc * d.PP, *wc = w + (size_t)(nc % C) * K * K;
                if (tiny) conv_dw_dx_plane_taps(dxp, g, wc, bt, H * W);
                else if (padded) conv_dw_dx_plane_padded(dxp, g, wc, ws + (size_t)thread_id() * dw_slot_floats(&d), &d);
                else conv_dw_dx_plane(dxp, g, wc, &d);
            }
        }
        return;
    }
    /* dW partial sums: chunk k covers slices [k·slices/chunks, (k+1)·slices/chunks). */
    size_t wsize = (size_t)OC * d.KK;
    float *part = d.chunks > 1 ? ws + (size_t)d.slots * d.slot_floats : dw;
    /* dx as the convolution of dy with the flipped weights (implicit GEMM or Winograd) */
    float *wt = conv_wt(ws, &d);
    if (dx && (d.implicit || d.wino || d.shift)) flip_weights(wt, w, &d);
    int dx_later = d.wino || d.shift;   /* dx after the dW loop, all images at once */
    if (d.shift_dw) {   /* (G = 1) dW by shiftconv.c straight from dy and x */
        /* work items (row block, input channel), block-major; each thread a contiguous run */
        long blocks = (OC + SHIFT_DW_ROWS - 1) / SHIFT_DW_ROWS, items = blocks * C;
        int threads = dkd_num_threads() < items ? dkd_num_threads() : (int)items;
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int i = 0; i < threads; i++)
            for (long it = part_begin(items, i, threads), end = part_begin(items, i + 1, threads); it < end;) {
                int blk = (int)(it / C), c0 = (int)(it % C), c1 = c0 + (end - it < C - c0 ? (int)(end - it) : C - c0);
                int o0 = blk * SHIFT_DW_ROWS, o1 = o0 + SHIFT_DW_ROWS < OC ? o0 + SHIFT_DW_ROWS : OC;
                shiftconv_dw(dw, dy, x, N, C, H, W, OC, o0, o1, c0, c1);
                it += c1 - c0;
            }
    }
    if (d.shift_1x1) {   /* dW of a pointwise layer by shiftconv.c, threads taking (group, row block)s */
        int per_group = (d.OCg + SHIFT_DW_ROWS - 1) / SHIFT_DW_ROWS, blocks = G * per_group;
        int threads = dkd_num_threads() < blocks ? dkd_num_threads() : blocks;
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int i = 0; i < threads; i++)
            for (long b = part_begin(blocks, i, threads); b < part_begin(blocks, i + 1, threads); b++) {
                int g = (int)(b / per_group), o0 = (int)(b % per_group) * SHIFT_DW_ROWS;
                int o1 = o0 + SHIFT_DW_ROWS < d.OCg ? o0 + SHIFT_DW_ROWS : d.OCg;
                shiftconv_dw_1x1(dw + (size_t)g * d.OCg * d.Cg, dy + (size_t)g * d.OCg * d.PP,
                                 x + (size_t)g * d.Cg * d.PP, N, d.Cg, d.PP, (size_t)OC * d.PP, (size_t)C * d.PP, o0, o1);
            }
    }
    if (d.dw_batch) dw_batch_gemm(dw, dy, x, &d, ws);
    int dw_done = d.shift_dw || d.shift_1x1 || d.dw_batch;
    int loop = !dw_done || (dx && !dx_later);   /* (the chunk loop below: dW, or dx per slice, left to do) */
    #pragma omp parallel for schedule(static) num_threads(conv_threads(&d))
    for (int k = 0; k < (loop ? d.chunks : 0); k++) {   /* (by chunks of images) */
        float *col = ws + (size_t)thread_id() * d.slot_floats;
        float *stage = col + d.stage_off;
        float *pk = part + (size_t)k * wsize;
        int s0 = (int)((long long)k * d.slices / d.chunks), s1 = (int)((long long)(k + 1) * d.slices / d.chunks);
        for (int s = s0; s < s1; s++) {
            int n0 = s * d.per_slice, ni = N - n0 < d.per_slice ? N - n0 : d.per_slice;
            int cols = ni * d.PP;
            for (int g = 0; g < G; g++) {
                /* dY of this slice and group as a [OCg, cols] matrix with row stride ld */
                const float *dyg; int ld;
                if (d.per_slice == 1) { dyg = dy + ((size_t)n0 * OC + (size_t)g * d.OCg) * d.PP; ld = d.PP; }
                else { gather_images(stage, dy + (size_t)n0 * OC * d.PP, ni, OC, g * d.OCg, d.OCg, d.PP); dyg = stage; ld = cols; }
                const float *xg = x + ((size_t)n0 * C + (size_t)g * d.Cg) * H * W;
                const float *wg = w + (size_t)g * d.OCg * d.KK;
                float *dwg = pk + (size_t)g * d.OCg * d.KK, beta = s == s0 ? 0.0f : 1.0f;
                if (is_pointwise(&d)) {   /* col = x_g: dW_g (+)= dY · x_g^T, dx_g += W_g^T · dY */
                    if (!dw_done) gemm_serial(0, 1, d.OCg, d.KK, cols, 1.0f, dyg, ld, xg, d.PP, beta, dwg, d.KK);
                    if (dx && !dx_later) gemm_serial(1, 0, d.KK, cols, d.OCg, 1.0f, wg, d.KK, dyg, ld, 1.0f,
                                        dx + ((size_t)n0 * C + (size_t)g * d.Cg) * H * W, d.PP);
                    continue;
                }
                if (d.implicit) {   /* dW_g (+)= dY · col^T, then dx_g += conv(dY_g, wt_g) */
                    if (d.OW >= IMPLICIT_DW_MIN_OW) {
                        implicit_dw(dwg, dyg, xg, beta, d.Cg, H, W, P, K, d.OCg, col);
                    } else {
                        im2col(col, xg, ni, &d);
                        gemm_serial(0, 1, d.OCg, d.KK, cols, 1.0f, dyg, ld, col, d.ldcol, beta, dwg, d.KK);
                    }
                    if (dx && !dx_later) implicit_conv(dx + ((size_t)n0 * C + (size_t)g * d.Cg) * H * W, dyg,
                                               wt + (size_t)g * d.Cg * d.OCg * K * K, NULL, 1.0f,
                                               d.OCg, d.OH, d.OW, K - 1 - P, K, d.Cg, col);
                    continue;
                }
                im2col(col, xg, ni, &d);
                /* dW_g (+)= dY · col^T  (the first slice of the chunk overwrites) */
                gemm_serial(0, 1, d.OCg, d.KK, cols, 1.0f, dyg, ld, col, d.ldcol, beta, dwg, d.KK);
                if (dx && !dx_later) {   /* dcol = W_g^T · dY (into col, no longer needed), dx += col2im(dcol) */
                    gemm_serial(1, 0, d.KK, cols, d.OCg, 1.0f, wg, d.KK, dyg, ld, 0.0f, col, d.ldcol);
                    col2im_add(dx + ((size_t)n0 * C + (size_t)g * d.Cg) * H * W, col, ni, &d);
                }
            }
        }
    }
    if (dx && d.shift) {   /* dx += conv(dy, wt) by shiftconv.c */
        shiftconv_pack_weights(shift_packed(ws, &d), wt, C, OC, K);
        shift_batch(dx, dy, shift_packed(ws, &d), NULL, dx_beta, OC, C, &d, NULL, 0);
    }
    if (dx && d.wino) {   /* dx += conv(dy, wt) by Winograd, wino_n images per call */
        winograd_weights(d.wino, wino_u(ws, &d), wt, OC, C);
        wino_batch(dx, dy, wino_u(ws, &d), NULL, dx_beta, OC, C, &d, ws, 0);
    }
    if (d.chunks > 1 && !dw_done) {   /* dw = Σ_k partial_k, in chunk order */
        #pragma omp parallel for schedule(static)
        for (size_t e = 0; e < wsize; e++) {
            float s = part[e];
            for (int k = 1; k < d.chunks; k++) s += part[(size_t)k * wsize + e];
            dw[e] = s;
        }
    }
}

void conv2d_backward_cpu(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                         int N, int C, int H, int W, int OC, int K, int S, int P, int G, float *ws) {
    conv_backward(dx, dw, db, dy, x, w, N, C, H, W, OC, K, S, P, G, ws, 0);
}
void conv2d_backward_set_cpu(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                             int N, int C, int H, int W, int OC, int K, int S, int P, int G, float *ws) {
    conv_backward(dx, dw, db, dy, x, w, N, C, H, W, OC, K, S, P, G, ws, 1);
}
