/* tests/cuda_emu.h — a small CUDA emulator: the kernels of kernels/NAME.cu, run on the CPU.
 *
 * Why: most machines that build dkd have no GPU, yet every CUDA kernel must be
 * executed and checked. g++ compiles the very same .cu files with this header
 * force-included:
 *
 *     g++ -std=c++17 -O2 -I. -Itests -DDKD_CUDA_EMU -include tests/cuda_emu.h -x c++ -c kernels/X.cu
 *
 * and kernels/cuda_common.h turns LAUNCH(kernel, grid, block, smem, args...)
 * into emu_launch(...), SHARED(type, name, n) into emu_shared(...).
 *
 * How a launch runs
 *   - Blocks run ONE AT A TIME, on the calling thread (no OpenMP inside).
 *   - Every thread of the block runs on a fiber: its own 64 KiB stack and
 *     saved registers (ucontext), so a kernel's local variables need no
 *     special care. A thread runs until it reaches a barrier (__syncthreads,
 *     __syncwarp, a shuffle, a ballot...) or returns; then the next thread of
 *     the round runs. When every thread is parked, the emulator completes the
 *     barriers whose threads have all arrived (warp operations exchange their
 *     values at that moment) and starts a new round. A thread that returns
 *     hands its fiber to the next thread that has not started yet, so a
 *     kernel without barriers costs no context switch per thread.
 *   - The ORDER in which the threads run between barriers, and the order of
 *     the blocks, is chosen by the environment variable
 *         DKD_EMU_SCHEDULE = forward | reverse | random:<seed>
 *     (or emu_set_schedule("...") from a test). A correct kernel gives
 *     bit-identical results under every order; a kernel with a race (a missing
 *     __syncthreads, two blocks writing the same element, float atomics whose
 *     order matters) gives different results, which the tests compare.
 *
 * What it catches (each reported with the kernel name, file:line of the
 * launch, block and thread, then exit(1)):
 *   - a __syncthreads() that some thread of the block never reaches (it
 *     returned early), a warp operation not reached by every lane named in its
 *     mask (stricter than the hardware: a full-mask shuffle in a warp with
 *     exited or missing lanes is an error here), lanes of one warp waiting at
 *     different warp operations, a deadlock between a warp op and a barrier;
 *   - launch configurations over the limits: more than 1024 threads per block,
 *     block dims over 1024 x 1024 x 64, grid over (2^31-1) x 65535 x 65535, an
 *     empty grid or block (typically a missing ceil-div), more than 48 KiB of
 *     shared memory per block (the opt-in for more is not modelled);
 *   - shared memory read before it is written: every SHARED array is filled
 *     with 0xff bytes (a float NaN, an int -1) at the start of every block;
 *     cudaMalloc memory likewise, so "it happened to be zero" never passes;
 *   - cudaMemcpy/cudaMemset ranges that are not inside one cudaMalloc block,
 *     or a copy kind that does not match the pointers (returned as an error
 *     code, as CUDA does, with the reason printed);
 *   - a segmentation fault inside a kernel is reported with the kernel, block
 *     and thread before the process dies (a fiber stack overflow too: every
 *     stack has a guard page; raise DKD_EMU_STACK_KB if a kernel needs more).
 *
 *   - shared-memory races: every access to a SHARED array is recorded, and
 *     two threads touching one word in the same barrier interval, one of
 *     them writing, is reported even when every schedule happens to give the
 *     same result (part 2b; DKD_EMU_RACECHECK=0 turns it off);
 *
 * What it does NOT model: timing and performance (it is about a million times
 * slower than a GPU: test small shapes), the memory model between threads
 * that are not separated by a barrier (all memory is coherent here; races on
 * SHARED memory are reported by the detector of part 2b, races on global
 * memory only show when the schedules change a result), host
 * pointers passed to kernels (they work here and crash on a GPU), fused
 * multiply-add (nvcc contracts a*b+c into one rounding; g++ with -std=c++17
 * does not, so GPU results may differ in the last bits), several streams
 * (everything is synchronous, streams are accepted and ignored; stream capture
 * records launches and replays them in the same order: see "Graphs" in part 2). It is not
 * thread-safe: launch from one host thread at a time (kernels never use OpenMP).
 *
 * SHARED arrays are identified by NAME within a block: in CUDA a __shared__
 * variable is static, so a helper function called twice sees the same array
 * (and that is emulated); two different shared arrays used by one kernel must
 * have different names.
 *
 * Other knobs: DKD_EMU_RACECHECK=0 turns the race detector off; DKD_EMU_TRACE=1 prints every launch; DKD_EMU_STACK_KB=n sets the
 * fiber stack size (default 64); DKD_EMU_UCONTEXT=1 switches fibers with
 * glibc's swapcontext even on x86-64 (see "Switching between fibers").
 *
 * The file has six parts: 1. keywords and types, 2. the runtime API (memory,
 * errors, devices, streams, events), 2b. the shared-memory race detector,
 * 3. the scheduler (fibers, barriers, warp
 * operations, launches), 4. intrinsics (shuffles, atomics, fast math),
 * 5. test helpers (emu_set_schedule, emu_set_racecheck, emu_launch_count).
 */
#ifndef DKD_CUDA_EMU_H
#define DKD_CUDA_EMU_H
#ifndef DKD_CUDA_EMU
#define DKD_CUDA_EMU 1
#endif

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <vector>

/* ========================================================================= */
/* 1. Keywords and types                                                     */
/* ========================================================================= */
/* Function and variable qualifiers mean nothing on the CPU. */
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __launch_bounds__(...)
/* __restrict__ is understood by g++ as it is. */

struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }

/* The built-in variables. The scheduler sets them before it switches to a
 * fiber, so inside a kernel they always describe the running thread. */
inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
constexpr int warpSize = 32;

/* ========================================================================= */
/* 2. The runtime API                                                        */
/* ========================================================================= */
enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorLaunchFailure = 719,
    cudaErrorIllegalState = 401,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};

/* Streams: all work runs in one order (synchronously), but each created stream
 * is a distinct handle and nullptr is the legacy default stream, so stream
 * capture can check that work goes to the capturing stream (part 2, "Graphs"). */
typedef struct emu_stream_s *cudaStream_t;
enum { cudaStreamDefault = 0, cudaStreamNonBlocking = 1 };
/* Stream capture and graphs (part 2, "Graphs"). */
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1, cudaStreamCaptureModeRelaxed = 2 };
enum cudaStreamCaptureStatus { cudaStreamCaptureStatusNone = 0, cudaStreamCaptureStatusActive = 1, cudaStreamCaptureStatusInvalidated = 2 };
struct emu_graph_s;
typedef struct emu_graph_s *cudaGraph_t;
typedef struct emu_graph_s *cudaGraphExec_t;
struct emu_event_s { double t; };
typedef struct emu_event_s *cudaEvent_t;

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem, sharedMemPerBlock, sharedMemPerBlockOptin;
    int regsPerBlock, warpSize, maxThreadsPerBlock;
    int maxThreadsDim[3], maxGridSize[3];
    int multiProcessorCount, major, minor, l2CacheSize, memoryBusWidth;
};

