/* memory_oracle.h: the float64 token loop that defines what a test-time memory module
 * computes (spec tnt.md §7.1): Titans (momentum, decay), TNT's global and local modules and
 * plain online gradient descent, with a linear or two-layer MLP memory. A TNT layer is the
 * sum of its modules' outputs (§7.3). Written for clarity, not speed. */
#ifndef XY_MEMORY_ORACLE_H
#define XY_MEMORY_ORACLE_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

typedef enum mem_read {
  MEM_READ_INCLUSIVE,   /* y_t = f(x_t; W[t+1]): the state after token t */
  MEM_READ_CHUNK_START, /* y_t = f(x_t; W[s(t)]): the chunk's anchor */
  MEM_READ_EXCLUSIVE    /* y_t = f(x_t; W[t]): the state before token t */
} mem_read;

typedef enum mem_qkproj {
  MEM_QK_NONE,          /* x_t = q_t */
  MEM_QK_SHARD,         /* x_t = P q_t, P = sum of k k^T / k.k since the shard began */
  MEM_QK_CHUNK          /* the same since the chunk began */
} mem_qkproj;

typedef enum mem_act { MEM_ACT_GELU_TANH, MEM_ACT_SILU } mem_act;

typedef struct mem_desc {
  int64_t dk, dv;
  int64_t dh;           /* 0: linear memory f(x) = W x, W [dv][dk]; else the MLP
                         * f(x) = W2 act(W1 x), W1 [dh][dk] then W2 [dv][dh] */
  mem_act act;
  double loss_scale;    /* c in the loss c |f(k) - v|^2 */
  int64_t chunk;        /* C >= 1: gradients of a chunk's tokens are taken at its anchor */
  int64_t reset;        /* S: the state returns to its initial value every S tokens (0: never);
                         * a multiple of C */
  mem_read read;
  mem_qkproj qkproj;
  bool momentum;        /* Mom = eta_t Mom - theta_t g; else Mom = -theta_t g */
  bool decay;           /* W = (1 - alpha_t) W + Mom; else W = W + Mom */
  bool bias;            /* f adds biases: W x + b (MLP: b1 inside, b2 outside) */
  bool ln_residual;     /* TTT's wrapper x + gamma * LN(f(x)) + beta (needs dk = dv) */
  double ln_eps;
  /* TTT's learning-rate matrix per chunk (spec §3.2): token s+i reads W_i = A - sum_{j<=i}
   * eta_ij g_j, eta_ij = base max(0, 1/(i+1) + offset[i]) theta_{s+j} / div; the state
   * moves to W_{n-1}. Momentum, decay, resets, Q-K projection and other reads are off. */
  bool ttt_lr;
  double ttt_base, ttt_div;
  const double *ttt_offset; /* [chunk] */
} mem_desc;

/* Per-token streams: q, k [L][dk], v [L][dv]; theta, eta, alpha [L] (eta only with
 * momentum, alpha only with decay; otherwise they may be NULL). */
typedef struct mem_streams {
  const double *q, *k, *v;
  const double *theta, *eta, *alpha;
  const double *ln_gamma, *ln_beta; /* [dv], with ln_residual */
} mem_streams;

/* Doubles in one copy of the memory's weights: W (or W1 then W2), then the biases (b, or
 * b1 then b2). */
int64_t mem_weights_count(const mem_desc *d);

/* The streaming state of one sequence, flat, so that a long sequence can be processed in
 * pieces: W [nw] (the current weights), A [nw] (the anchor: the weights at the start of the
 * current chunk), then Mom [nw] with momentum (with the TTT learning-rate matrix: the
 * chunk's running sum of theta_j g_j), then P [dk][dk] with a Q-K projection, then the
 * phase: the tokens seen since the current shard began (with resets) or since the current
 * chunk began (without). At phase 0 a module with resets starts a new shard, so its W, Mom
 * and P are not read. Offsets are -1 for absent parts. */
typedef struct mem_state_layout {
  int64_t w, anchor, mom, p, phase, count;
} mem_state_layout;

void mem_state_layout_of(const mem_desc *d, mem_state_layout *lay);

/* A fresh state: W = A = w_init, Mom = P = 0, phase 0. */
void mem_state_init(const mem_desc *d, const double *w_init, double *state);

/* Runs L tokens: y [L][dv]. state (mem_state_layout_of) holds the state entering token 0
 * and receives the state after the last token; NULL starts fresh from w_init. Fails
 * (XY_E_USAGE) on a malformed description or a phase that is not an integer in
 * [0, reset or chunk). */
int mem_oracle_run(const mem_desc *d, int64_t L, const mem_streams *s, const double *w_init,
                   double *state, double *y, xy_error *err);

#endif /* XY_MEMORY_ORACLE_H */
