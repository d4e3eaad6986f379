/* kernels/linear.cu — the fully connected layer on the GPU (reference: kernels/linear.c).
 *
 * What it computes (x [N,IN], w [OUT,IN], b [OUT]):
 *   forward   y [N,OUT]   = x w^T + b          y[n,o]  = sum_i x[n,i] w[o,i] + b[o]
 *   backward  dx [N,IN]  += dy w               dx[n,i] += sum_o dy[n,o] w[o,i]
 *             dw [OUT,IN] = dy^T x             dw[o,i]  = sum_n dy[n,o] x[n,i]
 *             db [OUT]    = column sums of dy  db[o]    = sum_n dy[n,o]
 * The three products are one matrix multiply C[M,P] = A[M,K] B[K,P] read
 * through strides, so ONE kernel serves all three:
 *   A(m,k) = A[m*a_m + k*a_k],   B(k,p) = B[k*b_k + p*b_p]
 *   forward  M=N   P=OUT K=IN   A = x  (a_m=IN, a_k=1)    B = w^T (b_k=1,  b_p=IN)
 *   dx       M=N   P=IN  K=OUT  A = dy (a_m=OUT, a_k=1)   B = w   (b_k=IN, b_p=1)
 *   dw       M=OUT P=IN  K=N    A = dy^T (a_m=1, a_k=OUT) B = x   (b_k=IN, b_p=1)
 *
 * How work maps to blocks and threads: the classic shared-memory tiled GEMM.
 * A block of T x T threads computes a T x T tile of C, thread (tx, ty) the
 * element (m0+ty, p0+tx). The K dimension is walked in steps of T: the block
 * loads a T x T tile of A and of B into shared memory (each thread one
 * element of each), waits (__syncthreads), then every thread does T
 * multiply-adds from shared memory, and waits again before the next tiles
 * overwrite them. Each global element is thus read by the block once instead
 * of T times. A tile is loaded "along the contiguous dimension" of its matrix
 * (consecutive tx read consecutive addresses) so loads stay coalesced for the
 * transposed operand of dw too. Rows are padded to T+1 floats so that the
 * transposed stores do not hit the same shared-memory bank.
 * T is a run-time knob (linear_cuda_tile: 8, 16 or 32 -> 64..1024 threads);
 * the shared tiles are the launch's dynamic shared memory.
 *
 * Determinism: every C element is summed by ONE thread, over k = 0..K-1 in
 * order, whatever T is. dw's reduction over the batch is therefore in a fixed
 * order (no atomics), and results do not even depend on the tile size.
 * (nvcc fuses each multiply-add into an fma, the C reference does not: the
 * GPU result differs from the CPU's in the last bits; the emulator, compiled
 * by g++ without contraction, need not match the CPU order either, since
 * sgemm_cpu may block its loops: tests use a tolerance.)
 * db is a separate small kernel: one thread per output o sums its column of dy
 * over n in order (consecutive threads read consecutive o: coalesced).
 */
#include "kernels/cuda_common.h"   // defines: LAUNCH, EXTERN_SHARED, ceil_div
#include "kernels/cuda_ops.h"      // defines: the _cuda declarations

/* Tuning knob: the tile edge T (8, 16 or 32). Tests run every value. */
extern "C" { int linear_cuda_tile = 16; }

/* C (=, or += when accumulate) = A B (+ bias[p] when bias != NULL). */
__global__ void linear_gemm_kernel(float *__restrict__ Cm, const float *__restrict__ A, const float *__restrict__ Bm,
                                   const float *__restrict__ bias, int M, int P, int K,
                                   int a_m, int a_k, int b_k, int b_p, int accumulate) {
    EXTERN_SHARED(float, tiles);
    int T = blockDim.x, TP = T + 1;          /* tile edge, padded row length */
    float *As = tiles;                        /* As[r*TP + k]: A(m0+r, k0+k) */
    float *Bs = tiles + T * TP;               /* Bs[k*TP + c]: B(k0+k, p0+c) */
    int tx = threadIdx.x, ty = threadIdx.y;
    int m0 = blockIdx.y * T, p0 = blockIdx.x * T;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += T) {
        /* A tile: if A is contiguous along m (dw), let tx run along m. */
        int ar = a_m == 1 ? tx : ty, ak = a_m == 1 ? ty : tx;
        int m = m0 + ar, k = k0 + ak;
        As[ar * TP + ak] = (m < M && k < K) ? A[(size_t)m * a_m + (size_t)k * a_k] : 0.0f;
        /* B tile: if B is contiguous along k (forward: w^T), let tx run along k. */
        int bk = b_k == 1 ? tx : ty, bc = b_k == 1 ? ty : tx;
        k = k0 + bk;
        int p = p0 + bc;
        Bs[bk * TP + bc] = (k < K && p < P) ? Bm[(size_t)k * b_k + (size_t)p * b_p] : 0.0f;
        __syncthreads();
        for (int kk = 0; kk < T; kk++) acc += As[ty * TP + kk] * Bs[kk * TP + tx];
        __syncthreads();
    }
    int m = m0 + ty, p = p0 + tx;
    if (m < M && p < P) {
        size_t o = (size_t)m * P + p;
        if (bias) acc += bias[p];
        Cm[o] = accumulate ? Cm[o] + acc : acc;
    }
}

/* db[o] = sum over n of dy[n,o], in order of n. */
__global__ void linear_bias_grad_kernel(float *__restrict__ db, const float *__restrict__ dy, int N, int OUT) {
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= OUT) return;
    float acc = 0.0f;
    for (int n = 0; n < N; n++) acc += dy[(size_t)n * OUT + o];
    db[o] = acc;
}

static void linear_gemm(float *Cm, const float *A, const float *Bm, const float *bias, int M, int P, int K,
                        int a_m, int a_k, int b_k, int b_p, int accumulate) {
    int T = linear_cuda_tile;
    if (T != 8 && T != 16 && T != 32) T = 16;
    dim3 grid(ceil_div(P, T), ceil_div(M, T)), block(T, T);
    size_t smem = sizeof(float) * 2 * T * (T + 1);
    LAUNCH(linear_gemm_kernel, grid, block, smem, Cm, A, Bm, bias, M, P, K, a_m, a_k, b_k, b_p, accumulate);
}

extern "C" void linear_forward_cuda(float *y, const float *x, const float *w, const float *b, int N, int IN, int OUT) {
    if (N <= 0 || OUT <= 0) return;
    linear_gemm(y, x, w, b, N, OUT, IN, IN, 1, 1, IN, 0);
}

/* dx (+=, may be NULL), dw (=), db (=, may be NULL) */
extern "C" void linear_backward_cuda(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                     int N, int IN, int OUT) {
    if (N <= 0 || IN <= 0 || OUT <= 0) return;
    if (dx) linear_gemm(dx, dy, w, NULL, N, IN, OUT, OUT, 1, IN, 1, 1);
    if (dw) linear_gemm(dw, dy, x, NULL, OUT, IN, N, 1, OUT, IN, 1, 0);
    if (db) LAUNCH(linear_bias_grad_kernel, ceil_div(OUT, 128), 128, 0, db, dy, N, OUT);
}
