/* kernels/cuda_ops.h — declarations of the CUDA ops: the same signatures as the
 * C references in dkd.h with suffix _cuda; every pointer is DEVICE memory
 * (labels y are int32 on the device). Same conventions: input gradients
 * accumulate (+=) and may be NULL, parameter gradients are overwritten,
 * reductions in a fixed order (no float atomics in backward passes). */
#ifndef DKD_CUDA_OPS_H
#define DKD_CUDA_OPS_H
#include "dkd.h"
#ifdef __cplusplus
extern "C" {
#endif
size_t conv2d_workspace_floats_cuda(int N, int C, int H, int W, int OC, int K, int S, int P, int G);
void conv2d_forward_cuda(float *y, const float *x, const float *w, const float *b,
                        int N, int C, int H, int W, int OC, int K, int S, int P, int G, float *ws);
void conv2d_backward_cuda(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                         int N, int C, int H, int W, int OC, int K, int S, int P, int G, float *ws);
/* kernels/gemm.cu: C = alpha op(A) op(B) + beta C (sgemm_cpu's contract), and
 * the same for `batch` matrices at strides sA, sB, sC (floats) in one launch. */
void sgemm_cuda(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);
void gemm_cuda_batched(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda, long long sA,
                       const float *B, int ldb, long long sB, float beta, float *C, int ldc, long long sC, int batch);
/* The GEMM version knob (tests, benchmarks): 1..gemm_cuda_versions(); 0 = the
 * default (environment DKD_GEMM_VERSION, else the last version). */
void gemm_cuda_set_version(int v);
int gemm_cuda_version(void);
int gemm_cuda_versions(void);
/* GFLOP/s of version v on G packed M x N x K products, timed with CUDA events
 * over `reps` launches (dkd bench --gemm); -1 if the device lacks the memory. */
double gemm_cuda_gflops(int v, int tA, int tB, int M, int N, int K, int G, int reps);
void batchnorm_forward_train_cuda(float *y, float *save_mean, float *save_invstd,
                                 float *run_mean, float *run_var, const float *x,
                                 const float *gamma, const float *beta,
                                 int N, int C, int HW, float momentum, float eps, int n_updates);
void batchnorm_forward_eval_cuda(float *y, const float *x, const float *gamma, const float *beta,
                                const float *run_mean, const float *run_var,
                                int N, int C, int HW, float eps);
void batchnorm_backward_cuda(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                            const float *save_mean, const float *save_invstd, const float *gamma,
                            int N, int C, int HW);
/* Fused (kernels/batchnorm.cu): 1 = done, 0 = declined because fusion is off
 * (DKD_CUDA_FUSED=0, or cuda_fused = 0: -1 means read the environment). */
extern int cuda_fused;
int cuda_fused_on(void);   /* cuda_fused, read from the environment the first time */
int batchnorm_relu_backward_cuda(float *dx, float *dgamma, float *dbeta, const float *dy, const float *relu_y,
                                 const float *x, const float *save_mean, const float *save_invstd,
                                 const float *gamma, int N, int C, int HW);
int batchnorm_eval_relu_cuda(float *y, const float *x, const float *res, const float *gamma, const float *beta,
                             const float *run_mean, const float *run_var, int N, int C, int HW, float eps);
int batchnorm_train_relu_cuda(float *y, float *save_mean, float *save_invstd, float *run_mean, float *run_var,
                              const float *x, const float *res, const float *gamma, const float *beta,
                              int N, int C, int HW, float momentum, float eps, int n_updates);
/* Fused (kernels/conv.cu): y = bn_eval(conv(x)) [+ res] [relu], conv2d_forward's
 * arguments then BN's; 1 = done, 0 = declined (fusion off, as above). */
int conv2d_bn_eval_cuda(float *y, const float *x, const float *w, const float *b, int N, int C, int H, int W,
                        int OC, int K, int S, int P, int G, float *ws, const float *res, const float *gamma,
                        const float *beta, const float *run_mean, const float *run_var, float eps, int relu);
void relu_forward_cuda(float *y, const float *x, size_t n);
void relu_backward_cuda(float *dx, const float *dy, const float *y, size_t n);
void maxpool_forward_cuda(float *y, const float *x, int N, int C, int H, int W, int K, int S);
void maxpool_backward_cuda(float *dx, const float *dy, const float *x, int N, int C, int H, int W, int K, int S);
void avgpool_forward_cuda(float *y, const float *x, int N, int C, int H, int W, int K, int S, int P);
void avgpool_backward_cuda(float *dx, const float *dy, int N, int C, int H, int W, int K, int S, int P);
void linear_forward_cuda(float *y, const float *x, const float *w, const float *b, int N, int IN, int OUT);
void linear_backward_cuda(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                         int N, int IN, int OUT);
void add_forward_cuda(float *y, const float *a, const float *b, size_t n);
void add_backward_cuda(float *da, float *db, const float *dy, size_t n);
void concat_forward_cuda(float *y, const float *a, const float *b, int N, int Ca, int Cb, int HW);
void concat_backward_cuda(float *da, float *db, const float *dy, int N, int Ca, int Cb, int HW);
void split_forward_cuda(float *y, const float *x, int N, int C, int HW, int c0, int Cs);
void split_backward_cuda(float *dx, const float *dy, int N, int C, int HW, int c0, int Cs);
void shuffle_forward_cuda(float *y, const float *x, int N, int C, int HW, int G);
void shuffle_backward_cuda(float *dx, const float *dy, int N, int C, int HW, int G);
void ce_loss_cuda(float *dz, float *rows, const float *z, const int *y, int B, int NC, LossParams p);
void kd_loss_cuda(float *dz, float *rows, const float *z, const float *v, const int *y, int B, int NC, LossParams p);
void dkd_loss_cuda(float *dz, float *rows, const float *z, const float *v, const int *y, int B, int NC, LossParams p);
void sgd_step_cuda(float *p, const float *g, float *buf, size_t n, const float *lr, float momentum, float wd);
void augment_batch_cuda(float *x, const uint8_t *data, const int *idx, int B,
                       uint64_t seed, const int *epoch, int augment);
/* kernels/step.cu: the step bookkeeping (dkd.h, kernels/step.c) */
void counter_add_cuda(int64_t *c, int64_t inc);
void batch_gather_cuda(int *idx, int *lab, const int *order, const int *labels, const int *step, int B, int n);
void step_record_cuda(float *rec, int *hits, int *step, const float *rows, int W, const float *z, const int *lab,
                      int B, int nb, int NC);
#ifdef __cplusplus
}
#endif
#endif
