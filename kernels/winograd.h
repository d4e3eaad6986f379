/* kernels/winograd.h — Winograd F(2x2, 3x3) convolution on the CPU: the fast path that
 * conv.c takes for 3x3, stride-1, pad-1, ungrouped layers (forward and dx). Private to
 * the CPU reference; see winograd.c for the method. */
#ifndef DKD_WINOGRAD_H
#define DKD_WINOGRAD_H

#include <stddef.h>

/* 1 if a layer takes the Winograd path: K = 3, S = 1, P = 1, G = 1, at least 32 channels
 * in and out, and DKD_WINOGRAD is not 0 in the environment. */
int winograd_applies(int C, int OC, int K, int S, int P, int G);

/* The output tile m of a layer that applies: 2 for F(2x2, 3x3), 4 for F(4x4, 3x3)
 * (DKD_WINO_TILE=2 or 4 in the environment forces one). Every function below takes it. */
int winograd_tile(int H, int W);

/* Floats of the transformed, packed weights (U) of a C -> OC layer. */
size_t winograd_u_floats(int m, int C, int OC);
/* U from w [OC, C, 3, 3]: once per call, before the images. */
void winograd_weights(int m, float *U, const float *w, int C, int OC);

/* How many images winograd_images should take at once for a batch of N (enough tiles
 * for one block, but at most an equal share per processor). */
int winograd_images_per_call(int m, int N, int H, int W);
/* Per-thread scratch of winograd_images for ni images, in floats. */
size_t winograd_slot_floats(int m, int C, int H, int W, int OC, int ni);
/* ni images, one after the other: y [ni, OC, H, W] (+)= conv3x3(x [ni, C, H, W]) with
 * padding 1 and the weights U. beta 0: y is overwritten (+ bias[o] if bias is not NULL),
 * then relu applied if relu; beta 1: added to. Calling thread only. */
void winograd_images(int m, float *y, const float *x, int ni, const float *U, const float *bias, float beta, int C, int H,
                     int W, int OC, float *slot, int relu);

#endif
