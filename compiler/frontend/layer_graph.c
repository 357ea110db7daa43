/*
 * layer_graph.c: the reference's two graph layers over a DAG, expanded into graph-IR ops
 * around one plstm_scan (spec plstm.md §1.2, §2.4 "Graph layers", §4.3, §8 items 6, 7, 10):
 *
 *   plstm_graph       pLSTMGraphLayer: node-wise gates with max_edges slots per node
 *   plstm_graph_edge  pLSTMGraphEdgeLayer: gates from node and edge features
 *
 * Both read x [B, N, D] (the edge layer also its "edge_input" [B, E, EF]) and write
 * [B, N, D]: q, k, v projections per head, sigmoid source, mark and direct gates, the
 * transitions normalised (P mode) or through tanh (D mode), the scan on the layer's DAG
 * (reversed and/or with its line graph pruned to a multitree) with q.k unscaled, per-head
 * RMSNorm and the output projection. Weights are named as the reference's state_dict names
 * them behind the layer's prefix (docs/layers.md, "The graph layers").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_build.h"

typedef struct graph_opts {
  bool mode_d;
  int64_t H, DK, DV;
  int64_t max_edges;   /* node layer: slots per node */
  bool bias;           /* q, k, v and out biases */
  bool norm, norm_scale;
  double norm_eps;
  bool out;
  bool reverse, multitree;
} graph_opts;

typedef struct glay {
  fe_lb b;
  bool edge;           /* plstm_graph_edge */
  graph_opts o;
  int64_t B, N, D;
  int feat;            /* the edge layer's edge features [B, E, EF] */
  int64_t EF;
  int graph;           /* the module graph the layer runs on */
  int64_t NE, NA;      /* its edges and arcs */
} glay;

#define GFAIL(ly, code, path, ...) LB_FAIL(&(ly)->b, code, path, __VA_ARGS__)

/* ------------------------------------------------------------------ options */

/* The largest in- or out-degree of graph 0 (a reversal swaps them, pruning keeps them),
 * with a node that has it. */
static int64_t max_degree(const ir_dag *d, int64_t *node, bool *incoming)
{
  int64_t *in = calloc((size_t)d->n_nodes + 1, sizeof *in);
  int64_t *out = calloc((size_t)d->n_nodes + 1, sizeof *out);
  int64_t best = -1;
  if (in && out) {
    best = 0;
    *node = 0;
    *incoming = true;
    for (int64_t e = 0; e < d->n_edges; e++) {
      in[d->head[e]]++;
      out[d->tail[e]]++;
    }
    for (int64_t v = 0; v < d->n_nodes; v++)
      for (int k = 0; k < 2; k++) {
        int64_t deg = k ? out[v] : in[v];
        if (deg > best) {
          best = deg;
          *node = v;
          *incoming = k == 0;
        }
      }
  }
  free(in);
  free(out);
  return best;
}

static int check_max_edges(glay *ly)
{
  const ir_dag *d = &ly->b.fc->m->graphs[0].dag;
  int64_t node = 0;
  bool incoming = true;
  int64_t deg = max_degree(d, &node, &incoming);
  if (deg < 0)
    return lb_nomem(&ly->b);
  if (deg <= ly->o.max_edges)
    return XY_OK;
  int64_t g = 0; /* the graph of the file the node is in, and its id there */
  while (g + 1 < d->n_graphs && d->node_start[g + 1] <= node)
    g++;
  char p[FE_PATH_MAX];
  fe_path_key(p, ly->b.lp, "max_edges");
  const char *file = ly->b.fc->m->graphs[0].file;
  return GFAIL(ly, XY_E_SPEC, p, "max_edges %lld is less than the graph's largest degree: "
               "node %lld of graph %lld in %s has %lld %s-edges (each edge takes a slot at "
               "both of its nodes, so max_edges must be at least %lld)",
               (long long)ly->o.max_edges, (long long)(node - d->node_start[g]), (long long)g,
               file ? file : "the graph file", (long long)deg, incoming ? "in" : "out",
               (long long)deg);
}

