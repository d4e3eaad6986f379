/* dkd.h — the single header of dkd: Decoupled Knowledge Distillation on CIFAR-100
 * in plain C (reference) and hand-written CUDA.
 *
 * Dimension legend, used in every shape comment of the project:
 *   N (or B) batch      C channels        H, W  height, width
 *   OC out-channels     K kernel size     S stride   P padding   G groups
 *   NC classes (100)    HW = H*W          OH, OW output height/width
 * Tensors are NCHW float32, contiguous, row-major.
 *
 * Layout of the program (see README.md):
 *   kernels/NAME.c   CPU reference of one op (forward + backward)   suffix _cpu
 *   kernels/NAME.cu  the same op as CUDA kernels, same signature     suffix _cuda
 *   net.c            the network: parameters, arenas, forward/backward walk
 *   models/NAME.c       the 15 mdistiller architectures + the registry
 *   pickle.c, pth.c  PyTorch checkpoints (zip + legacy) in and out (pickle.h: the
 *                    unpickler's values, for pth.c and cifar.c only)
 *   checkpoint.c     Net <-> state_dict (strict load, save)
 *   cifar.c          CIFAR-100 files, augmentation, batches
 *   train.c          the training loop, evaluation, logs, checkpoints
 *   plot.c           PNG curves
 *   main.c           the command line
 *
 * Everything C-callable is wrapped in extern "C" so the .cu files (compiled as
 * C++ by nvcc, or by g++ against tests/cuda_emu.h) share these declarations.
 */
#ifndef DKD_H
#define DKD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------- */
/* Errors and small utilities (util.c)                                        */
/* ------------------------------------------------------------------------- */

