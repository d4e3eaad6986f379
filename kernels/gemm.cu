/* kernels/gemm.cu — the GPU matrix multiply, in four versions, each one step
 * faster than the one before. Read kernels/gemm.c (the CPU GEMM: the same
 * product, blocked for caches) first; conv.cu and linear.cu call this file.
 *
 * What it computes (row-major, like sgemm_cpu in dkd.h):
 *     C[M,N] = alpha * op(A)[M,K] · op(B)[K,N] + beta * C
 *     op(A)[i,k] = tA ? A[k*lda + i] : A[i*lda + k]
 *     op(B)[k,j] = tB ? B[j*ldb + k] : B[k*ldb + j]
 * batched over blockIdx.z: matrix z starts at A + z*sA, B + z*sB, C + z*sC
 * (conv.cu puts one convolution group in each z). beta == 0 never reads C,
 * which may hold NaN garbage (the emulator fills new memory with NaN).
 *
 * The versions, in reading order (DKD_GEMM_VERSION=1..4, or
 * gemm_cuda_set_version(v); default 4). Each comment says why the step
 * pays; `./dkd bench --gemm` times them, kernels/README.md holds the table.
 *   1  naive            one thread per element of C, straight from memory
 *   2  shared tiles     a block stages tiles of A and B in shared memory
 *   3  register tiles   each thread computes a TM x TN micro-tile in registers
 *   4  float4 + double  version 3 with 16-byte loads from global memory and
 *      buffering        two shared buffers: one barrier per step along K
 *
 * One property holds for every version: each element of C is ONE thread's sum
 * of its K products in the order k = 0, 1, ..., K-1. So all versions give the
 * same bits (up to the sign of a zero sum, since tiles pad with zeros), and
 * no reduction depends on timing: results are bit-reproducible. On a GPU
 * nvcc fuses each multiply-add into one fma; gemm.c and the emulator (g++)
 * round twice, so GPU and CPU differ in the last bits (tests use tolerances).
 *
 * Shapes used by the convolutions (conv.cu), with Cg*K*K = "CKK":
 *   forward  Y  [OCg, cols] = W [OCg, CKK] · col [CKK, cols]           (tA=0 tB=0)
 *   weights  dW [OCg, CKK]  = dY [OCg, cols] · col^T                   (tA=0 tB=1)
 *   inputs   dcol [CKK, cols] = W^T · dY                                (tA=1 tB=0)
 * where cols = images x output positions (64 x 1024 for a 32x32 layer at
 * batch 64): M is small (16..512 channels), N is large.
 */
#include "kernels/cuda_common.h"   // defines: LAUNCH, SHARED, cudaCheck, ceil_div
#include "kernels/cuda_ops.h"      // defines: gemm_cuda_batched, sgemm_cuda, the version knob

#include <stdint.h>

enum { GEMM_VERSIONS = 4, GEMM_DEFAULT = 4 };
static int g_gemm_version = 0;   /* 0: not chosen yet */

void gemm_cuda_set_version(int v) { g_gemm_version = (v >= 1 && v <= GEMM_VERSIONS) ? v : 0; }
int gemm_cuda_version(void) {
    if (g_gemm_version == 0) {
        const char *e = getenv("DKD_GEMM_VERSION");
        int v = e ? atoi(e) : GEMM_DEFAULT;
        if (v < 1 || v > GEMM_VERSIONS) {
            fprintf(stderr, "dkd: DKD_GEMM_VERSION=%s is not 1..%d: using %d\n", e, GEMM_VERSIONS, GEMM_DEFAULT);
            v = GEMM_DEFAULT;
        }
        g_gemm_version = v;
    }
    return g_gemm_version;
}
int gemm_cuda_versions(void) { return GEMM_VERSIONS; }

/* Element access with the transpose flags; outside the matrix reads 0. */
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

