/* One step of the Parallel WaveNet student (genlab/flows/iaf.py's IAFStep) in the sampling
 * direction, every time step at once: out[t] = u[t] * exp(log_s[t]) + mu[t], where (mu, log_s)
 * at t come from a WaveNet-like net of u[<t]. genlab/models/parallel_wavenet.py packs the
 * weights (NativeStudent); this computes what PyTorch's convolutions compute, for one stream.
 *
 * Activations are time-major (T, channels) so that one step's vector is contiguous and the
 * inner loops (over output channels) vectorise; matrices are stored (in, out). Layers are
 * sequential; within a layer the time steps are independent (OpenMP splits them).
 *
 *   u (T) in, out (T) out
 *   w_in (2, C): taps on u[t-2] and u[t-1]; b_in (C)
 *   w_z (L, 2, C, 2G): taps on h(t - d) and h(t); b_z (L, 2G): bias plus the conditioning term
 *   w_o (L, G, C+S), b_o (L, C+S): residual and skip outputs
 *   w_h (S, 2), b_h (2): the head on ReLU(sum of skips) -> (mu, log s)
 *   dilations (L); scratch: at least T * (2C + S) floats
 * exp, tanh and sigmoid use a polynomial exp (relative error < 1e-7) that vectorises.
 * Returns 0, or 1 if a width is out of range.
 *
 * a * b + c is computed as one fused multiply-add (the pragma below: GCC contracts nothing in
 * ISO C mode otherwise); without it the default student's vector code below is about 1.3x
 * slower. Results differ from separate roundings only in the last bits.
 */
#pragma GCC optimize("fp-contract=fast")
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define MAX_WIDTH 1024

/* 2^f for f in [0, 1): a degree-6 fit, written once for floats and vectors alike */
#define EXP2_FRACTION(f)                                                                       \
    ((((((0.000218712623f * (f) + 0.00123824156f) * (f) + 0.00968618598f) * (f) +              \
        0.0554789118f) * (f) + 0.240231097f) * (f) + 0.693146825f) * (f) + 1.0f)

