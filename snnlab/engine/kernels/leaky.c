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
 * beta and threshold are per element, repeating with a period: element e uses beta[e % beta_n] (beta_n 1:
 * a scalar; the number of features: one per neuron). reset: 0 subtract, 1 zero, 2 none, 3 zero_step (the whole
 * step, input included, as reference.py says).
 *
 * At the end of the file: SpikingJelly's IF, LIF and PLIF (snnlab_sj_*), the same way.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define BLOCK 512
#define MAX_THREADS 256

enum { RESET_SUBTRACT = 0, RESET_ZERO = 1, RESET_NONE = 2, RESET_ZERO_STEP = 3 };

/* The primitives of surrogates.Steps (codes in native.py's STEPS): a surrogate gradient written as a chain
 * of them is stated once, in surrogates.py, and run by torch there and by steps_tile here. */
enum { STEP_ADD, STEP_SUB, STEP_MUL, STEP_DIV, STEP_RDIV, STEP_SQUARE, STEP_ABS, STEP_CLAMP_MIN, STEP_FILL };

typedef struct {
    const float *current; /* [T, n] or [n] when is_static */
    const float *mem_in;  /* backward: saved membrane [T, n] */
    const float *g_sg;    /* backward: dL/dspike * surrogate'(mem - threshold) [T, n], or NULL */
    const float *g_spk;   /* backward, without g_sg: dL/dspike [T, n] (or one value, g_spk_const), or NULL */
    const int *steps;     /* the surrogate's gradient as Steps codes (with g_spk) */
    const float *step_c;  /* and their constants */
    int n_steps;
    const float *g_mem;   /* backward: dL/dmem, the same way */
    float *mem;           /* forward output [T, n] */
    float *spk;           /* forward output [T, n] */
    float *g_in;          /* backward output: [T, n], or [n] summed over time when is_static */
    double *d_beta;       /* backward: this thread's partial sums, beta_n of them (NULL: not needed) */
    double *d_thr;        /* the same, thr_n of them */
    const float *beta_v, *thr_v;
    int64_t beta_n, thr_n;
    int64_t T, n, lo, hi;
    int reset, is_static, g_spk_const, g_mem_const, reverse;
} job_t;

/* A surrogate's Steps, run on TILE elements at a time held in four 4-float vector registers (GCC/clang
 * vector extensions: SSE on x86-64, NEON on arm64) from the load of the membrane to the store of the
 * product: d = steps(m - thr) * gs, the float operations of native.py's torch fallback,
 * surrogate.grad_(mem - threshold).mul_(g_spk), one for one, so the values are the same. One loop over the
 * block per step, or one pass of torch per step, costs a load and a store per step; measured on tutorial
 * 5's shapes, that was what the surrogate cost (BENCHMARKS.md, item 9). */
typedef float vf __attribute__((vector_size(16)));
typedef int32_t vi __attribute__((vector_size(16)));
#define TILE 16
#define EACH(S) \
    do {        \
        S(x0);  \
        S(x1);  \
        S(x2);  \
        S(x3);  \
    } while (0)
