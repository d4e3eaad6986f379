/* kernels/gemm.c — single-precision matrix multiply on the CPU (conv and linear use it).
 *
 *   C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C          (row-major)
 *   op(A) = A, stored [M,K] with row stride lda   (tA == 0)
 *   op(A) = A^T, A stored [K,M] with row stride lda (tA != 0)      (same for B, ldb)
 *   C[i][j] = alpha · Σ_k op(A)[i][k] · op(B)[k][j]  (+ beta · C[i][j]; beta == 0: C is
 *   not read, so NaN garbage in C does not leak through, as in BLAS)
 *
 * Why not three nested loops? A naive loop reads 2 floats from memory per multiply-add.
 * A modern core does 2 vector FMAs per cycle (16-64 multiply-adds) but loads only 2-3
 * vectors per cycle, so the data must come from registers most of the time. The classic
 * answer (Goto & van de Geijn, "Anatomy of high-performance matrix multiplication"; BLIS)
 * has three layers:
 *
 * 1. The micro-kernel keeps an MR x NR tile of C in registers (GEMM_MR x GEMM_NR, see
 *    gemm.h: 6 x 16 with AVX2, i.e. 12 vector accumulators) and walks k: per k it loads
 *    MR numbers of A (broadcast) and NR numbers of B (NR/8 vectors) and does MR·NR/8
 *    vector FMAs: 12 FMAs for 8 loads. It is plain C; `#pragma omp simd` on the j-loop
 *    lets gcc turn it into exactly that register tile (-O3 -fopenmp).
 *
 * 2. Packing. The micro-kernel wants, for each k, the MR numbers of A and the NR
 *    numbers of B it needs to sit side by side in memory. So blocks of A and B are
 *    first copied ("packed") into that order:
 *        Ap[s][k][r] = op(A)[s·MR + r][k]   A in strips of MR rows   (rows >= M are 0)
 *        Bp[s][k][c] = op(B)[k][s·NR + c]   B in strips of NR columns (cols >= N are 0)
 *    Packing also hides the transposes: after it, all four (tA, tB) cases run the same
 *    kernel. The zero padding lets the kernel always compute a full tile; the edge is
 *    cut when the tile is written to C. A is cut into strips of 6 rows, or 4 where 4
 *    or 8 rows are left (channel counts are multiples of 4: 16 = 6+6+4 wastes nothing).
 *
 * 3. Cache blocking. k is cut into blocks of KC = 256: a packed B strip (KC x NR) stays
 *    in L1 while the kernel runs down all the A strips of the block (MC x KC, in L2).
 *    Blocks of C (MC x NC) are independent: sgemm_cpu hands them to OpenMP threads.
 *
 * Determinism: each C element is computed by exactly one thread as
 *   t_0 = Σ_{k in block 0} (in increasing k), C = alpha·t_0 + beta·C,
 *   t_b = Σ_{k in block b},                   C = C + alpha·t_b   (b = 1, 2, ...)
 * with KC fixed, so results are bit-identical for any thread count and any MC, NC, MR,
 * NR. (They do depend on the build: with FMA hardware, `fmaf` fuses the multiply-add.)
 *
 * Speed (this project's 2-core AMD EPYC VM: AVX2 + FMA on 128-bit units, gcc -march=native
 * = znver1, so NR = 8): the micro-kernel alone runs at ~38 GFLOP/s per core, a
 * 512x512x512 product at ~33 GFLOP/s on one thread, the convolution-shaped products
 * (M = 16..64, K = 144..576) at 20-28.
 *
 * Threads: sgemm_cpu splits C into blocks (splitting N, then M, until there are at
 * least as many blocks as threads) and runs them in an OpenMP loop; tiny products run
 * on one thread. gemm_serial (gemm.h) is the same on the calling thread only.
 * Each thread packs into its own buffer (allocated on first use, then reused).
 */
