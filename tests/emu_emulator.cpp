/* tests/emu_emulator.cpp — tests of the CUDA emulator itself (tests/cuda_emu.h).
 *
 * The kernels are defined here, small on purpose. What is checked:
 *   - a shared-memory + warp-shuffle block reduction is exact at every block
 *     size 32..1024 (multiples of 32) and grid shape, under every schedule;
 *   - the shuffle variants, widths, ballot/any/all, __syncthreads_count and
 *     integer atomics give what CUDA's documentation says;
 *   - threadIdx/blockIdx/blockDim/gridDim in 3-D launches;
 *   - the bugs the emulator exists to catch ARE caught: a missing
 *     __syncthreads (results differ between schedules), shared memory read
 *     before written (NaN), device memory never written (NaN), an early return
 *     before a barrier, a full-mask shuffle in a half warp, lanes at different
 *     warp operations, launches over the limits, a segfault in a kernel and a
 *     fiber stack overflow (reported with kernel, block and thread);
 *   - the shared-memory race detector reports races whose results agree under
 *     every schedule (one word stored by every thread; a __syncwarp where a
 *     __syncthreads is needed; a write after another thread's read), stays
 *     silent where __syncthreads or (inside a warp) __syncwarp orders the
 *     accesses, and stops the program by default. The
 *     fatal ones run in a forked child: the test asserts a non-zero exit and
 *     the message.
 * The scheduler tests run twice: with the fast x86-64 fiber switch and with
 * glibc's swapcontext.
 */
#include "dkd.h"
#include "kernels/cuda_common.h"
#include "test.h"
#include "emu_test.h"     // defines: schedules, NSCHED

#include <sys/wait.h>
#include <unistd.h>


/* ------------------------------------------------------------------ kernels */

/* Sum of x[blockIdx.x*n + 0..n-1] per block: each thread sums a strided
 * slice, warps reduce with shuffles, warp sums meet in shared memory, warp 0
 * reduces those. Requires blockDim.x % 32 == 0. */
__global__ void block_sum_kernel(float *out, const float *x, int n) {
    SHARED(float, warp_sums, 32);
    int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, nwarps = blockDim.x / 32;
    const float *row = x + (size_t)blockIdx.x * n;
    float v = 0.0f;
    for (int i = tid; i < n; i += blockDim.x) v += row[i];
    for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < nwarps ? warp_sums[lane] : 0.0f;
        for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
        if (lane == 0) out[blockIdx.x] = v;
    }
}

/* y[t] = x[(t+1) % T] through shared memory; with_sync = 0 forgets the barrier. */
__global__ void rotate_kernel(float *y, const float *x, int with_sync) {
    SHARED(float, buf, 1024);
    int t = threadIdx.x, T = blockDim.x;
    buf[t] = x[blockIdx.x * T + t];
    if (with_sync) __syncthreads();
    y[blockIdx.x * T + t] = buf[(t + 1) % T];
}

/* Races whose results agree under every schedule (the race detector's job):
 * every thread stores the same value in one word and reads it back, no barrier. */
__global__ void same_value_kernel(float *y) {
    SHARED(float, flag, 1);
    flag[0] = 7.0f;
    y[blockIdx.x * blockDim.x + threadIdx.x] = flag[0];
}
/* y[t] = x[t+1] through shared memory with only a __syncwarp between the
 * store and the load: right for lanes inside a warp, a race at the last lane
 * of each warp, which reads the next warp's word. cross = 0 reads the
 * partner t^1 instead, which is in the same warp: no race. */
__global__ void warp_sync_kernel(float *y, const float *x, int cross) {
    SHARED(float, wbuf, 1024);
    int t = threadIdx.x, T = blockDim.x;
    wbuf[t] = x[t];
    __syncwarp();
    y[t] = wbuf[cross ? (t + 1) % T : t ^ 1];
}
/* A read, then (no barrier) another thread overwrites the word: write after read. */
__global__ void write_after_read_kernel(float *y) {
    SHARED(float, war, 64);
    int t = threadIdx.x;
    war[t] = (float)t;
    __syncthreads();
    y[t] = war[(t + 1) % 64];
    war[t] = 0.0f;
}