/* "edge_input": the name of a tensor [batch, edges, EF]. */
static int read_edge_input(glay *ly)
{
  const ir_module *m = ly->b.fc->m;
  char p[FE_PATH_MAX];
  fe_path_key(p, ly->b.lp, "edge_input");
  json_t *v = json_object_get(ly->b.l, "edge_input");
  if (!v)
    return GFAIL(ly, XY_E_SPEC, ly->b.lp, "plstm_graph_edge needs \"edge_input\": the name of "
                 "the edge features [batch, edges, edge_dim]");
  if (!json_is_string(v))
    return GFAIL(ly, XY_E_SPEC, p, "must be a tensor name (a string), not %s", fe_json_kind(v));
  ly->feat = ir_find_tensor(m, json_string_value(v));
  if (ly->feat < 0)
    return GFAIL(ly, XY_E_SPEC, p, "unknown tensor '%.64s'", json_string_value(v));
  const ir_shape *s = &m->tensors[ly->feat].shape;
  int64_t E = m->graphs[0].dag.n_edges;
  if (s->rank != 3 || s->d[0] != m->batch || s->d[1] != E || s->d[2] < 1) {
    xy_buf b;
    xy_buf_init(&b);
    ir_shape_print(s, &b);
    int rc = GFAIL(ly, XY_E_SHAPE, p, "edge features '%s' have shape %s; the layer reads "
                   "[batch %lld, edges %lld, edge_dim]", json_string_value(v),
                   b.data && !b.failed ? b.data : "?", (long long)m->batch, (long long)E);
    xy_buf_free(&b);
    return rc;
  }
  ly->EF = s->d[2];
  return XY_OK;
}

static int read_opts(glay *ly)
{
  static const char *const node_keys[] = {
    "op", "name", "input", "output", "weights", "heads", "mode", "qk_head_dim", "hv_head_dim",
    "max_edges", "bias", "norm", "out", "reverse", "line_graph"};
  static const char *const edge_keys[] = {
    "op", "name", "input", "output", "weights", "heads", "mode", "qk_head_dim", "hv_head_dim",
    "edge_input", "bias", "norm", "out", "reverse", "line_graph"};
  static const char *const modes[] = {"P", "D"}, *const lines[] = {"full", "multitree"};
  graph_opts *o = &ly->o;
  const json_t *l = ly->b.l;
  const char *lp = ly->b.lp;
  const fe_src *src = ly->b.fc->src;
  /* the reference's defaults: pLSTMGraphLayerConfig (bias false); the edge layer's
   * projections always have biases whatever its config says */
  *o = (graph_opts){.H = 1, .bias = ly->edge, .norm = true, .norm_scale = true,
                    .norm_eps = 1e-5, .out = true};
  int mode = 0, line = -1, rc;
  if ((rc = ly->edge ? fe_check_keys(ly->b.fc->err, XY_E_SPEC, src, l, lp, edge_keys,
                                     XY_ARRAY_LEN(edge_keys))
                     : fe_check_keys(ly->b.fc->err, XY_E_SPEC, src, l, lp, node_keys,
                                     XY_ARRAY_LEN(node_keys))) ||
      (rc = lb_opt_int(&ly->b, l, lp, "heads", 1, &o->H)) ||
      (rc = lb_opt_enum(&ly->b, l, lp, "mode", modes, 2, &mode)))
    return rc;
  o->mode_d = mode == 1;
  o->DK = o->DV = ly->D / o->H;
  if ((rc = lb_opt_int(&ly->b, l, lp, "qk_head_dim", 1, &o->DK)) ||
      (rc = lb_opt_int(&ly->b, l, lp, "hv_head_dim", 1, &o->DV)) ||
      (!ly->edge && (rc = lb_opt_int(&ly->b, l, lp, "max_edges", 1, &o->max_edges))) ||
      (rc = lb_opt_bool(&ly->b, l, lp, "bias", &o->bias)) ||
      (rc = lb_read_norm(&ly->b, true, &o->norm, &o->norm_eps, &o->norm_scale)) ||
      (rc = lb_opt_bool(&ly->b, l, lp, "out", &o->out)) ||
      (rc = lb_opt_bool(&ly->b, l, lp, "reverse", &o->reverse)) ||
      (rc = lb_opt_enum(&ly->b, l, lp, "line_graph", lines, 2, &line)))
    return rc;
  o->multitree = line < 0 ? o->mode_d : line == 1; /* P: the full line graph, D: pruned */
  if (o->DK < 1 || o->DV < 1)
    return GFAIL(ly, XY_E_SPEC, lp, "dim %lld is too small for %lld heads (head dims 0); give "
                 "qk_head_dim and hv_head_dim", (long long)ly->D, (long long)o->H);
  if (!o->out && o->H * o->DV != ly->D)
    return GFAIL(ly, XY_E_SPEC, lp, "without the output projection, heads*hv_head_dim = "
                 "%lld*%lld = %lld must equal dim %lld", (long long)o->H, (long long)o->DV,
                 (long long)(o->H * o->DV), (long long)ly->D);
  if (!ly->edge) {
    int64_t he, hee;
    if (o->max_edges < 1)
      return GFAIL(ly, XY_E_SPEC, lp, "plstm_graph needs \"max_edges\": the slots per node, at "
                   "least the graph's largest in- or out-degree");
    if (!xy_mul_i64(o->H, o->max_edges, &he) || !xy_mul_i64(he, o->max_edges, &hee) ||
        hee > INT32_MAX)
      return GFAIL(ly, XY_E_LIMIT, lp, "heads x max_edges^2 = %lld x %lld^2 transitions per "
                   "node are too many", (long long)o->H, (long long)o->max_edges);
    if ((rc = check_max_edges(ly)))
      return rc;
  } else if ((rc = read_edge_input(ly))) {
    return rc;
  }
  return XY_OK;
}