namespace emu {

/* Every piece of emulator state lives in this one object (a C++17 inline
 * variable: one instance shared by every object file of the program). */
enum { NEW, READY, RUNNING, AT_SYNC, AT_WARP, EXITED };      /* thread states */
enum { W_SYNCWARP, W_SHFL, W_SHFL_UP, W_SHFL_DOWN, W_SHFL_XOR, W_BALLOT, W_ANY, W_ALL };
inline const char *const warp_op_name[] = {"__syncwarp", "__shfl_sync", "__shfl_up_sync", "__shfl_down_sync",
                                           "__shfl_xor_sync", "__ballot_sync", "__any_sync", "__all_sync"};
enum { SCHED_FORWARD, SCHED_REVERSE, SCHED_RANDOM };

struct Thread {              /* one CUDA thread of the running block */
    int state;               /* NEW (not started), READY (released, resumable), RUNNING, AT_SYNC, AT_WARP, EXITED */
    int ctx;                 /* the fiber (stack + registers) it runs on, once started */
    uint3 tid;               /* threadIdx */
    int op, arg, width;      /* the warp operation it waits at */
    unsigned mask;
    uint64_t val, result;    /* its operand and (after the barrier) its result */
};
struct Context {             /* saved registers of a suspended fiber (or of the scheduler) */
    ucontext_t uc;           /* portable path; never moved (glibc's ucontext points into itself) */
    void *sp;                /* fast path (x86-64): the stack pointer, registers pushed below it */
};
struct Fiber {               /* an execution context: a stack and saved registers */
    Context ctx;
    char *stack;             /* the stack, a guard page below it */
};
struct SharedArray { const char *name; size_t bytes, off; };

enum { MAX_THREADS = 1024, SHARED_LIMIT = 48 * 1024, SHARED_ARENA = 64 * 1024 };

struct State {
    /* schedule */
    int sched = -1;                  /* -1: not read from the environment yet */
    uint64_t seed = 0, rng = 0;
    char sched_name[64] = "";
    /* threads and fibers */
    Thread th[MAX_THREADS];
    Fiber *fibers = nullptr;         /* [MAX_THREADS], created on demand */
    int n_fibers = 0;                /* fibers with a stack so far */
    int free_fibers[MAX_THREADS];    /* stack of unused fiber indices */
    int n_free = 0;
    size_t stack_bytes = 0;
    Context sched_ctx;               /* the scheduler's own context */
    int fast = -1;                   /* 1: the x86-64 switch, 0: ucontext (-1: not decided yet) */
    Thread *cur = nullptr;           /* the running thread, NULL outside kernels */
    std::vector<int> order;          /* this round's thread order */
    int pos = 0;                     /* next position in order */
    /* the launch in progress */
    int in_launch = 0;
    const char *kname = "", *kfile = ""; int kline = 0;
    const std::function<void()> *body = nullptr;
    int T = 0;                       /* threads per block */
    size_t dyn_bytes = 0;
    /* shared memory of the current block */
    std::vector<SharedArray> shared;
    size_t shared_used = 0, static_bytes = 0;
    alignas(16) char shared_mem[SHARED_ARENA];
    /* device memory: start address -> size */
    std::map<uintptr_t, size_t> allocs;
    cudaError_t last_error = cudaSuccess;
    /* statistics */
    long long launches = 0, threads = 0, switches = 0;
    int trace = -1;
    char *altstack = nullptr;
    /* the shared-memory race detector (part 3b) */
    int racecheck = -1;              /* RACE_OFF, RACE_FATAL, RACE_COUNT (-1: not read from the environment yet) */
    long long races = 0;             /* races reported so far */
    uint32_t interval = 0;           /* barrier interval: +1 at every block start and every __syncthreads */
    uint32_t (*clock)[32] = nullptr; /* [MAX_THREADS][32]: thread t's view of its warp's lane clocks */
    struct Shadow *shadow = nullptr; /* [SHARED_ARENA / 4]: last accesses of each 4-byte word */
};
inline State g;

/* Stream capture: while `on`, launches and async device copies/sets are
 * recorded in `ops` instead of run; `broken` names the first call that a
 * graph cannot hold (the capture is then invalidated). */
struct Capture {
    int on = 0;
    cudaStream_t stream = nullptr;   /* the capturing stream */
    const char *broken = nullptr;
    std::vector<std::function<void()>> ops;
};
inline Capture cap;

/* Report an error found by the emulator, with the place, and exit(1). */
[[noreturn]] inline void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
inline void fail(const char *fmt, ...) {
    fflush(stdout);
    fprintf(stderr, "cuda_emu: ERROR");
    if (g.in_launch) {
        fprintf(stderr, " in kernel %s (launched at %s:%d), block (%u,%u,%u)", g.kname, g.kfile, g.kline,
                blockIdx.x, blockIdx.y, blockIdx.z);
        if (g.cur) fprintf(stderr, ", thread (%u,%u,%u)", g.cur->tid.x, g.cur->tid.y, g.cur->tid.z);
    }
    fprintf(stderr, ":\n  ");
    va_list ap; va_start(ap, fmt); vfprintf(stderr, fmt, ap); va_end(ap);
    fprintf(stderr, "\n");
    fflush(stderr);
    _exit(1);   /* not exit(): we may be on a fiber's stack */
}

inline cudaError_t set_error(cudaError_t e) { if (e != cudaSuccess) g.last_error = e; return e; }

/* A call made during a stream capture that a CUDA graph cannot hold (it
 * synchronises with the host, allocates or frees): say so loudly, invalidate
 * the capture and return CUDA's error for it. */
inline cudaError_t capture_violation(const char *call) {
    fflush(stdout);
    fprintf(stderr, "cuda_emu: ERROR: %s during a stream capture: a CUDA graph cannot hold it "
                    "(it synchronises, allocates or frees); the capture is invalidated\n", call);
    if (!cap.broken) cap.broken = call;
    return set_error(cudaErrorStreamCaptureUnsupported);
}

/* Is [p, p+n) inside one cudaMalloc allocation? */
inline bool is_device(const void *p, size_t n) {
    uintptr_t a = (uintptr_t)p;
    auto it = g.allocs.upper_bound(a);
    if (it == g.allocs.begin()) return false;
    --it;
    return a >= it->first && a + n <= it->first + it->second && a + n >= a;
}
inline bool touches_device(const void *p) { return is_device(p, 1); }

/* A device-memory argument check: print why, return the CUDA error code. */
inline cudaError_t bad_arg(const char *fn, const char *what, const void *p, size_t n) {
    fprintf(stderr, "cuda_emu: %s: %s (pointer %p, %zu bytes)\n", fn, what, p, n);
    return set_error(cudaErrorInvalidValue);
}

} // namespace emu

inline const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorIllegalState: return "the operation is not permitted in the current state";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    }
    return "unknown error";
}
inline cudaError_t cudaGetLastError(void) { cudaError_t e = emu::g.last_error; emu::g.last_error = cudaSuccess; return e; }
inline cudaError_t cudaPeekAtLastError(void) { return emu::g.last_error; }
inline cudaError_t cudaDeviceSynchronize(void) {   /* launches are synchronous */
    return emu::cap.on ? emu::capture_violation("cudaDeviceSynchronize") : cudaSuccess;
}
inline cudaError_t cudaDeviceReset(void) { return cudaSuccess; }

/* One emulated device. */
inline cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
inline cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : emu::set_error(cudaErrorInvalidDevice); }
inline cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
    if (d != 0) return emu::set_error(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "dkd CUDA emulator (CPU)");
    p->totalGlobalMem = (size_t)16 << 30;
    p->sharedMemPerBlock = emu::SHARED_LIMIT;
    p->sharedMemPerBlockOptin = emu::SHARED_LIMIT;
    p->regsPerBlock = 65536; p->warpSize = 32; p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = 1024; p->maxThreadsDim[1] = 1024; p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 2147483647; p->maxGridSize[1] = 65535; p->maxGridSize[2] = 65535;
    p->multiProcessorCount = 1; p->major = 8; p->minor = 0;
    p->l2CacheSize = 0; p->memoryBusWidth = 0;
    return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b) {
    *free_b = (size_t)8 << 30; *total_b = (size_t)16 << 30; return cudaSuccess;
}

/* Device memory: 256-byte aligned like cudaMalloc, filled with 0xff bytes
 * (NaN as float) so that a kernel reading memory nobody wrote fails loudly. */
inline cudaError_t cudaMalloc(void **p, size_t bytes) {
    if (!p) return emu::set_error(cudaErrorInvalidValue);
    *p = nullptr;
    if (emu::cap.on) return emu::capture_violation("cudaMalloc");
    if (bytes == 0) return cudaSuccess;
    size_t rounded = (bytes + 255) & ~(size_t)255;
    void *m = aligned_alloc(256, rounded);
    if (!m) return emu::set_error(cudaErrorMemoryAllocation);
    memset(m, 0xff, rounded);
    emu::g.allocs[(uintptr_t)m] = bytes;
    *p = m;
    return cudaSuccess;
}
template <class T> inline cudaError_t cudaMalloc(T **p, size_t bytes) { return cudaMalloc((void **)p, bytes); }
inline cudaError_t cudaFree(void *p) {
    if (emu::cap.on) return emu::capture_violation("cudaFree");
    if (!p) return cudaSuccess;
    auto it = emu::g.allocs.find((uintptr_t)p);
    if (it == emu::g.allocs.end())
        return emu::bad_arg("cudaFree", "not the start of a live cudaMalloc block (double free? host pointer?)", p, 0);
    emu::g.allocs.erase(it);
    free(p);
    return cudaSuccess;
}
/* Pinned host memory is ordinary host memory here. */
inline cudaError_t cudaMallocHost(void **p, size_t bytes) { *p = malloc(bytes ? bytes : 1); return *p ? cudaSuccess : emu::set_error(cudaErrorMemoryAllocation); }
template <class T> inline cudaError_t cudaMallocHost(T **p, size_t bytes) { return cudaMallocHost((void **)p, bytes); }
inline cudaError_t cudaFreeHost(void *p) { free(p); return cudaSuccess; }