/* Reads shared memory nobody wrote. */
__global__ void uninit_shared_kernel(float *y) {
    SHARED(float, s, 64);
    y[threadIdx.x] = s[threadIdx.x];
}

/* Thread 5 returns before the barrier. */
__global__ void early_return_kernel(float *y) {
    SHARED(float, s, 64);
    if (threadIdx.x == 5) return;
    s[threadIdx.x] = 1.0f;
    __syncthreads();
    y[threadIdx.x] = s[(threadIdx.x + 1) % 64];
}

/* Every warp op variant; out[k*T + t] = result k of thread t. */
__global__ void warp_ops_kernel(int *out, int width) {
    int t = threadIdx.x, T = blockDim.x, lane = t % 32;
    int v = 100 * t + 7;
    out[0 * T + t] = __shfl_sync(0xffffffffu, v, (lane * 3) % 32, width);
    out[1 * T + t] = __shfl_up_sync(0xffffffffu, v, 3, width);
    out[2 * T + t] = __shfl_down_sync(0xffffffffu, v, 5, width);
    out[3 * T + t] = __shfl_xor_sync(0xffffffffu, v, 6, width);
    out[4 * T + t] = (int)__ballot_sync(0xffffffffu, (t % 3) == 0);
    out[5 * T + t] = __any_sync(0xffffffffu, t == 40);
    out[6 * T + t] = __all_sync(0xffffffffu, t != 40);
    out[7 * T + t] = __syncthreads_count(t % 5 == 0);
    /* a half-warp operation with a mask of only the lanes taking part */
    if (lane < 16) out[8 * T + t] = __shfl_xor_sync(0x0000ffffu, v, 1);
    else out[8 * T + t] = -1;
    __syncwarp();
    float f = (float)t * 0.5f;
    out[9 * T + t] = (int)(2.0f * __shfl_sync(0xffffffffu, f, 0));
}

/* 3-D indices: out[linear block][linear thread] = packed indices. */
__global__ void index_kernel(int *out) {
    int bl = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    int tl = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    int T = blockDim.x * blockDim.y * blockDim.z;
    out[bl * T + tl] = (int)(threadIdx.x | threadIdx.y << 8 | threadIdx.z << 16 | blockIdx.x << 20 |
                             blockIdx.y << 24 | blockIdx.z << 28);
}

__global__ void atomic_kernel(int *count, unsigned *maxv) {
    atomicAdd(count, 1);
    atomicMax(maxv, (unsigned)(blockIdx.x * blockDim.x + threadIdx.x));
}

/* A full-mask shuffle in a block of 48 threads: warp 1 has only 16 lanes. */
__global__ void half_warp_kernel(float *y) {
    float v = (float)threadIdx.x;
    v += __shfl_down_sync(0xffffffffu, v, 1);
    y[threadIdx.x] = v;
}

/* Odd lanes shuffle, even lanes ballot: the warp is split between two ops. */
__global__ void divergent_warp_kernel(float *y) {
    float v = (float)threadIdx.x;
    if (threadIdx.x % 2) v = __shfl_xor_sync(0xffffffffu, v, 1);
    else v = (float)__ballot_sync(0xffffffffu, 1);
    y[threadIdx.x] = v;
}

/* Thread 3 of block 1 writes through a NULL pointer. */
__global__ void null_write_kernel(float *y) {
    float *p = (blockIdx.x == 1 && threadIdx.x == 3) ? (float *)0 : y;
    p[threadIdx.x] = 1.0f;
}

/* A local array larger than the fiber stack (64 KiB). Written from its top
 * down, as a stack grows, so the first access past the stack hits the guard
 * page (and not some other mapping further down). */
__global__ void big_stack_kernel(float *y) {
    volatile float big[32 * 1024];   /* 128 KiB */
    for (int i = 32 * 1024 - 1; i >= 0; i -= 512) big[i] = (float)i;
    y[threadIdx.x] = big[1024];
}