#include "dkd.h"
#include "gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* c + a·b, fused into one rounding where the hardware has FMA (C11's FP_FAST_FMAF),
 * else a multiply then an add (a software fmaf would be far too slow). */
#ifdef FP_FAST_FMAF
#define MADD(a, b, c) fmaf((a), (b), (c))
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

static int imin(int a, int b) { return a < b ? a : b; }

/* ---- strips of A ----------------------------------------------------------------- */

/* A is cut into strips of 6 rows; when 4 or 8 rows are left they become strips of 4
 * (16 = 6+6+4, 32 = 6+6+6+6+4+4, 64 = 10·6+4): the channel counts of the models are
 * multiples of 4, and a strip padded with zero rows would waste its multiply-adds.
 * Other remainders (1, 2, 3, 5 rows) are padded to 6. */
static int strip_rows(int left) { return left == 4 || left == 8 ? 4 : imin(left, GEMM_MR); }
static int packed_rows(int rows) { return rows == 4 ? 4 : GEMM_MR; }

/* ---- packing -------------------------------------------------------------------- */

/* Ap[k][r] = src[r·lda + k] for r < hp: hp whole rows side by side (inlined with hp a
 * constant, so the r-loop is unrolled). */
static inline void pack_rows(float *restrict Ap, const float *restrict src, int lda, int kc, int hp) {
    for (int k = 0; k < kc; k++)
        for (int r = 0; r < hp; r++) Ap[(size_t)k * hp + r] = src[(size_t)r * lda + k];
}

/* Pack an mc x kc block of op(A) (A points at its element (0,0)) into strips:
 * strip starting at row i0 with hp packed rows: Ap[k][r] = op(A)[i0 + r][k], rows past
 * the strip's real rows filled with 0. Strips follow each other (hp·kc floats each). */
static void pack_a(float *Ap, int tA, const float *A, int lda, int mc, int kc) {
    for (int i0 = 0, rows; i0 < mc; i0 += rows) {
        rows = strip_rows(mc - i0);
        int hp = packed_rows(rows);
        if (!tA && rows == hp) {   /* full strip of 6 or 4 rows: constant trip counts */
            const float *src = A + (size_t)i0 * lda;
            if (hp == GEMM_MR) pack_rows(Ap, src, lda, kc, GEMM_MR);
            else               pack_rows(Ap, src, lda, kc, 4);
        } else if (!tA) {  /* op(A)[i][k] = A[i·lda + k]: read the strip's rows side by side */
            const float *src = A + (size_t)i0 * lda;
            for (int k = 0; k < kc; k++)
                for (int r = 0; r < hp; r++) Ap[(size_t)k * hp + r] = r < rows ? src[(size_t)r * lda + k] : 0.0f;
        } else {         /* op(A)[i][k] = A[k·lda + i]: consecutive floats per k */
            const float *src = A + i0;
            for (int k = 0; k < kc; k++)
                for (int r = 0; r < hp; r++) Ap[(size_t)k * hp + r] = r < rows ? src[(size_t)k * lda + r] : 0.0f;
        }
        Ap += (size_t)hp * kc;
    }
}

/* Pack a kc x nc block of op(B) (B points at its element (0,0)) into NR-column strips:
 * Bp[s][k][c] = op(B)[k][s·NR + c], columns past nc filled with 0. */
