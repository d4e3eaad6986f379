/* kernels/backend_cuda.cu — the CUDA backend table: device memory through the
 * CUDA runtime, every op a kernel of kernels/NAME.cu (kernels/cuda_ops.h).
 *
 * net.c calls ops only through a Backend (dkd.h), so the same network code
 * runs on the CPU (backend_cpu.c), on a GPU (this table, built by nvcc), and
 * in tests on the CUDA kernels emulated on the CPU (this table, built by g++
 * against tests/cuda_emu.h).
 *
 * All launches go to the default stream, one after another, so the host only
 * waits where it reads results (download is a synchronous cudaMemcpy) or
 * calls sync. What a step still does on the host (and so what keeps it out
 * of a CUDA graph today) is listed in kernels/README.md. Every runtime call is checked (cudaCheck: call, file:line,
 * CUDA's message, exit); an allocation that fails says how much was asked. */
#include "kernels/cuda_common.h"   // defines: cudaCheck, the CUDA runtime (or its emulator)
#include "kernels/cuda_ops.h"      // defines: the *_cuda ops

static void *cuda_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 1;   /* always a valid, distinct pointer */
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err != cudaSuccess || !p)
        dkd_die("cannot allocate %.1f MiB of GPU memory (%s): try a smaller --batch, or --device cpu",
                bytes / 1048576.0, cudaGetErrorString(err));
    return p;
}
static void cuda_release(void *p) { if (p) cudaCheck(cudaFree(p)); }
static void cuda_upload(void *dst, const void *src, size_t bytes) {
    if (bytes) cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
static void cuda_download(void *dst, const void *src, size_t bytes) {
    if (bytes) cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
/* copy and zero are stream-ordered (the Async forms on the default stream):
 * the same order with the kernels as before, nothing for the host to wait
 * for, and legal inside a stream capture (a training step calls both). */
static void cuda_copy(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src) cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
}
static void cuda_zero(void *p, size_t bytes) { if (bytes) cudaCheck(cudaMemsetAsync(p, 0, bytes, 0)); }
static void cuda_sync(void) { cudaCheck(cudaDeviceSynchronize()); }

extern "C" {

/* Named fields, in the order dkd.h declares them (C++ wants that order). */
const Backend backend_cuda = {
    .name = "cuda",
    .on_device = 1,
    .alloc = cuda_alloc, .release = cuda_release,
    .upload = cuda_upload, .download = cuda_download, .copy = cuda_copy, .zero = cuda_zero, .sync = cuda_sync,
    .conv2d_workspace_floats = conv2d_workspace_floats_cuda,
    .conv2d_forward = conv2d_forward_cuda, .conv2d_backward = conv2d_backward_cuda,
    .batchnorm_forward_train = batchnorm_forward_train_cuda, .batchnorm_forward_eval = batchnorm_forward_eval_cuda,
    .batchnorm_backward = batchnorm_backward_cuda,
    .relu_forward = relu_forward_cuda, .relu_backward = relu_backward_cuda,
    .maxpool_forward = maxpool_forward_cuda, .maxpool_backward = maxpool_backward_cuda,
    .avgpool_forward = avgpool_forward_cuda, .avgpool_backward = avgpool_backward_cuda,
    .linear_forward = linear_forward_cuda, .linear_backward = linear_backward_cuda,
    .add_forward = add_forward_cuda, .add_backward = add_backward_cuda,
    .concat_forward = concat_forward_cuda, .concat_backward = concat_backward_cuda,
    .split_forward = split_forward_cuda, .split_backward = split_backward_cuda,
    .shuffle_forward = shuffle_forward_cuda, .shuffle_backward = shuffle_backward_cuda,
    .ce_loss = ce_loss_cuda, .kd_loss = kd_loss_cuda, .dkd_loss = dkd_loss_cuda,
    .sgd_step = sgd_step_cuda,
    .augment_batch = augment_batch_cuda,
    .batchnorm_relu_backward = batchnorm_relu_backward_cuda,
    .batchnorm_eval_relu = batchnorm_eval_relu_cuda,
};

/* Usable GPUs at run time; 0 on any error (no driver, no device, a driver
 * older than the runtime...), after clearing the error so that later CUDA
 * calls do not report it. */
int dkd_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

} /* extern "C" */