/* ------------------------------------------------------------------------- */
/* Version 1 — the C loop body, with the two outer loops (i over rows, j over
 * columns) mapped to threads: one thread per element of C, T1 x T1 blocks.
 * Consecutive threads take consecutive columns j, so their B loads (tB=0)
 * and C stores are coalesced, and they all read the same A element (one
 * broadcast). Still, every thread reads a whole row of A and column of B
 * from global memory: 2 loads per multiply-add, so the kernel runs at the
 * speed of memory (L1/L2 hits help), far below the arithmetic peak. */
enum { T1 = 16 };
__global__ void sgemm_kernel1(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                              const float *B, int ldb, float beta, float *C, int ldc,
                              long long sA, long long sB, long long sC) {
    A += blockIdx.z * sA; B += blockIdx.z * sB; C += blockIdx.z * sC;
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    int i = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= M || j >= N) return;
    float acc = 0.0f;
    for (int k = 0; k < K; k++) acc += load_a(A, tA, lda, M, K, i, k) * load_b(B, tB, ldb, K, N, k, j);
    store_c(C, ldc, i, j, acc, alpha, beta);
}

/* ------------------------------------------------------------------------- */
/* Version 2 — shared-memory tiles. A T2 x T2 block computes a T2 x T2 tile
 * of C and walks along K in steps of T2: the block loads a T2 x T2 tile of A
 * and one of B into shared memory (each thread one element of each), waits
 * (__syncthreads), and every thread does T2 multiply-adds from shared memory.
 * Why it pays: each global load now serves T2 threads, so global traffic
 * drops T2-fold; the limit becomes shared memory (2 shared loads per
 * multiply-add). Out-of-range elements are loaded as 0, so edges need no
 * special case. The second barrier keeps a fast thread from overwriting a
 * tile that a slow one is still reading. */
enum { T2 = 16 };
__global__ void sgemm_kernel2(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                              const float *B, int ldb, float beta, float *C, int ldc,
                              long long sA, long long sB, long long sC) {
    SHARED(float, As2, T2 * T2);   /* As2[ty][kk] = op(A)[row0+ty, k0+kk] */
    SHARED(float, Bs2, T2 * T2);   /* Bs2[kk][tx] = op(B)[k0+kk, col0+tx] */
    A += blockIdx.z * sA; B += blockIdx.z * sB; C += blockIdx.z * sC;
    int tx = threadIdx.x, ty = threadIdx.y;
    int i = blockIdx.y * T2 + ty, j = blockIdx.x * T2 + tx;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += T2) {
        As2[ty * T2 + tx] = load_a(A, tA, lda, M, K, i, k0 + tx);
        Bs2[ty * T2 + tx] = load_b(B, tB, ldb, K, N, k0 + ty, j);
        __syncthreads();
        for (int kk = 0; kk < T2; kk++) acc += As2[ty * T2 + kk] * Bs2[kk * T2 + tx];
        __syncthreads();
    }
    if (i < M && j < N) store_c(C, ldc, i, j, acc, alpha, beta);
}

/* ------------------------------------------------------------------------- */
/* Version 3 — register blocking. A block computes a BM3 x BN3 tile of C with
 * THREADS3 threads arranged as TY3 x TX3; each thread owns a TM3 x TN3
 * micro-tile (rows ty + TY3*r, columns tx + TX3*c) held in registers. Per
 * step along K (BK3) the block stages a BM3 x BK3 slice of A (stored
 * transposed, As3[k][m], so a thread's TM3 A values lie in one row) and a
 * BK3 x BN3 slice of B; then for each k a thread loads TM3 values of A and
 * TN3 of B into registers and does TM3*TN3 multiply-adds.
 * Why it pays: TM3 + TN3 shared loads feed TM3*TN3 multiply-adds (8 per 16
 * here) instead of 2 per 1 in version 2, so the arithmetic units, not shared
 * memory, become the limit. The strided micro-tile (stride TX3, not TN3
 * adjacent columns) keeps a half-warp on consecutive shared-memory words (no
 * bank conflicts) and on consecutive C addresses when storing. Global loads
 * are arranged so that consecutive threads read consecutive addresses for
 * either transpose flag. */
