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

/* The state after the last token; each pointer may be NULL: the weights and the momentum
 * (laid out like the weights) and the Q-K accumulator P [dk][dk]. */
typedef struct mem_final {
  double *w, *mom, *p;
} mem_final;

/* Runs L tokens from the weights w_init: y [L][dv]; the final state into fin when it is not
 * NULL. Fails (XY_E_USAGE) on a malformed description. */
int mem_oracle_run(const mem_desc *d, int64_t L, const mem_streams *s, const double *w_init,
                   double *y, const mem_final *fin, xy_error *err);

#endif /* XY_MEMORY_ORACLE_H */