static inline float exp_approx(float x) {
    /* e^x = 2^(x log2 e) = 2^i * 2^f, 2^f by a degree-6 fit on [0, 1). Written so that GCC
     * vectorises the loops calling it: no branches, and no floorf/fminf (which it does not
     * vectorise without -ffast-math) */
    x = 0.5f * (x - 87.0f + fabsf(x + 87.0f)); /* max(x, -87) */
    x = 0.5f * (x + 88.0f - fabsf(x - 88.0f)); /* min(x, 88) */
    const float t = x * 1.44269504f;
    float fi = (float)(int32_t)t;
    fi -= (float)(fi > t); /* floor */
    const float f = t - fi;
    const float p = EXP2_FRACTION(f);
    const int32_t bits = ((int32_t)fi + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float sigmoid_approx(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

#define TB 4 /* time steps per inner iteration: independent FMA chains hide FMA latency */

static void layer_any(
        int T, int C, int G, int S, int d, const float *h_in, float *h_out, float *skip,
        const float *wz_past, const float *wz_now, const float *bz, const float *wo,
        const float *bo) {
    /* One gated residual layer over every time step, TB steps at a time, for any widths (the
     * default student's have their own vector code, `layer_16`). */
    #pragma omp parallel for schedule(static)
    for (int t0 = 0; t0 < T; t0 += TB) {
        float z[TB][MAX_WIDTH], a[TB][MAX_WIDTH], o[TB][MAX_WIDTH];
        float past[TB][MAX_WIDTH], now[TB][MAX_WIDTH];
        for (int b = 0; b < TB; b++) {
            const int t = t0 + b < T ? t0 + b : T - 1; /* the tail repeats the last step */
            memcpy(now[b], h_in + (size_t)t * C, sizeof(float) * C);
            if (t >= d) memcpy(past[b], h_in + (size_t)(t - d) * C, sizeof(float) * C);
            else memset(past[b], 0, sizeof(float) * C);
            memcpy(z[b], bz, sizeof(float) * 2 * G);
            memcpy(o[b], bo, sizeof(float) * (C + S));
        }
        for (int i = 0; i < C; i++) {
            const float *rp = wz_past + (size_t)i * 2 * G, *rn = wz_now + (size_t)i * 2 * G;
            for (int b = 0; b < TB; b++) {
                const float xp = past[b][i], xn = now[b][i];
                for (int j = 0; j < 2 * G; j++) z[b][j] += xp * rp[j] + xn * rn[j];
            }
        }
        for (int b = 0; b < TB; b++)
            for (int j = 0; j < G; j++)  /* tanh(a) = 2 sigmoid(2a) - 1 */
                a[b][j] = (2.0f * sigmoid_approx(2.0f * z[b][j]) - 1.0f)
                          * sigmoid_approx(z[b][G + j]);
        for (int i = 0; i < G; i++) {
            const float *row = wo + (size_t)i * (C + S);
            for (int b = 0; b < TB; b++) {
                const float x = a[b][i];
                for (int j = 0; j < C + S; j++) o[b][j] += x * row[j];
            }
        }
        for (int b = 0; b < TB && t0 + b < T; b++) {
            float *next = h_out + (size_t)(t0 + b) * C, *sk = skip + (size_t)(t0 + b) * S;
            for (int c = 0; c < C; c++) next[c] = now[b][c] + o[b][c];
            for (int s = 0; s < S; s++) sk[s] += o[b][C + s];
        }
    }
}

/* The default student's widths (C = G = S = 16), written with GCC/Clang vector extensions:
 * vectors as wide as the CPU's own, TB16 time steps per block with their accumulators in
 * registers. 4 flows x 10 layers over 8,000 steps, one core of the idle development machine,
 * against the scalar loops with constant widths that this replaced: 11.6 against 48.2 ms
 * (AVX-512), 17.8 against 113.7 ms (compiled for AVX2), 40.8 against 122.4 ms (SSE2 only).
 * A vector type wider than the hardware's is split by the compiler, very slowly: 16-float
 * vectors compiled for AVX2 took 463 ms, 26x the 8-float code. */
#if defined(__AVX512F__) /* VW: floats per hardware vector; TB16: time steps per block, so */
#define VW 16            /* that the TB16 x 4 x 16 / VW accumulators fit in the registers */
#define TB16 8
#elif defined(__AVX__)
#define VW 8
#define TB16 3
#else /* SSE, NEON */
#define VW 4
#define TB16 2
#endif
#define NV (16 / VW) /* vectors per 16 channels */
typedef float vf __attribute__((vector_size(4 * VW)));
typedef float vfu __attribute__((vector_size(4 * VW), aligned(4))); /* unaligned access */
typedef int32_t vi __attribute__((vector_size(4 * VW)));

static inline vf loadv(const float *p) { return *(const vfu *)p; }
static inline void storev(float *p, vf x) { *(vfu *)p = x; }

static inline vf selectv(vi mask, vf a, vf b) {
    /* mask ? a : b, element-wise (mask: -1 or 0, as vector comparisons give) */
    return (vf)((mask & (vi)a) | (~mask & (vi)b));
}

static inline vf expv(vf x) {
    /* exp_approx on a vector; arguments clamped to [-40, 40] so that a product of two stays
     * finite (gatev) */
    const vf lo = (vf){0} - 40.0f, hi = (vf){0} + 40.0f;
    x = selectv(x < lo, lo, x);
    x = selectv(x > hi, hi, x);
    const vf t = x * 1.44269504f;
    vf fi = __builtin_convertvector(__builtin_convertvector(t, vi), vf);
    fi -= __builtin_convertvector(-(fi > t), vf); /* floor */
    const vf f = t - fi;
    const vf p = EXP2_FRACTION(f);
    const vi bits = (__builtin_convertvector(fi, vi) + 127) << 23;
    vf scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline vf gatev(vf a, vf b) {
    /* tanh(a) * sigmoid(b) = (1 - e^-2a) / ((1 + e^-2a) (1 + e^-b)): one division */
    const vf e1 = expv(-2.0f * a), e2 = expv(-b);
    return (1.0f - e1) / ((1.0f + e1) * (1.0f + e2));
}

static void layer_16(int T, int d, const float *h_in, float *h_out, float *skip,
                     const float *wz_past, const float *wz_now, const float *bz,
                     const float *wo, const float *bo) {
    static const float zeros[16] = {0};
    #pragma omp parallel for schedule(static)
    for (int t0 = 0; t0 < T; t0 += TB16) {
        const float *now[TB16], *past[TB16];
        for (int b = 0; b < TB16; b++) {
            const int t = t0 + b < T ? t0 + b : T - 1; /* the tail repeats the last step */
            now[b] = h_in + (size_t)t * 16;
            past[b] = t >= d ? h_in + (size_t)(t - d) * 16 : zeros;
        }
        vf zt[TB16][NV], zs[TB16][NV]; /* the tanh and sigmoid halves */
        for (int b = 0; b < TB16; b++)
            for (int k = 0; k < NV; k++) {
                zt[b][k] = loadv(bz + k * VW);
                zs[b][k] = loadv(bz + 16 + k * VW);
            }
        for (int i = 0; i < 16; i++) {
            const float *rp = wz_past + i * 32, *rn = wz_now + i * 32;
            for (int b = 0; b < TB16; b++) {
                const float xp = past[b][i], xn = now[b][i];
                for (int k = 0; k < NV; k++) {
                    zt[b][k] += xp * loadv(rp + k * VW) + xn * loadv(rn + k * VW);
                    zs[b][k] += xp * loadv(rp + 16 + k * VW) + xn * loadv(rn + 16 + k * VW);
                }
            }
        }
        float a[TB16][16];
        for (int b = 0; b < TB16; b++)
            for (int k = 0; k < NV; k++) storev(a[b] + k * VW, gatev(zt[b][k], zs[b][k]));
        vf res[TB16][NV], sk[TB16][NV];
        for (int b = 0; b < TB16; b++)
            for (int k = 0; k < NV; k++) {
                res[b][k] = loadv(bo + k * VW);
                sk[b][k] = loadv(bo + 16 + k * VW);
            }
        for (int i = 0; i < 16; i++) {
            const float *row = wo + i * 32;
            for (int b = 0; b < TB16; b++)
                for (int k = 0; k < NV; k++) {
                    res[b][k] += a[b][i] * loadv(row + k * VW);
                    sk[b][k] += a[b][i] * loadv(row + 16 + k * VW);
                }
        }
        for (int b = 0; b < TB16 && t0 + b < T; b++)
            for (int k = 0; k < NV; k++) {
                const size_t t = (size_t)(t0 + b) * 16 + k * VW;
                storev(h_out + t, loadv(h_in + t) + res[b][k]);
                storev(skip + t, loadv(skip + t) + sk[b][k]);
            }
    }
}

int iaf_step(int T, int C, int G, int S, int L, const int32_t *dilations,
             const float *u, float *out,
             const float *w_in, const float *b_in,
             const float *w_z, const float *b_z,
             const float *w_o, const float *b_o,
             const float *w_h, const float *b_h,
             float *scratch, int threads) {
    if (C > MAX_WIDTH || 2 * G > MAX_WIDTH || C + S > MAX_WIDTH) return 1;
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    float *h_in = scratch, *h_out = scratch + (size_t)T * C, *skip = scratch + (size_t)2 * T * C;
    memset(skip, 0, sizeof(float) * (size_t)T * S);
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float u2 = t >= 2 ? u[t - 2] : 0.0f, u1 = t >= 1 ? u[t - 1] : 0.0f;
        float *h = h_in + (size_t)t * C;
        for (int c = 0; c < C; c++) h[c] = b_in[c] + w_in[c] * u2 + w_in[C + c] * u1;
    }
    for (int l = 0; l < L; l++) {
        const float *wz_past = w_z + (size_t)l * 2 * C * 2 * G, *wz_now = wz_past + (size_t)C * 2 * G;
        const float *bz = b_z + (size_t)l * 2 * G;
        const float *wo = w_o + (size_t)l * G * (C + S), *bo = b_o + (size_t)l * (C + S);
        if (C == 16 && G == 16 && S == 16)  /* the default student */
            layer_16(T, dilations[l], h_in, h_out, skip, wz_past, wz_now, bz, wo, bo);
        else
            layer_any(T, C, G, S, dilations[l], h_in, h_out, skip, wz_past, wz_now, bz, wo, bo);
        float *swap = h_in; h_in = h_out; h_out = swap;
    }
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *sk = skip + (size_t)t * S;
        float mu = b_h[0], log_s = b_h[1];
        for (int s = 0; s < S; s++) {
            const float r = sk[s] > 0.0f ? sk[s] : 0.0f;
            mu += r * w_h[2 * s];
            log_s += r * w_h[2 * s + 1];
        }
        out[t] = u[t] * exp_approx(log_s) + mu;
    }
    return 0;
}