/* Writes nothing: for launch-limit tests. */
__global__ void nop_kernel(float *y) { if (y) y[0] = 0.0f; }

/* ------------------------------------------------------------ host helpers */

static float *to_dev(const float *h, size_t n) {
    float *d = NULL;
    cudaCheck(cudaMalloc(&d, n * sizeof(float)));
    cudaCheck(cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}

/* Run fn() in a forked child with stderr captured: returns the exit status
 * (raw, from waitpid) and the child's stderr in msg. */
static int in_child(void (*fn)(void), char *msg, size_t cap) {
    int fd[2];
    if (pipe(fd) != 0) return -1;
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        fn();
        fflush(NULL);
        _exit(0);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = read(fd[0], msg + got, cap - 1 - got)) > 0) got += (size_t)r;
    msg[got] = 0;
    char sink[256];
    while (read(fd[0], sink, sizeof sink) > 0) {}
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

/* Asserts that fn() makes the emulator stop with a message containing want. */
static void expect_fatal(const char *what, void (*fn)(void), const char *want) {
    char msg[4096];
    int st = in_child(fn, msg, sizeof msg);
    int failed = st != -1 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int named = strstr(msg, want) != NULL;
    check(failed && named, "%s: child %s, message %s '%s'", what,
          failed ? "exited non-zero" : "EXITED 0", named ? "contains" : "LACKS", want);
    if (!(failed && named)) printf("       child stderr: %s\n", msg);
    else {
        const char *nl = strchr(msg, '\n');
        printf("       (%.*s)\n", nl ? (int)(nl - msg) : (int)strlen(msg), msg);
    }
}

/* Device memory for a child's kernel (the child exits; nothing is freed). Taken
 * before LAUNCH: under the emulator LAUNCH's arguments are evaluated by every thread. */
static float *dev_floats(size_t n) {
    float *y;
    cudaCheck(cudaMalloc(&y, n * sizeof(float)));
    return y;
}
static void child_early_return(void) {
    float *y = dev_floats(64);
    LAUNCH(early_return_kernel, 1, 64, 0, y);
}
static void child_half_warp(void) {
    float *y = dev_floats(48);
    LAUNCH(half_warp_kernel, 1, 48, 0, y);
}
static void child_divergent(void) {
    float *y = dev_floats(32);
    LAUNCH(divergent_warp_kernel, 1, 32, 0, y);
}
static void child_null_write(void) {
    float *y = dev_floats(64);
    LAUNCH(null_write_kernel, 2, 32, 0, y);
}
static void child_big_stack(void) {
    float *y = dev_floats(64);
    LAUNCH(big_stack_kernel, 1, 32, 0, y);
}
static void child_too_many_threads(void) { LAUNCH(nop_kernel, 1, dim3(64, 32, 1), 0, (float *)NULL); }
static void child_block_z(void) { LAUNCH(nop_kernel, 1, dim3(1, 1, 65), 0, (float *)NULL); }
static void child_empty_grid(void) { LAUNCH(nop_kernel, ceil_div(0, 256), 256, 0, (float *)NULL); }
static void child_grid_y(void) { LAUNCH(nop_kernel, dim3(1, 70000, 1), 32, 0, (float *)NULL); }
static void child_smem(void) { LAUNCH(nop_kernel, 1, 32, 64 * 1024, (float *)NULL); }

/* ------------------------------------------------------------------- tests */

