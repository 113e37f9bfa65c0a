/* Cached WaveNet generation, the whole loop in C (genlab/models/wavenet.py's NativeGenerator
 * packs the weights): CachedGenerator's computation without one Python call per operation.
 * Same weights, same queues, same inverse-CDF draws.
 *
 * All float arrays are float32, contiguous, row-major; matrices are stored (in, out) so that
 * y = x @ W reads W row by row (the inner loop runs over outputs and vectorises).
 *
 *   embed (257, C)      row 256 is zero: the "previous sample" before the clip starts
 *   w_in (2C, C), b_in (C)                      input conv: [x[t-2] emb, x[t-1] emb] -> h
 *   w_z (L, 2C, 2G), b_z (L, B, 2G)             dilated conv taps [h(t-d), h(t)] (+ conditioning)
 *   w_o (L, G, C+S), b_o (L, C+S)               residual and skip outputs
 *   w_1 (S, S), b_1 (S), w_2 (S, O), b_2 (O)    output head
 *   dilations (L), u (B', T, 2) for the B' streams that draw (B, or B/2 if guided), codes (B, T)
 *   int64
 *   state, carried between calls so generation can run in chunks of time steps [t0, t1):
 *   queue (sum d, B, C), prev_embed (B, C), prev_code (B) int64 (zeros, zeros, 256 at t = 0)
 *   mixtures: 0 for a 256-way softmax (O = 256), else M (O = 3M: logits, means, log-scales)
 *   forced: if nonzero, codes are read (teacher forcing) instead of drawn
 *   outputs: if not NULL, (B, T, O) receives every step's outputs
 *   guided: if nonzero, B is even and stream b + B/2 is stream b without its digit; stream b
 *     draws from l_free + guidance (l_digit - l_free) (classifier-free guidance, softmax only)
 *     and both streams take that code
 * Returns 0, or 1 if a size is out of range or memory runs out.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WIDTH 4096

static void affine(const float *x, int k, const float *w, const float *b, int n, float *y) {
    /* y (n) = b + x (k) @ w (k, n) */
    if (b) memcpy(y, b, sizeof(float) * n); else memset(y, 0, sizeof(float) * n);
    for (int i = 0; i < k; i++) {
        const float xi = x[i];
        const float *row = w + (size_t)i * n;
        for (int j = 0; j < n; j++) y[j] += xi * row[j];
    }
}

static int64_t draw_softmax(const float *logits, int n, float temperature, float u) {
    float mx = -INFINITY, total = 0.0f, p[MAX_WIDTH];
    for (int i = 0; i < n; i++) if (logits[i] / temperature > mx) mx = logits[i] / temperature;
    for (int i = 0; i < n; i++) { p[i] = expf(logits[i] / temperature - mx); total += p[i]; }
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += p[i] / total;
        if (cdf >= u) return i;
    }
    return n - 1;
}

static int64_t draw_logistic(const float *out, int m, float temperature, const float *u) {
    /* component by the first uniform, position by the second (inverse logistic CDF) */
    float mx = -INFINITY, total = 0.0f, p[MAX_WIDTH];
    for (int i = 0; i < m; i++) if (out[i] > mx) mx = out[i];
    for (int i = 0; i < m; i++) { p[i] = expf(out[i] - mx); total += p[i]; }
    int k = m - 1;
    float cdf = 0.0f;
    for (int i = 0; i < m; i++) {
        cdf += p[i] / total;
        if (cdf >= u[0]) { k = i; break; }
    }
    float log_scale = out[2 * m + k] < -7.0f ? -7.0f : out[2 * m + k];
    float s = expf(log_scale) * temperature;
    float v = u[1] < 1e-5f ? 1e-5f : (u[1] > 1.0f - 1e-5f ? 1.0f - 1e-5f : u[1]);
    float x = out[m + k] + s * (logf(v) - log1pf(-v));
    x = x < -1.0f ? -1.0f : (x > 1.0f ? 1.0f : x);
    return (int64_t)nearbyintf((x + 1.0f) / 2.0f * 255.0f);
}