/* ------------------------------------------------------------------ pieces */

/* An op on the layer's DAG: lb_op_begin with the graph set before the shapes are inferred. */
static int graph_op(glay *ly, ir_opcode code, const char *what, const int *ins, int n,
                    const ir_op_attrs *attr, int *out)
{
  int oi, rc;
  if ((rc = lb_op_begin(&ly->b, code, what, ins, n, &oi)))
    return rc;
  ir_op *op = &ly->b.fc->m->ops[oi];
  op->graph = ly->graph;
  if (attr)
    op->attr = *attr;
  return lb_op_end(&ly->b, oi, what, false, out);
}

static int gather(glay *ly, const char *what, int x, ir_gather_map map, int *out)
{
  ir_op_attrs a = {.gather = {map, ly->o.H, ly->o.max_edges}};
  return graph_op(ly, IR_OP_GRAPH_GATHER, what, &x, 1, &a, out);
}

/* nn.Linear(in, out, bias): weight [out, in] (+-1/sqrt(in)), bias [out] in [blo, bhi). */
static int dense(glay *ly, const char *ref, int x, int64_t in, int64_t outs, bool bias,
                 double blo, double bhi, int *out)
{
  char wname[128], bname[128];
  snprintf(wname, sizeof wname, "%s.weight", ref);
  snprintf(bname, sizeof bname, "%s.bias", ref);
  int64_t ws[] = {outs, in}, bs[] = {outs};
  double r = 1.0 / sqrt((double)in);
  int w, b = -1, rc;
  if ((rc = lb_weight(&ly->b, wname, 2, ws, -r, r, &w)) ||
      (bias && (rc = lb_weight(&ly->b, bname, 1, bs, blo, bhi, &b))))
    return rc;
  return lb_linear(&ly->b, ref, x, w, b, 1, 1, outs, IR_W_GFSC, 1.0, false, out);
}