inline cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    using namespace emu;
    if (cap.on) return capture_violation("cudaMemcpy (synchronous)");
    if (n == 0) return cudaSuccess;
    if (!dst || !src) return bad_arg("cudaMemcpy", "NULL pointer", dst ? src : dst, n);
    bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind == cudaMemcpyDefault) { dst_dev = touches_device(dst); src_dev = touches_device(src); }
    else if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return set_error(cudaErrorInvalidMemcpyDirection);
    if (dst_dev && !is_device(dst, n)) return bad_arg("cudaMemcpy", "the destination range is not inside one cudaMalloc block", dst, n);
    if (src_dev && !is_device(src, n)) return bad_arg("cudaMemcpy", "the source range is not inside one cudaMalloc block", src, n);
    if (!dst_dev && touches_device(dst)) return bad_arg("cudaMemcpy", "the destination is device memory but the copy kind says host", dst, n);
    if (!src_dev && touches_device(src)) return bad_arg("cudaMemcpy", "the source is device memory but the copy kind says host", src, n);
    memmove(dst, src, n);
    return cudaSuccess;
}
inline cudaError_t cudaMemset(void *p, int value, size_t n) {
    if (emu::cap.on) return emu::capture_violation("cudaMemset (synchronous)");
    if (n == 0) return cudaSuccess;
    if (!emu::is_device(p, n)) return emu::bad_arg("cudaMemset", "the range is not inside one cudaMalloc block", p, n);
    memset(p, value, n);
    return cudaSuccess;
}
/* Async copies and sets run at once, or are recorded during a capture: a
 * device-to-device copy or a set (checked now, run at replay); a copy to or
 * from the host is refused there (it would read or write host memory at
 * replay time, when the caller's buffer may be gone). */
inline cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t st = 0) {
    using namespace emu;
    if (!cap.on) return cudaMemcpy(dst, src, n, kind);
    if (st != cap.stream) return capture_violation("cudaMemcpyAsync on a stream other than the capturing one");
    if (n == 0) return cudaSuccess;
    if (kind == cudaMemcpyDefault && touches_device(dst) && touches_device(src)) kind = cudaMemcpyDeviceToDevice;
    if (kind != cudaMemcpyDeviceToDevice) return capture_violation("cudaMemcpyAsync to or from the host");
    if (!is_device(dst, n) || !is_device(src, n))
        return bad_arg("cudaMemcpyAsync", "a range that is not inside one cudaMalloc block", is_device(dst, n) ? src : dst, n);
    cap.ops.push_back([=]() { memmove(dst, src, n); });
    return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t st = 0) {
    using namespace emu;
    if (!cap.on) return cudaMemset(p, value, n);
    if (st != cap.stream) return capture_violation("cudaMemsetAsync on a stream other than the capturing one");
    if (n == 0) return cudaSuccess;
    if (!is_device(p, n)) return bad_arg("cudaMemsetAsync", "the range is not inside one cudaMalloc block", p, n);
    cap.ops.push_back([=]() { memset(p, value, n); });
    return cudaSuccess;
}
/* __constant__ variables are ordinary globals: copying to them is a memcpy. */
template <class T>
inline cudaError_t cudaMemcpyToSymbol(T &symbol, const void *src, size_t n, size_t offset = 0,
                                      cudaMemcpyKind = cudaMemcpyHostToDevice) {
    if (offset + n > sizeof(T)) return emu::set_error(cudaErrorInvalidValue);
    memcpy((char *)&symbol + offset, src, n);
    return cudaSuccess;
}

/* Streams: everything is synchronous; a created stream is a distinct handle
 * (never dereferenced), nullptr the legacy default stream. */
inline cudaError_t cudaStreamCreate(cudaStream_t *s) {
    static uintptr_t next = 0;
    next += 16;
    *s = (cudaStream_t)next;
    return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { return cudaStreamCreate(s); }
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) {
    return emu::cap.on ? emu::capture_violation("cudaStreamSynchronize") : cudaSuccess;
}

/* Graphs. cudaStreamBeginCapture .. cudaStreamEndCapture records, in order,
 * every kernel launch (its arguments copied, as CUDA copies kernel parameters
 * at capture) and every cudaMemsetAsync / device-to-device cudaMemcpyAsync,
 * running none of them; cudaGraphLaunch replays the list. One capture at a
 * time, on a created stream: as in CUDA, the legacy default stream (nullptr)
 * cannot be captured. A call a graph cannot hold, made inside the capture
 * (cudaMalloc, cudaFree, synchronous cudaMemcpy/cudaMemset, a host copy,
 * cudaDeviceSynchronize, cudaStreamSynchronize, or a launch, async copy or set
 * on another stream than the capturing one, which in CUDA's global capture
 * mode is an implicit synchronisation with it), prints an error, returns
 * cudaErrorStreamCaptureUnsupported, and makes cudaStreamEndCapture fail with
 * cudaErrorStreamCaptureInvalidated and no graph, as CUDA does. */
struct emu_graph_s { std::vector<std::function<void()>> ops; };
inline cudaError_t cudaStreamBeginCapture(cudaStream_t st, cudaStreamCaptureMode) {
    using namespace emu;
    if (cap.on) return set_error(cudaErrorIllegalState);
    if (!st) return set_error(cudaErrorStreamCaptureUnsupported);   /* the legacy stream cannot be captured */
    cap.on = 1; cap.stream = st; cap.broken = nullptr; cap.ops.clear();
    return cudaSuccess;
}
inline cudaError_t cudaStreamIsCapturing(cudaStream_t, cudaStreamCaptureStatus *st) {
    *st = !emu::cap.on ? cudaStreamCaptureStatusNone : emu::cap.broken ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}
inline cudaError_t cudaStreamEndCapture(cudaStream_t st, cudaGraph_t *graph) {
    using namespace emu;
    *graph = nullptr;
    if (!cap.on || st != cap.stream) return set_error(cudaErrorIllegalState);
    cap.on = 0;
    std::vector<std::function<void()>> ops;
    ops.swap(cap.ops);
    if (cap.broken) return set_error(cudaErrorStreamCaptureInvalidated);
    *graph = new emu_graph_s{std::move(ops)};
    return cudaSuccess;
}
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long = 0) {
    if (!graph) return emu::set_error(cudaErrorInvalidValue);
    *exec = new emu_graph_s{graph->ops};
    return cudaSuccess;
}
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t) {
    if (!exec) return emu::set_error(cudaErrorInvalidValue);
    if (emu::cap.on) return emu::capture_violation("cudaGraphLaunch (a graph inside a capture)");
    for (const std::function<void()> &op : exec->ops) op();
    return cudaSuccess;
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) { delete exec; return cudaSuccess; }
inline cudaError_t cudaGraphDestroy(cudaGraph_t graph) { delete graph; return cudaSuccess; }
/* Recorded kernel launches so far in the capture (tests). */
inline size_t emu_capture_size(void) { return emu::cap.ops.size(); }

/* Events measure host wall time (meaningless for GPU performance, but the
 * benchmark code that uses them compiles and runs). */
inline double emu_now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec * 1e-9; }
inline cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = new emu_event_s{0}; return cudaSuccess; }
inline cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return cudaSuccess; }
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t = 0) { e->t = emu_now(); return cudaSuccess; }
inline cudaError_t cudaEventSynchronize(cudaEvent_t) {
    return emu::cap.on ? emu::capture_violation("cudaEventSynchronize") : cudaSuccess;
}
inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) { *ms = (float)((b->t - a->t) * 1e3); return cudaSuccess; }

