/* kernels/conv_epilogue.cuh — what a convolution kernel does to an output
 * value before storing it: its "epilogue". Shared by the three forward
 * kernels of the convolution (kernels/conv.cu: the GEMM-to-NCHW copy of the
 * im2col path and the depthwise kernel; kernels/conv_implicit.cu: the
 * implicit GEMM), so all three finish a value in exactly the same way.
 *
 * For output channel o and flat NCHW index i of the value v (the sum of the
 * products, in the kernel's order), in this order:
 *   v = v + bias[o]                          (when bias; conv2d_forward stops here)
 *   v = fmaf(v, a[o], b[o])                  (when gamma: eval-mode BN,
 *        a = gamma / sqrtf(var + eps),  b = beta - mean * a)
 *   v = v + res[i]                           (when res: the residual add)
 *   v = v <= 0 ? 0 : v                       (when relu)
 * These are the float operations, rounding for rounding, of the separate
 * kernels the fused op replaces: conv2d_forward (sum, then + bias),
 * batchnorm_forward_eval (batchnorm.cu's bn_eval_affine and its fma),
 * add_forward and relu_forward (relu.cu's select). So conv2d_bn_eval gives
 * the separate ops' result BIT FOR BIT, without storing the convolution's
 * output and reading it back (tests/emu_fused.cpp compares them with memcmp).
 */
#ifndef DKD_CONV_EPILOGUE_CUH
#define DKD_CONV_EPILOGUE_CUH

/* Which steps run: NULL pointers (and relu = 0) switch steps off. A plain
 * struct passed by value to the kernels. */
typedef struct {
    const float *bias;                         /* [OC] or NULL */
    const float *gamma, *beta, *mean, *var;    /* eval BN [OC] each, or gamma NULL: no BN */
    const float *res;                          /* residual, y's shape, or NULL */
    float eps;
    int relu;
} ConvEpi;

static __device__ __forceinline__ float conv_epilogue(const ConvEpi &e, int o, size_t i, float v) {
    if (e.bias) v = v + e.bias[o];
    if (e.gamma) {   /* the arithmetic of batchnorm.cu's bn_eval_affine and batchnorm_eval_kernel */
        float invstd = 1.0f / sqrtf(e.var[o] + e.eps);
        float a = invstd * e.gamma[o];
        float b = e.beta[o] - __fmul_rn(e.mean[o], a);
        v = fmaf(v, a, b);
    }
    if (e.res) v = v + e.res[i];
    if (e.relu) v = v <= 0.0f ? 0.0f : v;
    return v;
}

/* kernels/conv_implicit.cu: the forward as an implicit GEMM (no im2col
 * buffer), y [N,OC,OH,OW] written through the epilogue; any G except
 * depthwise (conv.cu's direct kernel does those). */
void conv_implicit_forward(float *y, const float *x, const float *w, ConvEpi epi,
                           int N, int C, int H, int W, int OC, int K, int S, int P, int G);
/* The tile (rows x columns of the output block) the forward picks for OC/G
 * output channels per group: 16x256, 32x128 or 64x64 (kernels/README.md). */
int conv_implicit_tile_rows(int OCg);

#endif