static inline vf load4(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void store4(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline void steps_tile(const int *code, const float *c, int count, const float *m, const float *thr,
                              const float *gs, float *d) {
    vf x0 = load4(m) - load4(thr), x1 = load4(m + 4) - load4(thr + 4);
    vf x2 = load4(m + 8) - load4(thr + 8), x3 = load4(m + 12) - load4(thr + 12);
    for (int k = 0; k < count; k++) {
        const float v = c[k];
        const vf vv = {v, v, v, v};
        switch (code[k]) {
#define ADD(x) x = x + vv
#define SUB(x) x = x - vv
#define MUL(x) x = x * vv
#define DIV(x) x = x / vv
#define RDIV(x) x = vv / x
#define SQUARE(x) x = x * x
#define ABS(x) x = (vf)((vi)x & 0x7fffffff)
#define CLAMP(x) /* x < v ? v : x, so NaN stays NaN, as torch's clamp_min */ \
    do {                                                                   \
        vi lt = x < vv;                                                    \
        x = (vf)(((vi)x & ~lt) | ((vi)vv & lt));                           \
    } while (0)
#define FILL(x) x = vv
        case STEP_ADD: EACH(ADD); break;
        case STEP_SUB: EACH(SUB); break;
        case STEP_MUL: EACH(MUL); break;
        case STEP_DIV: EACH(DIV); break;
        case STEP_RDIV: EACH(RDIV); break;
        case STEP_SQUARE: EACH(SQUARE); break;
        case STEP_ABS: EACH(ABS); break;
        case STEP_CLAMP_MIN: EACH(CLAMP); break;
        case STEP_FILL: EACH(FILL); break;
        default: break;
        }
    }
    store4(d, x0 * load4(gs));
    store4(d + 4, x1 * load4(gs + 4));
    store4(d + 8, x2 * load4(gs + 8));
    store4(d + 12, x3 * load4(gs + 12));
}

/* Ask for a block's cache lines ahead of use. */
static inline void prefetch_block(const float *p, int64_t len) {
#if defined(__GNUC__) || defined(__clang__)
    for (int64_t i = 0; i < len; i += 16)
        __builtin_prefetch(p + i);
#else
    (void)p;
    (void)len;
#endif
}

/* This block's beta and threshold, one per element (from the periodic vectors). */
static void block_params(const job_t *j, int64_t b0, int64_t len, float *beta, float *thr) {
    for (int64_t i = 0; i < len; i++) {
        beta[i] = j->beta_v[j->beta_n == 1 ? 0 : (b0 + i) % j->beta_n];
        thr[i] = j->thr_v[j->thr_n == 1 ? 0 : (b0 + i) % j->thr_n];
    }
}

static void *forward_range(void *arg) {
    const job_t *j = arg;
    const int64_t n = j->n;
    float beta[BLOCK], thr[BLOCK];
    for (int64_t b0 = j->lo; b0 < j->hi; b0 += BLOCK) {
        const int64_t len = (j->hi - b0) < BLOCK ? (j->hi - b0) : BLOCK;
        block_params(j, b0, len, beta, thr);
        for (int64_t t = 0; t < j->T; t++) {
            const float *in = j->is_static ? j->current + b0 : j->current + t * n + b0;
            float *m = j->mem + t * n + b0;
            float *s = j->spk + t * n + b0;
            if (t == 0) {
                /* mem[-1] = 0: beta * 0 + I, as the reference computes it */
                for (int64_t i = 0; i < len; i++) {
                    float v = beta[i] * 0.0f;
                    v = v + in[i];
                    m[i] = v;
                    s[i] = v > thr[i] ? 1.0f : 0.0f;
                }
                continue;
            }
            const float *mp = m - n, *sp = s - n; /* mem[t-1], spike[t-1] = reset[t] */
            if (j->reset == RESET_SUBTRACT) {
                for (int64_t i = 0; i < len; i++) {
                    float v = beta[i] * mp[i];
                    v = v + in[i];
                    v = v - sp[i] * thr[i]; /* spike is 0 or 1: the product is exact */
                    m[i] = v;
                    s[i] = v > thr[i] ? 1.0f : 0.0f;
                }
            } else if (j->reset == RESET_ZERO) {
                for (int64_t i = 0; i < len; i++) {
                    float k = beta[i] * (1.0f - sp[i]);
                    float v = k * mp[i];
                    v = v + in[i];
                    m[i] = v;
                    s[i] = v > thr[i] ? 1.0f : 0.0f;
                }
            } else if (j->reset == RESET_ZERO_STEP) {
                for (int64_t i = 0; i < len; i++) {
                    float v = beta[i] * mp[i];
                    v = v + in[i];
                    v = (1.0f - sp[i]) * v; /* 0 or 1: exact */
                    m[i] = v;
                    s[i] = v > thr[i] ? 1.0f : 0.0f;
                }
            } else {
                for (int64_t i = 0; i < len; i++) {
                    float v = beta[i] * mp[i];
                    v = v + in[i];
                    m[i] = v;
                    s[i] = v > thr[i] ? 1.0f : 0.0f;
                }
            }
        }
    }
    return NULL;
}

/* delta[t] = g_mem[t] + g_spk[t]*sg[t] + k[t+1]*delta[t+1], k = beta (subtract, none) or
 * beta*(1 - reset[t+1]) (zero); zero_step keeps dL/dI[t] = (1 - reset[t])*delta[t] instead, which makes k =
 * beta. See fused.py for the derivation. g_spk*sg is either computed here from the surrogate's Steps
 * (the chain surrogates.py states, run on each tile as it is loaded), or arrives computed by the
 * surrogate's own torch code (native.py) for one written otherwise; either way no formula is written
 * twice and any surrogate of the registry runs here. Parameter gradients are summed per element over
 * time in double, then added to this thread's per-parameter sums. */
static void *backward_range(void *arg) {
    const job_t *j = arg;
    const int64_t n = j->n, T = j->T;
    const int zero = j->reset == RESET_ZERO, subtract = j->reset == RESET_SUBTRACT;
    const int zero_step = j->reset == RESET_ZERO_STEP;
    float beta[BLOCK], thr[BLOCK];
    float d[BLOCK];      /* delta[t] */
    float next[BLOCK];   /* delta[t+1] */
    float fired[BLOCK];  /* spike[t] = reset[t+1], rebuilt from the membrane while stepping back */
    float total[BLOCK];  /* static input: sum of delta over time */
    float gs_const[BLOCK], gm_const[BLOCK]; /* a gradient that is one value everywhere (e.g. of x.sum()) */
    double acc_beta[BLOCK], acc_thr[BLOCK];
    if (j->g_spk && j->g_spk_const)
        for (int64_t i = 0; i < BLOCK; i++)
            gs_const[i] = j->g_spk[0];
    if (j->g_mem && j->g_mem_const)
        for (int64_t i = 0; i < BLOCK; i++)
            gm_const[i] = j->g_mem[0];
    for (int64_t b0 = j->lo; b0 < j->hi; b0 += BLOCK) {
        const int64_t len = (j->hi - b0) < BLOCK ? (j->hi - b0) : BLOCK;
        block_params(j, b0, len, beta, thr);
        if (j->d_beta)
            memset(acc_beta, 0, sizeof acc_beta);
        if (j->d_thr)
            memset(acc_thr, 0, sizeof acc_thr);
        for (int64_t t = T - 1; t >= 0; t--) {
            const float *m = j->mem_in + t * n + b0;
            if (t > 0) { /* the step before is n floats away: no hardware prefetcher guesses that */
                prefetch_block(m - n, len);
                if (j->g_sg)
                    prefetch_block(j->g_sg + (t - 1) * n + b0, len);
                else if (j->g_spk && !j->g_spk_const)
                    prefetch_block(j->g_spk + (t - 1) * n + b0, len);
                if (j->g_mem && !j->g_mem_const)
                    prefetch_block(j->g_mem + (t - 1) * n + b0, len);
            }
            if (j->g_sg || j->g_spk) {
                if (j->g_sg) {
                    memcpy(d, j->g_sg + t * n + b0, (size_t)len * sizeof(float));
                } else { /* surrogate.grad_(mem - threshold) * g_spk from its Steps */
                    const float *gs = j->g_spk_const ? gs_const : j->g_spk + t * n + b0;
                    int64_t i0 = 0;
                    for (; i0 + TILE <= len; i0 += TILE)
                        steps_tile(j->steps, j->step_c, j->n_steps, m + i0, thr + i0, gs + i0, d + i0);
                    if (i0 < len) { /* the ragged end, through a tile padded with zeros */
                        float mt[TILE] = {0}, tt[TILE] = {0}, gt[TILE] = {0}, dt[TILE];
                        memcpy(mt, m + i0, (size_t)(len - i0) * sizeof(float));
                        memcpy(tt, thr + i0, (size_t)(len - i0) * sizeof(float));
                        memcpy(gt, gs + i0, (size_t)(len - i0) * sizeof(float));
                        steps_tile(j->steps, j->step_c, j->n_steps, mt, tt, gt, dt);
                        memcpy(d + i0, dt, (size_t)(len - i0) * sizeof(float));
                    }
                }
                if (j->d_thr)
                    for (int64_t i = 0; i < len; i++)
                        acc_thr[i] -= d[i];
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
                        d[i] = d[i] + beta[i] * (1.0f - fired[i]) * next[i];
                else
                    for (int64_t i = 0; i < len; i++)
                        d[i] = d[i] + beta[i] * next[i];
            }
            if (t > 0 && (zero || zero_step || j->d_beta || (subtract && j->d_thr))) {
                const float *mp = m - n; /* mem[t-1] */
                for (int64_t i = 0; i < len; i++)
                    fired[i] = mp[i] > thr[i] ? 1.0f : 0.0f;
                if (zero_step)
                    for (int64_t i = 0; i < len; i++)
                        d[i] = (1.0f - fired[i]) * d[i]; /* now dL/dI[t]; 0 or 1: exact */
                if (j->d_beta)
                    for (int64_t i = 0; i < len; i++)
                        acc_beta[i] += (double)(d[i] * (zero ? mp[i] * (1.0f - fired[i]) : mp[i]));
                if (subtract && j->d_thr)
                    for (int64_t i = 0; i < len; i++)
                        acc_thr[i] -= (double)(d[i] * fired[i]);
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
        if (j->d_beta)
            for (int64_t i = 0; i < len; i++)
                j->d_beta[j->beta_n == 1 ? 0 : (b0 + i) % j->beta_n] += acc_beta[i];
        if (j->d_thr)
            for (int64_t i = 0; i < len; i++)
                j->d_thr[j->thr_n == 1 ? 0 : (b0 + i) % j->thr_n] += acc_thr[i];
    }
    return NULL;
}

/* The synaptic current: y[t] = a*y[t-1] + x[t] with y[-1] = 0 (x is [n] when is_static). With `reverse`
 * time runs from T-1 down to 0 with y[T] = 0: the adjoint of the same recurrence, dL/dx[t] = g[t] +
 * a*dL/dx[t+1]. a is per element with a period, as beta is (it travels in beta_v / beta_n). */
static void *decay_range(void *arg) {
    const job_t *j = arg;
    const int64_t n = j->n, T = j->T, step = j->reverse ? -n : n;
    float a[BLOCK], unused[BLOCK];
    for (int64_t b0 = j->lo; b0 < j->hi; b0 += BLOCK) {
        const int64_t len = (j->hi - b0) < BLOCK ? (j->hi - b0) : BLOCK;
        block_params(j, b0, len, a, unused);
        for (int64_t k = 0; k < T; k++) {
            const int64_t t = j->reverse ? T - 1 - k : k;
            const float *in = j->is_static ? j->current + b0 : j->current + t * n + b0;
            float *y = j->mem + t * n + b0;
            if (k == 0) {
                if (y != in) /* in place, y[t] already holds x[t] */
                    memcpy(y, in, (size_t)len * sizeof(float)); /* a*0 + x = x */
            } else {
                const float *prev = y - step;
                for (int64_t i = 0; i < len; i++) {
                    float v = a[i] * prev[i];
                    y[i] = v + in[i];
                }
            }
        }
    }
    return NULL;
}

/* Split [0, n) into at most `threads` parts of whole blocks: part k is [lo[k], hi[k]). Returns the number of
 * parts (at least 1, at most MAX_THREADS and the number of blocks). */
static int split_blocks(int64_t n, int threads, int64_t lo[MAX_THREADS], int64_t hi[MAX_THREADS]) {
    int64_t blocks = (n + BLOCK - 1) / BLOCK;
    if (threads < 1)
        threads = 1;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    if (threads > blocks)
        threads = (int)(blocks > 0 ? blocks : 1);
    for (int k = 0; k < threads; k++) {
        lo[k] = (blocks * k / threads) * BLOCK;
        hi[k] = (blocks * (k + 1) / threads) * BLOCK;
        if (hi[k] > n)
            hi[k] = n;
    }
    return threads;
}

/* Run `fn` on each part of split_blocks. With OpenMP the parts run on the runtime's threads: linked against
 * the libgomp torch loaded, that is torch's own intra-op pool, so the scan does not compete with torch's
 * (spinning) workers for the cores. Without OpenMP they run in turn. */
static void run_split(void *(*fn)(void *), job_t *base, int threads, double *d_beta, double *d_thr) {
    job_t jobs[MAX_THREADS];
    int64_t lo[MAX_THREADS], hi[MAX_THREADS];
    threads = split_blocks(base->n, threads, lo, hi);
    for (int k = 0; k < threads; k++) {
        jobs[k] = *base;
        jobs[k].lo = lo[k];
        jobs[k].hi = hi[k];
        jobs[k].d_beta = d_beta ? d_beta + k * base->beta_n : NULL;
        jobs[k].d_thr = d_thr ? d_thr + k * base->thr_n : NULL;
    }
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int k = 0; k < threads; k++)
        fn(&jobs[k]);
}

/* The fields both entry points share. */
static job_t make_job(int is_static, int64_t T, int64_t n, const float *beta, int64_t beta_n, const float *thr,
                      int64_t thr_n, int reset) {
    job_t job = {0};
    job.is_static = is_static;
    job.T = T;
    job.n = n;
    job.beta_v = beta;
    job.beta_n = beta_n;
    job.thr_v = thr;
    job.thr_n = thr_n;
    job.reset = reset;
    return job;
}

int snnlab_leaky_forward(const float *current, int is_static, float *mem, float *spk, int64_t T, int64_t n,
                         const float *beta, int64_t beta_n, const float *thr, int64_t thr_n, int reset,
                         int threads) {
    job_t job = make_job(is_static, T, n, beta, beta_n, thr, thr_n, reset);
    job.current = current;
    job.mem = mem;
    job.spk = spk;
    run_split(forward_range, &job, threads, NULL, NULL);
    return 0;
}

/* d_beta and d_thr receive per-thread partial sums: arrays of threads x beta_n (thr_n) doubles, zeroed by
 * the caller (NULL: not needed). The spike gradient comes as g_sg (g_spk * sg, computed by torch) or as
 * g_spk with the surrogate's steps (n_steps codes and constants); g_sg may be g_in (a sequence: each
 * g_sg[t] is read before g_in[t] is written). */
int snnlab_leaky_backward(const float *mem, const float *g_sg, const float *g_spk, int g_spk_const, const int *steps,
                          const float *step_c, int n_steps, const float *g_mem, int g_mem_const, float *g_in,
                          int is_static, int64_t T, int64_t n, const float *beta, int64_t beta_n, const float *thr,
                          int64_t thr_n, int reset, double *d_beta, double *d_thr, int threads) {
    job_t job = make_job(is_static, T, n, beta, beta_n, thr, thr_n, reset);
    job.mem_in = mem;
    job.g_sg = g_sg;
    job.g_spk = g_spk;
    job.g_spk_const = g_spk_const;
    job.steps = steps;
    job.step_c = step_c;
    job.n_steps = n_steps;
    job.g_mem = g_mem;
    job.g_mem_const = g_mem_const;
    job.g_in = g_in;
    run_split(backward_range, &job, threads, d_beta, d_thr);
    return 0;
}

/* y (contiguous [T, n]) from x ([T, n], or [n] when is_static) through y[t] = a*y[t-1] + x[t]; reverse: the
 * adjoint, from the end. x and y may be the same array (a sequence input): each x[t] is read before y[t]
 * is written, and the neighbour read is an output already. */
int snnlab_decay_scan(const float *x, int is_static, float *y, int64_t T, int64_t n, const float *a, int64_t a_n,
                      int reverse, int threads) {
    job_t job = make_job(is_static, T, n, a, a_n, a, a_n, 0);
    job.current = x;
    job.mem = y;
    job.reverse = reverse;
    run_split(decay_range, &job, threads, NULL, NULL);
    return 0;
}

/* ---- SpikingJelly's IF, LIF and PLIF (kernels/spikingjelly.py states the equations and the adjoint) ----
 *
 * Each element walks through time once, as above, in blocks of BLOCK neighbours split over threads. The
 * expressions are spikingjelly.py's, operation for operation and in the same order (a division by tau for
 * LIF, a product with q = sigmoid(w) for PLIF), so the forward is bit for bit the torch scan's, and so is
 * the backward, which repeats the torch scan's backward step by step: the surrogate's gradient comes from its
 * Steps (run on each block here) or, for a surrogate written otherwise, precomputed by torch over the whole
 * sequence (sg). PLIF's dL/dq is left per element, summed over time in float as the torch scan sums it; the
 * caller adds the elements up (torch's sum, as the torch scan does). */
enum { SJ_IF = 0, SJ_LIF = 1, SJ_PLIF = 2 };

typedef struct {
    const float *x;      /* [T, n], or [n] when is_static */
    const float *v;      /* backward: the saved membrane v[t] (after the reset) [T, n] */
    const float *g_spk;  /* backward: dL/dspike [T, n] (or one value, g_spk_const), or NULL */
    const float *g_v;    /* backward: dL/dv, the same way, or NULL */
    const float *sg;     /* backward: surrogate'(h[t] - v_threshold) [T, n] from torch, or NULL: from steps */
    const int *steps;    /* the surrogate's gradient as Steps codes, when sg is NULL */
    const float *step_c;
    int n_steps;
    float *spk, *v_out;  /* forward outputs [T, n] */
    float *g_x;          /* backward: dL/dx [T, n], or [n] summed over time when is_static; NULL: not needed */
    float *dq;           /* backward: PLIF's dL/dq per element [n], summed over time; NULL: not needed */
    int64_t T, n, lo, hi;
    int kind, decay_input, hard, detach, is_static, g_spk_const, g_v_const;
    float leak, vth, vr; /* tau (LIF) or q (PLIF); v_threshold; v_reset (hard reset) */
} sj_job_t;

/* 1.0f where a >= b, else 0.0f, built from the comparison's bits: a compiler that knows a 0-or-1 value turns
 * products with it into branches (which stop the loops from vectorizing); it cannot see through the bits. */
static inline float sj_step(float a, float b) {
    union {
        uint32_t u;
        float f;
    } r;
    r.u = (uint32_t)(-(int32_t)(a >= b)) & 0x3f800000u;
    return r.f;
}

/* h[t] from x[t] and v[t-1] (rest: v_reset, or 0 with the soft reset). */
static inline __attribute__((always_inline)) float sj_charge(int kind, int decay, float x, float v, float leak,
                                                             float rest) {
    if (kind == SJ_IF)
        return v + x;
    if (kind == SJ_LIF)
        return decay ? v + (x - (v - rest)) / leak : v - (v - rest) / leak + x;
    return decay ? v + (x - (v - rest)) * leak : v - (v - rest) * leak + x;
}

/* Called with constant kind, decay and hard (see SJ_DISPATCH), so each combination compiles to its own loops. */
static inline __attribute__((always_inline)) void sj_forward_block(const sj_job_t *j, int kind, int decay,
                                                                   int hard) {
    const int64_t n = j->n;
    const float vth = j->vth, vr = j->vr, leak = j->leak, rest = hard ? j->vr : 0.0f;
    float v[BLOCK];
    for (int64_t b0 = j->lo; b0 < j->hi; b0 += BLOCK) {
        const int64_t len = (j->hi - b0) < BLOCK ? (j->hi - b0) : BLOCK;
        for (int64_t i = 0; i < len; i++)
            v[i] = rest; /* v[-1] = v_reset (hard) or 0 (soft) */
        for (int64_t t = 0; t < j->T; t++) {
            const float *in = j->is_static ? j->x + b0 : j->x + t * n + b0;
            float *s = j->spk + t * n + b0, *vo = j->v_out + t * n + b0;
            for (int64_t i = 0; i < len; i++) {
                const float h = sj_charge(kind, decay, in[i], v[i], leak, rest);
                const float fired = sj_step(h - vth, 0.0f);
                const float vn = hard ? fired * vr + (1.0f - fired) * h : h - fired * vth;
                s[i] = fired;
                vo[i] = vn;
                v[i] = vn;
            }
        }
    }
}

/* One step back through time over a block: the torch scan's backward step (spikingjelly.py), element by
 * element. Every input is an array here (zeros for a missing dL/dspike, v_reset or 0 for v[-1], a scratch
 * row for an unwanted dL/dx), so the loop has no branch and vectorizes; kind, decay, hard and detach are
 * constants where it is inlined. */
static inline __attribute__((always_inline)) void sj_adjoint_step(int64_t len, int kind, int decay, int hard,
                                                                  int detach, const float *restrict h,
                                                                  const float *restrict xt, const float *restrict vp,
                                                                  const float *restrict gs, const float *restrict sg,
                                                                  float *restrict e, float *restrict gx,
                                                                  float *restrict total, float *restrict dq,
                                                                  float leak, float vth, float vr, float rest) {
    for (int64_t i = 0; i < len; i++) {
        const float z = h[i] - vth;
        const float ee = e[i];
        float ds = gs[i];
        if (!detach)
            ds = ds + ee * (hard ? vr - h[i] : -vth);
        float dh = ds * sg[i];
        dh = hard ? dh + ee * (1.0f - sj_step(z, 0.0f)) : dh + ee;
        float through = dh, next = dh;
        if (kind != SJ_IF) {
            const float scaled = kind == SJ_LIF ? dh / leak : dh * leak;
            through = decay ? scaled : dh;
            next = dh - scaled;
        }
        gx[i] = through;
        total[i] = total[i] + through;
        dq[i] = dq[i] + (decay ? dh * (xt[i] - (vp[i] - rest)) : -(dh * (vp[i] - rest)));
        e[i] = next;
    }
}

static inline __attribute__((always_inline)) void sj_backward_block(const sj_job_t *j, int kind, int decay,
                                                                    int hard) {
    const int64_t n = j->n, T = j->T;
    const float vth = j->vth, vr = j->vr, leak = j->leak, rest = hard ? j->vr : 0.0f;
    float e[BLOCK];     /* dL/dv[t] from step t+1, then plus dL/dv[t] */
    float h[BLOCK];     /* h[t], rebuilt from v[t-1] and x[t] */
    float sgb[BLOCK];   /* surrogate'(h[t] - v_threshold) from the steps */
    float total[BLOCK]; /* dL/dx summed over time (a static input's) */
    float dq[BLOCK];    /* PLIF's dL/dq, summed over time */
    float scratch[BLOCK];
    float thr[BLOCK], ones[BLOCK], zeros[BLOCK], rests[BLOCK], gs_const[BLOCK], gv_const[BLOCK];
    for (int64_t i = 0; i < BLOCK; i++) {
        thr[i] = vth;
        ones[i] = 1.0f; /* steps_tile multiplies by its gs: by 1, exactly */
        zeros[i] = 0.0f; /* no dL/dspike: ds starts at 0, as the torch scan's zeros_like */
        rests[i] = rest; /* v[-1] */
        gs_const[i] = j->g_spk && j->g_spk_const ? j->g_spk[0] : 0.0f;
        gv_const[i] = j->g_v && j->g_v_const ? j->g_v[0] : 0.0f;
    }
    for (int64_t b0 = j->lo; b0 < j->hi; b0 += BLOCK) {
        const int64_t len = (j->hi - b0) < BLOCK ? (j->hi - b0) : BLOCK;
        for (int64_t i = 0; i < len; i++)
            e[i] = total[i] = dq[i] = 0.0f;
        for (int64_t t = T - 1; t >= 0; t--) {
            const float *xt = j->is_static ? j->x + b0 : j->x + t * n + b0;
            const float *vp = t > 0 ? j->v + (t - 1) * n + b0 : rests; /* v[t-1] */
            if (t > 1)
                prefetch_block(vp - n, len);
            for (int64_t i = 0; i < len; i++)
                h[i] = sj_charge(kind, decay, xt[i], vp[i], leak, rest);
            const float *sg = j->sg ? j->sg + t * n + b0 : sgb;
            if (!j->sg) {
                int64_t i0 = 0;
                for (; i0 + TILE <= len; i0 += TILE)
                    steps_tile(j->steps, j->step_c, j->n_steps, h + i0, thr, ones, sgb + i0);
                if (i0 < len) {
                    float ht[TILE] = {0}, dt[TILE];
                    memcpy(ht, h + i0, (size_t)(len - i0) * sizeof(float));
                    steps_tile(j->steps, j->step_c, j->n_steps, ht, thr, ones, dt);
                    memcpy(sgb + i0, dt, (size_t)(len - i0) * sizeof(float));
                }
            }
            if (j->g_v) { /* e = e + g_v[t], only where there is a g_v (as the torch scan adds it) */
                const float *gv = j->g_v_const ? gv_const : j->g_v + t * n + b0;
                for (int64_t i = 0; i < len; i++)
                    e[i] = e[i] + gv[i];
            }
            const float *gs = j->g_spk ? (j->g_spk_const ? gs_const : j->g_spk + t * n + b0) : zeros;
            float *gx = j->g_x && !j->is_static ? j->g_x + t * n + b0 : scratch;
            if (j->detach)
                sj_adjoint_step(len, kind, decay, hard, 1, h, xt, vp, gs, sg, e, gx, total, dq, leak, vth, vr, rest);
            else
                sj_adjoint_step(len, kind, decay, hard, 0, h, xt, vp, gs, sg, e, gx, total, dq, leak, vth, vr, rest);
        }
        if (j->g_x && j->is_static)
            memcpy(j->g_x + b0, total, (size_t)len * sizeof(float));
        if (j->dq)
            memcpy(j->dq + b0, dq, (size_t)len * sizeof(float));
    }
}

/* z[t] = h[t] - v_threshold for every step, h[t] rebuilt from v[t-1] and x[t] as the backward does: where the
 * surrogate's gradient is not a Steps chain, torch evaluates it on z, one step's slice at a time. */
static inline __attribute__((always_inline)) void sj_z_block(const sj_job_t *j, int kind, int decay, int hard) {
    const int64_t n = j->n;
    const float vth = j->vth, leak = j->leak, rest = hard ? j->vr : 0.0f;
    float rests[BLOCK];
    for (int64_t i = 0; i < BLOCK; i++)
        rests[i] = rest;
    for (int64_t b0 = j->lo; b0 < j->hi; b0 += BLOCK) {
        const int64_t len = (j->hi - b0) < BLOCK ? (j->hi - b0) : BLOCK;
        for (int64_t t = 0; t < j->T; t++) {
            const float *xt = j->is_static ? j->x + b0 : j->x + t * n + b0;
            const float *vp = t > 0 ? j->v + (t - 1) * n + b0 : rests;
            float *z = j->v_out + t * n + b0;
            for (int64_t i = 0; i < len; i++)
                z[i] = sj_charge(kind, decay, xt[i], vp[i], leak, rest) - vth;
        }
    }
}

/* kind x decay_input x hard reset, each with its own compiled loops. */
#define SJ_DISPATCH(FN, j)                                                                                    \
    do {                                                                                                      \
        switch ((j)->kind * 4 + ((j)->decay_input ? 2 : 0) + ((j)->hard ? 1 : 0)) {                          \
        case 0: case 2: FN(j, SJ_IF, 1, 0); break;                                                            \
        case 1: case 3: FN(j, SJ_IF, 1, 1); break;                                                            \
        case 4: FN(j, SJ_LIF, 0, 0); break;                                                                   \
        case 5: FN(j, SJ_LIF, 0, 1); break;                                                                   \
        case 6: FN(j, SJ_LIF, 1, 0); break;                                                                   \
        case 7: FN(j, SJ_LIF, 1, 1); break;                                                                   \
        case 8: FN(j, SJ_PLIF, 0, 0); break;                                                                  \
        case 9: FN(j, SJ_PLIF, 0, 1); break;                                                                  \
        case 10: FN(j, SJ_PLIF, 1, 0); break;                                                                 \
        default: FN(j, SJ_PLIF, 1, 1); break;                                                                 \
        }                                                                                                     \
    } while (0)

static void sj_forward_range(const sj_job_t *j) { SJ_DISPATCH(sj_forward_block, j); }
static void sj_backward_range(const sj_job_t *j) { SJ_DISPATCH(sj_backward_block, j); }
static void sj_z_range(const sj_job_t *j) { SJ_DISPATCH(sj_z_block, j); }

/* As run_split, for SpikingJelly's jobs. */
static void sj_split(void (*fn)(const sj_job_t *), const sj_job_t *base, int threads) {
    sj_job_t jobs[MAX_THREADS];
    int64_t lo[MAX_THREADS], hi[MAX_THREADS];
    threads = split_blocks(base->n, threads, lo, hi);
    for (int k = 0; k < threads; k++) {
        jobs[k] = *base;
        jobs[k].lo = lo[k];
        jobs[k].hi = hi[k];
    }
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int k = 0; k < threads; k++)
        fn(&jobs[k]);
}

static sj_job_t sj_job(const float *x, int is_static, int64_t T, int64_t n, int kind, int decay_input, float leak,
                       float vth, int hard, float vr, int detach) {
    sj_job_t job = {0};
    job.x = x;
    job.is_static = is_static;
    job.T = T;
    job.n = n;
    job.kind = kind;
    job.decay_input = decay_input;
    job.leak = leak;
    job.vth = vth;
    job.hard = hard;
    job.vr = vr;
    job.detach = detach;
    return job;
}

/* spk, v_out: [T, n]; kind 0 IF, 1 LIF (leak = tau), 2 PLIF (leak = q); hard: v_reset is vr, else soft. */
int snnlab_sj_forward(const float *x, int is_static, float *spk, float *v_out, int64_t T, int64_t n, int kind,
                      int decay_input, float leak, float vth, int hard, float vr, int threads) {
    sj_job_t job = sj_job(x, is_static, T, n, kind, decay_input, leak, vth, hard, vr, 0);
    job.spk = spk;
    job.v_out = v_out;
    sj_split(sj_forward_range, &job, threads);
    return 0;
}

/* z [T, n] = h[t] - v_threshold from x and the saved membrane v (see sj_z_block). */
int snnlab_sj_z(const float *x, int is_static, const float *v, float *z, int64_t T, int64_t n, int kind,
                int decay_input, float leak, float vth, int hard, float vr, int threads) {
    sj_job_t job = sj_job(x, is_static, T, n, kind, decay_input, leak, vth, hard, vr, 0);
    job.v = v;
    job.v_out = z;
    sj_split(sj_z_range, &job, threads);
    return 0;
}

/* The gradients of snnlab_sj_forward: g_x (NULL: not needed) and PLIF's dq per element (NULL: not needed),
 * from dL/dspike and dL/dv (either NULL, or one value everywhere with its *_const flag) and the surrogate's
 * gradient as sg [T, n] or as steps. */
int snnlab_sj_backward(const float *x, const float *v, const float *g_spk, int g_spk_const, const float *g_v,
                       int g_v_const, const float *sg, const int *steps, const float *step_c, int n_steps,
                       float *g_x, float *dq, int is_static, int64_t T, int64_t n, int kind, int decay_input,
                       float leak, float vth, int hard, float vr, int detach, int threads) {
    sj_job_t job = sj_job(x, is_static, T, n, kind, decay_input, leak, vth, hard, vr, detach);
    job.v = v;
    job.g_spk = g_spk;
    job.g_spk_const = g_spk_const;
    job.g_v = g_v;
    job.g_v_const = g_v_const;
    job.sg = sg;
    job.steps = steps;
    job.step_c = step_c;
    job.n_steps = n_steps;
    job.g_x = g_x;
    job.dq = dq;
    sj_split(sj_backward_range, &job, threads);
    return 0;
}
