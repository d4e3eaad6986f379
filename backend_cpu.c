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
    "cpu",
    cpu_alloc, cpu_release, cpu_copy, cpu_copy, cpu_copy, cpu_zero, cpu_sync,
    conv2d_workspace_floats, conv2d_forward_cpu, conv2d_backward_cpu,
    batchnorm_forward_train_cpu, batchnorm_forward_eval_cpu, batchnorm_backward_cpu,
    relu_forward_cpu, relu_backward_cpu,
    maxpool_forward_cpu, maxpool_backward_cpu,
    avgpool_forward_cpu, avgpool_backward_cpu,
    linear_forward_cpu, linear_backward_cpu,
    add_forward_cpu, add_backward_cpu,
    concat_forward_cpu, concat_backward_cpu,
    split_forward_cpu, split_backward_cpu,
    shuffle_forward_cpu, shuffle_backward_cpu,
    ce_loss_cpu, kd_loss_cpu, dkd_loss_cpu,
    sgd_step_cpu,
    augment_batch_cpu,
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