static void pack_b(float *Bp, int tB, const float *B, int ldb, int kc, int nc) {
    int strips = (nc + GEMM_NR - 1) / GEMM_NR;
    if (!tB) {
        /* op(B)[k][j] = B[k·ldb + j]: walk each row of B once, dealing NR-wide pieces
         * out to the strips (reading row after row keeps the reads sequential). */
        for (int k = 0; k < kc; k++) {
            const float *src = B + (size_t)k * ldb;
            for (int s = 0; s < strips; s++) {
                float *dst = Bp + ((size_t)s * kc + k) * GEMM_NR;
                int cols = imin(GEMM_NR, nc - s * GEMM_NR);
                for (int c = 0; c < cols; c++) dst[c] = src[s * GEMM_NR + c];
                for (int c = cols; c < GEMM_NR; c++) dst[c] = 0.0f;
            }
        }
    } else {
        /* op(B)[k][j] = B[j·ldb + k]: a strip needs NR rows of B side by side. Going
         * 16 k at a time uses each cache line of those rows completely once loaded
         * (rows 4 KiB apart would otherwise evict each other from L1). */
        for (int s = 0; s < strips; s++) {
            float *dst = Bp + (size_t)s * kc * GEMM_NR;
            int cols = imin(GEMM_NR, nc - s * GEMM_NR);
            for (int k0 = 0; k0 < kc; k0 += 16) {
                int k1 = imin(kc, k0 + 16);
                for (int c = 0; c < GEMM_NR; c++) {
                    if (c >= cols) { for (int k = k0; k < k1; k++) dst[(size_t)k * GEMM_NR + c] = 0.0f; continue; }
                    const float *src = B + (size_t)(s * GEMM_NR + c) * ldb;
                    for (int k = k0; k < k1; k++) dst[(size_t)k * GEMM_NR + c] = src[k];
                }
            }
        }
    }
}

/* ---- the micro-kernel ------------------------------------------------------------ */

/* t[r][c] = Σ_{k < kc} a[k][r] · b_k[c] for one strip a of `rows` packed rows (6 or 4)
 * and one strip of B, NR columns wide, whose row k is b_k = b + k·NR (packed B), or
 * b_k = b + off[k] with a table of row offsets (use_off: B never stored, see
 * gemm_serial_offsets; one more load per k, the same FMAs).
 * acc lives in registers: the r-loop is unrolled (rows and use_off are constants in
 * each call below and the function is inlined, so the choice of b_k costs nothing), the c-loop is one vector FMA per vector of NR (the omp simd pragma asks
 * for exactly that). It is called through micro_kernel_6/_4 and their offset-table
 * twins, which are kept out of line: inlined into the loops below, gcc would keep
 * some of their values in vector registers and spill accumulators to the stack
 * (measured: 40% slower). */
#if defined(__AVX512F__)
/* The AVX-512 build writes the same tile with intrinsics: 12 rows x 2 zmm vectors = 24
 * accumulators. Per k it loads 2 vectors of B and broadcasts 12 numbers of A: 14 loads
 * per 24 FMAs. Two details keep gcc's output to exactly that loop: the r-loop is
 * unrolled before gcc decides where acc lives (UNROLL; unrolled later, the 1.5 KB acc
 * array stayed in memory and was stored on every step), and IN_REGISTER pins b0, b1 and
 * each broadcast to a register (otherwise gcc re-reads them from memory as an operand of
 * every FMA that uses them: twice the loads). */