static void test_reduction(void) {
    printf("block reduction (shared memory + shuffles), block sizes 32..1024:\n");
    const int nblocks = 3, n = 1500;   /* n not a multiple of any block size */
    float *hx = (float *)xmalloc(sizeof(float) * nblocks * n);
    double ref[3] = {0, 0, 0};
    for (int b = 0; b < nblocks; b++)
        for (int i = 0; i < n; i++) { hx[b * n + i] = (float)((i * 7 + b * 13) % 101 - 50); ref[b] += hx[b * n + i]; }
    float *dx = to_dev(hx, (size_t)nblocks * n), *dy;
    cudaCheck(cudaMalloc(&dy, nblocks * sizeof(float)));
    int sizes[] = {32, 64, 96, 128, 160, 224, 256, 352, 512, 736, 992, 1024};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int ok = 1; float first[3];
        for (int s = 0; s < NSCHED; s++) {
            emu_set_schedule(schedules[s]);
            LAUNCH(block_sum_kernel, nblocks, sizes[k], 0, dy, dx, n);
            float hy[3];
            cudaCheck(cudaMemcpy(hy, dy, sizeof hy, cudaMemcpyDeviceToHost));
            for (int b = 0; b < nblocks; b++) ok &= hy[b] == (float)ref[b];   /* integers: exact */
            if (s == 0) memcpy(first, hy, sizeof hy);
            else ok &= memcmp(first, hy, sizeof hy) == 0;
        }
        check(ok, "block_sum at block size %4d: exact under %d schedules", sizes[k], NSCHED);
    }
    cudaCheck(cudaFree(dx)); cudaCheck(cudaFree(dy)); free(hx);
}

static void test_missing_sync(void) {
    printf("missing __syncthreads:\n");
    const int T = 256, B = 2;
    float hx[512], ref[512];
    for (int i = 0; i < B * T; i++) hx[i] = (float)i;
    for (int b = 0; b < B; b++) for (int t = 0; t < T; t++) ref[b * T + t] = hx[b * T + (t + 1) % T];
    float *dx = to_dev(hx, (size_t)B * T), *dy;
    cudaCheck(cudaMalloc(&dy, sizeof(float) * B * T));
    float got[NSCHED][512];
    int old_mode = emu_set_racecheck(emu::RACE_COUNT);   /* here the schedules must catch it on their own */
    long long races0 = emu_race_count();
    for (int with = 1; with >= 0; with--) {
        int all_right = 1, all_same = 1;
        for (int s = 0; s < NSCHED; s++) {
            emu_set_schedule(schedules[s]);
            LAUNCH(rotate_kernel, B, T, 0, dy, dx, with);
            cudaCheck(cudaMemcpy(got[s], dy, sizeof(float) * B * T, cudaMemcpyDeviceToHost));
            all_right &= memcmp(got[s], ref, sizeof(float) * B * T) == 0;
            if (s) all_same &= memcmp(got[s], got[0], sizeof(float) * B * T) == 0;
        }
        if (with) check(all_right && all_same, "with the barrier: right and bit-identical under every schedule");
        else check(!all_right && !all_same, "without the barrier: caught (results %s the reference, %s across schedules)",
                   all_right ? "MATCH" : "differ from", all_same ? "SAME" : "differ");
    }
    emu_set_racecheck(old_mode);
    emu::g.races = races0;   /* the races of the barrier-free run were wanted */
    cudaCheck(cudaFree(dx)); cudaCheck(cudaFree(dy));
}

/* Runs kernel `launch` under every schedule in RACE_COUNT mode: the races
 * reported and whether all schedules gave the same bits. */
