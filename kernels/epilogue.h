/* kernels/epilogue.h — what an eval-mode convolution may do to its output before it
 * leaves the cache: add a residual and apply a ReLU.
 *
 *   y = relu?( conv(x) + bias + res )        res: NULL, or a tensor shaped like y
 *
 * Why. In a ResNet block, eval mode, the second conv (its BN folded into it) is followed by
 * "out += shortcut; out = relu(out)", and the first by a ReLU. Done as separate ops,
 * each is one more pass over a tensor that has already left the cache (resnet56: the
 * add + ReLU passes were 7% of an inference). Done here, on the rows or vectors a conv
 * path has just written, they cost a few instructions on data still in L1.
 *
 * Same numbers as the separate ops, bit for bit: the sum is formed in the same order,
 * ((conv + bias) + res), and the ReLU is kernels/relu.c's rule (v <= 0 -> +0, so -0
 * becomes +0 and NaN goes through). net.c's eval fusion decides where it applies
 * (plan_eval_fusion); tests/test_ops.c checks every conv path against the separate ops.
 * Where it runs: shiftconv.c applies it to its registers as it stores a tile; conv.c
 * calls conv_epilogue per slice of images just computed (im2col, 1x1 layers), or in one
 * pass after the layer (depthwise layers; Winograd's residual: read during the output
 * transforms, its cache misses cost more than the pass, while Winograd applies a ReLU
 * alone as it stores). Measured, 1 thread, AVX-512 Xeon, inference against the separate
 * passes: resnet56 -5% time, ResNet50 -6%, ShuffleV1 -17%, WRN-16-2 level (the BN after
 * its adds then reads a tensor no longer in the cache).
 */
#ifndef DKD_EPILOGUE_H
#define DKD_EPILOGUE_H

#include <stddef.h>

/* y[i] = relu?(y[i] + res[i]) for i < n; res may be NULL (then only the ReLU, if any). */
static inline void conv_epilogue(float *restrict y, const float *restrict res, size_t n, int relu) {
    if (res && relu)
        for (size_t i = 0; i < n; i++) { float v = y[i] + res[i]; y[i] = v <= 0.0f ? 0.0f : v; }
    else if (res)
        for (size_t i = 0; i < n; i++) y[i] += res[i];
    else if (relu)
        for (size_t i = 0; i < n; i++) y[i] = y[i] <= 0.0f ? 0.0f : y[i];
}

#endif