#include <immintrin.h>
#define UNROLL _Pragma("GCC unroll 16")
#define IN_REGISTER(v) __asm__("" : "+v"(v))
static inline void micro_kernel(int rows, int kc, const float *restrict a, const float *b, int use_off,
                                const int *restrict off, float *restrict t) {
    __m512 acc[GEMM_MR][2];
    UNROLL for (int r = 0; r < GEMM_MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++, a += rows) {
        const float *bk = use_off ? b + off[k] : b + (size_t)k * GEMM_NR;
        __m512 b0 = _mm512_loadu_ps(bk), b1 = _mm512_loadu_ps(bk + 16);
        IN_REGISTER(b0); IN_REGISTER(b1);
        UNROLL for (int r = 0; r < GEMM_MR; r++) {
            if (r >= rows) break;
            __m512 ar = _mm512_set1_ps(a[r]);
            IN_REGISTER(ar);
            acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
        }
    }
    UNROLL for (int r = 0; r < GEMM_MR; r++) {
        if (r >= rows) break;
        _mm512_storeu_ps(t + r * GEMM_NR, acc[r][0]);
        _mm512_storeu_ps(t + r * GEMM_NR + 16, acc[r][1]);
    }
}
#else
static inline void micro_kernel(int rows, int kc, const float *restrict a, const float *b, int use_off,
                                const int *restrict off, float *restrict t) {
    float acc[GEMM_MR][GEMM_NR];
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < GEMM_NR; c++) acc[r][c] = 0.0f;
    for (int k = 0; k < kc; k++, a += rows) {
        const float *restrict bk = use_off ? b + off[k] : b + (size_t)k * GEMM_NR;
        for (int r = 0; r < rows; r++) {
            float ar = a[r];
            #pragma omp simd
            for (int c = 0; c < GEMM_NR; c++) acc[r][c] = MADD(ar, bk[c], acc[r][c]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < GEMM_NR; c++) t[r * GEMM_NR + c] = acc[r][c];
}
#endif

#ifdef __GNUC__
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif
static NOINLINE void micro_kernel_6(int kc, const float *a, const float *b, float *t) {
    micro_kernel(GEMM_MR, kc, a, b, 0, NULL, t);
}
static NOINLINE void micro_kernel_4(int kc, const float *a, const float *b, float *t) {
    micro_kernel(4, kc, a, b, 0, NULL, t);
}
static NOINLINE void micro_kernel_offsets_6(int kc, const float *a, const float *b, const int *off, float *t) {
    micro_kernel(GEMM_MR, kc, a, b, 1, off, t);
}
static NOINLINE void micro_kernel_offsets_4(int kc, const float *a, const float *b, const int *off, float *t) {
    micro_kernel(4, kc, a, b, 1, off, t);
}

/* C[0..mr)[0..nr) = alpha·t + beta·C (beta 0: C is not read; beta 1: C + alpha·t). */
static void store_tile(float *restrict C, int ldc, int mr, int nr, const float *restrict t, float alpha, float beta) {
    if (nr == GEMM_NR && alpha == 1.0f && (beta == 0.0f || beta == 1.0f)) {
        /* the common case, a full-width tile: plain vector stores (or adds) */
        for (int r = 0; r < mr; r++) {
            float *c = C + (size_t)r * ldc;
            const float *tr = t + r * GEMM_NR;
            if (beta == 0.0f) for (int j = 0; j < GEMM_NR; j++) c[j] = tr[j];
            else              for (int j = 0; j < GEMM_NR; j++) c[j] = c[j] + tr[j];
        }
        return;
    }
    for (int r = 0; r < mr; r++) {
        float *c = C + (size_t)r * ldc;
        const float *tr = t + r * GEMM_NR;
        if (beta == 0.0f)      for (int j = 0; j < nr; j++) c[j] = alpha * tr[j];
        else if (beta == 1.0f) for (int j = 0; j < nr; j++) c[j] = c[j] + alpha * tr[j];
        else                   for (int j = 0; j < nr; j++) c[j] = alpha * tr[j] + beta * c[j];
    }
}

/* C [mc, nc] = alpha · A·B + beta·C for rows [0, mc) of a packed A (strips as pack_a)
 * and B in strips of NR columns: packed (off == NULL: strip s is kc x NR floats at
 * B + s·kc·NR), or read through row offsets (strip s starts at B + s·NR, its row k at
 * off[k] from there). The strips of A were cut with `left` rows to go at its first row:
 * pack_a cuts them from the first row of what it packs (left = mc, see
 * multiply_packed); gemm_packed hands over blocks of a taller A. */
static void multiply_strips(int mc, int left, int nc, int kc, float alpha, const float *Ap, const float *B,
                            const int *off, float beta, float *C, int ldc) {
    float t[GEMM_MR * GEMM_NR];
    for (int j0 = 0; j0 < nc; j0 += GEMM_NR) {              /* one B strip, kept in L1 ... */
        const float *b = off ? B + j0 : B + (size_t)(j0 / GEMM_NR) * kc * GEMM_NR, *a = Ap;
        int nr = imin(GEMM_NR, nc - j0);
        for (int i0 = 0, rows; i0 < mc; i0 += rows) {       /* ... against every A strip   */
            rows = strip_rows(left - i0);
            if (off) { if (rows == 4) micro_kernel_offsets_4(kc, a, b, off, t); else micro_kernel_offsets_6(kc, a, b, off, t); }
            else     { if (rows == 4) micro_kernel_4(kc, a, b, t);              else micro_kernel_6(kc, a, b, t); }
            store_tile(C + (size_t)i0 * ldc + j0, ldc, rows, nr, t, alpha, beta);
            a += (size_t)packed_rows(rows) * kc;
        }
    }
}
static void multiply_packed(int mc, int nc, int kc, float alpha, const float *Ap, const float *Bp, float beta,
                            float *C, int ldc) {
    multiply_strips(mc, mc, nc, kc, alpha, Ap, Bp, NULL, beta, C, ldc);   /* A packed by pack_a */
}

/* ---- one block of C ---------------------------------------------------------------- */

/* Each thread's packing buffers: an MC x KC block of A and a KC x NC block of B. */
static float *thread_pack_buffer(void) {
    static _Thread_local float *buf;
    if (!buf) {
        buf = (float *)aligned_alloc(64, (size_t)(GEMM_MC + GEMM_NC) * GEMM_KC * sizeof(float));
        if (!buf) dkd_die("gemm: out of memory for the packing buffers");
    }
    return buf;
}

/* C block [mc, nc] (mc <= MC, nc <= NC) of the product; A, B, C point at the block's
 * first row of op(A), first column of op(B) and element (0,0) of C. */
static void gemm_block(int tA, int tB, int mc, int nc, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc) {
    float *Ap = thread_pack_buffer(), *Bp = Ap + (size_t)GEMM_MC * GEMM_KC;
    for (int p0 = 0; p0 < K; p0 += GEMM_KC) {
        int kc = imin(GEMM_KC, K - p0);
        pack_a(Ap, tA, tA ? A + (size_t)p0 * lda : A + p0, lda, mc, kc);
        pack_b(Bp, tB, tB ? B + p0 : B + (size_t)p0 * ldb, ldb, kc, nc);
        float b = p0 == 0 ? beta : 1.0f;   /* later k-blocks add to what is in C */
        multiply_packed(mc, nc, kc, alpha, Ap, Bp, b, C, ldc);
    }
}

/* C = beta·C (the whole product when K == 0 or alpha == 0). */
static void scale_c(int M, int N, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
}

/* The block of C that block number `blk` covers, for blocks of mb x nb. */
static void run_block(int blk, int nbn, int mb, int nb, int tA, int tB, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    int i0 = (blk / nbn) * mb, j0 = (blk % nbn) * nb;
    gemm_block(tA, tB, imin(mb, M - i0), imin(nb, N - j0), K, alpha,
               tA ? A + i0 : A + (size_t)i0 * lda, lda,
               tB ? B + (size_t)j0 * ldb : B + j0, ldb, beta, C + (size_t)i0 * ldc + j0, ldc);
}

void gemm_serial(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) { scale_c(M, N, beta, C, ldc); return; }
    int nbm = (M + GEMM_MC - 1) / GEMM_MC, nbn = (N + GEMM_NC - 1) / GEMM_NC;
    for (int blk = 0; blk < nbm * nbn; blk++)
        run_block(blk, nbn, GEMM_MC, GEMM_NC, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static int nblocks(int M, int N, int mb, int nb) { return ((M + mb - 1) / mb) * ((N + nb - 1) / nb); }

size_t gemm_packed_a_floats(int M, int K) {
    size_t n = 0;
    for (int i0 = 0, rows; i0 < M; i0 += rows) {
        rows = strip_rows(M - i0);
        n += (size_t)packed_rows(rows) * K;
    }
    return n;
}
void gemm_pack_a(float *Ap, const float *A, int lda, int M, int K) { pack_a(Ap, 0, A, lda, M, K); }
void gemm_a_strip(int M, int i, int *first, int *rows, int *hp) {
    int i0 = 0, r = strip_rows(M);
    while (i0 + r <= i) { i0 += r; r = strip_rows(M - i0); }   /* strips before are full: hp == rows */
    *first = i0; *rows = r; *hp = packed_rows(r);
}
/* gemm_packed and gemm_packed_offsets: B packed (off NULL) or read in place */
static void packed_times(int M, int N, int K, const float *Ap, const float *B, const int *off, float beta, float *C,
                         int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { scale_c(M, N, beta, C, ldc); return; }
    /* A in blocks of whole strips, about MC rows (they stay in L2 while every strip of B
     * passes), instead of all of A once per B strip (ResNet's 512-channel layers: 1 MB) */
    for (int i0 = 0; i0 < M;) {
        int i1 = i0;
        while (i1 < M && i1 - i0 < GEMM_MC) i1 += strip_rows(M - i1);
        multiply_strips(i1 - i0, M - i0, N, K, 1.0f, Ap, B, off, beta, C + (size_t)i0 * ldc, ldc);
        for (int i = i0, rows; i < i1; i += rows) { rows = strip_rows(M - i); Ap += (size_t)packed_rows(rows) * K; }
        i0 = i1;
    }
}
void gemm_packed(int M, int N, int K, const float *Ap, const float *Bp, float beta, float *C, int ldc) {
    packed_times(M, N, K, Ap, Bp, NULL, beta, C, ldc);
}
void gemm_pack_b(float *Bp, const float *B, int ldb, int K, int N) { pack_b(Bp, 0, B, ldb, K, N); }
void gemm_packed_offsets(int M, int N, int K, const float *Ap, const float *base, const int *off, float beta, float *C,
                         int ldc) {
    packed_times(M, N, K, Ap, base, off, beta, C, ldc);
}

void gemm_serial_offsets(int M, int N, int K, const float *A, int lda, const float *base, const int *off,
                         float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { scale_c(M, N, beta, C, ldc); return; }
    float *Ap = thread_pack_buffer();
    for (int i0 = 0; i0 < M; i0 += GEMM_MC) {
        int mc = imin(GEMM_MC, M - i0);
        for (int p0 = 0; p0 < K; p0 += GEMM_KC) {
            int kc = imin(GEMM_KC, K - p0);
            pack_a(Ap, 0, A + (size_t)i0 * lda + p0, lda, mc, kc);
            float b = p0 == 0 ? beta : 1.0f;       /* later k-blocks add to what is in C */
            multiply_strips(mc, mc, N, kc, 1.0f, Ap, base, off + p0, b, C + (size_t)i0 * ldc, ldc);
        }
    }
}

/* ---- C = A · B^T with both operands read along k -------------------------------------- */

/* For a weight gradient, dW[o][t] = Σ_q dY[o][q] · X[t][q], both operands are long rows
 * in memory. Packing the transposed one would cost as much as the multiply (16 output
 * channels use each element only 16 times), so this kernel reads both in place and
 * vectorises along k instead: a tile of 3 x 3 outputs keeps 9 vectors of partial sums
 * (lane l sums k = l, l+V, l+2V, ...), each step loads 3 + 3 vectors and does 9 FMAs,
 * and the lanes are added at the end in a fixed order. V = GEMM_NR/2: the vector
 * width the compiler uses. With AVX-512's 32 registers the tile is 4 x 4 (16 sums, 4 + 4
 * loads per 16 FMAs), which also divides the channel counts (16, 32, 64) and Cg·9
 * exactly, where 3 x 3 left edge tiles of one row. The tile size does not change any
 * result (each output is its own sum). */
#if GEMM_NR >= 32
enum { ABT_V = GEMM_NR / 2, ABT_T = 4 };
#else
enum { ABT_V = GEMM_NR / 2, ABT_T = 3 };
#endif

static inline void abt_tile(int mr, int nr, int K, const float *a, size_t lda, const float *base, const int *off,
                            float beta, float *c, int ldc) {
    float acc[ABT_T][ABT_T][ABT_V];
    const float *b[ABT_T];
    for (int j = 0; j < nr; j++) b[j] = base + off[j];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            for (int v = 0; v < ABT_V; v++) acc[i][j][v] = 0.0f;
    for (int k = 0; k < K; k += ABT_V)
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++) {
                #pragma omp simd
                for (int v = 0; v < ABT_V; v++) acc[i][j][v] = MADD(a[i * lda + k + v], b[j][k + v], acc[i][j][v]);
            }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float s = 0.0f;
            for (int v = 0; v < ABT_V; v++) s += acc[i][j][v];
            float *cij = c + (size_t)i * ldc + j;
            *cij = beta == 0.0f ? s : *cij + s;
        }
}
static NOINLINE void abt_tile_full(int K, const float *a, size_t lda, const float *base, const int *off, float beta,
                                   float *c, int ldc) {
    abt_tile(ABT_T, ABT_T, K, a, lda, base, off, beta, c, ldc);
}
static NOINLINE void abt_tile_edge(int mr, int nr, int K, const float *a, size_t lda, const float *base, const int *off,
                                   float beta, float *c, int ldc) {
    abt_tile(mr, nr, K, a, lda, base, off, beta, c, ldc);
}

