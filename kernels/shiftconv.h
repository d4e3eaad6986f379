/* kernels/shiftconv.h — stride-1 "same" convolutions computed straight from NCHW with lane
 * masks (shiftconv.c; AVX-512 and AVX2+FMA builds). Private to the CPU reference: conv.c
 * calls it. */
#ifndef DKD_SHIFT_H
#define DKD_SHIFT_H

#include <stddef.h>

enum {
    SHIFT_MAX_K = 7,      /* largest kernel (K x K taps) the mask table holds           */
    SHIFT_MIN_HW = 16,    /* smallest map, in positions (4x4)                           */
    SHIFT_MAX_HW = 1024,  /* largest map, in positions (32x32)                          */
    SHIFT_DW_ROWS = 8     /* rows of dw (output channels) per block of the weight       */
                          /* gradient that a thread takes (one or two tiles)           */
};

/* 1 if a layer can take this path in this build: stride 1, 2P = K-1 (output as large as
 * the input), K <= SHIFT_MAX_K, ungrouped, SHIFT_MIN_HW <= H·W <= SHIFT_MAX_HW (the same
 * layers with either width of vector); 0 always in builds without AVX-512 or AVX2+FMA. */
int shiftconv_applies(int Cin, int H, int W, int K, int S, int P, int G);
/* Floats of the packed weights of an OUT x Cin x K x K kernel. */
size_t shiftconv_packed_floats(int OUT, int Cin, int K);
/* Ap from w [OUT, Cin, K, K]: once per call, before the images. */
void shiftconv_pack_weights(float *Ap, const float *w, int OUT, int Cin, int K);
/* ni images one after the other: out [ni, OUT, H, W] (+)= conv(in [ni, Cin, H, W]) with
 * the packed weights Ap and padding (K-1)/2. beta 0: out is overwritten (+ bias[o] when
 * bias is not NULL); beta 1: added to. Then res (NULL, or shaped like out) is added and
 * relu applied (kernels/epilogue.h). Calling thread only. */
void shiftconv(float *out, const float *in, int ni, const float *Ap, const float *bias, float beta, int Cin, int H,
                 int W, int K, int OUT, const float *res, int relu);
/* The weight gradient of a 3x3 layer of this kind (pad 1) over ni images, rows
 * [o_begin, o_end) and input channels [c_begin, c_end) of it: dw[o][c] = Σ_n dy[n, o] ⋆
 * in[n, c] (the correlation summed over positions and images), overwritten. o_begin is a
 * multiple of SHIFT_DW_ROWS: threads take disjoint (row block, channel range) pieces.
 * Calling thread only. */
void shiftconv_dw(float *dw, const float *dy, const float *in, int ni, int Cin, int H, int W, int OUT, int o_begin,
                  int o_end, int c_begin, int c_end);
/* The weight gradient of a 1x1 stride-1 layer (one group: Cg inputs; any
 * SHIFT_MIN_HW <= H·W <= SHIFT_MAX_HW), rows [o_begin, o_end) (o_begin a multiple of SHIFT_DW_ROWS):
 * dw[o][c] = Σ_n Σ_q dy[n, o, q] · x[n, c, q], dw with row stride Cg, overwritten. dy and
 * x point at the group's first channel of image 0; dy_image, x_image: floats from one
 * image to the next. Calling thread only. */
void shiftconv_dw_1x1(float *dw, const float *dy, const float *x, int N, int Cg, int HW, size_t dy_image,
                      size_t x_image, int o_begin, int o_end);

/* Depthwise 3x3 layers (pad 1, stride 1, H·W >= SHIFT_MIN_HW; shiftconv_applies with Cin = 1):
 * planes p in [p_begin, p_end) of N·C (channel c = p mod C) of
 * out [N, C, H, W] (+)= conv(in [N, C, H, W]) with w [C, 3, 3] (+ bias[c] when beta is
 * 0 and bias is not NULL); beta 0 overwrites, 1 adds. Calling thread only. */
void shiftconv_depthwise(float *out, const float *in, const float *w, const float *bias, float beta, int C, int H,
                         int W, long p_begin, long p_end);
/* Their weight gradient, channels [c_begin, c_end): dw[c] = Σ_n dy[n,c] ⋆ in[n,c],
 * overwritten. Calling thread only. */
void shiftconv_depthwise_dw(float *dw, const float *dy, const float *in, int N, int C, int H, int W, int c_begin,
                            int c_end);

#endif
