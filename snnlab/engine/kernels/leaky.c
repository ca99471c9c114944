/* One-pass leaky integrate-and-fire scan for the CPU, forward and backward through time.
 *
 * The torch version in fused.py issues several small ops per time step; each one is a dispatch and a
 * pass over memory. Here every element walks through time once, in blocks of BLOCK neighbouring
 * elements so that the inner loop is contiguous and vectorizes, and the blocks are split over threads.
 *
 * The arithmetic is the reference's, operation for operation and rounding for rounding (build with
 * -ffp-contract=off: a fused multiply-add would round once where the reference rounds twice), so the
 * forward values are bit for bit those of reference.py. Compiled and loaded by native.py.
 *
 * Layout: tensors are float32, contiguous, [T, n] (n = batch * features). A static input is [n].
 * beta and threshold are scalars. reset: 0 subtract, 1 zero, 2 none.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define BLOCK 512
#define MAX_THREADS 256

enum { RESET_SUBTRACT = 0, RESET_ZERO = 1, RESET_NONE = 2 };

enum {
    SG_ATAN = 0,
    SG_FAST_SIGMOID,
    SG_SIGMOID,
    SG_TRIANGLE,
    SG_STRAIGHT_THROUGH,
    SG_GAUSSIAN,
    SG_ERF,
    SG_SOFT_SIGN,
    SG_PIECEWISE_QUADRATIC,
};

typedef struct {
    const float *current; /* [T, n] or [n] when is_static */
    const float *mem_in;  /* backward: saved membrane [T, n] */
    const float *g_spk;   /* backward: dL/dspike [T, n], or one value for all (g_spk_const), or NULL */
    const float *g_mem;   /* backward: dL/dmem, the same way */
    float *mem;           /* forward output [T, n] */
    float *spk;           /* forward output [T, n] */
    float *g_in;          /* backward output: [T, n], or [n] summed over time when is_static */
    double *d_beta;       /* backward: this thread's partial sum (NULL: not needed) */
    double *d_thr;
    int64_t T, n, lo, hi;
    float beta, thr, p0, p1;
    int reset, is_static, surrogate, g_spk_const, g_mem_const;
} job_t;

/* d[i] = surrogate'(m[i] - thr) * gs[i] over a block, each derivative written as surrogates.py writes its
 * grad_ (same constants, see native.py); one loop per kind so that each vectorizes. */
static void surrogate_block(int kind, const float *m, const float *gs, float *d, int64_t len, float thr, float p0,
                            float p1) {
    switch (kind) {
    case SG_ATAN: /* p0 = pi/2*alpha, p1 = alpha/2 */
        for (int64_t i = 0; i < len; i++) {
            float a = (m[i] - thr) * p0;
            d[i] = (1.0f / (a * a + 1.0f)) * p1 * gs[i];
        }
        break;
    case SG_FAST_SIGMOID: /* p0 = slope */
        for (int64_t i = 0; i < len; i++) {
            float a = fabsf(m[i] - thr) * p0 + 1.0f;
            d[i] = (1.0f / (a * a)) * gs[i];
        }
        break;
    case SG_SIGMOID: /* p0 = slope */
        for (int64_t i = 0; i < len; i++) {
            float s = 1.0f / (1.0f + expf(-((m[i] - thr) * p0)));
            d[i] = s * (1.0f - s) * p0 * gs[i];
        }
        break;
    case SG_TRIANGLE: /* p0 = width */
        for (int64_t i = 0; i < len; i++) {
            float a = fabsf(m[i] - thr) / -p0 + 1.0f;
            d[i] = (a > 0.0f ? a : 0.0f) / p0 * gs[i];
        }
        break;
    case SG_STRAIGHT_THROUGH:
        for (int64_t i = 0; i < len; i++)
            d[i] = gs[i];
        break;
    case SG_GAUSSIAN: /* p0 = 2*sigma^2, p1 = sqrt(2*pi)*sigma */
        for (int64_t i = 0; i < len; i++) {
            float x = m[i] - thr;
            d[i] = expf(-(x * x) / p0) / p1 * gs[i];
        }
        break;
    case SG_ERF: /* p0 = alpha, p1 = alpha/sqrt(pi) */
        for (int64_t i = 0; i < len; i++) {
            float a = p0 * (m[i] - thr);
            d[i] = p1 * expf(-(a * a)) * gs[i];
        }
        break;
    case SG_SOFT_SIGN: /* p0 = alpha */
        for (int64_t i = 0; i < len; i++) {
            float a = 1.0f + fabsf(p0 * (m[i] - thr));
            d[i] = p0 / (2.0f * (a * a)) * gs[i];
        }
        break;
    case SG_PIECEWISE_QUADRATIC: /* p0 = alpha, p1 = alpha^2 */
        for (int64_t i = 0; i < len; i++) {
            float a = p0 - p1 * fabsf(m[i] - thr);
            d[i] = (a > 0.0f ? a : 0.0f) * gs[i];
        }
        break;
    default:
        for (int64_t i = 0; i < len; i++)
            d[i] = 0.0f;
    }
}