enum {
    BM3 = 64, BN3 = 64, BK3 = 8, TM3 = 4, TN3 = 4,
    TY3 = BM3 / TM3, TX3 = BN3 / TN3,   /* the thread grid: 16 x 16 */
    THREADS3 = TY3 * TX3                /* 256 */
};

/* The register tile's two steps, which version 4 reuses unchanged.
 * tile_multiply: for one kk of the staged slices, the thread's TM3 values of A
 * and TN3 of B into registers, then their TM3 x TN3 products into acc. */
static __device__ __forceinline__ void tile_multiply(float acc[TM3][TN3], SHARED_PTR(float) as, SHARED_PTR(float) bs,
                                                     int kk, int tx, int ty) {
    float a[TM3], b[TN3];
    for (int r = 0; r < TM3; r++) a[r] = as[kk * BM3 + ty + TY3 * r];
    for (int c = 0; c < TN3; c++) b[c] = bs[kk * BN3 + tx + TX3 * c];
    for (int r = 0; r < TM3; r++)
        for (int c = 0; c < TN3; c++) acc[r][c] += a[r] * b[c];
}
/* tile_store: the thread's micro-tile into C, only the elements inside it. */
static __device__ __forceinline__ void tile_store(float *C, int ldc, int M, int N, int row0, int col0, int tx, int ty,
                                                  const float acc[TM3][TN3], float alpha, float beta) {
    for (int r = 0; r < TM3; r++) {
        int i = row0 + ty + TY3 * r;
        if (i >= M) continue;
        for (int c = 0; c < TN3; c++) {
            int j = col0 + tx + TX3 * c;
            if (j < N) store_c(C, ldc, i, j, acc[r][c], alpha, beta);
        }
    }
}

__global__ __launch_bounds__(THREADS3) void sgemm_kernel3(int tA, int tB, int M, int N, int K, float alpha,
                                                          const float *A, int lda, const float *B, int ldb,
                                                          float beta, float *C, int ldc,
                                                          long long sA, long long sB, long long sC) {
    SHARED(float, As3, BK3 * BM3);   /* As3[kk][m] = op(A)[row0+m, k0+kk] */
    SHARED(float, Bs3, BK3 * BN3);   /* Bs3[kk][n] = op(B)[k0+kk, col0+n] */
    A += blockIdx.z * sA; B += blockIdx.z * sB; C += blockIdx.z * sC;
    int tid = threadIdx.x, tx = tid % TX3, ty = tid / TX3;
    int row0 = blockIdx.y * BM3, col0 = blockIdx.x * BN3;
    float acc[TM3][TN3] = {};   /* the thread's micro-tile of C, in registers */
    for (int k0 = 0; k0 < K; k0 += BK3) {
        for (int e = tid; e < BM3 * BK3; e += THREADS3) {
            int m, kk;
            if (tA) { m = e % BM3; kk = e / BM3; }   /* A stored [K][M]: walk along m */
            else    { kk = e % BK3; m = e / BK3; }   /* A stored [M][K]: walk along k */
            As3[kk * BM3 + m] = load_a(A, tA, lda, M, K, row0 + m, k0 + kk);
        }
        for (int e = tid; e < BK3 * BN3; e += THREADS3) {
            int n, kk;
            if (tB) { kk = e % BK3; n = e / BK3; }   /* B stored [N][K]: walk along k */
            else    { n = e % BN3; kk = e / BN3; }   /* B stored [K][N]: walk along n */
            Bs3[kk * BN3 + n] = load_b(B, tB, ldb, K, N, k0 + kk, col0 + n);
        }
        __syncthreads();
        for (int kk = 0; kk < BK3; kk++) tile_multiply(acc, As3, Bs3, kk, tx, ty);
        __syncthreads();
    }
    tile_store(C, ldc, M, N, row0, col0, tx, ty, acc, alpha, beta);
}