static long long races_of(void (*launch)(float *), float *dy, size_t n, int *all_same) {
    static float got[NSCHED][1024];
    long long before = emu_race_count();
    int old = emu_set_racecheck(emu::RACE_COUNT);
    *all_same = 1;
    for (int s = 0; s < NSCHED; s++) {
        emu_set_schedule(schedules[s]);
        launch(dy);
        cudaCheck(cudaMemcpy(got[s], dy, n * sizeof(float), cudaMemcpyDeviceToHost));
        if (s) *all_same &= memcmp(got[s], got[0], n * sizeof(float)) == 0;
    }
    emu_set_racecheck(old);
    long long r = emu_race_count() - before;
    emu::g.races = before;   /* these races were wanted: do not leave them for check_race_free */
    return r;
}
static float *g_x64;
static void launch_same_value(float *dy) { LAUNCH(same_value_kernel, 2, 64, 0, dy); }
static void launch_cross_warp(float *dy) { LAUNCH(warp_sync_kernel, 1, 64, 0, dy, g_x64, 1); }
static void launch_in_warp(float *dy) { LAUNCH(warp_sync_kernel, 1, 64, 0, dy, g_x64, 0); }
static void launch_war(float *dy) { LAUNCH(write_after_read_kernel, 1, 64, 0, dy); }
static void launch_rotate_nosync(float *dy) { LAUNCH(rotate_kernel, 1, 64, 0, dy, g_x64, 0); }
static void launch_rotate_sync(float *dy) { LAUNCH(rotate_kernel, 1, 64, 0, dy, g_x64, 1); }
static void launch_block_sum(float *dy) { LAUNCH(block_sum_kernel, 2, 96, 0, dy, g_x64, 32); }
static void child_race_fatal(void) {
    float *y; cudaCheck(cudaMalloc(&y, 64 * sizeof(float)));
    emu_set_racecheck(emu::RACE_FATAL);
    LAUNCH(same_value_kernel, 1, 64, 0, y);
}

static void test_race_detector(void) {
    printf("shared-memory race detector:\n");
    float hx[64];
    for (int i = 0; i < 64; i++) hx[i] = (float)(i * 3 + 1);
    g_x64 = to_dev(hx, 64);
    float *dy;
    cudaCheck(cudaMalloc(&dy, 128 * sizeof(float)));
    int same;
    long long r = races_of(launch_same_value, dy, 128, &same);
    check(same && r > 0, "one word stored and loaded by every thread, no barrier: results %s under every schedule, "
          "%lld races reported", same ? "the same" : "DIFFER", r);
    r = races_of(launch_cross_warp, dy, 64, &same);
    check(same && r > 0, "__syncwarp only, reading the next warp's word: results %s, %lld races reported",
          same ? "the same" : "DIFFER", r);
    r = races_of(launch_in_warp, dy, 64, &same);
    check(same && r == 0, "__syncwarp, reading a word of the same warp: %lld races (none: __syncwarp orders a warp)", r);
    r = races_of(launch_war, dy, 64, &same);
    check(r > 0, "a word read, then overwritten by another thread without a barrier: %lld races reported", r);
    r = races_of(launch_rotate_nosync, dy, 64, &same);
    check(r > 0, "the rotation without its __syncthreads: %lld races reported", r);
    r = races_of(launch_rotate_sync, dy, 64, &same);
    check(same && r == 0, "the rotation with its __syncthreads: %lld races", r);
    r = races_of(launch_block_sum, dy, 2, &same);
    check(same && r == 0, "the shared-memory block reduction: %lld races", r);
    cudaCheck(cudaFree(dy)); cudaCheck(cudaFree(g_x64));
    emu_set_schedule("forward");
    expect_fatal("a race stops the program by default", child_race_fatal, "shared-memory race on SHARED array 'flag'");
}

static void test_uninitialised(void) {
    printf("uninitialised memory is NaN:\n");
    float *dy, hy[64];
    cudaCheck(cudaMalloc(&dy, sizeof hy));
    cudaCheck(cudaMemcpy(hy, dy, sizeof hy, cudaMemcpyDeviceToHost));
    int nan = 1;
    for (int i = 0; i < 64; i++) nan &= isnan(hy[i]);
    check(nan, "fresh cudaMalloc memory reads as NaN");
    cudaCheck(cudaMemset(dy, 0, sizeof hy));
    LAUNCH(uninit_shared_kernel, 2, 64, 0, dy);
    cudaCheck(cudaMemcpy(hy, dy, sizeof hy, cudaMemcpyDeviceToHost));
    nan = 1;
    for (int i = 0; i < 64; i++) nan &= isnan(hy[i]);
    check(nan, "shared memory read before written is NaN");
    cudaCheck(cudaFree(dy));
}