/* [B, P, H*F] (head-major) -> [B*H, P, f_dims...], the scan's batch of heads. */
static int to_heads(glay *ly, const char *what, int x, int64_t P, int64_t F, const int64_t *f,
                    int nf, int *out)
{
  int64_t H = ly->o.H, to[IR_MAX_RANK] = {ly->B * H, P};
  for (int i = 0; i < nf; i++)
    to[2 + i] = f[i];
  int t = x, rc;
  if (H > 1) {
    char tw[128];
    int64_t view[] = {ly->B, P, H, F};
    int perm[] = {0, 2, 1, 3};
    snprintf(tw, sizeof tw, "%s_t", what);
    if ((rc = lb_transpose(&ly->b, tw, x, 4, view, perm, &t)))
      return rc;
  }
  return lb_reshape(&ly->b, what, t, 2 + nf, to, out);
}

static int sigmoid(glay *ly, const char *what, int x, int *out)
{
  return lb_activation(&ly->b, what, x, IR_ACT_SIGMOID, 0.0, out);
}

/* D mode: tanh(t); P mode: graph_pnorm (node rows, or arcs by outgoing edge). */
static int bound_transition(glay *ly, int t, int *out)
{
  if (ly->o.mode_d)
    return lb_activation(&ly->b, "transition_tanh", t, IR_ACT_TANH_GAIN, 1.0, out);
  ir_op_attrs a = {.pnorm = {ly->edge, ly->edge ? 0 : ly->o.H, ly->edge ? 0 : ly->o.max_edges,
                             0.5}};
  return graph_op(ly, IR_OP_GRAPH_PNORM, "transition_norm", &t, 1, &a, out);
}

/* ------------------------------------------------------------------ gates */

typedef struct gates {
  int S, T, M, D;      /* [B, E or A or N, H] */
} gates;

/* Node-wise gates: [N, H*E] slots gathered per edge (the swapped convention of spec
 * plstm.md §8 item 6), transitions [N, H*E*E] per arc. Sigmoids follow the gathers, which
 * leaves fewer values to them. */
static int node_gates(glay *ly, gates *g)
{
  const graph_opts *o = &ly->o;
  int64_t H = o->H, E = o->max_edges, D = ly->D;
  int x = ly->b.x, s, m, d, t, rc;
  /* random gates fairly open; the reference's init (-5) closes them */
  if ((rc = dense(ly, "source", x, D, H * E, true, -2.0, 1.0, &s)) ||
      (rc = gather(ly, "source_edges", s, IR_GATHER_SOURCE_SLOT, &s)) ||
      (rc = sigmoid(ly, "S", s, &g->S)) ||
      (rc = dense(ly, "transition", x, D, H * E * E, true, -1.0, 1.0, &t)) ||
      (rc = bound_transition(ly, t, &t)) ||
      (rc = gather(ly, "transition_arcs", t, IR_GATHER_TRANSITION_SLOTS, &g->T)) ||
      (rc = dense(ly, "mark", x, D, H * E, true, -2.0, 1.0, &m)) ||
      (rc = gather(ly, "mark_edges", m, IR_GATHER_MARK_SLOT, &m)) ||
      (rc = sigmoid(ly, "M", m, &g->M)) ||
      (rc = dense(ly, "direct", x, D, H, true, -2.0, 1.0, &d)) ||
      (rc = sigmoid(ly, "D", d, &g->D)))
    return rc;
  return XY_OK;
}

/* Gates of the edge layer: S from [x_tail; e], M from [x_head; e], T per arc p->e from
 * [e_p; e_e; x_tail(p)] (the reference's ldag_edge_nodeidx: the tail of the incoming edge),
 * D from x. */
