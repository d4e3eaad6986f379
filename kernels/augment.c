/* kernels/augment.c — one batch of network input from the uint8 CIFAR-100
 * images: random crop with zero padding, horizontal flip, ToTensor and
 * Normalize, as torchvision does for mdistiller (docs/recipe.md). CPU reference of
 * kernels/augment.cu; both produce bit-identical batches.
 *
 * Shapes: data [Nall,3072] uint8 (image n = planes R, G, B of 32x32 bytes,
 *         row-major), idx [B] which images, x [B,3,32,32] float32.
 *
 * augment = 1 (training), per image b with sample s = idx[b]:
 *   1. pad the 32x32 image with 4 black pixels (value 0, in uint8 space) on
 *      every side -> 40x40;
 *   2. crop 32x32 at top i, left j (each 0..8), drawn together with
 *   3. flip (reverse the columns of the CROP) with probability 1/2,
 *      by augment_draw(seed, epoch, s) in dkd.h: a hash of (seed, epoch, s)
 *      (epoch read from memory: *epoch_at, so that the CUDA twin can take it
 *      from device memory when a captured step is replayed),
 *      so the draws do not depend on the batch, the thread or the device;
 *   so output pixel (r, w) of channel c reads, in the unpadded image,
 *        row  r + i - 4
 *        col  (flip ? 31 - w : w) + j - 4
 *   and is the padding (v = 0) when that lies outside 0..31.
 * augment = 0 (test): the image as it is (steps 4-5 only).
 *   4-5. x = (v / 255 - mean_c) / std_c   per channel (CIFAR_MEAN_*, CIFAR_STD_*)
 * The value is computed as ((float)v / 255.0f - mean) / std: three correctly
 * rounded float operations that the CUDA kernel repeats in the same order, so
 * both sides agree to the bit (a black pixel gives -mean_c/std_c, not 0).
 */
#include "dkd.h"

enum { IMG = 32, PLANE = IMG * IMG, PAD = 4 };

void augment_batch_cpu(float *x, const uint8_t *data, const int *idx, int B,
                       uint64_t seed, const int *epoch_at, int augment) {
    const int epoch = augment ? *epoch_at : 0;   /* (read from memory, as the CUDA kernel does) */
    const float mean[3] = {CIFAR_MEAN_R, CIFAR_MEAN_G, CIFAR_MEAN_B};
    const float sd[3] = {CIFAR_STD_R, CIFAR_STD_G, CIFAR_STD_B};
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        int s = idx[b];
        const uint8_t *img = data + (size_t)s * 3 * PLANE;   /* [3,32,32] */
        float *out = x + (size_t)b * 3 * PLANE;              /* [3,32,32] */
        int ci = PAD, cj = PAD, flip = 0;                    /* no augmentation = centre crop */
        if (augment) augment_draw(seed, epoch, s, &ci, &cj, &flip);
        for (int c = 0; c < 3; c++)
            for (int r = 0; r < IMG; r++) {
                int sr = r + ci - PAD;                       /* source row */
                for (int w = 0; w < IMG; w++) {
                    int sc = (flip ? IMG - 1 - w : w) + cj - PAD;   /* source column */
                    int inside = sr >= 0 && sr < IMG && sc >= 0 && sc < IMG;
                    uint8_t v = inside ? img[c * PLANE + sr * IMG + sc] : 0;
                    out[c * PLANE + r * IMG + w] = ((float)v / 255.0f - mean[c]) / sd[c];
                }
            }
    }
}