static void *forward_range(void *arg) {
    const job_t *j = arg;
    const int64_t n = j->n;
    const float beta = j->beta, thr = j->thr;
    for (int64_t b0 = j->lo; b0 < j->hi; b0 += BLOCK) {
        const int64_t len = (j->hi - b0) < BLOCK ? (j->hi - b0) : BLOCK;
        for (int64_t t = 0; t < j->T; t++) {
            const float *in = j->is_static ? j->current + b0 : j->current + t * n + b0;
            float *m = j->mem + t * n + b0;
            float *s = j->spk + t * n + b0;
            if (t == 0) {
                /* mem[-1] = 0: beta * 0 + I, as the reference computes it */
                for (int64_t i = 0; i < len; i++) {
                    float v = beta * 0.0f;
                    v = v + in[i];
                    m[i] = v;
                    s[i] = v > thr ? 1.0f : 0.0f;
                }
                continue;
            }
            const float *mp = m - n, *sp = s - n; /* mem[t-1], spike[t-1] = reset[t] */
            if (j->reset == RESET_SUBTRACT) {
                for (int64_t i = 0; i < len; i++) {
                    float v = beta * mp[i];
                    v = v + in[i];
                    v = v - sp[i] * thr; /* spike is 0 or 1: the product is exact */
                    m[i] = v;
                    s[i] = v > thr ? 1.0f : 0.0f;
                }
            } else if (j->reset == RESET_ZERO) {
                for (int64_t i = 0; i < len; i++) {
                    float k = beta * (1.0f - sp[i]);
                    float v = k * mp[i];
                    v = v + in[i];
                    m[i] = v;
                    s[i] = v > thr ? 1.0f : 0.0f;
                }
            } else {
                for (int64_t i = 0; i < len; i++) {
                    float v = beta * mp[i];
                    v = v + in[i];
                    m[i] = v;
                    s[i] = v > thr ? 1.0f : 0.0f;
                }
            }
        }
    }
    return NULL;
}

/* delta[t] = g_mem[t] + g_spk[t]*sg[t] + k[t+1]*delta[t+1], k = beta (subtract, none) or
 * beta*(1 - reset[t+1]) (zero); see fused.py for the derivation. */
