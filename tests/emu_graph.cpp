/* tests/emu_graph.cpp — a DKD training step captured as a CUDA graph and
 * replayed, against the same step run launch by launch, under the CPU
 * emulator (tests/cuda_emu.h emulates stream capture: it records launches and
 * async device copies/sets between cudaStreamBeginCapture and
 * cudaStreamEndCapture and replays them with cudaGraphLaunch).
 *
 * The step on the device: teacher forward (eval), student forward (train),
 * the DKD loss and its gradient, the backward walk, SGD. Its input batch and
 * labels sit in fixed device buffers that are uploaded BEFORE each step, so
 * the uploads stay outside the graph (as a graph-ready trainer would do them,
 * or fill them by a kernel). For two small teacher -> student combinations
 * that hold every op kind (DKD_EMU_ALL_PAIRS=1: the 11 pairs), at batch 2:
 *   side A runs 2 steps launch by launch; side B captures the step once and
 *   replays it for the same 2 steps; student parameters, momentum, gradients,
 *   BN running statistics, the loss rows and dL/dz must be bit-identical.
 * Known not graph-ready and therefore NOT compared: the host-side BN counter
 * num_batches_tracked, which net.c increments on the host during a train
 * forward (once at capture, never at replay); kernels/README.md lists it with
 * the other host work of a step.
 * Then the capture-violation checks: a synchronising or allocating runtime
 * call inside a capture returns CUDA's error and invalidates the capture, and
 * a backend call that synchronises inside a capture stops the process with a
 * message (cudaCheck), tried in a child process.
 * Ends with "RESULT p f s". */
#include "kernels/cuda_common.h"   // defines: cudaCheck, the CUDA runtime (or its emulator)
#include "kernels/cuda_ops.h"      // defines: the _cuda ops
#include "test.h"                  // defines: check, test_summary
#include "emu_test.h"              // defines: check_race_free

#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#ifndef DKD_CUDA_EMU
static inline size_t emu_capture_size(void) { return 0; }
#endif

struct Side {
    Net *t, *s;
    int *y;
    float *dz, *rows;
    int B, NC;
};

static void side_init(Side *sd, const char *teacher, const char *student, int B) {
    const Backend *be = &backend_cuda;
    sd->t = model_build(teacher); sd->s = model_build(student);
    net_init_params(sd->t, 5); net_init_params(sd->s, 6);
    if (net_setup(sd->t, be, B, 0) || net_setup(sd->s, be, B, 1)) { printf("net_setup: %s\nRESULT 0 1 0\n", dkd_errbuf); exit(1); }
    sd->B = B; sd->NC = net_num_classes(sd->s);
    sd->y = (int *)be->alloc((size_t)B * sizeof(int));
    sd->dz = (float *)be->alloc((size_t)B * sd->NC * sizeof(float));
    sd->rows = (float *)be->alloc((size_t)B * 3 * sizeof(float));
}
static void side_free(Side *sd) {
    backend_cuda.release(sd->y); backend_cuda.release(sd->dz); backend_cuda.release(sd->rows);
    net_free(sd->t); net_free(sd->s);
}

/* The inputs of step k: uploaded outside the step (and outside the graph). */
static void upload_batch(Side *sd, int k) {
    size_t xin = (size_t)sd->B * 3 * 32 * 32;
    std::vector<float> x(xin);
    for (size_t i = 0; i < xin; i++) x[i] = (float)((dkd_rand32(40 + k, 9, 0, (uint32_t)i) >> 8) * (2.0 / 16777216.0) - 1.0);
    std::vector<int> y(sd->B);
    for (int b = 0; b < sd->B; b++) y[b] = (int)(dkd_rand32(50 + k, 9, 1, (uint32_t)b) % (uint32_t)sd->NC);
    backend_cuda.upload(sd->t->x, x.data(), xin * sizeof(float));
    backend_cuda.upload(sd->s->x, x.data(), xin * sizeof(float));
    backend_cuda.upload(sd->y, y.data(), (size_t)sd->B * sizeof(int));
}

/* The step: device work only. */
static void step(Side *sd) {
    LossParams lp = {1.0f, 0.0f, 1.0f, 8.0f, 4.0f, 0.5f};
    float *v = net_forward(sd->t, sd->B, 0);
    float *z = net_forward(sd->s, sd->B, 1);
    backend_cuda.dkd_loss(sd->dz, sd->rows, z, v, sd->y, sd->B, sd->NC, lp);
    net_backward(sd->s, sd->dz, sd->B);
    net_sgd(sd->s, 0.05f, 0.9f, 5e-4f);
}

static std::vector<float> host(const float *d, size_t n) {
    std::vector<float> h(n);
    backend_cuda.download(h.data(), d, n * sizeof(float));
    return h;
}
static int same(const float *a, const float *b, size_t n, const char *what, const char *pair) {
    std::vector<float> x = host(a, n), y = host(b, n);
    int ok = !memcmp(x.data(), y.data(), n * sizeof(float));
    if (!ok) printf("    %s: %s differ\n", pair, what);
    return ok;
}