void gemm_serial_abt_offsets(int M, int N, int K, const float *A, int lda, const float *base, const int *off,
                             float beta, float *C, int ldc) {
    if (K % ABT_V) dkd_die("gemm_serial_abt_offsets: K = %d is not a multiple of %d", K, (int)ABT_V);
    for (int j0 = 0; j0 < N; j0 += ABT_T) {          /* 3 rows of B (in L1) ...          */
        int nr = imin(ABT_T, N - j0);
        for (int i0 = 0; i0 < M; i0 += ABT_T) {      /* ... against every row of A        */
            int mr = imin(ABT_T, M - i0);
            const float *a = A + (size_t)i0 * lda;
            float *c = C + (size_t)i0 * ldc + j0;
            if (mr == ABT_T && nr == ABT_T) abt_tile_full(K, a, (size_t)lda, base, off + j0, beta, c, ldc);
            else abt_tile_edge(mr, nr, K, a, (size_t)lda, base, off + j0, beta, c, ldc);
        }
    }
}

void sgemm_cpu(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) { scale_c(M, N, beta, C, ldc); return; }
    int threads = dkd_num_threads();
    /* Blocks of C: at most MC x NC; halve them (N first) until every thread has one. */
    int mb = imin(GEMM_MC, (M + GEMM_MR - 1) / GEMM_MR * GEMM_MR);
    int nb = imin(GEMM_NC, (N + GEMM_NR - 1) / GEMM_NR * GEMM_NR);
    while (nblocks(M, N, mb, nb) < threads && nb > GEMM_NR) nb = (nb / 2 + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    while (nblocks(M, N, mb, nb) < threads && mb > GEMM_MR) mb = (mb / 2 + GEMM_MR - 1) / GEMM_MR * GEMM_MR;
    int nblk = nblocks(M, N, mb, nb), nbn = (N + nb - 1) / nb;
    /* below ~64k multiply-adds, starting threads costs more than it saves */
    #pragma omp parallel for schedule(static) if (nblk > 1 && (double)M * N * K > 65536.0)
    for (int blk = 0; blk < nblk; blk++)
        run_block(blk, nbn, mb, nb, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
