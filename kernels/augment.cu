/* kernels/augment.cu — builds a training (or test) batch on the GPU from the
 * uint8 CIFAR-100 images kept in device memory (reference: kernels/augment.c;
 * the recipe: docs/recipe.md, "One epoch", step 1).
 *
 * What it computes: x [B,3,32,32] floats from data [Nall,3072] uint8 (each
 * image is three 32x32 planes R, G, B) and idx [B] (which images):
 *   augment = 1: zero-pad 4 pixels, random 32x32 crop at top i, left j
 *                (each in 0..8), horizontal flip with probability 1/2;
 *   augment = 0: the image as it is;
 * then, per channel c: x = (v/255 - mean_c) / std_c   (a padded pixel is v = 0).
 * Output pixel (r, col) of a crop reads source row r+i-4 and source column
 * col+j-4, or 31-col+j-4 when flipped (the flip reverses the CROPPED image).
 *
 * The draws (i, j, flip) come from augment_draw() in dkd.h: a pure hash of
 * (seed, epoch, sample index), the same inline function the CPU reference
 * calls. So the CPU and GPU batches are bit-identical: same draws, and the
 * normalisation below is the same three correctly-rounded float operations
 * (a division, a subtraction, a division: nothing nvcc could fuse into an fma).
 *
 * How work maps to threads: one thread per output float (B*3072 of them), 256
 * threads per block. Each thread recomputes its image's draw: a few dozen
 * integer operations, cheaper than sharing it through shared memory and a
 * barrier. Writes are coalesced; reads are bytes of the same image row, so a
 * warp's 32 loads fall into one or two 32-byte sectors.
 */
#include "kernels/cuda_common.h"   // defines: LAUNCH, ceil_div
#include "kernels/cuda_ops.h"      // defines: the _cuda declarations

enum { AUG_THREADS = 256, IMG = 32, PLANE = 32 * 32, PAD = 4 };

__global__ void augment_batch_kernel(float *__restrict__ x, const uint8_t *__restrict__ data,
                                     const int *__restrict__ idx, int B, uint64_t seed, const int *__restrict__ epoch_at,
                                     int augment) {
    size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)B * 3 * PLANE) return;
    int col = (int)(e % IMG);
    int r = (int)((e / IMG) % IMG);
    int c = (int)((e / PLANE) % 3);
    int b = (int)(e / (3 * PLANE));
    int sample = idx[b];
    int sr = r, sc = col;
    if (augment) {
        int ci, cj, flip;
        augment_draw(seed, *epoch_at, sample, &ci, &cj, &flip);   /* the epoch from device memory */
        sr = r + ci - PAD;
        sc = (flip ? IMG - 1 - col : col) + cj - PAD;
    }
    /* outside the 32x32 image: the zero padding (black, before normalisation) */
    int inside = sr >= 0 && sr < IMG && sc >= 0 && sc < IMG;
    float v = inside ? (float)data[(size_t)sample * 3 * PLANE + (size_t)c * PLANE + sr * IMG + sc] : 0.0f;
    float mean = c == 0 ? CIFAR_MEAN_R : c == 1 ? CIFAR_MEAN_G : CIFAR_MEAN_B;
    float sd = c == 0 ? CIFAR_STD_R : c == 1 ? CIFAR_STD_G : CIFAR_STD_B;
    x[e] = (v / 255.0f - mean) / sd;
}

extern "C" void augment_batch_cuda(float *x, const uint8_t *data, const int *idx, int B,
                                   uint64_t seed, const int *epoch, int augment) {
    if (B <= 0) return;
    LAUNCH(augment_batch_kernel, ceil_div(B * 3 * PLANE, AUG_THREADS), AUG_THREADS, 0,
           x, data, idx, B, seed, epoch, augment);
}