static void forward_stream(int b, int t, int B, int L, int C, int G, int S, int O,
                           const float *embed, const float *w_in, const float *b_in,
                           const float *w_z, const float *b_z, const float *w_o, const float *b_o,
                           const float *w_1, const float *b_1, const float *w_2, const float *b_2,
                           const int64_t *dilations, const int64_t *starts, float *queue,
                           float *prev_embed, const int64_t *prev_code, float *out) {
    /* stream b's outputs (O) for sample t, advancing its queues and previous embedding */
    float taps[MAX_WIDTH], z[MAX_WIDTH], a[MAX_WIDTH], o[MAX_WIDTH];
    float h[MAX_WIDTH], skip[MAX_WIDTH], hidden[MAX_WIDTH];
    const float *e = embed + (size_t)prev_code[b] * C;
    memcpy(taps, prev_embed + (size_t)b * C, sizeof(float) * C);
    memcpy(taps + C, e, sizeof(float) * C);
    memcpy(prev_embed + (size_t)b * C, e, sizeof(float) * C);
    affine(taps, 2 * C, w_in, b_in, C, h);
    memset(skip, 0, sizeof(float) * S);
    for (int l = 0; l < L; l++) {
        float *slot = queue + ((size_t)(starts[l] + t % dilations[l]) * B + b) * C;
        memcpy(taps, slot, sizeof(float) * C);  /* h at t - d */
        memcpy(taps + C, h, sizeof(float) * C);
        memcpy(slot, h, sizeof(float) * C);
        affine(taps, 2 * C, w_z + (size_t)l * 2 * C * 2 * G,
               b_z + ((size_t)l * B + b) * 2 * G, 2 * G, z);
        for (int i = 0; i < G; i++) a[i] = tanhf(z[i]) / (1.0f + expf(-z[G + i]));
        affine(a, G, w_o + (size_t)l * G * (C + S), b_o + (size_t)l * (C + S), C + S, o);
        for (int i = 0; i < C; i++) h[i] += o[i];
        for (int i = 0; i < S; i++) skip[i] += o[C + i];
    }
    for (int i = 0; i < S; i++) skip[i] = skip[i] > 0.0f ? skip[i] : 0.0f;
    affine(skip, S, w_1, b_1, S, hidden);
    for (int i = 0; i < S; i++) hidden[i] = hidden[i] > 0.0f ? hidden[i] : 0.0f;
    affine(hidden, S, w_2, b_2, O, out);
}

int wavenet_generate(int B, int T, int L, int C, int G, int S, int O, int mixtures,
                     const float *embed, const float *w_in, const float *b_in,
                     const float *w_z, const float *b_z, const float *w_o, const float *b_o,
                     const float *w_1, const float *b_1, const float *w_2, const float *b_2,
                     const int64_t *dilations, float *queue, float *prev_embed,
                     int64_t *prev_code, const float *u, float temperature, int64_t *codes,
                     int t0, int t1, int forced, float *outputs, int guided, float guidance) {
    if (2 * C > MAX_WIDTH || 2 * G > MAX_WIDTH || C + S > MAX_WIDTH || O > MAX_WIDTH) return 1;
    if (guided && (B % 2 || mixtures || forced)) return 1;
    int64_t *starts = malloc(sizeof(int64_t) * L);
    float *step_out = malloc(sizeof(float) * (size_t)B * O);  /* every stream's outputs at t */
    if (!starts || !step_out) { free(starts); free(step_out); return 1; }
    for (int l = 0, s = 0; l < L; l++) { starts[l] = s; s += dilations[l]; }
    const int drawn = guided ? B / 2 : B;  /* streams that draw their own code */

    for (int t = t0; t < t1 && t < T; t++) {
        for (int b = 0; b < B; b++) {
            float *out = step_out + (size_t)b * O;
            forward_stream(b, t, B, L, C, G, S, O, embed, w_in, b_in, w_z, b_z, w_o, b_o,
                           w_1, b_1, w_2, b_2, dilations, starts, queue, prev_embed, prev_code,
                           out);
            if (outputs) memcpy(outputs + ((size_t)b * T + t) * O, out, sizeof(float) * O);
        }
        for (int b = 0; b < drawn; b++) {
            float *out = step_out + (size_t)b * O;
            if (guided) {
                const float *free_out = step_out + (size_t)(b + drawn) * O;
                for (int i = 0; i < O; i++) out[i] = free_out[i] + guidance * (out[i] - free_out[i]);
            }
            const float *ub = u + ((size_t)b * T + t) * 2;
            int64_t code;
            if (forced) code = codes[(size_t)b * T + t];
            else if (mixtures) code = draw_logistic(out, mixtures, temperature, ub);
            else code = draw_softmax(out, O, temperature, ub[0]);
            codes[(size_t)b * T + t] = code;
            prev_code[b] = code;
            if (guided) { codes[(size_t)(b + drawn) * T + t] = code; prev_code[b + drawn] = code; }
        }
    }
    free(starts);
    free(step_out);
    return 0;
}
