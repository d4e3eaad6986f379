/* kernels/backend_cuda.cu — the CUDA backend table: device memory through the
 * CUDA runtime, every op a kernel of kernels/NAME.cu (kernels/cuda_ops.h).
 *
 * net.c calls ops only through a Backend (dkd.h), so the same network code
 * runs on the CPU (backend_cpu.c), on a GPU (this table, built by nvcc), and
 * in tests on the CUDA kernels emulated on the CPU (this table, built by g++
 * against tests/cuda_emu.h).
 *
 * All work goes to ONE created stream (dkd_cuda_stream), one launch after
 * another, so the host only waits where it reads results (download, and
 * upload, whose host buffer may be reused as soon as it returns) or calls
 * sync. A created stream, not the legacy default one, because only a created
 * stream can be captured into a CUDA graph (graph_begin .. graph_end below;
 * train_step.c captures a training step and replays it). Every runtime call
 * is checked (cudaCheck: call, file:line, CUDA's message, exit), so a call
 * that a capture cannot hold stops the process with CUDA's message; an
 * allocation that fails says how much was asked. */
#include "kernels/cuda_common.h"   // defines: cudaCheck, the CUDA runtime (or its emulator)
#include "kernels/cuda_ops.h"      // defines: the *_cuda ops

extern "C" cudaStream_t dkd_cuda_stream(void) {
    static cudaStream_t s;
    static int made;
    if (!made) { cudaCheck(cudaStreamCreate(&s)); made = 1; }
    return s;
}

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
/* upload and download are synchronous for the host (the copy on the stream,
 * then a wait for it): inside a capture the wait fails, and cudaCheck stops. */
static void cuda_upload(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, dkd_cuda_stream()));
    cudaCheck(cudaStreamSynchronize(dkd_cuda_stream()));
}
static void cuda_download(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, dkd_cuda_stream()));
    cudaCheck(cudaStreamSynchronize(dkd_cuda_stream()));
}
/* copy and zero are stream-ordered: nothing for the host to wait for, and
 * legal inside a stream capture (a training step calls both). */
static void cuda_copy(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src) cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, dkd_cuda_stream()));
}
static void cuda_zero(void *p, size_t bytes) { if (bytes) cudaCheck(cudaMemsetAsync(p, 0, bytes, dkd_cuda_stream())); }
static void cuda_sync(void) { cudaCheck(cudaDeviceSynchronize()); }

/* Graphs: capture dkd's stream in CUDA's global mode (any synchronising or
 * allocating call anywhere in the process during the capture is an error,
 * which is what proves a captured step holds none). */
static int cuda_graph_begin(void) {
    cudaError_t e = cudaStreamBeginCapture(dkd_cuda_stream(), cudaStreamCaptureModeGlobal);
    if (e != cudaSuccess) return dkd_fail("cannot start a CUDA graph capture: %s", cudaGetErrorString(e));
    return 0;
}
static void *cuda_graph_end(void) {
    cudaGraph_t g = NULL;
    cudaGraphExec_t x = NULL;
    cudaError_t e = cudaStreamEndCapture(dkd_cuda_stream(), &g);
    if (e != cudaSuccess || !g) {
        (void)cudaGetLastError();
        dkd_fail("the CUDA graph capture failed (%s): something inside it synchronised, allocated or used another "
                 "stream", cudaGetErrorString(e));
        return NULL;
    }
    e = cudaGraphInstantiate(&x, g, 0);
    cudaCheck(cudaGraphDestroy(g));
    if (e != cudaSuccess) { dkd_fail("cannot instantiate the CUDA graph: %s", cudaGetErrorString(e)); return NULL; }
    return (void *)x;
}
static void cuda_graph_launch(void *g) { cudaCheck(cudaGraphLaunch((cudaGraphExec_t)g, dkd_cuda_stream())); }
static void cuda_graph_free(void *g) { if (g) cudaCheck(cudaGraphExecDestroy((cudaGraphExec_t)g)); }

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
    .batchnorm_eval_relu = batchnorm_eval_relu_cuda, .batchnorm_train_relu = batchnorm_train_relu_cuda,
    .conv2d_bn_eval = conv2d_bn_eval_cuda,
    .counter_add = counter_add_cuda, .batch_gather = batch_gather_cuda, .step_record = step_record_cuda,
    .graph_begin = cuda_graph_begin, .graph_end = cuda_graph_end,
    .graph_launch = cuda_graph_launch, .graph_free = cuda_graph_free,
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
