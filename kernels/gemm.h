/* kernels/gemm.h — the CPU GEMM's tile sizes and its single-thread entry point, shared by
 * gemm.c and conv.c. (Private to the CPU reference; the public GEMM is sgemm_cpu in dkd.h.)
 *
 * The micro-kernel of gemm.c computes one GEMM_MR x GEMM_NR tile of C in registers.
 * NR is a multiple of the vector width the compiler uses, and MR*NR/width accumulators
 * fill most of the register file (16 vector registers without AVX-512, 32 with it):
 *   AVX-512                                 12 x 32   (24 zmm accumulators, intrinsics: 6 x 32
 *                                                      with 12 left the FMA units idle 30-40%
 *                                                      of the time)
 *   AVX / AVX2 with 256-bit vectors          6 x 16   (12 ymm)
 *   SSE, or AVX tuned for 128-bit vectors    6 x 8    (12 xmm; gcc -march=znver1 prefers
 *                                                      128-bit vectors on AMD Zen 1)
 * On x86-64 this header is compiled once per instruction-set path (kernels/isa.h), so
 * each path has its own NR. The result does NOT depend on MR, NR, MC or NC (every C element is one sum over k in
 * increasing k); it depends on GEMM_KC only, which is a constant. */
#ifndef DKD_GEMM_H
#define DKD_GEMM_H

#if defined(__AVX512F__)
#define GEMM_MR 12   /* 12 x 32: 24 zmm accumulators of 32, written with intrinsics in gemm.c */
#define GEMM_NR 32
#else
#define GEMM_MR 6
#if defined(__AVX__) && !defined(__tune_znver1__)
#define GEMM_NR 16
#else
#define GEMM_NR 8
#endif
#endif
#define GEMM_KC 256    /* k-block: a packed B strip (KC x NR floats) stays in L1       */
#define GEMM_MC 96     /* rows of A packed at once: MC x KC floats (96 KiB) stay in L2 */
#define GEMM_NC 1024   /* columns of B packed at once: KC x NC floats (1 MiB)          */

/* sgemm_cpu computed entirely by the calling thread: conv.c calls it from inside its
 * own parallel loop over images. Same arguments, bit-identical results. */
void gemm_serial(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);


/* Packed operands, for callers that produce B already packed (winograd.c):
 * gemm_pack_a writes op(A) = A [M,K] (row-major, not transposed, K not blocked) in the
 * micro-kernel's strip order into gemm_packed_a_floats(M, K) floats; gemm_packed then
 * computes C[M,N] = A·B + beta·C (beta 0 or 1) from it and a B packed in strips of NR
 * columns (strip s: K x NR floats, Bp[s·K·NR + k·NR + c] = B[k][s·NR + c]; columns past N
 * are computed from whatever is there and not stored). Calling thread only. */
size_t gemm_packed_a_floats(int M, int K);
/* Where gemm_pack_a puts row i of an M-row A: the strip holding it starts at row *first,
 * holds *rows real rows and *hp packed ones (hp >= rows; the extra rows are zeros), and
 * element (i, k) is at Ap[first·K + k·hp + (i - first)]. */
void gemm_a_strip(int M, int i, int *first, int *rows, int *hp);
void gemm_pack_a(float *Ap, const float *A, int lda, int M, int K);
void gemm_packed(int M, int N, int K, const float *Ap, const float *Bp, float beta, float *C, int ldc);
/* B [K,N] (row-major, row stride ldb) into gemm_packed's strips, columns past N zero:
 * ((N + NR - 1) / NR)·NR·K floats. */
void gemm_pack_b(float *Bp, const float *B, int ldb, int K, int N);
/* The same with B read in place, B[k][j] = base[off[k] + j], as gemm_serial_offsets
 * below (the same readability rule): conv.c's 1x1 layers, whose B is the image itself
 * and whose weights are packed once per call, not once per image. */
void gemm_packed_offsets(int M, int N, int K, const float *Ap, const float *base, const int *off, float beta, float *C,
                         int ldc);

/* C[M,N] = A[M,K] · B + beta·C (beta 0 or 1) on the calling thread, for a B that is never
 * stored: B[k][j] = base[off[k] + j], every row a window of one buffer at its own offset.
 * conv.c's implicit GEMM (a convolution read straight from the zero-padded image) uses
 * it. The kernel reads whole NR-wide strips: base[off[k] + j] must be readable for j up
 * to N rounded up to GEMM_NR (what it reads past N is never stored). Every C element is
 * the same k-blocked sum as in gemm_serial. */
void gemm_serial_offsets(int M, int N, int K, const float *A, int lda, const float *base, const int *off,
                         float beta, float *C, int ldc);

/* C[M,N] = A[M,K] · B^T + beta·C (beta 0 or 1) on the calling thread, where A is row-major
 * and row n of B is base[off[n] .. off[n] + K): both read along k, nothing packed. For
 * conv.c's weight gradients (dW = dY · col^T with col implicit). K must be a multiple
 * of GEMM_NR/2 (callers pad with zeros). The sum over k is split into GEMM_NR/2 lanes
 * added at the end: fixed order, but not gemm_serial's. */
void gemm_serial_abt_offsets(int M, int N, int K, const float *A, int lda, const float *base, const int *off,
                             float beta, float *C, int ldc);

#endif