static void test_warp_ops(void) {
    printf("warp operations:\n");
    const int T = 96;
    int *d, h[10 * 96];
    cudaCheck(cudaMalloc(&d, sizeof h));
    int widths[] = {32, 8};
    for (int wi = 0; wi < 2; wi++) {
        int w = widths[wi];
        int ok_sched = 1, first[10 * 96];
        for (int s = 0; s < NSCHED; s++) {
            emu_set_schedule(schedules[s]);
            LAUNCH(warp_ops_kernel, 1, T, 0, d, w);
            cudaCheck(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
            if (s == 0) memcpy(first, h, sizeof h);
            else ok_sched &= memcmp(first, h, sizeof h) == 0;
        }
        int bad[10] = {0};
        for (int t = 0; t < T; t++) {
            int lane = t % 32, base = t - lane, seg = lane & ~(w - 1);
            int v = 100 * t + 7;
            #define VAL(l) (100 * (base + (l)) + 7)
            int e0 = VAL(seg + ((lane * 3) % 32) % w);
            int e1 = (lane % w) >= 3 ? VAL(lane - 3) : v;
            int e2 = (lane % w) + 5 < w ? VAL(lane + 5) : v;
            int e3 = (lane ^ 6) < seg + w ? VAL(lane ^ 6) : v;
            unsigned e4 = 0;
            for (int j = 0; j < 32; j++) if ((base + j) % 3 == 0) e4 |= 1u << j;
            int e5 = base == 32, e6 = base != 32;
            int e7 = (T + 4) / 5;
            int e8 = lane < 16 ? VAL(lane ^ 1) : -1;
            int e9 = base;   /* 2 * (base * 0.5) */
            #undef VAL
            bad[0] += h[0 * T + t] != e0; bad[1] += h[1 * T + t] != e1; bad[2] += h[2 * T + t] != e2;
            bad[3] += h[3 * T + t] != e3; bad[4] += h[4 * T + t] != (int)e4; bad[5] += h[5 * T + t] != e5;
            bad[6] += h[6 * T + t] != e6; bad[7] += h[7 * T + t] != e7; bad[8] += h[8 * T + t] != e8;
            bad[9] += h[9 * T + t] != e9;
        }
        const char *names[10] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync", "__ballot_sync",
                                 "__any_sync", "__all_sync", "__syncthreads_count", "half-warp __shfl_xor_sync",
                                 "__shfl_sync(float)"};
        for (int k = 0; k < 10; k++)
            if (w == 32 || k < 4) check(bad[k] == 0, "%s width %d: %d wrong of %d", names[k], w, bad[k], T);
        check(ok_sched, "warp ops width %d: identical under every schedule", w);
    }
    cudaCheck(cudaFree(d));
}