namespace emu {

/* ========================================================================= */
/* 2b. The shared-memory race detector                                       */
/* ========================================================================= */
/* Different schedules catch a race only when it changes a result; many races
 * do not (two threads write the same value, or the reader happens to run
 * after the writer under every order tried). So every SHARED access is also
 * recorded, like compute-sanitizer's racecheck does on a GPU:
 *
 *   - Time inside a block is cut into barrier INTERVALS: a new one starts at
 *     the block's start and whenever a __syncthreads completes. Accesses in
 *     different intervals are ordered by the barrier between them.
 *   - Inside one interval only __syncwarp orders threads, and only the lanes
 *     it names. That is tracked with vector clocks: each thread counts its own
 *     __syncwarp calls (its clock) and remembers the latest clock of each lane
 *     of its warp it has synchronised with; a __syncwarp merges the
 *     participants' views. Access a (thread A, A's clock then) is ordered
 *     before thread B's access now when B's view of A's clock has reached it.
 *     (Shuffles exchange registers, not memory: they do not order accesses.)
 *   - For every 4-byte word of shared memory the detector keeps the last
 *     write (interval, thread, clock) and the last read, plus a flag "read by
 *     several threads in this interval". A read after another thread's
 *     unordered write, and a write after another thread's unordered read or
 *     write, is a RACE: it is reported with the array, the element, the kernel,
 *     block and both threads. (A write after reads by several threads is
 *     reported unless the last reader was the writer itself and no other
 *     thread read: the detector keeps one reader, so it stays on the safe side.)
 *
 * By default a race stops the program like every other error found here;
 * DKD_EMU_RACECHECK=0 turns the detector off, and emu_set_racecheck(RACE_COUNT)
 * lets a test count races (emu_race_count) instead of stopping. Only SHARED
 * and EXTERN_SHARED arrays are watched: they are reached through the
 * SharedPtr / SharedRef types below (kernels/cuda_common.h declares them that
 * way under the emulator), which call race_access on every load and store. */
enum { RACE_OFF = 0, RACE_FATAL = 1, RACE_COUNT = 2 };
struct Shadow {
    uint32_t w_interval, r_interval;   /* interval of the last write / read (0: none yet) */
    uint32_t w_clock, r_clock;         /* that thread's clock at the access */
    uint16_t w_thread, r_thread;       /* which thread (linear index in the block) */
    uint8_t r_many;                    /* read by more than one thread in r_interval */
};

inline int racecheck_mode(void) {
    if (g.racecheck < 0) { const char *e = getenv("DKD_EMU_RACECHECK"); g.racecheck = (e && e[0] == '0') ? RACE_OFF : RACE_FATAL; }
    return g.racecheck;
}

/* A new barrier interval: every thread's clock view restarts (own clock 1). */
inline void race_new_interval(void) {
    if (racecheck_mode() == RACE_OFF) return;
    if (!g.clock) {
        g.clock = new uint32_t[MAX_THREADS][32];
        g.shadow = new Shadow[SHARED_ARENA / 4]();
    }
    if (++g.interval == 0) {   /* wrapped after 4 billion barriers: forget everything */
        memset(g.shadow, 0, sizeof(Shadow) * (SHARED_ARENA / 4));
        g.interval = 1;
    }
    for (int t = 0; t < g.T; t++) {
        memset(g.clock[t], 0, sizeof g.clock[t]);
        g.clock[t][t % 32] = 1;
    }
}

/* A completed __syncwarp(mask) of warp `base`: merge the participants' views, tick their clocks. */
inline void race_syncwarp(int base, unsigned mask) {
    if (racecheck_mode() == RACE_OFF || !g.clock) return;
    uint32_t joined[32] = {0};
    for (int j = 0; j < 32; j++)
        if ((mask >> j) & 1u)
            for (int l = 0; l < 32; l++) if (g.clock[base + j][l] > joined[l]) joined[l] = g.clock[base + j][l];
    for (int j = 0; j < 32; j++)
        if ((mask >> j) & 1u) {
            memcpy(g.clock[base + j], joined, sizeof joined);
            g.clock[base + j][j]++;
        }
}

/* Was thread a's access at clock c (in the current interval) ordered before thread u's now? */
inline bool race_ordered(int a, uint32_t c, int u) {
    return a == u || ((a / 32 == u / 32) && g.clock[u][a % 32] >= c);
}

/* "array[index]" of the shared word at byte offset off. */
inline void race_where(char *buf, size_t n, size_t off) {
    for (const SharedArray &a : g.shared)
        if (off >= a.off && off < a.off + a.bytes) { snprintf(buf, n, "SHARED array '%s', byte %zu", a.name, off - a.off); return; }
    if (off < g.dyn_bytes) { snprintf(buf, n, "EXTERN_SHARED memory, byte %zu", off); return; }
    snprintf(buf, n, "shared memory byte %zu", off);
}

inline void race_report(size_t off, const char *kind, int other, int u) {
    g.races++;
    if (racecheck_mode() == RACE_COUNT && g.races > 5) return;   /* counted, not printed */
    char where[160];
    race_where(where, sizeof where, off);
    const Thread &o = g.th[other];
    char msg[512];
    snprintf(msg, sizeof msg,
             "shared-memory race on %s: %s by thread (%u,%u,%u) and thread (%u,%u,%u) in the same barrier interval.\n"
             "  hint: a __syncthreads() (or __syncwarp() within a warp) is missing between the two accesses",
             where, kind, g.th[u].tid.x, g.th[u].tid.y, g.th[u].tid.z, o.tid.x, o.tid.y, o.tid.z);
    if (racecheck_mode() == RACE_FATAL) fail("%s", msg);
    fflush(stdout);
    fprintf(stderr, "cuda_emu: race in kernel %s (launched at %s:%d), block (%u,%u,%u):\n  %s\n", g.kname, g.kfile,
            g.kline, blockIdx.x, blockIdx.y, blockIdx.z, msg);
}

/* The running thread reads (write = 0) or writes n bytes of shared memory at p. */
inline void race_access(const void *p, size_t n, int write) {
    if (racecheck_mode() == RACE_OFF) return;
    if (!g.cur || !g.in_launch) fail("shared memory accessed outside a kernel");
    int u = (int)(g.cur - g.th);
    uint32_t now = g.interval, clk = g.clock[u][u % 32];
    size_t off0 = (size_t)((const char *)p - g.shared_mem);
    for (size_t off = off0 & ~(size_t)3; off < off0 + n; off += 4) {
        Shadow &s = g.shadow[off / 4];
        if (s.w_interval == now && !race_ordered(s.w_thread, s.w_clock, u))
            race_report(off, write ? "a write after a write" : "a read after a write", s.w_thread, u);
        if (write) {
            if (s.r_interval == now) {
                if (!race_ordered(s.r_thread, s.r_clock, u)) race_report(off, "a write after a read", s.r_thread, u);
                else if (s.r_many) race_report(off, "a write after reads by several threads", s.r_thread, u);
            }
            s.w_interval = now; s.w_thread = (uint16_t)u; s.w_clock = clk;
        } else {
            if (s.r_interval == now && s.r_thread != u) s.r_many = 1;
            else if (s.r_interval != now) s.r_many = 0;
            s.r_interval = now; s.r_thread = (uint16_t)u; s.r_clock = clk;
        }
    }
}

/* What a SHARED array is under the emulator: a pointer whose elements are
 * SharedRefs, so that every load and store is seen by race_access. Kernels
 * use it like a plain array or pointer (a[i], *p, p + i); a helper that
 * receives one declares its parameter as SHARED_PTR(type). */
template <class T> struct SharedRef {
    T *p;
    operator T() const { race_access(p, sizeof(T), 0); return *p; }
    SharedRef &operator=(const T &v) { race_access(p, sizeof(T), 1); *p = v; return *this; }
    SharedRef &operator=(const SharedRef &o) { return *this = (T)o; }
    SharedRef &operator+=(const T &v) { T x = *this; return *this = x + v; }
    SharedRef &operator-=(const T &v) { T x = *this; return *this = x - v; }
    SharedRef &operator*=(const T &v) { T x = *this; return *this = x * v; }
    SharedRef &operator/=(const T &v) { T x = *this; return *this = x / v; }
};
template <class T> struct SharedPtr {
    T *p;
    SharedRef<T> operator[](long long i) const { return SharedRef<T>{p + i}; }
    SharedRef<T> operator*() const { return SharedRef<T>{p}; }
    SharedPtr operator+(long long i) const { return SharedPtr{p + i}; }
    SharedPtr operator-(long long i) const { return SharedPtr{p - i}; }
    bool operator!() const { return !p; }
};

} // namespace emu