/* Last error message; functions that can fail return -1 (or NULL) and fill it. */
extern char dkd_errbuf[1024];
/* printf-style: store an error message, return -1. */
int dkd_fail(const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Print "dkd: error: ..." to stderr and exit(1). */
void dkd_die(const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;
void *xmalloc(size_t n);                 /* malloc or die with a message */
void *xcalloc(size_t n, size_t sz);      /* calloc or die with a message */
void *xrealloc(void *p, size_t n);       /* realloc or die */
double now_seconds(void);                /* monotonic wall clock */
/* Read a whole file into memory; returns NULL and sets dkd_errbuf on failure. */
unsigned char *read_file(const char *path, size_t *len);
/* Write a file atomically: path.tmp then fsync + rename. 0 or -1. */
int write_file_atomic(const char *path, const void *data, size_t len);
int dkd_num_threads(void);               /* OpenMP threads in use (1 without OpenMP) */
int dkd_num_procs(void);                 /* processors OpenMP may use (1 without OpenMP): sizes workspaces */
void dkd_set_threads(int n);             /* set OpenMP threads (no-op without OpenMP) */

/* ------------------------------------------------------------------------- */
/* The counter-based RNG: a pure function of (seed, stream, a, b), so that the */
/* CPU and CUDA paths, and a resumed run, draw exactly the same numbers.      */
/* ------------------------------------------------------------------------- */
#if defined(__CUDACC__) || defined(DKD_CUDA_EMU)
#define DKD_HD __host__ __device__
#else
#define DKD_HD
#endif

/* SplitMix64 finaliser: a good 64-bit mixing function. */
static inline DKD_HD uint64_t dkd_mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
/* 32 random bits for (seed, stream, a, b). Streams name the purpose. */
static inline DKD_HD uint32_t dkd_rand32(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b) {
    uint64_t h = dkd_mix64(seed ^ dkd_mix64(((uint64_t)stream << 32) | a));
    return (uint32_t)(dkd_mix64(h ^ ((uint64_t)b * 0xd6e8feb86659fd93ULL)) >> 32);
}
enum { RNG_SHUFFLE = 1, RNG_AUGMENT = 2, RNG_INIT = 3 };

/* ------------------------------------------------------------------------- */
/* Ops: CPU references (kernels/NAME.c). The CUDA versions (kernels/NAME.cu) have   */
/* the same signatures with suffix _cuda and take device pointers.            */
/*                                                                           */
/* Conventions for every backward:                                           */
/*  - input gradients (dx, da, db of add, ...) are ACCUMULATED: dx += ...     */
/*    (the net zeroes the activation-gradient arena before the backward walk, */
/*    so residual branches add up naturally); dx may be NULL: skip it.        */
/*  - parameter gradients (dw, db, dgamma, dbeta) are OVERWRITTEN.            */
/*  - reductions run in a fixed order, independent of the number of threads.  */
/* ------------------------------------------------------------------------- */

/* conv2d: x [N,C,H,W], w [OC,C/G,K,K], b [OC] or NULL -> y [N,OC,OH,OW],
 * OH = (H+2P-K)/S+1. Cross-correlation, zero padding, groups G (C%G==0, OC%G==0).
 * ws: workspace of conv2d_workspace_floats(...) floats (im2col columns etc). */
/* The definition as seven plain loops in double (kernels/conv.c): the tests' reference. */
void conv2d_forward_direct(double *y, const double *x, const double *w, const double *b,
                           int N, int C, int H, int W, int OC, int K, int S, int P, int G);
size_t conv2d_workspace_floats(int N, int C, int H, int W, int OC, int K, int S, int P, int G);
void conv2d_forward_cpu(float *y, const float *x, const float *w, const float *b,
                        int N, int C, int H, int W, int OC, int K, int S, int P, int G, float *ws);
/* The same for an eval-mode forward (teacher forwards, evaluation, inference): its wide
 * 3x3 layers may take Winograd F(4x4, 3x3), faster but with a larger rounding error
 * (measured in kernels/winograd.c); training forwards and gradients never do.
 * cache: NULL, or conv2d_eval_cache_floats(...) floats kept by the caller for this layer:
 * cached = 0 fills it with the weights as the layer's path multiplies with them
 * (transformed or packed), cached = 1 uses them as they are (weights unchanged since).
 * res (NULL, or shaped like y) and relu: y = relu?(conv + b + res), the residual add and
 * ReLU that follow the layer, done while its output is in the cache (kernels/epilogue.h). */
void conv2d_forward_eval_cpu(float *y, const float *x, const float *w, const float *b, int N, int C, int H, int W,
                             int OC, int K, int S, int P, int G, float *ws, float *cache, int cached, const float *res,
                             int relu);
size_t conv2d_eval_cache_floats(int C, int H, int W, int OC, int K, int S, int P, int G);
/* dx [N,C,H,W] (+=, may be NULL), dw [OC,C/G,K,K] (=), db [OC] (=, may be NULL) */
void conv2d_backward_cpu(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                         int N, int C, int H, int W, int OC, int K, int S, int P, int G, float *ws);
/* The same with dx written (=), its old contents never read: for a conv that is its
 * input's one reader (net.c's Node.dact_set). */
void conv2d_backward_set_cpu(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                             int N, int C, int H, int W, int OC, int K, int S, int P, int G, float *ws);
/* The largest window, in taps (K*K), of the CPU's padded depthwise path
 * (kernels/conv.c, stride 1): its dW keeps one double sum per tap of a filter
 * in a stack array of this size. Every model here uses 3x3 (9 taps); a larger
 * depthwise window is not an error, it takes the plain loops instead. */
enum { CONV_MAX_TAPS = 64 };

/* Plain row-major SGEMM used by conv and linear on the CPU:
 * C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, op = transpose when tX != 0.
 * lda/ldb/ldc are row strides of the stored matrices. Deterministic. */
void sgemm_cpu(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

/* batchnorm2d, x,y [N,C,HW]; gamma, beta [C]; running mean/var [C].
 * train: batch mean, biased variance for normalising; running stats updated
 * n_updates times (1, or 2 for the WRN quirk) with momentum, unbiased variance.
 * save_mean, save_invstd [C] are kept for the backward. */
void batchnorm_forward_train_cpu(float *y, float *save_mean, float *save_invstd,
                                 float *run_mean, float *run_var, const float *x,
                                 const float *gamma, const float *beta,
                                 int N, int C, int HW, float momentum, float eps, int n_updates);
void batchnorm_forward_eval_cpu(float *y, const float *x, const float *gamma, const float *beta,
                                const float *run_mean, const float *run_var,
                                int N, int C, int HW, float eps);
/* Train mode, then relu (one pass; y is the ReLU's output): net.c's CPU training
 * forward fuses a bn->relu whose BN output has no other reader. */
void batchnorm_relu_forward_train_cpu(float *y, float *save_mean, float *save_invstd, float *run_mean, float *run_var,
                                      const float *x, const float *gamma, const float *beta, int N, int C, int HW,
                                      float momentum, float eps, int n_updates);
/* The same, then relu (one pass): the eval-mode bn->relu of net.c's fusion. */
void batchnorm_relu_forward_eval_cpu(float *y, const float *x, const float *gamma, const float *beta,
                                     const float *run_mean, const float *run_var, int N, int C, int HW, float eps);
/* The backward of relu(bn(x)) from the ReLU's output gradient dy and output y, in the
 * same two passes (the Backend's optional fused op; always done: returns 1). */
int batchnorm_relu_backward_cpu(float *dx, float *dgamma, float *dbeta, const float *dy, const float *relu_y,
                                const float *x, const float *save_mean, const float *save_invstd, const float *gamma,
                                int N, int C, int HW);
/* dx (+=), dgamma, dbeta (=) */
void batchnorm_backward_cpu(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                            const float *save_mean, const float *save_invstd, const float *gamma,
                            int N, int C, int HW);
/* The same, or of relu(bn(x)) when relu_y is not NULL, with dx written (=) instead of
 * added to: for a BN that is the one reader of its input (net.c then never zeroes dx). */
void batchnorm_backward_assign_cpu(float *dx, float *dgamma, float *dbeta, const float *dy, const float *relu_y,
                                   const float *x, const float *save_mean, const float *save_invstd,
                                   const float *gamma, int N, int C, int HW);

/* relu over n elements; backward masks with y > 0 (relu'(0) = 0 as in PyTorch). */
void relu_forward_cpu(float *y, const float *x, size_t n);
void relu_backward_cpu(float *dx, const float *dy, const float *y, size_t n);
/* dx written (=), not added to */
void relu_backward_assign_cpu(float *dx, const float *dy, const float *y, size_t n);

/* max pool K×K stride S, no padding: x [N,C,H,W] -> y [N,C,OH,OW]; ties go to
 * the first element in row-major window order. Backward recomputes the argmax. */
void maxpool_forward_cpu(float *y, const float *x, int N, int C, int H, int W, int K, int S);
void maxpool_backward_cpu(float *dx, const float *dy, const float *x, int N, int C, int H, int W, int K, int S);

/* average pool K×K stride S padding P, count_include_pad=True (always divides by K*K).
 * Global average pooling is K=H=W, S=K, P=0. */
void avgpool_forward_cpu(float *y, const float *x, int N, int C, int H, int W, int K, int S, int P);
void avgpool_backward_cpu(float *dx, const float *dy, int N, int C, int H, int W, int K, int S, int P);

/* linear: x [N,IN], w [OUT,IN], b [OUT] -> y [N,OUT] = x w^T + b */
void linear_forward_cpu(float *y, const float *x, const float *w, const float *b, int N, int IN, int OUT);
void linear_backward_cpu(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                         int N, int IN, int OUT);

/* elementwise add y = a + b (n elements); backward: da += dy, db += dy */
void add_forward_cpu(float *y, const float *a, const float *b, size_t n);
void add_backward_cpu(float *da, float *db, const float *dy, size_t n);
/* da, db written (=) where da_set, db_set, else added to (net.c's Node.dact_set) */
void add_backward_assign_cpu(float *da, int da_set, float *db, int db_set, const float *dy, size_t n);

/* concat along channels: a [N,Ca,HW], b [N,Cb,HW] -> y [N,Ca+Cb,HW] */
void concat_forward_cpu(float *y, const float *a, const float *b, int N, int Ca, int Cb, int HW);
void concat_backward_cpu(float *da, float *db, const float *dy, int N, int Ca, int Cb, int HW);

/* channel slice: y [N,Cs,HW] = x[:, c0:c0+Cs] of x [N,C,HW] */
void split_forward_cpu(float *y, const float *x, int N, int C, int HW, int c0, int Cs);
void split_backward_cpu(float *dx, const float *dy, int N, int C, int HW, int c0, int Cs);

/* channel shuffle with G groups: out channel i*G+j = in channel j*(C/G)+i */
void shuffle_forward_cpu(float *y, const float *x, int N, int C, int HW, int G);
void shuffle_backward_cpu(float *dx, const float *dy, int N, int C, int HW, int G);

/* Losses over logits z [B,NC] (student), v [B,NC] (teacher), labels y [B].
 * Each writes the gradient of the TOTAL loss w.r.t. z into dz [B,NC] (=, may be
 * NULL for CE in evaluation) and per-row terms into rows [B,3] (see each).
 * The batch loss is assembled on the host by loss_total() in a fixed order. */
typedef struct {
    float ce_weight;   /* λ: 1.0 for DKD and vanilla, 0.1 for KD */
    float kd_weight;   /* KD only: 0.9 */
    float alpha, beta; /* DKD: α (1.0), β (per pair) */
    float T;           /* temperature (4.0) */
    float warm;        /* DKD warm-up factor min(epoch/20, 1) */
    const float *warm_at;  /* NULL, or ONE float in backend memory that the DKD loss reads
                            * the warm-up factor from when it runs (warm is then unused by
                            * the loss, but loss_total, on the host, still reads warm): a
                            * step captured once as a CUDA graph follows the warm-up */
} LossParams;
/* rows[b] = {CE_b, 0, 0} */
void ce_loss_cpu(float *dz, float *rows, const float *z, const int *y, int B, int NC, LossParams p);
/* rows[b] = {CE_b, KL(q||p)_b, 0} with tempered softmaxes (docs/dkd_loss.md) */
void kd_loss_cpu(float *dz, float *rows, const float *z, const float *v, const int *y, int B, int NC, LossParams p);
/* rows[b] = {CE_b, TCKD_b = KL(bT||bS), NCKD_b = KL(q^||p^)}, stable per-row form (docs/dkd_loss.md §7) */
void dkd_loss_cpu(float *dz, float *rows, const float *z, const float *v, const int *y, int B, int NC, LossParams p);

enum { LOSS_CE = 0, LOSS_KD = 1, LOSS_DKD = 2 };
/* The parts of a batch loss. A field a loss does not have is 0. */
typedef struct {
    double ce;       /* every loss: mean CE (unweighted) */
    double kl;       /* KD only: T²/B Σ KL_b, the whole KL divergence (KD has no split) */
    double tckd;     /* DKD only: T²/B Σ TCKD_b, the target-class term */
    double nckd;     /* DKD only: T²/B Σ NCKD_b, the non-target term */
    double distill;  /* the distillation part as back-propagated (mdistiller's loss_kd, the
                      * train_kd column of log.csv): DKD warm·(α·tckd + β·nckd), KD kd_weight·kl */
    double total;    /* ce_weight·ce + distill */
} LossValue;
/* Sum the per-row terms (host memory, [B,3]) in row order. */
LossValue loss_total(int kind, const float *rows, int B, LossParams p);

/* SGD with momentum (dampening 0, no Nesterov) and weight decay, PyTorch order:
 *   d = g + wd*p ; buf = momentum*buf + d ; p = p - lr*buf
 * buf starts at 0, which makes the first step buf = d exactly as torch does.
 * lr points to ONE float in the backend's memory, read when the step runs (not
 * when it is launched): a training step captured once as a CUDA graph then follows
 * the learning-rate schedule. On the CPU it is an ordinary pointer. */
void sgd_step_cpu(float *p, const float *g, float *buf, size_t n, const float *lr, float momentum, float wd);

/* Augmented batch from the uint8 data set (docs/recipe.md, step 1): data [Nall,3072] uint8
 * (R,G,B planes), idx [B] sample indices -> x [B,3,32,32] normalised floats.
 * augment=1: zero pad 4, random crop 32 (top i then left j, each in 0..8),
 * flip with p 0.5, all drawn from dkd_rand32(seed, RNG_AUGMENT, epoch, idx[b]).
 * epoch points to ONE int in backend memory, read when the batch is made (a step
 * captured once as a CUDA graph draws each epoch's crops); NULL with augment=0.
 * augment=0: normalise only. */
void augment_batch_cpu(float *x, const uint8_t *data, const int *idx, int B,
                       uint64_t seed, const int *epoch, int augment);
/* The draws for one sample, shared by CPU and CUDA: crop offsets and flip. */
static inline DKD_HD void augment_draw(uint64_t seed, int epoch, int sample, int *ci, int *cj, int *flip) {
    uint32_t r = dkd_rand32(seed, RNG_AUGMENT, (uint32_t)epoch, (uint32_t)sample);
    *ci = (int)((r & 0xffff) % 9u);
    *cj = (int)(((r >> 16) & 0x7fff) % 9u);
    *flip = (int)(r >> 31);
}
/* The bookkeeping of a training step (kernels/step.c; formulas there), which lets
 * a device run the step without the host: each reads the step number s from
 * memory, so a step captured once as a CUDA graph moves on at every replay.
 *   counter_add   c[0] += inc: a device net's count of train forwards (its BN
 *                 layers' num_batches_tracked, folded in by net_to_host)
 *   batch_gather  idx[b] = order[s*B+b], lab[b] = labels[idx[b]] for s*B+b < n (lab NULL: no labels)
 *   step_record   rows [nb,W] -> rec[s*B*W..], top-1 hits of z [nb,NC] against lab ->
 *                 hits[s] (hits NULL: none), then *step = s+1 */
void counter_add_cpu(int64_t *c, int64_t inc);
void batch_gather_cpu(int *idx, int *lab, const int *order, const int *labels, const int *step, int B, int n);
void step_record_cpu(float *rec, int *hits, int *step, const float *rows, int W, const float *z, const int *lab,
                     int B, int nb, int NC);

/* mdistiller's normalisation constants (R, G, B) */
#define CIFAR_MEAN_R 0.5071f
#define CIFAR_MEAN_G 0.4867f
#define CIFAR_MEAN_B 0.4408f
#define CIFAR_STD_R 0.2675f
#define CIFAR_STD_G 0.2565f
#define CIFAR_STD_B 0.2761f

/* ------------------------------------------------------------------------- */
/* Backends: one table of function pointers per device. net.c calls only     */
/* through it, so the same network code runs on the CPU, on a GPU, and (in    */
/* tests) on the CUDA kernels emulated on the CPU.                            */
/* ------------------------------------------------------------------------- */
typedef struct Backend {
    const char *name;                         /* "cpu" or "cuda" */
    /* capabilities: what callers may ask instead of comparing with &backend_cpu */
    int on_device;    /* 1: memory is the device's (upload/download copy, a Net keeps host
                       * copies of its weights apart); 0: host memory, upload/download are
                       * plain copies and a Net's weights are used in place */
    /* memory */
    void *(*alloc)(size_t bytes);             /* device memory (contents undefined) */
    void (*release)(void *p);
    void (*upload)(void *dst, const void *src, size_t bytes);   /* host -> device */
    void (*download)(void *dst, const void *src, size_t bytes); /* device -> host */
    void (*copy)(void *dst, const void *src, size_t bytes);     /* device -> device */
    void (*zero)(void *p, size_t bytes);
    void (*sync)(void);
    /* ops (same signatures as the _cpu functions above) */
    size_t (*conv2d_workspace_floats)(int, int, int, int, int, int, int, int, int);
    void (*conv2d_forward)(float *, const float *, const float *, const float *, int, int, int, int, int, int, int, int, int, float *);
    void (*conv2d_backward)(float *, float *, float *, const float *, const float *, const float *, int, int, int, int, int, int, int, int, int, float *);
    void (*batchnorm_forward_train)(float *, float *, float *, float *, float *, const float *, const float *, const float *, int, int, int, float, float, int);
    void (*batchnorm_forward_eval)(float *, const float *, const float *, const float *, const float *, const float *, int, int, int, float);
    void (*batchnorm_backward)(float *, float *, float *, const float *, const float *, const float *, const float *, const float *, int, int, int);
    void (*relu_forward)(float *, const float *, size_t);
    void (*relu_backward)(float *, const float *, const float *, size_t);
    void (*maxpool_forward)(float *, const float *, int, int, int, int, int, int);
    void (*maxpool_backward)(float *, const float *, const float *, int, int, int, int, int, int);
    void (*avgpool_forward)(float *, const float *, int, int, int, int, int, int, int);
    void (*avgpool_backward)(float *, const float *, int, int, int, int, int, int, int);
    void (*linear_forward)(float *, const float *, const float *, const float *, int, int, int);
    void (*linear_backward)(float *, float *, float *, const float *, const float *, const float *, int, int, int);
    void (*add_forward)(float *, const float *, const float *, size_t);
    void (*add_backward)(float *, float *, const float *, size_t);
    void (*concat_forward)(float *, const float *, const float *, int, int, int, int);
    void (*concat_backward)(float *, float *, const float *, int, int, int, int);
    void (*split_forward)(float *, const float *, int, int, int, int, int);
    void (*split_backward)(float *, const float *, int, int, int, int, int);
    void (*shuffle_forward)(float *, const float *, int, int, int, int);
    void (*shuffle_backward)(float *, const float *, int, int, int, int);
    void (*ce_loss)(float *, float *, const float *, const int *, int, int, LossParams);
    void (*kd_loss)(float *, float *, const float *, const float *, const int *, int, int, LossParams);
    void (*dkd_loss)(float *, float *, const float *, const float *, const int *, int, int, LossParams);
    void (*sgd_step)(float *, const float *, float *, size_t, const float *, float, float);
    void (*augment_batch)(float *, const uint8_t *, const int *, int, uint64_t, const int *, int);
    /* optional fused ops (NULL: none); each returns 1 when it did the work, 0 when it
     * declined, and net.c then runs the separate ops. batchnorm_relu_backward: the
     * backward of relu(bn(x)) from the ReLU's output gradient dy and output y
     * (dx, dgamma, dbeta, dy, y, x, save_mean, save_invstd, gamma, N, C, HW);
     * batchnorm_eval_relu: y = relu(bn_eval(x) + res), res may be NULL
     * (y, x, res, gamma, beta, run_mean, run_var, N, C, HW, eps);
     * batchnorm_train_relu: the same in train mode (y, save_mean, save_invstd, run_mean,
     * run_var, x, res, gamma, beta, N, C, HW, momentum, eps, n_updates);
     * conv2d_bn_eval: y = bn_eval(conv(x)) [+ res] [then relu], the conv's output
     * never stored (conv2d_forward's arguments, then res or NULL, gamma, beta,
     * run_mean, run_var, eps, relu 0/1); y must not overlap x, and res is y or
     * does not overlap it. */
    int (*batchnorm_relu_backward)(float *, float *, float *, const float *, const float *, const float *,
                                   const float *, const float *, const float *, int, int, int);
    int (*batchnorm_eval_relu)(float *, const float *, const float *, const float *, const float *, const float *,
                               const float *, int, int, int, float);
    int (*batchnorm_train_relu)(float *, float *, float *, float *, float *, const float *, const float *,
                                const float *, const float *, int, int, int, float, float, int);
    int (*conv2d_bn_eval)(float *, const float *, const float *, const float *, int, int, int, int, int, int, int,
                          int, int, float *, const float *, const float *, const float *, const float *,
                          const float *, float, int);
    /* step bookkeeping (same signatures as the _cpu functions above) */
    void (*counter_add)(int64_t *, int64_t);
    void (*batch_gather)(int *, int *, const int *, const int *, const int *, int, int);
    void (*step_record)(float *, int *, int *, const float *, int, const float *, const int *, int, int, int);
    /* CUDA graphs (NULL on the CPU). graph_begin starts capturing the backend's
     * stream: from then on its work is recorded, not run, until graph_end, which
     * returns the instantiated graph, or NULL with dkd_errbuf saying why (the
     * capture was invalidated: something inside synchronised, allocated or used
     * another stream); graph_launch replays it (asynchronously, on the stream);
     * graph_free destroys it. */
    int (*graph_begin)(void);
    void *(*graph_end)(void);
    void (*graph_launch)(void *graph);
    void (*graph_free)(void *graph);
} Backend;

extern const Backend backend_cpu;      /* backend_cpu.c */
/* Defined in kernels/backend_cuda.cu when the binary is built with nvcc
 * (DKD_HAVE_CUDA), and in the emulation tests. */
extern const Backend backend_cuda;
/* Number of usable CUDA devices (0 without nvcc or without a GPU). */
int dkd_cuda_device_count(void);
/* "cpu", "cuda" or "auto" -> a backend (NULL + dkd_errbuf for a bad name). */
const Backend *backend_select(const char *device);
/* 1 when the last backend_select("auto") ran in a CUDA build that found no GPU
 * (the CPU fallback; `dkd train` tells the user). */
extern int backend_fell_back;

/* ------------------------------------------------------------------------- */
/* The network (net.c)                                                        */
/* ------------------------------------------------------------------------- */
typedef enum {
    OP_INPUT, OP_CONV, OP_BN, OP_RELU, OP_MAXPOOL, OP_AVGPOOL, OP_LINEAR,
    OP_ADD, OP_CONCAT, OP_SPLIT, OP_SHUFFLE
} OpKind;

/* Entries of the state_dict, in mdistiller's order. */
typedef enum {
    PK_PARAM,     /* trainable float32, lives in Net.params (grads, momentum alike) */
    PK_RUNMEAN,   /* BN running_mean, float32 in Net.stats */
    PK_RUNVAR,    /* BN running_var, float32 in Net.stats */
    PK_NBT        /* BN num_batches_tracked, int64 0-d, in Net.nbt */
} ParamKind;

typedef struct {
    char name[96];      /* state_dict key, e.g. "layer1.0.conv1.weight" */
    int kind;           /* ParamKind */
    int ndim;
    int shape[4];
    size_t numel;
    size_t off;         /* float offset into params (PK_PARAM) or stats; index into nbt for PK_NBT */
    int init;           /* how to initialise (INIT_* below) */
    int fan;            /* fan used by init */
} ParamInfo;

enum { /* parameter initialisers (mdistiller's, per model family) */
    INIT_ZERO, INIT_ONE,
    INIT_KAIMING_OUT,   /* N(0, 2/fan) with fan = OC*K*K */
    INIT_UNIFORM_FAN,   /* U(-1/sqrt(fan), 1/sqrt(fan)), fan = fan_in (PyTorch default) */
    INIT_NORMAL_001     /* N(0, 0.01^2) */
};
/* init "families": which initialisers the builders pick for conv/linear */
enum { FAMILY_RESNET, FAMILY_WRN, FAMILY_VGG, FAMILY_MBV2, FAMILY_SHUFFLE };

typedef struct {
    int op;             /* OpKind */
    int in[2];          /* input node indices (-1 if unused) */
    int C, H, W;        /* output shape per image */
    int K, S, P, G;     /* conv / pool geometry; G = groups (shuffle: groups) */
    int OC;             /* conv out channels / linear out features (== C) */
    int c0;             /* split: first channel */
    int w, b;           /* ParamInfo index of weight/bias (BN: gamma/beta), -1 if none */
    int rm, rv, nbt;    /* BN: ParamInfo index of running mean/var/num_batches_tracked */
    int bn_updates;     /* BN: running-stat updates per train forward (1, WRN quirk: 2) */
    size_t act;         /* float offset of the output in the activation arena */
    size_t save;        /* BN: float offset of mean/invstd (2*C) in the save arena */
    /* eval-mode fusion (net.c, "eval-mode fusion"); set by net_setup on host backends */
    int alias;          /* >= 0: in an eval forward this node is skipped, its output IS node alias's */
    int fold_bn;        /* conv: the BN node folded into its weights (eval), -1 if none */
    int fuse_relu;      /* conv/add: applies the ReLU that follows it (eval) */
    int fuse_add;       /* conv: the other input of the add that follows it, added by the conv (eval), or -1 */
    int dact_set;       /* CPU training: its output gradient is written (=), not added to, by its one reader
                           (a conv, BN, ReLU or add), so the backward never zeroes it first */
    size_t fold;        /* conv with fold_bn: float offset of its folded weights + bias in n->fold */
    size_t wcache;      /* conv (CPU inference nets): float offset of its eval cache in n->wcache */
} Node;

typedef struct Net {
    char model[32];         /* mdistiller name, e.g. "resnet20" */
    int family;             /* FAMILY_* */
    Node *nodes; int n_nodes, cap_nodes;
    ParamInfo *pinfo; int n_pinfo, cap_pinfo;
    size_t n_params;        /* trainable floats */
    size_t n_stats;         /* BN running floats */
    int n_nbt;              /* number of BN layers */
    int output;             /* index of the logits node */
    /* host copies: the canonical weights between steps on the CPU backend */
    float *h_params;        /* [n_params] */
    float *h_stats;         /* [n_stats] */
    int64_t *nbt;           /* [n_nbt] host only */
    int64_t *train_forwards;/* device backends: [1] in device memory, the train forwards run since the host's
                             * nbt was last brought up to date (counted by a kernel, so a captured step counts
                             * at every replay; net_to_host folds it into nbt). NULL on the CPU, where a train
                             * forward adds to nbt directly. */
    /* backend memory (== host copies on the CPU backend) */
    const Backend *be;
    float *params, *grads, *mom, *stats;
    /* arenas, sized once by net_setup for batch <= Bmax */
    int Bmax, trainable;
    size_t act_floats, save_floats, ws_floats;
    float *act, *dact, *save, *ws;
    float *x;               /* input buffer [Bmax,3,32,32] (backend memory) */
    float *fold;            /* eval: BN-folded conv weights and biases (host backends) */
    size_t fold_floats;
    int no_fuse;            /* 1: forwards run every node as written (no BN folding/fusion in eval, no
                               bn->relu / add->relu fusion in CPU training) */
    int fold_valid;         /* inference-only nets: n->fold matches the weights (net_weights_changed clears it) */
    float *wcache;          /* CPU inference nets: every conv's weights as its eval path multiplies with
                               them (conv2d_eval_cache_floats), kept between forwards; NULL otherwise */
    size_t wcache_floats;
    int wcache_key;         /* -1: to be filled; else what filled it: fuse + 2·ISA (kernels/isa.h) */
} Net;

/* Building a network (used by models/NAME.c). Each returns the new node's index.
 * Parameters are registered in call order = mdistiller's state_dict order. */
Net *net_new(const char *model, int family);
int nb_input(Net *n, int C, int H, int W);
int nb_conv(Net *n, int in, const char *name, int OC, int K, int S, int P, int G, int bias);
int nb_bn(Net *n, int in, const char *name);
/* A conv without bias (named conv) followed by its BN (named bn): the unit
 * most blocks of the ResNets, MobileNetV2 and the ShuffleNets are made of. */
int nb_conv_bn(Net *n, int in, const char *conv, const char *bn, int OC, int K, int S, int P, int G);
/* The end of a ResNet block whose main path h started from x with this stride:
 * ReLU(h + shortcut). The shortcut is x itself when the shapes agree, else x
 * through a 1x1/stride conv + BN (named proj_conv, proj_bn) to h's channels. */
int nb_residual(Net *n, int x, int h, const char *proj_conv, const char *proj_bn, int stride);
int nb_relu(Net *n, int in);
int nb_maxpool(Net *n, int in, int K, int S);
int nb_avgpool(Net *n, int in, int K, int S, int P);
int nb_linear(Net *n, int in, const char *name, int OUT);   /* flattens C*H*W */
int nb_add(Net *n, int a, int b);
int nb_concat(Net *n, int a, int b);
int nb_split(Net *n, int in, int c0, int Cs);
int nb_shuffle(Net *n, int in, int G);
/* Helper for builders: printf-formatted names. */
const char *nbname(const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Finish building: allocate host weights (set by net_init_params). */
void net_finalize(Net *n);
void net_free(Net *n);
/* Fresh weights as mdistiller's models initialise them (deterministic in seed); BN γ=1 β=0, running 0/1, nbt 0. */
void net_init_params(Net *n, uint64_t seed);
/* Allocate arenas on backend be for batches up to Bmax. trainable=1: keep every
 * activation for the backward and allocate gradients + momentum; trainable=0:
 * inference only, activations reuse memory (teachers, eval). Uploads weights. */
int net_setup(Net *n, const Backend *be, int Bmax, int trainable);
/* Forward a batch of B images already in n->x (backend memory). train=1:
 * BN uses batch statistics and updates running stats (+nbt). Returns the logits
 * [B,NC] in backend memory. */
float *net_forward(Net *n, int B, int train);
/* Backward from dlogits [B,NC] (backend memory) after a train forward: fills n->grads. */
void net_backward(Net *n, const float *dlogits, int B);
/* One SGD step over the whole flat parameter buffer; lr: one float in backend memory. */
void net_sgd(Net *n, const float *lr, float momentum, float wd);
/* Per-op profile (dkd bench --profile). While net_profile is 1, net_forward and
 * net_backward synchronise the backend after every node and add its wall time to a
 * table keyed by direction, op and (for convolutions) shape; net_profile_report
 * prints the table, largest first, and clears it. Costs a sync per node: off by default. */
extern int net_profile;
extern double net_profile_peak;   /* GFLOP/s; > 0: the report adds each conv's share of it */
void net_profile_report(double total_seconds);
/* Copy weights/stats between backend and host copies (no-ops on the CPU backend). */
/* Call after writing weights or BN statistics of a set-up net other than through
 * net_load_*, net_init_params, net_sgd, net_to_device or a train forward (which call it):
 * an inference-only net keeps its BN-folded eval weights until then. */
void net_weights_changed(Net *n);
void net_to_host(Net *n);
void net_to_device(Net *n);
int net_num_classes(const Net *n);
size_t net_macs(const Net *n);            /* conv + linear MACs per image */
const ParamInfo *net_find(const Net *n, const char *name);
/* Host pointer to a state_dict entry's data (float* for params/stats, int64_t* for nbt). */
void *net_host_ptr(const Net *n, const ParamInfo *pi);

/* ------------------------------------------------------------------------- */
/* The training step (train_step.c): the one train.c runs per batch, in a form */
/* a device runs without the host, captured as a CUDA graph where there is one. */
/* ------------------------------------------------------------------------- */
typedef struct {
    const Backend *be;
    Net *s, *t;                 /* student (set up trainable), teacher (inference) or NULL */
    int kind;                   /* LOSS_CE, LOSS_KD or LOSS_DKD */
    int B, n, NC, steps;        /* batch, training images, classes, steps per epoch */
    const uint8_t *images;      /* [n,3072] the training images, backend memory */
    const int *labels;          /* [n] their labels, backend memory */
    uint64_t seed;              /* the augmentation draws' seed */
    float momentum, wd;
    int use_graph;              /* 1 (the default where the backend has graphs): capture + replay */
    /* per epoch (train_step_epoch): host copies; the kernels read lr, the warm-up factor
     * and the epoch from backend memory (d_lr, lp.warm_at, d_epoch) */
    int epoch; float lr; LossParams lp;
    /* backend memory */
    float *d_lr, *d_warm;       /* [1] this epoch's learning rate and DKD warm-up factor */
    int *d_epoch;               /* [1] this epoch (the augmentation draws) */
    int *order;                 /* [n] the epoch's permutation */
    int *idx, *lab;             /* [B] this step's sample indices and labels (batch_gather) */
    int *step;                  /* [1] the next step of the epoch (0-based) */
    float *dz, *rows;           /* [B,NC] dL/dz, [B,3] the loss terms */
    float *rec_rows; int *hits; /* [steps,B,3] and [steps]: every step's loss terms and top-1 hits */
    void *graph;                /* the captured full-batch step, or NULL */
    int captures;               /* how many times the step was captured (1 per run, unless the
                                 * loss weights or the temperature changed between epochs) */
} TrainStep;
/* Allocate the step's buffers (s set up trainable and t for batch >= B on be). 0 or -1. */
int train_step_init(TrainStep *ts, const Backend *be, Net *s, Net *t, int kind, int B, int n,
                    const uint8_t *images, const int *labels, uint64_t seed, float momentum, float wd);
void train_step_free(TrainStep *ts);
/* Start an epoch: order [n] (host), lr, the warm-up factor lp.warm and the epoch uploaded,
 * the step number set to 0 (the captured step, if any, stays valid). */
void train_step_epoch(TrainStep *ts, const int *order, int epoch, float lr, LossParams lp);
/* The next step of the epoch on nb images (B, or fewer for the last): forward halves
 * (batch .. recorded loss) and update (backward, SGD), or both: train_step_run, which
 * replays the epoch's graph (capturing it first) when use_graph and nb == B. */
void train_step_forward(TrainStep *ts, int nb);
void train_step_update(TrainStep *ts, int nb);
void train_step_run(TrainStep *ts, int nb);
/* Steps k0..k1-1 of this epoch (already run): their batch losses into lv[k1-k0] (loss_total
 * of each step's rows, as the host always computed them) and their top-1 hits added to *hits. */
void train_step_results(const TrainStep *ts, int k0, int k1, LossValue *lv, long *hits);

/* The evaluation step (train_step.c): eval-mode forwards of images 0..n-1 in batches of B,
 * each batch's logits recorded on the device (nothing read back per batch), the full
 * batches replayed from one captured graph where the backend has them. */
typedef struct {
    const Backend *be;
    Net *net;
    int B, n, NC;
    const uint8_t *images;      /* [n,3072] backend memory */
    int use_graph, captures;
    int *order, *idx, *step;    /* backend: [n] 0..n-1, [B] this batch's indices, [1] next batch */
    float *logits;              /* backend: [n,NC] every image's logits, in order */
    void *graph;
} EvalStep;
int eval_step_init(EvalStep *es, const Backend *be, Net *net, int B, int n, const uint8_t *images);
/* The next batch (nb images: B, or fewer for the last); batch 0 after init. */
void eval_step_run(EvalStep *es, int nb);
void eval_step_free(EvalStep *es);

/* ------------------------------------------------------------------------- */
/* Model registry (models/registry.c)                                         */
/* ------------------------------------------------------------------------- */
typedef struct {
    const char *name;        /* mdistiller dict name, e.g. "resnet56" */
    const char *aliases;     /* space-separated short names, e.g. "res56" */
    Net *(*build)(const char *name);
    int is_teacher;          /* one of the six teacher architectures */
} ModelInfo;
extern const ModelInfo model_table[];
extern const int n_models;
/* Look up by name or alias (case-sensitive as mdistiller, aliases too). NULL if unknown. */
const ModelInfo *model_find(const char *name);
/* Build by name or alias; NULL + dkd_errbuf listing the known names if unknown. */
Net *model_build(const char *name);

typedef struct {
    const char *teacher, *student;   /* mdistiller names */
    const char *tag;                 /* mdistiller EXPERIMENT.TAG, e.g. "dkd,res56,res20" */
    float alpha, beta, T;
    int warmup;
    float lr;
} PairInfo;
extern const PairInfo pair_table[];
extern const int n_pairs;
/* Find the pair for (teacher, student) names or aliases; NULL if not one of the 11. */
const PairInfo *pair_find(const char *teacher, const char *student);

/* ------------------------------------------------------------------------- */
/* PyTorch checkpoints (pth.c; Net <-> state_dict: checkpoint.c)             */
/* ------------------------------------------------------------------------- */
enum { DT_F32, DT_F64, DT_I64, DT_I32, DT_F16, DT_U8, DT_BOOL, DT_I8, DT_I16 };

typedef struct {
    char *name;           /* key in the dict, e.g. "layer1.0.conv1.weight" or "case3.student" */
    int dtype;            /* DT_* as stored */
    int ndim;
    int64_t shape[8];
    size_t numel;
    void *data;           /* contiguous copy, numel elements of dtype */
} PthTensor;

typedef struct {
    PthTensor *t; int n;
    /* scalars found at the top level (e.g. "epoch", "best_acc") */
    char **skeys; double *svals; int ns;
} PthDict;

/* Read a .pth (zip or legacy format). The tensors of top["model"] if it exists
 * and is a dict, else the tensor values of the top-level dict. 0 or -1 (dkd_errbuf). */
int pth_read(const char *path, PthDict *out);
/* The same from a file's bytes in memory (name: for messages). The tensors are
 * copies: buf may be freed afterwards. */
int pth_read_mem(const uint8_t *buf, size_t len, const char *name, PthDict *out);
void pth_dict_free(PthDict *d);
const PthTensor *pth_get(const PthDict *d, const char *name);
/* Read a 0-d/1-element tensor as double (any numeric dtype); nan if absent. */
double pth_scalar(const PthDict *d, const char *name);

/* Writing: a top-level dict of items, in the zip format torch.load opens. */
typedef struct {
    const char *name; int dtype; int ndim; const int64_t *shape; const void *data;
} PthTensorRef;
/* PI_SGD_STATE: torch.optim.SGD.state_dict() over n_tensors parameters, with
 * tensors[i] the momentum buffer of parameter i (names unused):
 *   {"state": {i: {"momentum_buffer": tensor}}, "param_groups": [{"lr", "momentum",
 *    "dampening", "weight_decay", "nesterov", "maximize", "foreach", "differentiable",
 *    "params": [0..n-1]}]}  — what optimizer.load_state_dict expects. */
typedef enum { PI_INT, PI_FLOAT, PI_STATE_DICT, PI_SGD_STATE } PthItemKind;
typedef struct { double lr, momentum, dampening, weight_decay; int nesterov; } PthSgdGroup;
typedef struct {
    const char *key; int kind;
    int64_t ival; double fval;                 /* PI_INT / PI_FLOAT */
    const PthTensorRef *tensors; int n_tensors; /* PI_STATE_DICT: an OrderedDict; PI_SGD_STATE: momentum */
    const PthSgdGroup *sgd;                    /* PI_SGD_STATE: the one param group's settings */
} PthItem;
/* Write atomically (temp + rename). 0 or -1. */
int pth_write(const char *path, const PthItem *items, int n_items);

/* Element helpers of the DT_* dtypes (pth.c): bytes per element (0 if
 * unknown), a name for messages, one element as double. */
int pth_dtype_size(int dtype);
const char *pth_dtype_name(int dtype);
double pth_elem_to_double(const void *p, int dtype);

/* Net <-> state_dict (checkpoint.c) */
/* Load weights into n (host copies; call net_to_device after) with strict checks:
 * every key present with the right shape, no unexpected keys (a missing
 * num_batches_tracked is tolerated as 0). Prefixes "module.", "module.student."
 * are stripped. 0 or -1 with a message naming the first mismatch. */
int net_load_dict(Net *n, const PthDict *d);
int net_load_file(Net *n, const char *path);
/* Build the state_dict view of n's host copies (array of n->n_pinfo refs). */
PthTensorRef *net_state_refs(const Net *n, int64_t *shape_store /* [n_pinfo*4] */);
/* Save {"model": state_dict} (mdistiller student_* format). */
int net_save_file(const Net *n, const char *path);

/* ------------------------------------------------------------------------- */
/* CIFAR-100 data (cifar.c). Augmentation: augment_batch_cpu above.           */
/* ------------------------------------------------------------------------- */
enum {
    CIFAR_TRAIN_N = 50000, CIFAR_TEST_N = 10000,   /* images per split */
    CIFAR_IMG_BYTES = 3072,                        /* 3 planes (R, G, B) of 32x32 */
    CIFAR_RECORD_BYTES = 3074,                     /* binary record: coarse, fine, pixels */
    CIFAR_NC = 100                                 /* fine classes */
};
typedef struct {
    int n;               /* images; a caller may lower it to use only the first n */
    uint8_t *images;     /* [n,3072] uint8, R, G, B planes, each 32x32 row-major */
    int *labels;         /* [n] fine labels 0..99 */
} CifarSplit;
/* The data directory: flag_dir if given (--data), else $DKD_DATA, else "data". */
const char *cifar_find_dir(const char *flag_dir);
/* Load the train (train=1) or test split found under dir, first match of
 *   dir/cifar-100-binary/{train,test}.bin, dir/{train,test}.bin   (binary)
 *   dir/cifar-100-python/{train,test},   dir/{train,test}         (python pickle)
 * checking the size (whole 3074-byte records), the count (50000 / 10000) and
 * every label (< 100). 0, or -1 with a message naming the file and
 * scripts/get_cifar100.sh. The environment DKD_CIFAR_ANY_SIZE=1 accepts any
 * number of images (small generated data sets for tests). */
int cifar_load(const char *dir, int train, CifarSplit *out);
/* The same with the expected count given: expect_n > 0 exactly that many,
 * -1 any number, 0 the official count (as cifar_load). */
int cifar_load_n(const char *dir, int train, int expect_n, CifarSplit *out);
void cifar_free(CifarSplit *s);
/* Parse one whole file's bytes (cifar_load_n and the fuzzing targets). Takes
 * buf (malloc'd): it becomes out->images, or is freed on failure. name is for
 * messages; expect_n as in cifar_load_n (-1 any, > 0 exactly). 0 or -1. */
int cifar_parse_binary(uint8_t *buf, size_t len, const char *name, int expect_n, CifarSplit *out);
int cifar_parse_python(uint8_t *buf, size_t len, const char *name, int expect_n, CifarSplit *out);
/* perm [n] <- the training order of one epoch: Fisher-Yates driven by
 * dkd_rand32(seed, RNG_SHUFFLE, epoch, i), a pure function of (seed, epoch). */
void cifar_epoch_order(int *perm, int n, uint64_t seed, int epoch);

/* ------------------------------------------------------------------------- */
/* Plots (plot.c): PNG (stb_image_write + stb_easy_font) and SVG charts       */
/* ------------------------------------------------------------------------- */
/* log.csv, the per-epoch machine-readable log of a run (train.c writes it,
 * plot.c reads it). First line the header (train.c: DKD_LOG_CSV_HEADER_TRAIN), then
 * one line per finished epoch, C-locale numbers, e.g. "%d,%.8g,%.4f,%.6f,%.4f,%.4f,%.6f,%.1f,%.1f,%.6f,%.6f,%d":
 *   epoch          1-based epoch number
 *   lr             learning rate used in that epoch
 *   train_acc      top-1 (%) on the augmented training batches, train mode
 *   train_loss     mean training loss (CE + distillation part as optimised)
 *   test_acc, test_acc_top5   top-1 / top-5 (%) on the test set, eval mode
 *   test_loss      mean cross-entropy on the test set
 *   img_per_s      training throughput of the epoch (images/s)
 *   seconds        wall-clock seconds of the epoch's training
 *   train_ce       the cross-entropy part of train_loss
 *   train_kd       the distillation part of train_loss (warm-up factor included; 0 for vanilla)
 *   test_images    (train.c's logs, DKD_LOG_CSV_HEADER_TRAIN) how many test images
 *                  test_acc/test_loss were measured on (10000, or --test-subset):
 *                  runs are comparable only when these agree
 * Readers find columns by name: extra columns are ignored, lr/top5/img_per_s/
 * seconds/train_ce/train_kd may be absent (NAN). */
#define DKD_LOG_CSV_HEADER "epoch,lr,train_acc,train_loss,test_acc,test_acc_top5,test_loss,img_per_s,seconds,train_ce,train_kd"
/* What train.c writes: the header above plus the test-set size. */
#define DKD_LOG_CSV_HEADER_TRAIN DKD_LOG_CSV_HEADER ",test_images"
typedef struct {
    int epoch;
    double lr, train_acc, train_loss, test_acc, test_acc_top5, test_loss, img_per_s, seconds, train_ce, train_kd;
} EpochLog;
/* Read a log.csv: *rows (malloc'd, caller frees) and the row count (>= 1), or -1
 * (missing file, no/incomplete header, a garbled line, no epochs) with dkd_errbuf. */
int log_csv_read(const char *path, EpochLog **rows);
/* Read mdistiller's worklog.txt (blocks of "key: value" lines per epoch, then
 * "best_acc\tX" once the run finished): rows as log_csv_read (absent columns NAN;
 * its lr has 2 decimals only), *finished = 1 when the best_acc line is there. */
int worklog_read(const char *path, EpochLog **rows, int *finished);
/* The per-epoch log of a run: path is a run folder (its log.csv, else its
 * worklog.txt: an mdistiller run) or one of those files. *finished: 1 when the
 * run's worklog.txt ends with best_acc (NULL allowed). Rows or -1 as above. */
int run_log_read(const char *path, EpochLog **rows, int *finished);
/* 1 when this dkd was built with stb (libstb-dev): PNG output; else SVG only. */
int plot_png_available(void);
/* run_dir's log -> run_dir/curves.png (when PNG output is available) and
 * run_dir/curves.svg: the six panels of plot_curves. 0 or -1. */
int plot_run_curves(const char *run_dir);
/* One chart of n runs (a dkd run folder, an mdistiller run folder with only
 * worklog.txt, or one of those files) -> out: "X.svg" the SVG only, else the PNG
 * at out and the SVG beside it (X.png -> X.svg); without stb the SVG only. Panels: top-1 (test solid, train dashed),
 * test top-5, test CE, train loss, train CE and distillation term, learning
 * rate; x = epochs from 1. labels: legend names (NULL: the folders' names).
 * title NULL: the folder name / "N runs". */
int plot_curves_labeled(const char *out, const char *const *runs, const char *const *labels, int n, const char *title);
int plot_curves(const char *out, const char *const *runs, int n, const char *title);
/* Grouped bar chart: values [n_groups][n_series] (NAN = no bar), one colour per
 * series, the value printed on each bar. Group labels may hold '\n'. Files as
 * plot_curves_labeled. 0 or -1. */
int plot_bars(const char *out, const char *title, const char *ylabel, int n_groups, const char *const *group_labels,
              int n_series, const char *const *series_names, const double *values);
/* `dkd plot RUN_DIR... [-o OUT] [--title T] [--label L]...` (argv[0] = "plot"). Exit code. */
int cmd_plot(int argc, char **argv);
/* `dkd table RUN_DIR|OUTPUT_DIR... [--pytorch DIR...] [-o OUT.md]` (table.c): the accuracy tables. */
int cmd_table(int argc, char **argv);

/* ------------------------------------------------------------------------- */
/* Commands and checks (train.c, bench.c)                                     */
/* ------------------------------------------------------------------------- */
int cmd_train(int argc, char **argv);   /* dkd train ... (argv[0] = "train") */
extern const char *dkd_argv0;           /* the program as invoked (main sets it; config.yaml records it) */
int cmd_eval(int argc, char **argv);    /* dkd eval ... */
int cmd_bench(int argc, char **argv);   /* dkd bench ... */
int bench_gemm(int argc, char **argv);  /* dkd bench --gemm ... (gemm_bench.c) */
/* One DKD training step teacher -> student at batch B on backends ref and dut
 * (same weights, same batch): logits, loss, gradients and updated parameters
 * compared; prints one "ok"/"FAIL" line, returns 1 when they agree. */
int compare_backends_step(const Backend *ref, const Backend *dut, const char *teacher, const char *student, int B);

/* ------------------------------------------------------------------------- */
/* Run configuration in mdistiller's schema (config.c)                        */
/* ------------------------------------------------------------------------- */
enum {
    CFG_MAX_BYTES = 1 << 20,    /* a config file larger than this is refused */
    CFG_MAX_KEY = 128,          /* dotted key length */
    CFG_MAX_EPOCHS = 100000,    /* epochs (and epoch numbers) dkd accepts */
    CFG_MAX_STAGES = 8,         /* SOLVER.LR_DECAY_STAGES items */
    DKD_PATH_MAX = 4096         /* longest path dkd builds (longer: an error, never a truncation) */
};
/* One run's settings, field by field the yacs keys dkd implements (their names
 * in the comments). config_defaults fills mdistiller's defaults (engine/cfg.py). */
typedef struct {
    char project[64], name[256], tag[256];      /* EXPERIMENT.PROJECT / NAME / TAG */
    char dataset[32];                           /* DATASET.TYPE: "cifar100" */
    int num_workers, test_batch;                /* DATASET.NUM_WORKERS (unused), DATASET.TEST.BATCH_SIZE */
    char method[8];                             /* DISTILLER.TYPE: NONE | KD | DKD */
    char teacher[32], student[32];              /* DISTILLER.TEACHER / STUDENT (mdistiller names) */
    char trainer[16];                           /* SOLVER.TRAINER: "base" */
    int batch, epochs;                          /* SOLVER.BATCH_SIZE / EPOCHS */
    double lr;                                  /* SOLVER.LR */
    int stages[CFG_MAX_STAGES], n_stages;       /* SOLVER.LR_DECAY_STAGES */
    double decay_rate, wd, momentum;            /* SOLVER.LR_DECAY_RATE / WEIGHT_DECAY / MOMENTUM */
    char solver[16];                            /* SOLVER.TYPE: "SGD" */
    int tb_freq, save_every;                    /* LOG.TENSORBOARD_FREQ (unused) / SAVE_CHECKPOINT_FREQ */
    char prefix[1024];                          /* LOG.PREFIX: "./output" */
    int wandb;                                  /* LOG.WANDB (unused: dkd logs to files only) */
    int kd_T;                                   /* KD.TEMPERATURE (an int in mdistiller) */
    double kd_ce_weight, kd_kd_weight;          /* KD.LOSS.CE_WEIGHT / KD_WEIGHT */
    double dkd_ce_weight, alpha, beta, dkd_T;   /* DKD.CE_WEIGHT / ALPHA / BETA / T */
    int warmup;                                 /* DKD.WARMUP */
    unsigned char set[64];                      /* key i of the table was set explicitly */
} DkdConfig;
void config_defaults(DkdConfig *c);
/* Parse a YAML config (the subset described in config.c) into c; name is used in
 * messages ("FILE:LINE: ..."). Unknown keys, bad values, malformed YAML: -1. */
int config_parse_text(DkdConfig *c, const char *text, size_t len, const char *name);
int config_load_file(DkdConfig *c, const char *path);
/* Set one key from its text as written on a command line (a yacs KEY VALUE
 * pair: "128", "[100, 150]", "DKD"); where names the source in messages. */
int config_set(DkdConfig *c, const char *key, const char *value, const char *where);
int config_is_set(const DkdConfig *c, const char *key);  /* set by a file, a pair or a flag */
int config_is_key(const char *key);                      /* one of the keys dkd implements */
/* Write c as YAML in mdistiller's schema (atomically), after header: comment
 * lines ("# ...\n") or NULL. The sections KD/DKD appear for that method only. */
int config_write_yaml(const DkdConfig *c, const char *path, const char *header);
/* argv as one shell-quoted line (malloc'd): what config.yaml records. */
char *config_command_line(int argc, char **argv);
/* Strict decimal number in [lo, hi] (want_int: an integer): no hex, inf, nan,
 * blanks or trailing text. 0, or -1 with "what expects ..." in dkd_errbuf. */
int parse_number(const char *what, const char *text, int want_int, double lo, double hi, double *out);

/* ==== further API sections (pickle VM, CIFAR data, plots, training) go ABOVE this line, inside extern "C" ==== */

#ifdef __cplusplus
}
#endif
#endif /* DKD_H */