static void test_indices_atomics(void) {
    printf("indices and atomics:\n");
    dim3 grid(3, 2, 2), block(8, 4, 2);
    int nb = 12, T = 64, *d;
    int *h = (int *)xmalloc(sizeof(int) * nb * T);
    cudaCheck(cudaMalloc(&d, sizeof(int) * nb * T));
    emu_set_schedule("random:7");
    LAUNCH(index_kernel, grid, block, 0, d);
    cudaCheck(cudaMemcpy(h, d, sizeof(int) * nb * T, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int bz = 0; bz < 2; bz++) for (int by = 0; by < 2; by++) for (int bx = 0; bx < 3; bx++)
        for (int tz = 0; tz < 2; tz++) for (int ty = 0; ty < 4; ty++) for (int tx = 0; tx < 8; tx++) {
            int bl = bx + 3 * (by + 2 * bz), tl = tx + 8 * (ty + 4 * tz);
            bad += h[bl * T + tl] != (tx | ty << 8 | tz << 16 | bx << 20 | by << 24 | bz << 28);
        }
    check(bad == 0, "3-D threadIdx/blockIdx/blockDim/gridDim: %d wrong of %d", bad, nb * T);
    int *cnt; unsigned *mx;
    cudaCheck(cudaMalloc(&cnt, sizeof(int))); cudaCheck(cudaMalloc(&mx, sizeof(unsigned)));
    cudaCheck(cudaMemset(cnt, 0, sizeof(int))); cudaCheck(cudaMemset(mx, 0, sizeof(unsigned)));
    LAUNCH(atomic_kernel, 5, 200, 0, cnt, mx);
    int hc; unsigned hm;
    cudaCheck(cudaMemcpy(&hc, cnt, sizeof hc, cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(&hm, mx, sizeof hm, cudaMemcpyDeviceToHost));
    check(hc == 1000 && hm == 999, "atomicAdd count %d (want 1000), atomicMax %u (want 999)", hc, hm);
    cudaCheck(cudaFree(d)); cudaCheck(cudaFree(cnt)); cudaCheck(cudaFree(mx)); free(h);
}

static void test_runtime_api(void) {
    printf("runtime API checks:\n");
    float *d, h[16] = {0};
    cudaCheck(cudaMalloc(&d, sizeof h));
    fflush(stdout);
    /* the emulator prints the reason of each refusal on stderr: expected here */
    cudaError_t e1 = cudaMemcpy(h, d, sizeof h + 4, cudaMemcpyDeviceToHost);
    cudaError_t e2 = cudaMemcpy(d, h, sizeof h, cudaMemcpyDeviceToHost);
    cudaError_t e3 = cudaFree(h);
    cudaError_t last = cudaGetLastError(), cleared = cudaGetLastError();
    check(e1 != cudaSuccess, "cudaMemcpy past the end of an allocation is refused");
    check(e2 != cudaSuccess, "cudaMemcpy with the wrong direction is refused");
    check(e3 != cudaSuccess, "cudaFree of a host pointer is refused");
    check(last != cudaSuccess && cleared == cudaSuccess, "cudaGetLastError reports, then clears: '%s'", cudaGetErrorString(last));
    int n = 0;
    check(cudaGetDeviceCount(&n) == cudaSuccess && n == 1, "one emulated device");
    check(emu_set_schedule("sideways") == -1 && emu_set_schedule("random:x") == -1, "unknown schedule names are refused");
    cudaCheck(cudaFree(d));
}

int main(void) {
    const char *env = getenv("DKD_EMU_SCHEDULE");
    printf("emu_emulator: DKD_EMU_SCHEDULE=%s (each test below sets its schedules itself)\n", env ? env : "(unset)");
    /* the scheduler tests under both ways of switching fibers */
    for (int uc = 0; uc <= 1; uc++) {
        emu_use_ucontext(uc);
        printf("---- fibers switched with %s\n", uc ? "ucontext (swapcontext)" : "the emulator's default (fast x86-64 switch where available)");
        test_reduction();
        test_missing_sync();
        test_warp_ops();
    }
    emu_use_ucontext(0);
    test_race_detector();
    test_uninitialised();
    test_indices_atomics();
    test_runtime_api();
    printf("errors the emulator must stop on (in a forked child):\n");
    emu_set_schedule("forward");
    expect_fatal("early return before __syncthreads", child_early_return, "__syncthreads() is reached by 63 of 64");
    expect_fatal("full-mask shuffle in a half warp", child_half_warp, "warp 1 has only 16 lanes");
    expect_fatal("lanes at different warp operations", child_divergent, "different warp operations");
    expect_fatal("write through NULL in a kernel", child_null_write, "segmentation fault in kernel null_write_kernel");
    expect_fatal("fiber stack overflow", child_big_stack, "fiber stack overflowed");
    expect_fatal("2048 threads per block", child_too_many_threads, "2048 threads per block");
    expect_fatal("block z of 65", child_block_z, "per-dimension limits");
    expect_fatal("empty grid", child_empty_grid, "an empty grid");
    expect_fatal("grid y of 70000", child_grid_y, "grid (1 x 70000 x 1)");
    expect_fatal("64 KiB of dynamic shared memory", child_smem, "dynamic shared memory");
    printf("emulator: %lld launches, %lld threads in this test\n", emu_launch_count(), emu_thread_count());
    check_race_free("emu_emulator");
    return test_summary();
}