/* ========================================================================= */
/* 3. The scheduler                                                          */
/* ========================================================================= */
namespace emu {

/* A small PRNG (SplitMix64) for the random schedule: reproducible per seed. */
inline uint64_t next_random(void) {
    uint64_t z = (g.rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
inline void shuffle(std::vector<int> &v) {   /* Fisher-Yates */
    for (size_t i = v.size(); i > 1; i--) {
        size_t j = (size_t)(next_random() % i);
        int tmp = v[i - 1]; v[i - 1] = v[j]; v[j] = tmp;
    }
}

/* "forward", "reverse", "random:<seed>" -> the schedule; 0, or -1 if not understood. */
inline int parse_schedule(const char *s) {
    if (!s || !*s || !strcmp(s, "forward")) { g.sched = SCHED_FORWARD; snprintf(g.sched_name, sizeof g.sched_name, "forward"); return 0; }
    if (!strcmp(s, "reverse")) { g.sched = SCHED_REVERSE; snprintf(g.sched_name, sizeof g.sched_name, "reverse"); return 0; }
    if (!strncmp(s, "random", 6) && (s[6] == 0 || s[6] == ':')) {
        char *end = nullptr;
        unsigned long long seed = s[6] ? strtoull(s + 7, &end, 10) : 1;
        if (s[6] && (end == s + 7 || *end)) return -1;
        g.sched = SCHED_RANDOM; g.seed = seed; g.rng = seed * 0x2545f4914f6cdd1dULL + 1;
        snprintf(g.sched_name, sizeof g.sched_name, "random:%llu", seed);
        return 0;
    }
    return -1;
}
inline void init_schedule(void) {
    if (g.sched >= 0) return;
    const char *e = getenv("DKD_EMU_SCHEDULE");
    if (parse_schedule(e) != 0) fail("DKD_EMU_SCHEDULE='%s' is not forward, reverse or random:<seed>", e);
}

/* What happens when a segfault hits inside a kernel: say where, then die. */
inline void on_fault(int sig, siginfo_t *info, void *) {
    char buf[640];
    int n;
    const char *what = sig == SIGSEGV ? "segmentation fault" : "bus error";
    if (g.in_launch && g.cur) {
        /* the address in the guard page below the running fiber's stack? */
        const char *hint = "an out-of-bounds access (or a host pointer passed to a kernel)";
        if (g.cur->ctx >= 0 && g.fibers) {
            const char *a = (const char *)info->si_addr, *st = g.fibers[g.cur->ctx].stack;
            if (a < st && a >= st - sysconf(_SC_PAGESIZE))
                hint = "the thread's fiber stack overflowed (large local arrays?): try DKD_EMU_STACK_KB=256";
        }
        n = snprintf(buf, sizeof buf,
                     "cuda_emu: %s in kernel %s (launched at %s:%d), block (%u,%u,%u), thread (%u,%u,%u):\n  %s\n",
                     what, g.kname, g.kfile, g.kline, blockIdx.x, blockIdx.y, blockIdx.z,
                     g.cur->tid.x, g.cur->tid.y, g.cur->tid.z, hint);
    } else {
        n = snprintf(buf, sizeof buf, "cuda_emu: %s outside a kernel\n", what);
    }
    if (n > 0 && write(2, buf, (size_t)n) < 0) { /* nothing more we can do */ }
    /* SA_RESETHAND restored the default action: returning re-runs the faulting
     * instruction, which now kills the process with the usual signal. */
}
inline void install_fault_handler(void) {
    if (g.altstack) return;
    size_t sz = 64 * 1024;
    g.altstack = (char *)malloc(sz);
    stack_t ss; memset(&ss, 0, sizeof ss);
    ss.ss_sp = g.altstack; ss.ss_size = sz;
    sigaltstack(&ss, nullptr);
    struct sigaction sa; memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
}

/* Switching between fibers. The portable way is ucontext: makecontext gives
 * a fresh stack a first function, swapcontext saves the running registers and
 * loads another set. glibc's swapcontext also saves and restores the signal
 * mask, which is a system call (~0.3 us here) on every switch, and a kernel
 * with barriers switches once per thread per barrier. On x86-64 a 12-line
 * switch does the same job in user space (the registers a called function
 * must preserve, the stack pointer, the floating-point control words),
 * making the emulator about 4x faster; DKD_EMU_UCONTEXT=1 (or
 * emu_use_ucontext(1)) selects the portable path, which the tests also run. */
#if defined(__x86_64__) && defined(__GNUC__)
#define EMU_HAVE_FAST_SWITCH 1
} // namespace emu
/* emu_ctx_switch(&save_sp, new_sp): push the callee-saved registers and the
 * SSE/x87 control words, store the stack pointer in *save_sp, load new_sp,
 * pop the other fiber's saved registers, return into that fiber. Weak, so
 * that every object file may carry a copy. */
extern "C" void emu_ctx_switch(void **save_sp, void *new_sp);
__asm__(".text\n"
        ".weak emu_ctx_switch\n"
        ".type emu_ctx_switch, @function\n"
        "emu_ctx_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  subq $8, %rsp\n  stmxcsr (%rsp)\n  fnstcw 4(%rsp)\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  ldmxcsr (%rsp)\n  fldcw 4(%rsp)\n  addq $8, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size emu_ctx_switch, .-emu_ctx_switch\n");
namespace emu {
#else
#define EMU_HAVE_FAST_SWITCH 0
#endif

inline void fiber_main(void);

inline int use_fast_switch(void) {
    if (g.fast < 0) {
        const char *e = getenv("DKD_EMU_UCONTEXT");
        g.fast = EMU_HAVE_FAST_SWITCH && !(e && e[0] == '1');
    }
    return g.fast;
}

/* Make c start fiber_main on the given stack at the next switch to it. */
inline void context_make(Context *c, char *stack, size_t size) {
#if EMU_HAVE_FAST_SWITCH
    if (use_fast_switch()) {
        /* the frame emu_ctx_switch pops: control words, 6 registers, then the
         * "return address" fiber_main, which then sees a 16-byte aligned
         * stack minus one fake return address, as after a call */
        void **sp = (void **)(((uintptr_t)(stack + size)) & ~(uintptr_t)15);
        *--sp = nullptr;                           /* fiber_main's return address: never used */
        *--sp = (void *)fiber_main;
        for (int i = 0; i < 6; i++) *--sp = nullptr; /* rbp rbx r12 r13 r14 r15 */
        --sp;
        uint32_t ctl[2] = {__builtin_ia32_stmxcsr(), 0};
        unsigned short cw;
        __asm__ volatile("fnstcw %0" : "=m"(cw));
        ctl[1] = cw;
        memcpy(sp, ctl, sizeof ctl);
        c->sp = sp;
        return;
    }
#endif
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, fiber_main, 0);
}

/* Save the running registers into `from`, continue with `to`. */
inline void context_switch(Context *from, Context *to) {
    g.switches++;
#if EMU_HAVE_FAST_SWITCH
    if (g.fast) { emu_ctx_switch(&from->sp, to->sp); return; }
#endif
    swapcontext(&from->uc, &to->uc);
}

/* A free fiber: from the pool, or a new one (stacks are kept for every later launch). */
inline int alloc_fiber(void) {
    if (g.n_free) return g.free_fibers[--g.n_free];
    if (!g.fibers) {
        g.fibers = new Fiber[MAX_THREADS]();
        const char *e = getenv("DKD_EMU_STACK_KB");
        long kb = e ? atol(e) : 64;
        if (kb < 16) kb = 16;
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        g.stack_bytes = ((size_t)kb * 1024 + page - 1) / page * page;
    }
    if (g.n_fibers >= MAX_THREADS) fail("emulator: out of fibers (internal error)");
    /* [guard page][stack]: running off the stack faults instead of silently
     * overwriting another fiber's stack. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = (char *)mmap(nullptr, g.stack_bytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) fail("cannot allocate a fiber stack of %zu KiB", g.stack_bytes / 1024);
    mprotect(m, page, PROT_NONE);
    Fiber &f = g.fibers[g.n_fibers];
    f.stack = m + page;
    getcontext(&f.ctx.uc);
    return g.n_fibers++;
}

/* The next thread of this round's order that may run (NEW or READY), or NULL. */
inline Thread *pick_next(void) {
    while (g.pos < g.T) {
        Thread *t = &g.th[g.order[(size_t)g.pos++]];
        if (t->state == NEW || t->state == READY) return t;
    }
    return nullptr;
}

/* Save the running context into `save` and continue with thread n (start it
 * on a fresh fiber if it is NEW, else resume it), or with the scheduler when
 * n is NULL (the round is over). */
inline void switch_to(Thread *n, Context *save) {
    if (!n) { g.cur = nullptr; context_switch(save, &g.sched_ctx); return; }
    if (n->state == NEW) {
        n->ctx = alloc_fiber();
        Fiber &f = g.fibers[n->ctx];
        context_make(&f.ctx, f.stack, g.stack_bytes);
    }
    n->state = RUNNING;
    g.cur = n;
    threadIdx = n->tid;
    context_switch(save, &g.fibers[n->ctx].ctx);
}

/* Every fiber starts here. It runs the kernel body for its thread; when the
 * thread returns and the next thread in the order has not started yet, the
 * same fiber runs that one too (no context switch: this is what makes
 * kernels without barriers cheap). Otherwise the fiber goes back to the pool
 * and control passes to the next thread or to the scheduler. */
inline void fiber_main(void) {
    for (;;) {
        Thread *t = g.cur;
        (*g.body)();
        t->state = EXITED;
        Thread *n = pick_next();
        if (n && n->state == NEW) {
            n->ctx = t->ctx;
            n->state = RUNNING;
            g.cur = n;
            threadIdx = n->tid;
            continue;
        }
        int me = t->ctx;
        g.free_fibers[g.n_free++] = me;       /* nothing runs it before we have left it */
        switch_to(n, &g.fibers[me].ctx);        /* never comes back */
    }
}

/* Called by a thread at a barrier: park in `state`; the next thread of the
 * round runs. Returns (the thread) once the scheduler has released it. */
inline Thread *park(int state, const char *what) {
    Thread *t = g.cur;
    if (!t) fail("%s called outside a kernel", what);
    t->state = state;
    switch_to(pick_next(), &g.fibers[t->ctx].ctx);
    return t;
}

/* "thread (x,y,z) [warp w lane l]" for messages; two rotating buffers. */
inline const char *thread_name(int t) {
    static char buf[2][96];
    static int k = 0;
    k ^= 1;
    const Thread &f = g.th[t];
    snprintf(buf[k], sizeof buf[k], "thread (%u,%u,%u) [warp %d lane %d]", f.tid.x, f.tid.y, f.tid.z, t / 32, t % 32);
    return buf[k];
}

/* Are all lanes named in thread t's mask parked at the same warp operation
 * (same op, same mask)? If not and `report` is set, say why the warp can
 * never continue, and exit. */
inline int warp_ready(int t, int report) {
    Thread &f = g.th[t];
    int base = t & ~31, lane = t & 31;
    unsigned m = f.mask;
    const char *op = warp_op_name[f.op];
    if (!((m >> lane) & 1u))
        fail("%s calls %s with mask 0x%08x, which does not include its own lane %d", thread_name(t), op, m, lane);
    for (int j = 0; j < 32; j++) {
        if (!((m >> j) & 1u)) continue;
        int tj = base + j;
        if (tj >= g.T)
            fail("%s: %s with mask 0x%08x names lane %d, but the block has only %d threads, so warp %d has "
                 "only %d lanes.\n  hint: use a block size that is a multiple of 32, or a mask of the lanes that exist",
                 thread_name(t), op, m, j, g.T, t / 32, g.T - base);
        Thread &o = g.th[tj];
        if (o.state == EXITED)
            fail("%s: %s with mask 0x%08x waits for lane %d, but %s has already returned "
                 "(an early return or a divergent branch before a warp operation)", thread_name(t), op, m, j, thread_name(tj));
        if (o.state == AT_WARP && o.op == f.op && o.mask == m) {
            if (f.op != W_SYNCWARP && f.op != W_BALLOT && f.op != W_ANY && f.op != W_ALL && o.width != f.width)
                fail("lanes of warp %d call %s with different widths (%d and %d)", t / 32, op, f.width, o.width);
            continue;
        }
        if (!report) return 0;   /* maybe later: lane j is still elsewhere */
        if (o.state == AT_SYNC)
            fail("%s waits at %s (mask 0x%08x) while %s waits at __syncthreads(): deadlock", thread_name(t), op, m, thread_name(tj));
        fail("the lanes of warp %d are at different warp operations: %s at %s (mask 0x%08x), %s at %s (mask 0x%08x): deadlock",
             t / 32, thread_name(t), op, m, thread_name(tj), warp_op_name[o.op], o.mask);
    }
    return 1;
}

/* Thread t's warp operation is ready: compute every lane's result (from the
 * operands as they were), release the lanes. */
inline void complete_warp_op(int t) {
    Thread &f = g.th[t];
    int base = t & ~31;
    unsigned m = f.mask;
    const char *op = warp_op_name[f.op];
    int w = f.width;
    if (w < 1 || w > 32 || (w & (w - 1)))
        fail("%s: %s width %d is not a power of two between 1 and 32", thread_name(t), op, w);
    uint64_t res[32];
    unsigned bits = 0;
    for (int j = 0; j < 32; j++)
        if ((m >> j) & 1u && g.th[base + j].val) bits |= 1u << j;
    for (int j = 0; j < 32; j++) {
        if (!((m >> j) & 1u)) continue;
        Thread &o = g.th[base + j];
        int seg = j & ~(w - 1), src = j;      /* seg: first lane of j's width-segment */
        switch (f.op) {
        case W_SHFL: src = seg + (o.arg & (w - 1)); break;
        case W_SHFL_UP: if ((j & (w - 1)) >= o.arg) src = j - o.arg; break;
        case W_SHFL_DOWN: if ((j & (w - 1)) + o.arg < w) src = j + o.arg; break;
        case W_SHFL_XOR: src = j ^ (o.arg & 31); if (src >= seg + w) src = j; break;
        default: break;
        }
        if (src != j && !((m >> src) & 1u))
            fail("%s: %s at lane %d reads lane %d, which is not in the mask 0x%08x (its value is undefined on a GPU)",
                 thread_name(base + j), op, j, src, m);
        switch (f.op) {
        case W_SHFL: case W_SHFL_UP: case W_SHFL_DOWN: case W_SHFL_XOR: res[j] = g.th[base + src].val; break;
        case W_BALLOT: res[j] = bits; break;
        case W_ANY: res[j] = bits != 0; break;
        case W_ALL: res[j] = bits == m; break;
        default: res[j] = 0; break;
        }
    }
    for (int j = 0; j < 32; j++)
        if ((m >> j) & 1u) { g.th[base + j].result = res[j]; g.th[base + j].state = READY; }
    if (f.op == W_SYNCWARP) race_syncwarp(base, m);
}

/* Run one block: rounds of "every runnable fiber runs until it parks", then
 * complete the barriers whose threads have all arrived. */
inline void run_block(void) {
    int T = g.T;
    /* fresh shared memory for this block: dynamic part first, NaN-filled */
    g.shared.clear();
    race_new_interval();
    g.static_bytes = 0;
    g.shared_used = (g.dyn_bytes + 15) & ~(size_t)15;
    if (g.dyn_bytes) memset(g.shared_mem, 0xff, g.dyn_bytes);
    for (int t = 0; t < T; t++) {
        Thread &f = g.th[t];
        f.state = NEW;
        f.ctx = -1;
        f.tid.x = (unsigned)t % blockDim.x;
        f.tid.y = ((unsigned)t / blockDim.x) % blockDim.y;
        f.tid.z = (unsigned)t / (blockDim.x * blockDim.y);
    }
    g.order.resize((size_t)T);
    for (int i = 0; i < T; i++) g.order[(size_t)i] = g.sched == SCHED_REVERSE ? T - 1 - i : i;
    for (;;) {
        /* one round: the threads that may run, in the schedule's order, each
         * until it parks or returns (the chain passes from thread to thread
         * and comes back here at the end) */
        if (g.sched == SCHED_RANDOM) shuffle(g.order);
        g.pos = 0;
        Thread *first = pick_next();
        if (first) switch_to(first, &g.sched_ctx);
        /* every fiber is parked or done */
        int n_exit = 0, n_sync = 0, n_warp = 0, first_exit = -1, first_sync = -1;
        for (int t = 0; t < T; t++) {
            int s = g.th[t].state;
            if (s == EXITED) { n_exit++; if (first_exit < 0) first_exit = t; }
            else if (s == AT_SYNC) { n_sync++; if (first_sync < 0) first_sync = t; }
            else if (s == AT_WARP) n_warp++;
        }
        if (n_warp) {
            /* complete every warp operation whose lanes have all arrived; if
             * none can complete, the warps are stuck: say why */
            int done = 0;
            for (int t = 0; t < T; t++)
                if (g.th[t].state == AT_WARP && warp_ready(t, 0)) { complete_warp_op(t); done++; }
            if (!done)
                for (int t = 0; t < T; t++)
                    if (g.th[t].state == AT_WARP) warp_ready(t, 1);
            continue;
        }
        if (n_sync) {
            if (n_exit) {
                char a[96];
                snprintf(a, sizeof a, "%s", thread_name(first_sync));
                fail("__syncthreads() is reached by %d of %d threads (%s waits), but %d returned without reaching it "
                     "(first: %s).\n  hint: an early 'return' or a condition around __syncthreads(); let every thread "
                     "reach every barrier and guard only the loads/stores", n_sync, T, a, n_exit, thread_name(first_exit));
            }
            uint64_t count = 0;
            for (int t = 0; t < T; t++) count += g.th[t].val != 0;
            for (int t = 0; t < T; t++) { g.th[t].result = count; g.th[t].state = READY; }
            race_new_interval();   /* every access before the barrier is ordered before every access after it */
            continue;
        }
        if (g.n_free != g.n_fibers) fail("emulator: %d fibers not returned (internal error)", g.n_fibers - g.n_free);
        return;   /* all threads returned */
    }
}

} // namespace emu

/* Launch `body` (the kernel call with its arguments) on grid x block threads.
 * Called by LAUNCH (kernels/cuda_common.h). */
inline void emu_launch(const char *name, const char *file, int line, dim3 grid, dim3 block, size_t smem,
                       cudaStream_t stream, const std::function<void()> &body) {
    using namespace emu;
    if (g.in_launch) fail("kernel %s launched at %s:%d from inside a kernel (dynamic parallelism is not used in dkd)", name, file, line);
    if (cap.on) {   /* recorded with a copy of its arguments, launched by cudaGraphLaunch */
        if (stream != cap.stream) {   /* not run, not recorded: CUDA fails such a launch */
            capture_violation("a kernel launch on a stream other than the capturing one");
            return;
        }
        std::function<void()> copy = body;
        cap.ops.push_back([=]() { emu_launch(name, file, line, grid, block, smem, stream, copy); });
        return;
    }
    init_schedule();
    install_fault_handler();
    use_fast_switch();
    char why[256] = "";
    unsigned long long T = (unsigned long long)block.x * block.y * block.z;
    if (block.x == 0 || block.y == 0 || block.z == 0)
        snprintf(why, sizeof why, "an empty block (%u x %u x %u)", block.x, block.y, block.z);
    else if (grid.x == 0 || grid.y == 0 || grid.z == 0)
        snprintf(why, sizeof why, "an empty grid (%u x %u x %u) (nothing to do? a missing ceil-div?)", grid.x, grid.y, grid.z);
    else if (block.x > 1024 || block.y > 1024 || block.z > 64)
        snprintf(why, sizeof why, "block (%u x %u x %u) over the per-dimension limits 1024 x 1024 x 64", block.x, block.y, block.z);
    else if (T > 1024)
        snprintf(why, sizeof why, "%llu threads per block (%u x %u x %u), the limit is 1024", T, block.x, block.y, block.z);
    else if (grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
        snprintf(why, sizeof why, "grid (%u x %u x %u) over the limits (2^31-1) x 65535 x 65535", grid.x, grid.y, grid.z);
    else if (smem > SHARED_LIMIT)
        snprintf(why, sizeof why, "%zu bytes of dynamic shared memory, the limit is %d", smem, (int)SHARED_LIMIT);
    if (why[0]) {
        fflush(stdout);
        fprintf(stderr, "cuda_emu: ERROR: kernel %s launched at %s:%d: invalid configuration: %s\n", name, file, line, why);
        _exit(1);
    }
    if (g.trace < 0) { const char *e = getenv("DKD_EMU_TRACE"); g.trace = e && e[0] == '1'; }
    if (g.trace)
        fprintf(stderr, "cuda_emu: %s<<<(%u,%u,%u), (%u,%u,%u), %zu>>> at %s:%d [%s]\n", name, grid.x, grid.y, grid.z,
                block.x, block.y, block.z, smem, file, line, g.sched_name);
    g.in_launch = 1;
    g.kname = name; g.kfile = file; g.kline = line;
    g.body = &body;
    g.T = (int)T;
    g.dyn_bytes = smem;
    blockDim = block;
    gridDim = grid;
    g.launches++;
    unsigned long long nb = (unsigned long long)grid.x * grid.y * grid.z;
    g.threads += (long long)(nb * T);
    std::vector<int> perm;   /* random block order (int is enough for what is testable here) */
    if (g.sched == SCHED_RANDOM) {
        if (nb > 0x7fffffffULL) fail("grid of %llu blocks is too large for the random schedule", nb);
        perm.resize((size_t)nb);
        for (size_t i = 0; i < perm.size(); i++) perm[i] = (int)i;
        shuffle(perm);
    }
    for (unsigned long long i = 0; i < nb; i++) {
        unsigned long long b = g.sched == SCHED_FORWARD ? i : g.sched == SCHED_REVERSE ? nb - 1 - i : (unsigned long long)perm[(size_t)i];
        blockIdx.x = (unsigned)(b % grid.x);
        blockIdx.y = (unsigned)((b / grid.x) % grid.y);
        blockIdx.z = (unsigned)(b / ((unsigned long long)grid.x * grid.y));
        run_block();
    }
    g.in_launch = 0;
    g.body = nullptr;
}

/* SHARED(type, name, count): the block's array called `name` (same pointer for
 * every thread of the block), NaN-filled when the block first declares it. */
inline void *emu_shared(size_t bytes, const char *name) {
    using namespace emu;
    if (!g.in_launch || !g.cur) fail("SHARED(%s) used outside a kernel", name);
    for (const SharedArray &a : g.shared)
        if (!strcmp(a.name, name)) {
            if (a.bytes != bytes)
                fail("two SHARED arrays called '%s' with different sizes (%zu and %zu bytes) in one kernel: give them different names",
                     name, a.bytes, bytes);
            return g.shared_mem + a.off;
        }
    g.static_bytes += bytes;
    if (g.static_bytes + g.dyn_bytes > SHARED_LIMIT || g.shared_used + bytes > SHARED_ARENA)
        fail("SHARED(%s): %zu bytes of static + %zu bytes of dynamic shared memory, over the %d bytes a block may use",
             name, g.static_bytes, g.dyn_bytes, (int)SHARED_LIMIT);
    SharedArray a = {name, bytes, g.shared_used};
    g.shared.push_back(a);
    g.shared_used = (g.shared_used + bytes + 15) & ~(size_t)15;
    memset(g.shared_mem + a.off, 0xff, bytes);
    return g.shared_mem + a.off;
}
/* EXTERN_SHARED(type, name): the dynamic shared array (LAUNCH's smem bytes);
 * NULL when the launch asked for none, so any use faults at once. */
inline void *emu_dynamic_shared(void) {
    if (!emu::g.in_launch || !emu::g.cur) emu::fail("EXTERN_SHARED used outside a kernel");
    return emu::g.dyn_bytes ? (void *)emu::g.shared_mem : nullptr;
}

/* ========================================================================= */
/* 4. Intrinsics                                                             */
/* ========================================================================= */
/* Barriers. */
inline void __syncthreads(void) { emu::Thread *f = emu::g.cur; if (f) f->val = 0; emu::park(emu::AT_SYNC, "__syncthreads()"); }
inline int __syncthreads_count(int pred) {
    if (emu::g.cur) emu::g.cur->val = pred != 0;
    return (int)emu::park(emu::AT_SYNC, "__syncthreads_count()")->result;
}
inline int __syncthreads_or(int pred) { return __syncthreads_count(pred) != 0; }
inline int __syncthreads_and(int pred) { return __syncthreads_count(pred) == (int)(blockDim.x * blockDim.y * blockDim.z); }
inline void __threadfence(void) {}
inline void __threadfence_block(void) {}

namespace emu {
/* Park at a warp operation with a 64-bit operand; returns this lane's result. */
inline uint64_t warp_op(int op, unsigned mask, uint64_t val, int arg, int width) {
    Thread *f = g.cur;
    if (!f) fail("%s called outside a kernel", warp_op_name[op]);
    f->op = op; f->mask = mask; f->val = val; f->arg = arg; f->width = width;
    return park(AT_WARP, warp_op_name[op])->result;
}
template <class T> inline T warp_value(int op, unsigned mask, T v, int arg, int width) {
    static_assert(sizeof(T) <= 8, "warp operations move at most 8 bytes");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof(T));
    uint64_t r = warp_op(op, mask, bits, arg, width);
    T out;
    memcpy(&out, &r, sizeof(T));
    return out;
}
} // namespace emu

inline void __syncwarp(unsigned mask = 0xffffffffu) { emu::warp_op(emu::W_SYNCWARP, mask, 0, 0, 32); }
template <class T> inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize) {
    return emu::warp_value(emu::W_SHFL, mask, var, srcLane, width);
}
template <class T> inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
    return emu::warp_value(emu::W_SHFL_UP, mask, var, (int)delta, width);
}
template <class T> inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
    return emu::warp_value(emu::W_SHFL_DOWN, mask, var, (int)delta, width);
}
template <class T> inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize) {
    return emu::warp_value(emu::W_SHFL_XOR, mask, var, laneMask, width);
}
inline unsigned __ballot_sync(unsigned mask, int pred) { return (unsigned)emu::warp_op(emu::W_BALLOT, mask, pred != 0, 0, 32); }
inline int __any_sync(unsigned mask, int pred) { return (int)emu::warp_op(emu::W_ANY, mask, pred != 0, 0, 32); }
inline int __all_sync(unsigned mask, int pred) { return (int)emu::warp_op(emu::W_ALL, mask, pred != 0, 0, 32); }

