/* backend_cpu.c — the CPU backend table (the C reference ops) and device selection.
 *
 * net.c never calls an op directly: it goes through a Backend table, so the
 * same network code runs the C references here, the CUDA kernels on a GPU, and
 * the CUDA kernels emulated on the CPU in tests. */
#include "dkd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *cpu_alloc(size_t bytes) { return xmalloc(bytes); }
static void cpu_release(void *p) { free(p); }
static void cpu_copy(void *dst, const void *src, size_t bytes) { if (dst != src && bytes) memcpy(dst, src, bytes); }
static void cpu_zero(void *p, size_t bytes) { if (bytes) memset(p, 0, bytes); }
static void cpu_sync(void) {}

const Backend backend_cpu = {
    .name = "cpu",
    .on_device = 0,
    .alloc = cpu_alloc, .release = cpu_release,
    .upload = cpu_copy, .download = cpu_copy, .copy = cpu_copy, .zero = cpu_zero, .sync = cpu_sync,
    .conv2d_workspace_floats = conv2d_workspace_floats,
    .conv2d_forward = conv2d_forward_cpu, .conv2d_backward = conv2d_backward_cpu,
    .batchnorm_forward_train = batchnorm_forward_train_cpu, .batchnorm_forward_eval = batchnorm_forward_eval_cpu,
    .batchnorm_backward = batchnorm_backward_cpu,
    .relu_forward = relu_forward_cpu, .relu_backward = relu_backward_cpu,
    .maxpool_forward = maxpool_forward_cpu, .maxpool_backward = maxpool_backward_cpu,
    .avgpool_forward = avgpool_forward_cpu, .avgpool_backward = avgpool_backward_cpu,
    .linear_forward = linear_forward_cpu, .linear_backward = linear_backward_cpu,
    .add_forward = add_forward_cpu, .add_backward = add_backward_cpu,
    .concat_forward = concat_forward_cpu, .concat_backward = concat_backward_cpu,
    .split_forward = split_forward_cpu, .split_backward = split_backward_cpu,
    .shuffle_forward = shuffle_forward_cpu, .shuffle_backward = shuffle_backward_cpu,
    .ce_loss = ce_loss_cpu, .kd_loss = kd_loss_cpu, .dkd_loss = dkd_loss_cpu,
    .sgd_step = sgd_step_cpu,
    .augment_batch = augment_batch_cpu,
    .batchnorm_relu_backward = batchnorm_relu_backward_cpu,
    .counter_add = counter_add_cpu, .batch_gather = batch_gather_cpu, .step_record = step_record_cpu,
};

/* The CUDA backend exists only when a .cu object is linked in (nvcc builds, or
 * the emulation tests). Weak references keep this file free of #ifdefs: without
 * CUDA, &backend_cuda is NULL and the device count is 0. */
extern const Backend backend_cuda __attribute__((weak));
__attribute__((weak)) int dkd_cuda_device_count(void) { return 0; }

int backend_fell_back;

const Backend *backend_select(const char *device) {
    backend_fell_back = 0;
    if (!device || !strcmp(device, "auto")) {
        if (&backend_cuda && dkd_cuda_device_count() > 0) return &backend_cuda;
        backend_fell_back = &backend_cuda != NULL;   /* train says so, once */
        return &backend_cpu;
    }
    if (!strcmp(device, "cpu")) return &backend_cpu;
    if (!strcmp(device, "cuda")) {
        if (!&backend_cuda) { dkd_fail("this binary was built without CUDA (nvcc was not found by ./build.sh)"); return NULL; }
        if (dkd_cuda_device_count() <= 0) { dkd_fail("--device cuda: no CUDA GPU is visible at run time"); return NULL; }
        return &backend_cuda;
    }
    dkd_fail("unknown device '%s' (expected cpu, cuda or auto)", device);
    return NULL;
}