static int edge_gates(glay *ly, gates *g)
{
  int64_t H = ly->o.H, D = ly->D, EF = ly->EF;
  int x = ly->b.x, f = ly->feat, xt, xh, fp, fe, xn, s, m, t, d, rc;
  int ins_s[2], ins_m[2], ins_t[3];
  if ((rc = gather(ly, "x_tail", x, IR_GATHER_EDGE_TAIL, &xt)) ||
      (rc = gather(ly, "x_head", x, IR_GATHER_EDGE_HEAD, &xh)))
    return rc;
  ins_s[0] = xt, ins_s[1] = f, ins_m[0] = xh, ins_m[1] = f;
  if ((rc = graph_op(ly, IR_OP_CONCAT, "source_in", ins_s, 2, NULL, &s)) ||
      (rc = dense(ly, "source", s, D + EF, H, true, -2.0, 1.0, &s)) ||
      (rc = sigmoid(ly, "S", s, &g->S)) ||
      (rc = gather(ly, "e_in", f, IR_GATHER_ARC_SRC, &fp)) ||
      (rc = gather(ly, "e_out", f, IR_GATHER_ARC_DST, &fe)) ||
      (rc = gather(ly, "x_arc", x, IR_GATHER_ARC_SRC_TAIL, &xn)))
    return rc;
  ins_t[0] = fp, ins_t[1] = fe, ins_t[2] = xn;
  if ((rc = graph_op(ly, IR_OP_CONCAT, "transition_in", ins_t, 3, NULL, &t)) ||
      (rc = dense(ly, "transition", t, 2 * EF + D, H, true, -1.0, 1.0, &t)) ||
      (rc = bound_transition(ly, t, &g->T)) ||
      (rc = graph_op(ly, IR_OP_CONCAT, "mark_in", ins_m, 2, NULL, &m)) ||
      (rc = dense(ly, "mark", m, D + EF, H, true, -2.0, 1.0, &m)) ||
      (rc = sigmoid(ly, "M", m, &g->M)) ||
      (rc = dense(ly, "direct", x, D, H, true, -2.0, 1.0, &d)) ||
      (rc = sigmoid(ly, "D", d, &g->D)))
    return rc;
  return XY_OK;
}

/* ------------------------------------------------------------------ the layer */

/* The scan's out [B*H, N, DV, 1] back to [B, N, H*DV], then norm and output projection;
 * the last op writes the layer's output. */
static int finish(glay *ly, int y)
{
  const graph_opts *o = &ly->o;
  int64_t H = o->H, F = o->DV, flat[] = {ly->B, ly->N, H * F};
  int rc;
  if (H > 1) {
    int64_t view[] = {ly->B, H, ly->N, F};
    int perm[] = {0, 2, 1, 3};
    if ((rc = lb_transpose(&ly->b, "heads_t", y, 4, view, perm, &y)))
      return rc;
  }
  int oi;
  if ((rc = lb_op_begin(&ly->b, IR_OP_RESHAPE, "heads", &y, 1, &oi)))
    return rc;
  ly->b.fc->m->ops[oi].attr.reshape = ir_shape_make(3, flat);
  if ((rc = lb_op_end(&ly->b, oi, "heads", !o->norm && !o->out, &y)))
    return rc;
  if (o->norm) {
    /* the reference's MultiHeadRMSNorm: scale [H, input_dim / H], which it can only apply
     * when hv_head_dim = input_dim / H; [H, hv_head_dim] is the same weight then */
    int64_t ss[] = {H, F};
    int s = -1;
    if ((o->norm_scale && (rc = lb_weight(&ly->b, "mhnorm.scale", 2, ss, 0.5, 1.5, &s))) ||
        (rc = lb_norm(&ly->b, "norm", y, s, (ir_norm_attrs){H, o->norm_eps, false}, !o->out,
                      &y)))
      return rc;
  }
  if (o->out) {
    int64_t ws[] = {ly->D, H * F}, bs[] = {ly->D};
    double r = 1.0 / sqrt((double)(H * F));
    int w, b = -1;
    if ((rc = lb_weight(&ly->b, "out.weight", 2, ws, -r, r, &w)) ||
        (o->bias && (rc = lb_weight(&ly->b, "out.bias", 1, bs, -0.1, 0.1, &b))) ||
        (rc = lb_linear(&ly->b, "out", y, w, b, 1, 1, ly->D, IR_W_GFSC, 1.0, true, &y)))
      return rc;
  }
  return XY_OK;
}