static void *backward_range(void *arg) {
    const job_t *j = arg;
    const int64_t n = j->n, T = j->T;
    const float beta = j->beta, thr = j->thr;
    const int zero = j->reset == RESET_ZERO, subtract = j->reset == RESET_SUBTRACT;
    float d[BLOCK];      /* delta[t] */
    float next[BLOCK];   /* delta[t+1] */
    float fired[BLOCK];  /* spike[t] = reset[t+1], rebuilt from the membrane while stepping back */
    float total[BLOCK];  /* static input: sum of delta over time */
    float gs_const[BLOCK], gm_const[BLOCK]; /* a gradient that is one value everywhere (e.g. of x.sum()) */
    double d_beta = 0.0, d_thr = 0.0;
    if (j->g_spk && j->g_spk_const)
        for (int64_t i = 0; i < BLOCK; i++)
            gs_const[i] = j->g_spk[0];
    if (j->g_mem && j->g_mem_const)
        for (int64_t i = 0; i < BLOCK; i++)
            gm_const[i] = j->g_mem[0];
    for (int64_t b0 = j->lo; b0 < j->hi; b0 += BLOCK) {
        const int64_t len = (j->hi - b0) < BLOCK ? (j->hi - b0) : BLOCK;
        for (int64_t t = T - 1; t >= 0; t--) {
            const float *m = j->mem_in + t * n + b0;
            if (j->g_spk) {
                const float *gs = j->g_spk_const ? gs_const : j->g_spk + t * n + b0;
                surrogate_block(j->surrogate, m, gs, d, len, thr, j->p0, j->p1);
                if (j->d_thr)
                    for (int64_t i = 0; i < len; i++)
                        d_thr -= d[i];
            } else {
                memset(d, 0, (size_t)len * sizeof(float));
            }
            if (j->g_mem) {
                const float *gm = j->g_mem_const ? gm_const : j->g_mem + t * n + b0;
                for (int64_t i = 0; i < len; i++)
                    d[i] = d[i] + gm[i];
            }
            if (t < T - 1) {
                if (zero)
                    for (int64_t i = 0; i < len; i++)
                        d[i] = d[i] + beta * (1.0f - fired[i]) * next[i];
                else
                    for (int64_t i = 0; i < len; i++)
                        d[i] = d[i] + beta * next[i];
            }
            if (t > 0 && (zero || j->d_beta || (subtract && j->d_thr))) {
                const float *mp = m - n; /* mem[t-1] */
                for (int64_t i = 0; i < len; i++)
                    fired[i] = mp[i] > thr ? 1.0f : 0.0f;
                if (j->d_beta)
                    for (int64_t i = 0; i < len; i++)
                        d_beta += (double)(d[i] * (zero ? mp[i] * (1.0f - fired[i]) : mp[i]));
                if (subtract && j->d_thr)
                    for (int64_t i = 0; i < len; i++)
                        d_thr -= (double)(d[i] * fired[i]);
            }
            if (j->is_static) {
                if (t == T - 1)
                    memcpy(total, d, (size_t)len * sizeof(float));
                else
                    for (int64_t i = 0; i < len; i++)
                        total[i] = total[i] + d[i];
            } else {
                memcpy(j->g_in + t * n + b0, d, (size_t)len * sizeof(float));
            }
            memcpy(next, d, (size_t)len * sizeof(float));
        }
        if (j->is_static)
            memcpy(j->g_in + b0, total, (size_t)len * sizeof(float));
    }
    if (j->d_beta)
        *j->d_beta = d_beta;
    if (j->d_thr)
        *j->d_thr = d_thr;
    return NULL;
}

/* Split [0, n) into `threads` parts of whole blocks and run `fn` on each. With OpenMP the parts run on the
 * runtime's threads: linked against the libgomp torch loaded, that is torch's own intra-op pool, so the
 * scan does not compete with torch's (spinning) workers for the cores. Without OpenMP they run in turn. */
static void run_split(void *(*fn)(void *), job_t *base, int threads, double *d_beta, double *d_thr) {
    job_t jobs[MAX_THREADS];
    int64_t blocks = (base->n + BLOCK - 1) / BLOCK;
    if (threads < 1)
        threads = 1;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    if (threads > blocks)
        threads = (int)(blocks > 0 ? blocks : 1);
    for (int k = 0; k < threads; k++) {
        jobs[k] = *base;
        jobs[k].lo = (blocks * k / threads) * BLOCK;
        jobs[k].hi = (blocks * (k + 1) / threads) * BLOCK;
        if (jobs[k].hi > base->n)
            jobs[k].hi = base->n;
        jobs[k].d_beta = d_beta ? d_beta + k : NULL;
        jobs[k].d_thr = d_thr ? d_thr + k : NULL;
    }
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int k = 0; k < threads; k++)
        fn(&jobs[k]);
}

int snnlab_leaky_forward(const float *current, int is_static, float *mem, float *spk, int64_t T, int64_t n,
                         float beta, float thr, int reset, int threads) {
    job_t job = {0};
    job.current = current;
    job.is_static = is_static;
    job.mem = mem;
    job.spk = spk;
    job.T = T;
    job.n = n;
    job.beta = beta;
    job.thr = thr;
    job.reset = reset;
    run_split(forward_range, &job, threads, NULL, NULL);
    return 0;
}

/* d_beta and d_thr receive one partial sum per thread (arrays of `threads` doubles; NULL: not needed). */
int snnlab_leaky_backward(const float *mem, const float *g_spk, int g_spk_const, const float *g_mem,
                          int g_mem_const, float *g_in, int is_static,
                          int64_t T, int64_t n, float beta, float thr, int reset, int surrogate, float p0, float p1,
                          double *d_beta, double *d_thr, int threads) {
    job_t job = {0};
    job.mem_in = mem;
    job.g_spk = g_spk;
    job.g_mem = g_mem;
    job.g_spk_const = g_spk_const;
    job.g_mem_const = g_mem_const;
    job.g_in = g_in;
    job.is_static = is_static;
    job.T = T;
    job.n = n;
    job.beta = beta;
    job.thr = thr;
    job.reset = reset;
    job.surrogate = surrogate;
    job.p0 = p0;
    job.p1 = p1;
    run_split(backward_range, &job, threads, d_beta, d_thr);
    return 0;
}
