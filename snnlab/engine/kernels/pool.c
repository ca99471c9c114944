/* Max pooling for the CPU over windows that tile the image: k x k windows with stride k, no padding, the rows
 * and columns that do not fill a window left out (torch's floor mode).
 *
 * torch's max_pool2d keeps an int64 index per output for the backward pass and picks the window's maximum with
 * a branch per element; on spike maps (0 and 1 in no order) that branch is mispredicted about half the time.
 * Here the choice is a select, the position is kept as one byte (its place in the window, row-major), and
 * the backward pass writes every element of the input gradient once, so it needs no zero fill first.
 *
 * The choice is torch's, element for element: the window is read row by row, an element replaces the
 * maximum so far when it is larger or NaN (so the first of equal maxima wins, and the last NaN), starting
 * from -inf at the window's first element. Values and gradients are therefore torch's bit for bit.
 *
 * Layout: float32, contiguous [planes, H, W] (planes = batch * channels); out and arg [planes, H/k, W/k].
 * Compiled with leaky.c into one library and loaded by native.py.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

/* One element of a window: it becomes the maximum when larger or NaN; a select, not a branch. */
#define TAKE(v, place)                        \
    do {                                      \
        float v_ = (v);                       \
        int take_ = (v_ > best) | (v_ != v_); \
        best = take_ ? v_ : best;             \
        at = take_ ? (place) : at;            \
    } while (0)

/* 2 x 2 windows, the usual case, written out so that the compiler vectorizes along the row. */
static void pool2_plane(const float *restrict x, float *restrict out, uint8_t *restrict arg, int64_t H, int64_t W) {
    const int64_t OH = H / 2, OW = W / 2;
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
        float *o = out + oh * OW;
        uint8_t *a = arg + oh * OW;
        for (int64_t ow = 0; ow < OW; ow++) {
            float best = -INFINITY;
            int at = 0;
            TAKE(r0[2 * ow], 0);
            TAKE(r0[2 * ow + 1], 1);
            TAKE(r1[2 * ow], 2);
            TAKE(r1[2 * ow + 1], 3);
            o[ow] = best;
            a[ow] = (uint8_t)at;
        }
    }
}

/* Any k x k windows. */
static void pool_plane(const float *x, float *out, uint8_t *arg, int64_t H, int64_t W, int k) {
    const int64_t OH = H / k, OW = W / k;
    for (int64_t oh = 0; oh < OH; oh++) {
        for (int64_t ow = 0; ow < OW; ow++) {
            const float *w = x + oh * k * W + ow * k;
            float best = -INFINITY;
            int at = 0;
            for (int r = 0; r < k; r++)
                for (int c = 0; c < k; c++)
                    TAKE(w[r * W + c], r * k + c);
            out[oh * OW + ow] = best;
            arg[oh * OW + ow] = (uint8_t)at;
        }
    }
}

int snnlab_maxpool_forward(const float *x, float *out, uint8_t *arg, int64_t planes, int64_t H, int64_t W, int k,
                           int threads) {
    const int64_t in = H * W, pooled = (H / k) * (W / k);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t p = 0; p < planes; p++) {
        if (k == 2)
            pool2_plane(x + p * in, out + p * pooled, arg + p * pooled, H, W);
        else
            pool_plane(x + p * in, out + p * pooled, arg + p * pooled, H, W, k);
    }
    return 0;
}

/* grad_in [planes, H, W] = the output's gradient at each window's chosen element, 0 elsewhere (the rows and
 * columns outside every window included). */
static void unpool2_plane(const float *restrict g, const uint8_t *restrict arg, float *restrict grad_in, int64_t H,
                          int64_t W) {
    const int64_t OH = H / 2, OW = W / 2;
    for (int64_t oh = 0; oh < OH; oh++) {
        float *r0 = grad_in + 2 * oh * W, *r1 = r0 + W;
        const float *go = g + oh * OW;
        const uint8_t *a = arg + oh * OW;
        for (int64_t ow = 0; ow < OW; ow++) {
            const float v = 0.0f + go[ow]; /* torch adds to zeros: -0 becomes 0 */
            const int at = a[ow];
            r0[2 * ow] = at == 0 ? v : 0.0f;
            r0[2 * ow + 1] = at == 1 ? v : 0.0f;
            r1[2 * ow] = at == 2 ? v : 0.0f;
            r1[2 * ow + 1] = at == 3 ? v : 0.0f;
        }
        if (W % 2)
            r0[W - 1] = r1[W - 1] = 0.0f;
    }
    if (H % 2)
        memset(grad_in + (H - 1) * W, 0, (size_t)W * sizeof(float));
}

/* Any k x k windows. */
static void unpool_plane(const float *g, const uint8_t *arg, float *grad_in, int64_t H, int64_t W, int k) {
    const int64_t OH = H / k, OW = W / k;
    for (int64_t h = 0; h < H; h++) {
        float *row = grad_in + h * W;
        const int64_t oh = h / k;
        if (oh >= OH) {
            memset(row, 0, (size_t)W * sizeof(float));
            continue;
        }
        const int r = (int)(h - oh * k);
        for (int64_t ow = 0; ow < OW; ow++) {
            const int at = arg[oh * OW + ow];
            const float v = 0.0f + g[oh * OW + ow];
            for (int c = 0; c < k; c++)
                row[ow * k + c] = (r * k + c == at) ? v : 0.0f;
        }
        for (int64_t w = OW * k; w < W; w++)
            row[w] = 0.0f;
    }
}

int snnlab_maxpool_backward(const float *grad_out, const uint8_t *arg, float *grad_in, int64_t planes, int64_t H,
                            int64_t W, int k, int threads) {
    const int64_t in = H * W, pooled = (H / k) * (W / k);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t p = 0; p < planes; p++) {
        if (k == 2)
            unpool2_plane(grad_out + p * pooled, arg + p * pooled, grad_in + p * in, H, W);
        else
            unpool_plane(grad_out + p * pooled, arg + p * pooled, grad_in + p * in, H, W, k);
    }
    return 0;
}