static int expand(glay *ly)
{
  const graph_opts *o = &ly->o;
  int64_t H = o->H, D = ly->D, N = ly->N;
  int x = ly->b.x, q, k, v, rc;
  gates g;
  if ((rc = dense(ly, "query", x, D, H * o->DK, o->bias, -0.1, 0.1, &q)) ||
      (rc = dense(ly, "key", x, D, H * o->DK, o->bias, -0.1, 0.1, &k)) ||
      (rc = dense(ly, "value_", x, D, H * o->DV, o->bias, -0.1, 0.1, &v)) ||
      (rc = ly->edge ? edge_gates(ly, &g) : node_gates(ly, &g)))
    return rc;
  int64_t fk[] = {o->DK, 1}, fv[] = {o->DV, 1}, fs[] = {1, 1, 1}, ft[] = {1, 1},
          fd[] = {1, 1, 1, 1};
  int qh, kh, vh, Sh, Th, Mh, Dh;
  if ((rc = to_heads(ly, "q_h", q, N, o->DK, fk, 2, &qh)) ||
      (rc = to_heads(ly, "k_h", k, N, o->DK, fk, 2, &kh)) ||
      (rc = to_heads(ly, "v_h", v, N, o->DV, fv, 2, &vh)) ||
      (rc = to_heads(ly, "S_h", g.S, ly->NE, 1, fs, 3, &Sh)) ||
      (rc = to_heads(ly, "T_h", g.T, ly->NA, 1, ft, 2, &Th)) ||
      (rc = to_heads(ly, "M_h", g.M, ly->NE, 1, fs, 3, &Mh)) ||
      (rc = to_heads(ly, "D_h", g.D, N, 1, fd, 4, &Dh)))
    return rc;
  int ins[] = {qh, kh, vh, Sh, Th, Mh, Dh, -1}, oi, y;
  if ((rc = lb_op_begin(&ly->b, IR_OP_PLSTM_SCAN, "scan", ins, 8, &oi)))
    return rc;
  ly->b.fc->m->ops[oi].graph = ly->graph;
  ly->b.fc->m->ops[oi].qk_scale = 1.0; /* the graph code does not scale q.k (§8 item 10) */
  if ((rc = lb_op_end(&ly->b, oi, "scan", false, &y)))
    return rc;
  return finish(ly, y);
}

/* The layer's DAG: graph 0 reversed and/or with its line graph pruned, as the layer asks. */
static int pick_graph(glay *ly)
{
  ir_module *m = ly->b.fc->m;
  xy_error e;
  int rc = fe_dag_variant(m, 0, ly->o.reverse, ly->o.multitree, &ly->graph, &e);
  if (rc) {
    char p[FE_PATH_MAX];
    fe_path_key(p, ly->b.lp, json_object_get(ly->b.l, "line_graph") ? "line_graph" : "mode");
    return GFAIL(ly, rc, ly->o.multitree ? p : ly->b.lp, "%s", e.message);
  }
  const ir_dag *d = &m->graphs[ly->graph].dag;
  ly->NE = d->n_edges;
  ly->NA = d->n_arcs;
  return XY_OK;
}

int fe_expand_graph_layer(fe_layer_ctx *fc, const json_t *l, const char *lp, const char *op,
                          const char *name)
{
  glay ly = {.edge = strcmp(op, "plstm_graph_edge") == 0, .feat = -1};
  int rc = lb_open_kind(&ly.b, fc, l, lp, op, name, IR_GRAPH_DAG);
  if (rc)
    return rc;
  const ir_shape *xs = &fc->m->tensors[ly.b.x].shape;
  ly.B = xs->d[0];
  ly.N = xs->d[1];
  ly.D = xs->d[2];
  if ((rc = read_opts(&ly)) || (rc = pick_graph(&ly)) || (rc = expand(&ly)))
    return rc;
  if (fc->m->tensors[ly.b.out_id].producer < 0)
    return xy_fail(fc->err, XY_E_INTERNAL, "layer '%s' left its output unset", name);
  return XY_OK;
}