/* Atomics: fibers switch only at barriers, so a read-modify-write is atomic
 * by construction. (Their ORDER still follows the schedule: a float atomicAdd
 * gives schedule-dependent roundings, exactly the non-determinism a GPU has.) */
inline int atomicAdd(int *p, int v) { int o = *p; *p = o + v; return o; }
inline unsigned atomicAdd(unsigned *p, unsigned v) { unsigned o = *p; *p = o + v; return o; }
inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) { unsigned long long o = *p; *p = o + v; return o; }
inline float atomicAdd(float *p, float v) { float o = *p; *p = o + v; return o; }
inline double atomicAdd(double *p, double v) { double o = *p; *p = o + v; return o; }
inline int atomicSub(int *p, int v) { int o = *p; *p = o - v; return o; }
inline unsigned atomicSub(unsigned *p, unsigned v) { unsigned o = *p; *p = o - v; return o; }
inline int atomicMax(int *p, int v) { int o = *p; if (v > o) *p = v; return o; }
inline unsigned atomicMax(unsigned *p, unsigned v) { unsigned o = *p; if (v > o) *p = v; return o; }
inline unsigned long long atomicMax(unsigned long long *p, unsigned long long v) { unsigned long long o = *p; if (v > o) *p = v; return o; }
inline int atomicMin(int *p, int v) { int o = *p; if (v < o) *p = v; return o; }
inline unsigned atomicMin(unsigned *p, unsigned v) { unsigned o = *p; if (v < o) *p = v; return o; }
inline unsigned long long atomicMin(unsigned long long *p, unsigned long long v) { unsigned long long o = *p; if (v < o) *p = v; return o; }
inline int atomicExch(int *p, int v) { int o = *p; *p = v; return o; }
inline unsigned atomicExch(unsigned *p, unsigned v) { unsigned o = *p; *p = v; return o; }
inline float atomicExch(float *p, float v) { float o = *p; *p = v; return o; }
inline int atomicCAS(int *p, int cmp, int v) { int o = *p; if (o == cmp) *p = v; return o; }
inline unsigned atomicCAS(unsigned *p, unsigned cmp, unsigned v) { unsigned o = *p; if (o == cmp) *p = v; return o; }
inline unsigned long long atomicCAS(unsigned long long *p, unsigned long long cmp, unsigned long long v) {
    unsigned long long o = *p; if (o == cmp) *p = v; return o;
}
inline int atomicAnd(int *p, int v) { int o = *p; *p = o & v; return o; }
inline unsigned atomicAnd(unsigned *p, unsigned v) { unsigned o = *p; *p = o & v; return o; }
inline int atomicOr(int *p, int v) { int o = *p; *p = o | v; return o; }
inline unsigned atomicOr(unsigned *p, unsigned v) { unsigned o = *p; *p = o | v; return o; }
inline int atomicXor(int *p, int v) { int o = *p; *p = o ^ v; return o; }
inline unsigned atomicXor(unsigned *p, unsigned v) { unsigned o = *p; *p = o ^ v; return o; }
inline unsigned atomicInc(unsigned *p, unsigned lim) { unsigned o = *p; *p = o >= lim ? 0 : o + 1; return o; }
inline unsigned atomicDec(unsigned *p, unsigned lim) { unsigned o = *p; *p = (o == 0 || o > lim) ? lim : o - 1; return o; }