/* ------------------------------------------------------------------------- */
/* Version 4 — version 3's register tiles, fed by wider loads and two buffers.
 *  - 16-byte loads: each thread reads VEC4 = 4 consecutive floats with one
 *    float4 load, along the dimension in which its operand is contiguous
 *    (k for A [M][K], m for A^T, n for B [K][N], k for B^T), so one
 *    instruction moves what took four. Used when the leading dimension, the
 *    batch stride and the base pointer are multiples of 4 floats (the
 *    launcher checks) and the four floats lie inside the matrix; otherwise
 *    the thread falls back to four guarded scalar loads (ragged edges).
 *  - double buffering: two shared buffers. While the block multiplies from
 *    buffer `cur`, each thread already holds the next step's loads in
 *    registers (issued before the multiply-adds, so their latency hides
 *    behind them) and stores them into buffer cur^1 afterwards. One barrier
 *    per step instead of two: buffer cur^1 was last read in the previous
 *    step, which ended at that step's barrier.
 * BK4 = 16 makes each tile exactly one float4 per thread (LOADS4 = 1). The
 * multiply-adds and the store to C are version 3's (tile_multiply, tile_store):
 * only the way the tiles are loaded changes. */
enum {
    BM4 = BM3, BN4 = BN3, BK4 = 16, TM4 = TM3, TN4 = TN3, VEC4 = 4,   /* version 3's register tile */
    TY4 = BM4 / TM4, TX4 = BN4 / TN4,       /* the thread grid: 16 x 16 */
    THREADS4 = TY4 * TX4,                   /* 256 */
    LOADS4 = BM4 * BK4 / VEC4 / THREADS4    /* float4 loads per thread per tile: 1 (the B tile has as many) */
};

/* Four consecutive elements (r, c..c+3) of a row-major [R][Cn] matrix with
 * leading dimension ld: one float4 load when vec allows it and all four are
 * inside, else guarded scalar loads (0 outside). */
static __device__ __forceinline__ void load4(float v[VEC4], const float *X, int ld, int R, int Cn, int r, int c, int vec) {
    if (vec && r < R && c + VEC4 <= Cn) {
        float4 q = *(const float4 *)(X + (size_t)r * ld + c);
        v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w;
        return;
    }
    for (int u = 0; u < VEC4; u++) v[u] = (r < R && c + u < Cn) ? X[(size_t)r * ld + c + u] : 0.0f;
}

/* Thread tid's LOADS4 groups of the A tile at k0 (into ra) and of the B tile (into rb). */
static __device__ __forceinline__ void load_tiles4(float ra[LOADS4][VEC4], float rb[LOADS4][VEC4], int tid,
                                                   const float *A, int tA, int lda, int vecA,
                                                   const float *B, int tB, int ldb, int vecB,
                                                   int M, int N, int K, int row0, int col0, int k0) {
    for (int l = 0; l < LOADS4; l++) {
        int g = tid + l * THREADS4;
        if (tA) load4(ra[l], A, lda, K, M, k0 + g / (BM4 / VEC4), row0 + g % (BM4 / VEC4) * VEC4, vecA);
        else    load4(ra[l], A, lda, M, K, row0 + g / (BK4 / VEC4), k0 + g % (BK4 / VEC4) * VEC4, vecA);
        if (tB) load4(rb[l], B, ldb, N, K, col0 + g / (BK4 / VEC4), k0 + g % (BK4 / VEC4) * VEC4, vecB);
        else    load4(rb[l], B, ldb, K, N, k0 + g / (BN4 / VEC4), col0 + g % (BN4 / VEC4) * VEC4, vecB);
    }
}

