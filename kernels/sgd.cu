/* kernels/sgd.cu — one SGD-with-momentum step over the whole flat parameter
 * buffer on the GPU (reference: kernels/sgd.c).
 *
 * What it computes, per parameter i (dampening 0, no Nesterov), in exactly the
 * float32 operations PyTorch's SGD performs (torch.optim.SGD: the weight decay
 * is d = g.add(p, alpha=wd), a fused multiply-add in its kernels; the momentum
 * buffer is buf.mul_(momentum).add_(d): a multiply, then an add; the update is
 * p.add_(buf, alpha=-lr): again a fused multiply-add):
 *
 *   d   = fmaf(wd, p, g)              g + wd*p, ONE rounding
 *   buf = round(round(buf*momentum) + d)   two roundings, never fused
 *   p   = fmaf(-lr, buf, p)           p - lr*buf, one rounding
 *
 * buf starts at 0, which makes the first step buf = d exactly as torch does.
 * nvcc contracts a*b+c into an fma whenever it can; the middle line must NOT
 * be contracted (torch rounds the product), so it is written with the
 * round-to-nearest intrinsics __fmul_rn / __fadd_rn, which nvcc never fuses.
 * The first and last lines ask for the fma explicitly with fmaf, so the result
 * is bit-identical to the C reference and to PyTorch on any compiler.
 *
 * How work maps to threads: one thread per parameter, 256 threads per block.
 * The net keeps all parameters, gradients and momenta in three flat buffers
 * (dkd.h), so ONE launch updates the whole model: a purely memory-bound
 * kernel reading 3 and writing 2 floats per parameter, all coalesced.
 * The learning rate is read from device memory when the kernel runs, not
 * passed by value: a step captured once as a CUDA graph (train_step.c) then
 * uses each epoch's rate without being captured again.
 */
#include "kernels/cuda_common.h"   // defines: LAUNCH, ceil_div_sz
#include "kernels/cuda_ops.h"      // defines: the _cuda declarations

enum { SGD_THREADS = 256 };

__global__ void sgd_step_kernel(float *__restrict__ p, const float *__restrict__ g, float *__restrict__ buf,
                                size_t n, const float *__restrict__ lr_at, float momentum, float wd) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float lr = *lr_at;   /* every thread loads the same word: one cached broadcast */
    float pi = p[i];
    float d = fmaf(wd, pi, g[i]);
    float b = __fadd_rn(__fmul_rn(buf[i], momentum), d);
    buf[i] = b;
    p[i] = fmaf(-lr, b, pi);
}

extern "C" void sgd_step_cuda(float *p, const float *g, float *buf, size_t n, const float *lr, float momentum, float wd) {
    if (n == 0) return;
    LAUNCH(sgd_step_kernel, ceil_div_sz(n, SGD_THREADS), SGD_THREADS, 0, p, g, buf, n, lr, momentum, wd);
}