/* Fast-math intrinsics are the plain functions (a GPU's are less precise). */
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline int __float_as_int(float x) { int i; memcpy(&i, &x, 4); return i; }
inline float __int_as_float(int i) { float x; memcpy(&x, &i, 4); return x; }
inline unsigned __float_as_uint(float x) { unsigned i; memcpy(&i, &x, 4); return i; }
inline float __uint_as_float(unsigned i) { float x; memcpy(&x, &i, 4); return x; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __ffs(int x) { return __builtin_ffs(x); }
template <class T> inline T __ldg(const T *p) { return *p; }

/* min/max as CUDA's device library defines them (float ones are fminf/fmaxf). */
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline unsigned min(int a, unsigned b) { return min((unsigned)a, b); }
inline unsigned max(int a, unsigned b) { return max((unsigned)a, b); }
inline unsigned min(unsigned a, int b) { return min(a, (unsigned)b); }
inline unsigned max(unsigned a, int b) { return max(a, (unsigned)b); }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

/* ========================================================================= */
/* 5. Test helpers                                                           */
/* ========================================================================= */
/* Select the thread/block order: "forward", "reverse", "random:<seed>".
 * Returns 0, or -1 (and keeps the old schedule) if the name is not understood. */
inline int emu_set_schedule(const char *s) {
    int old = emu::g.sched; uint64_t os = emu::g.seed, orng = emu::g.rng;
    char oname[64]; memcpy(oname, emu::g.sched_name, sizeof oname);
    if (emu::parse_schedule(s) == 0) return 0;
    emu::g.sched = old; emu::g.seed = os; emu::g.rng = orng; memcpy(emu::g.sched_name, oname, sizeof oname);
    return -1;
}
/* The schedule in use (after reading DKD_EMU_SCHEDULE if needed). */
inline const char *emu_schedule(void) { emu::init_schedule(); return emu::g.sched_name; }
/* 1: switch fibers with ucontext (portable, slower); 0: the fast x86-64
 * switch where there is one. Call between launches. */
inline void emu_use_ucontext(int on) { emu::g.fast = on ? 0 : EMU_HAVE_FAST_SWITCH; }
/* The race detector (part 2b): emu::RACE_OFF, RACE_FATAL (the default) or
 * RACE_COUNT (report, count, go on); returns the previous mode. */
inline int emu_set_racecheck(int mode) { int old = emu::racecheck_mode(); emu::g.racecheck = mode; return old; }
inline int emu_racecheck(void) { return emu::racecheck_mode(); }
/* Races reported so far (in RACE_COUNT mode; a fatal one ends the program). */
inline long long emu_race_count(void) { return emu::g.races; }
/* Kernels launched and threads run so far (to report the cost of a test). */
inline long long emu_launch_count(void) { return emu::g.launches; }
inline long long emu_thread_count(void) { return emu::g.threads; }

#endif /* DKD_CUDA_EMU_H */