/* ... and into the shared tiles As[kk][m], Bs[kk][n] (the same groups). */
static __device__ __forceinline__ void store_tiles4(SHARED_PTR(float) As, SHARED_PTR(float) Bs, const float ra[LOADS4][VEC4],
                                                    const float rb[LOADS4][VEC4], int tid, int tA, int tB) {
    for (int l = 0; l < LOADS4; l++) {
        int g = tid + l * THREADS4;
        for (int u = 0; u < VEC4; u++) {
            if (tA) As[(g / (BM4 / VEC4)) * BM4 + g % (BM4 / VEC4) * VEC4 + u] = ra[l][u];
            else    As[(g % (BK4 / VEC4) * VEC4 + u) * BM4 + g / (BK4 / VEC4)] = ra[l][u];
            if (tB) Bs[(g % (BK4 / VEC4) * VEC4 + u) * BN4 + g / (BK4 / VEC4)] = rb[l][u];
            else    Bs[(g / (BN4 / VEC4)) * BN4 + g % (BN4 / VEC4) * VEC4 + u] = rb[l][u];
        }
    }
}

__global__ __launch_bounds__(THREADS4) void sgemm_kernel4(int tA, int tB, int M, int N, int K, float alpha,
                                                          const float *A, int lda, const float *B, int ldb,
                                                          float beta, float *C, int ldc,
                                                          long long sA, long long sB, long long sC,
                                                          int vecA, int vecB) {
    SHARED(float, As4, 2 * BK4 * BM4);   /* two buffers of As4[kk][m] = op(A)[row0+m, k0+kk] */
    SHARED(float, Bs4, 2 * BK4 * BN4);   /* two buffers of Bs4[kk][n] = op(B)[k0+kk, col0+n] */
    A += blockIdx.z * sA; B += blockIdx.z * sB; C += blockIdx.z * sC;
    int tid = threadIdx.x, tx = tid % TX4, ty = tid / TX4;
    int row0 = blockIdx.y * BM4, col0 = blockIdx.x * BN4;
    float acc[TM4][TN4] = {};   /* the thread's micro-tile of C, in registers */
    float ra[LOADS4][VEC4], rb[LOADS4][VEC4];
    load_tiles4(ra, rb, tid, A, tA, lda, vecA, B, tB, ldb, vecB, M, N, K, row0, col0, 0);
    store_tiles4(As4, Bs4, ra, rb, tid, tA, tB);
    __syncthreads();
    int cur = 0;
    for (int k0 = 0; k0 < K; k0 += BK4) {
        int more = k0 + BK4 < K;   /* the same in every thread: the barrier below is reached by all */
        if (more) load_tiles4(ra, rb, tid, A, tA, lda, vecA, B, tB, ldb, vecB, M, N, K, row0, col0, k0 + BK4);
        SHARED_PTR(float) as = As4 + cur * BK4 * BM4;
        SHARED_PTR(float) bs = Bs4 + cur * BK4 * BN4;
        for (int kk = 0; kk < BK4; kk++) tile_multiply(acc, as, bs, kk, tx, ty);
        if (more) store_tiles4(As4 + (cur ^ 1) * BK4 * BM4, Bs4 + (cur ^ 1) * BK4 * BN4, ra, rb, tid, tA, tB);
        __syncthreads();
        cur ^= 1;
    }
    tile_store(C, ldc, M, N, row0, col0, tx, ty, acc, alpha, beta);
}

/* 1 when float4 loads of X are allowed: 16-byte aligned base, and every row
 * start (ld) and batch start (stride) a multiple of 4 floats. */
static int vec4_ok(const float *X, int ld, long long stride) {
    return (uintptr_t)X % 16 == 0 && ld % VEC4 == 0 && stride % VEC4 == 0;
}