static void test_pair(const char *teacher, const char *student, int B, int steps) {
    Side a, b;
    side_init(&a, teacher, student, B);
    side_init(&b, teacher, student, B);
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    size_t recorded = 0;
    for (int k = 0; k < steps; k++) {
        upload_batch(&a, k);
        step(&a);
        upload_batch(&b, k);
        if (k == 0) {
            cudaCheck(cudaStreamBeginCapture(0, cudaStreamCaptureModeGlobal));
            step(&b);
            recorded = emu_capture_size();
            cudaCheck(cudaStreamEndCapture(0, &graph));
            cudaCheck(cudaGraphInstantiate(&exec, graph, 0));
        }
        cudaCheck(cudaGraphLaunch(exec, 0));
    }
    cudaCheck(cudaDeviceSynchronize());
    char pair[100];
    snprintf(pair, sizeof pair, "%s -> %s", teacher, student);
    Net *sa = a.s, *sb = b.s;
    int ok = same(sa->params, sb->params, sa->n_params, "parameters", pair);
    ok &= same(sa->mom, sb->mom, sa->n_params, "momentum", pair);
    ok &= same(sa->grads, sb->grads, sa->n_params, "gradients", pair);
    if (sa->n_stats) ok &= same(sa->stats, sb->stats, sa->n_stats, "BN running statistics", pair);
    ok &= same(a.rows, b.rows, (size_t)B * 3, "loss rows", pair);
    ok &= same(a.dz, b.dz, (size_t)B * a.NC, "dL/dz", pair);
    check(ok, "%s, batch %d: %d steps replayed from one captured graph (%zu recorded ops) == launch by launch, "
          "bit for bit", pair, B, steps, recorded);
    cudaCheck(cudaGraphExecDestroy(exec));
    cudaCheck(cudaGraphDestroy(graph));
    side_free(&a); side_free(&b);
}

/* Calls a graph cannot hold, inside a capture: each returns CUDA's error, and
 * the capture ends invalidated with no graph. */
static void test_violations(void) {
    printf("capture violations\n");
    float *buf = (float *)backend_cuda.alloc(64 * sizeof(float));
    float h[64] = {0};
    const char *names[] = {"cudaMalloc", "cudaFree", "cudaMemcpy (device -> host)", "cudaMemset (synchronous)",
                           "cudaMemcpyAsync (host -> device)", "cudaDeviceSynchronize", "cudaStreamSynchronize"};
    for (int k = 0; k < 7; k++) {
        cudaCheck(cudaStreamBeginCapture(0, cudaStreamCaptureModeGlobal));
        cudaCheck(cudaMemsetAsync(buf, 0, 64 * sizeof(float), 0));   /* legal: recorded */
        void *p = NULL;
        cudaError_t e = cudaSuccess;
        switch (k) {
        case 0: e = cudaMalloc(&p, 256); break;
        case 1: e = cudaFree(buf); break;
        case 2: e = cudaMemcpy(h, buf, sizeof h, cudaMemcpyDeviceToHost); break;
        case 3: e = cudaMemset(buf, 0, sizeof h); break;
        case 4: e = cudaMemcpyAsync(buf, h, sizeof h, cudaMemcpyHostToDevice, 0); break;
        case 5: e = cudaDeviceSynchronize(); break;
        case 6: e = cudaStreamSynchronize(0); break;
        }
        cudaGraph_t g = (cudaGraph_t)1;
        cudaError_t end = cudaStreamEndCapture(0, &g);
        (void)cudaGetLastError();
        check(e == cudaErrorStreamCaptureUnsupported && end == cudaErrorStreamCaptureInvalidated && g == NULL,
              "%s inside a capture: the call fails (%s) and the capture ends invalidated without a graph", names[k],
              cudaGetErrorString(e));
    }
    /* nothing recorded by the invalidated captures ran: buf is still the emulator's NaN fill */
    std::vector<float> got(64);
    backend_cuda.download(got.data(), buf, sizeof h);
    check(got[0] != got[0], "an invalidated capture ran none of its recorded work");
    backend_cuda.release(buf);

    /* The backend checks every runtime call: a step that synchronises inside a
     * capture stops the process with CUDA's message instead of going on. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) dup2(fd, 2);
        float *d = (float *)backend_cuda.alloc(16);
        float hh[4];
        cudaStreamBeginCapture(0, cudaStreamCaptureModeGlobal);
        backend_cuda.download(hh, d, sizeof hh);   /* a synchronous copy: must not return */
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    check(WIFEXITED(st) && WEXITSTATUS(st) != 0, "a backend download inside a capture stops the process (exit %d)",
          WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

int main(void) {
    printf("emu_graph: a DKD step captured as a CUDA graph and replayed == launch by launch (emulated)\n");
    const char *all = getenv("DKD_EMU_ALL_PAIRS");
    if (all && !strcmp(all, "1")) {
        for (int i = 0; i < n_pairs; i++) test_pair(pair_table[i].teacher, pair_table[i].student, 2, 2);
    } else {   /* the suite: two small combinations that hold every op kind (as emu_step) */
        test_pair("resnet8x4", "ShuffleV2", 2, 2);
        test_pair("MobileNetV2", "vgg8", 2, 2);
        printf("  (DKD_EMU_ALL_PAIRS=1 runs the 11 pairs instead: minutes per pair under emulation)\n");
    }
    test_violations();
    check_race_free("emu_graph");
    return test_summary();
}
