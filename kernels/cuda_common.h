/* kernels/cuda_common.h — what every .cu file of dkd includes.
 *
 * The .cu files are "C that is also C++": nvcc compiles them for the GPU, and
 * g++ compiles the very same files against tests/cuda_emu.h, which runs the
 * kernels on the CPU (blocks one at a time, threads as fibers) so that every
 * kernel is executed and checked on machines without a GPU.
 * Two things differ between the two worlds, and both are hidden behind macros
 * defined here, so kernel code never needs an #ifdef:
 *
 *   LAUNCH(kernel, grid, block, smem_bytes, args...)
 *       launches a kernel on dkd's stream (nvcc: kernel<<<grid, block, smem,
 *       dkd_cuda_stream()>>>(args...)), then
 *       checks for a launch error with file:line, and synchronises + checks
 *       again when the environment variable DKD_CUDA_SYNC=1 is set (debugging:
 *       an asynchronous fault is then reported at the launch that caused it;
 *       not while a CUDA graph is being captured, when nothing runs: to wait
 *       after every kernel of a training step, add --no-graph).
 *
 *   SHARED(type, name, count)
 *       declares a block-shared array:  nvcc: __shared__ type name[count];
 *       emulator: one array per block, every byte 0xff at each block start
 *       (a float or double NaN, an int -1), so a kernel that reads shared
 *       memory before writing it fails loudly instead of passing by luck; and
 *       every load and store goes through the emulator's race detector (two
 *       threads touching one word between barriers, one of them writing).
 *   EXTERN_SHARED(type, name)
 *       the dynamically sized shared array (size = LAUNCH's smem_bytes).
 *   SHARED_PTR(type)
 *       the type of a pointer into a shared array, for a helper function's
 *       parameter (nvcc: type *; emulator: the watched pointer type). Use
 *       shared arrays through [] and + only: never take &a[i] or cast them.
 *
 *   cudaCheck(call)   every CUDA runtime call goes through it: on error it
 *                     prints the call, file:line and the CUDA message, exits.
 *
 * Rules for kernel files (so both compilers accept them, and results are
 * deterministic): no templates, no classes, no cooperative groups, no inline
 * PTX, no float atomics in backward passes (fixed-order reductions instead);
 * cast malloc results; use __restrict__ rather than restrict.
 */
#ifndef DKD_CUDA_COMMON_H
#define DKD_CUDA_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#ifndef DKD_CUDA_EMU
#include <cuda_runtime.h>
#endif
#include "dkd.h"

/* The one stream every kernel, async copy and set of dkd goes to (created on
 * first use by kernels/backend_cuda.cu). Not the legacy default stream: CUDA
 * cannot capture that one into a graph. It is a blocking stream, so a
 * synchronous call on the legacy stream (cudaMemcpy, cudaMemset) still waits
 * for it and it for them: the order of work stays the program order. */
#ifdef __cplusplus
extern "C"
#endif
cudaStream_t dkd_cuda_stream(void);

/* ceil(a / b) for positive ints: the number of blocks that cover a items. */
static inline int ceil_div(int a, int b) { return (a + b - 1) / b; }
static inline int ceil_div_sz(size_t a, int b) { return (int)((a + (size_t)b - 1) / (size_t)b); }

static inline void cuda_check_impl(cudaError_t err, const char *what, const char *file, int line) {
    if (err != cudaSuccess) {
        fprintf(stderr, "dkd: CUDA error at %s:%d: %s\n  in: %s\n", file, line, cudaGetErrorString(err), what);
        exit(1);
    }
}
#define cudaCheck(call) cuda_check_impl((call), #call, __FILE__, __LINE__)

/* 1 when DKD_CUDA_SYNC=1: synchronise after every launch (read once). */
static inline int cuda_debug_sync(void) {
    static int v = -1;
    if (v < 0) { const char *e = getenv("DKD_CUDA_SYNC"); v = (e && e[0] == '1') ? 1 : 0; }
    return v;
}
/* 1 while dkd's stream is being captured into a CUDA graph (nothing runs then). */
static inline int cuda_capturing(void) {
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    return cudaStreamIsCapturing(dkd_cuda_stream(), &st) == cudaSuccess && st != cudaStreamCaptureStatusNone;
}
static inline void launch_check(const char *kernel, const char *file, int line) {
    cudaError_t err = cudaGetLastError();
    /* DKD_CUDA_SYNC=1 waits after each launch, except while a graph is being
     * captured: nothing ran then, and a wait would invalidate the capture (the
     * replayed step is then checked where the host next waits). */
    if (err == cudaSuccess && cuda_debug_sync() && !cuda_capturing()) err = cudaDeviceSynchronize();
    if (err != cudaSuccess) {
        fprintf(stderr, "dkd: CUDA error at %s:%d launching %s: %s\n", file, line, kernel, cudaGetErrorString(err));
        exit(1);
    }
}

#ifdef DKD_CUDA_EMU
/* tests/cuda_emu.h provides emu_launch() and emu_shared(). */
#define LAUNCH(kernel, grid, block, smem, ...) \
    emu_launch(#kernel, __FILE__, __LINE__, dim3(grid), dim3(block), (size_t)(smem), dkd_cuda_stream(), \
               [=]() { kernel(__VA_ARGS__); })
#define SHARED(type, name, count) emu::SharedPtr<type> name = {(type *)emu_shared(sizeof(type) * (size_t)(count), #name)}
#define EXTERN_SHARED(type, name) emu::SharedPtr<type> name = {(type *)emu_dynamic_shared()}
#define SHARED_PTR(type) emu::SharedPtr<type>
#else
#define LAUNCH(kernel, grid, block, smem, ...) \
    do { kernel<<<(grid), (block), (smem), dkd_cuda_stream()>>>(__VA_ARGS__); launch_check(#kernel, __FILE__, __LINE__); } while (0)
#define SHARED(type, name, count) __shared__ type name[count]
#define EXTERN_SHARED(type, name) extern __shared__ type name[]
#define SHARED_PTR(type) type *
#endif

#endif /* DKD_CUDA_COMMON_H */