/* ------------------------------------------------------------------------- */
/* One launcher for every version; `batch` matrices (grid z).                */
void gemm_cuda_batched(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda, long long sA,
                       const float *B, int ldb, long long sB, float beta, float *C, int ldc, long long sC, int batch) {
    if (M <= 0 || N <= 0 || batch <= 0) return;
    switch (gemm_cuda_version()) {
    case 1: {
        dim3 grid(ceil_div(N, T1), ceil_div(M, T1), batch), block(T1, T1);
        LAUNCH(sgemm_kernel1, grid, block, 0, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, sA, sB, sC);
        break;
    }
    case 2: {
        dim3 grid(ceil_div(N, T2), ceil_div(M, T2), batch), block(T2, T2);
        LAUNCH(sgemm_kernel2, grid, block, 0, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, sA, sB, sC);
        break;
    }
    case 3: {
        dim3 grid(ceil_div(N, BN3), ceil_div(M, BM3), batch);
        LAUNCH(sgemm_kernel3, grid, THREADS3, 0, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, sA, sB, sC);
        break;
    }
    default: {
        dim3 grid(ceil_div(N, BN4), ceil_div(M, BM4), batch);
        int vecA = vec4_ok(A, lda, sA), vecB = vec4_ok(B, ldb, sB);
        LAUNCH(sgemm_kernel4, grid, THREADS4, 0, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, sA, sB, sC,
               vecA, vecB);
        break;
    }
    }
}

void sgemm_cuda(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc) {
    gemm_cuda_batched(tA, tB, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

/* ------------------------------------------------------------------------- */
/* Timing for `dkd bench --gemm` (gemm_bench.c): GFLOP/s of version v on one
 * shape (G matrices of M x N x K, the operands packed: lda = columns of the
 * stored A). Operands are zero-filled device buffers; one warm-up launch,
 * then `reps` launches timed together with CUDA events. Returns -1 when the
 * shape needs more memory than the device has free. */
double gemm_cuda_gflops(int v, int tA, int tB, int M, int N, int K, int G, int reps) {
    size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
    size_t bytes = sizeof(float) * (na + nb + nc) * (size_t)G, free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess || bytes > free_b / 2) return -1.0;
    float *A = NULL, *B = NULL, *C = NULL;
    cudaCheck(cudaMalloc(&A, sizeof(float) * na * G));
    cudaCheck(cudaMalloc(&B, sizeof(float) * nb * G));
    cudaCheck(cudaMalloc(&C, sizeof(float) * nc * G));
    cudaCheck(cudaMemset(A, 0, sizeof(float) * na * G));
    cudaCheck(cudaMemset(B, 0, sizeof(float) * nb * G));
    int lda = tA ? M : K, ldb = tB ? K : N, old = g_gemm_version;
    gemm_cuda_set_version(v);
    gemm_cuda_batched(tA, tB, M, N, K, 1.0f, A, lda, (long long)na, B, ldb, (long long)nb, 0.0f, C, N, (long long)nc, G);
    cudaEvent_t t0, t1;
    cudaCheck(cudaEventCreate(&t0));
    cudaCheck(cudaEventCreate(&t1));
    cudaCheck(cudaEventRecord(t0, dkd_cuda_stream()));
    for (int r = 0; r < reps; r++)
        gemm_cuda_batched(tA, tB, M, N, K, 1.0f, A, lda, (long long)na, B, ldb, (long long)nb, 0.0f, C, N,
                          (long long)nc, G);
    cudaCheck(cudaEventRecord(t1, dkd_cuda_stream()));
    cudaCheck(cudaEventSynchronize(t1));
    float ms = 0.0f;
    cudaCheck(cudaEventElapsedTime(&ms, t0, t1));
    g_gemm_version = old;
    cudaCheck(cudaEventDestroy(t0)); cudaCheck(cudaEventDestroy(t1));
    cudaCheck(cudaFree(A)); cudaCheck(cudaFree(B)); cudaCheck(cudaFree(C));
    double flops = 2.0 * M * N * (double)K * G * reps;
    return ms > 0 ? flops / (ms * 1e-3) / 1e9 : -1.0;
}
