/*
 * fe_internal.h: what the front end's files share and nobody else needs: JSON paths,
 * positions in JSON text, error messages that show the source line, and the steps of
 * loading (parsing, overrides, DAG building) that fe_load_spec and fe_load_dag combine.
 */
#ifndef XY_FE_INTERNAL_H
#define XY_FE_INTERNAL_H

#include <jansson.h>
#include <stdarg.h>

#include "frontend.h"

/* Longest JSON path kept for messages; longer ones are cut (only a message suffers). */
#define FE_PATH_MAX 512

/* One step of a JSON path: a key ("inputs") or an index ([3]). */
typedef struct fe_comp {
  bool is_index;
  const char *key; /* not NUL-terminated: key_len bytes */
  size_t key_len;
  int64_t index;
} fe_comp;

/* Reads the next step of path (starting at *p, which moves on). A key follows a '.' except
 * at the start; keys hold no '.', '[' or ']'. Returns 1 for a step, 0 at the end, -1 when
 * the path is malformed. */
int fe_path_next(const char *path, const char **p, fe_comp *c);

/* Byte offset of the value at path in JSON text (or of its key when at_key and the last
 * step is a key); false when not found. */
bool fe_json_find(const char *text, const char *path, bool at_key, size_t *offset);

/* 1-based line and column (in characters) of a byte offset. */
void fe_linecol(const char *text, size_t offset, int *line, int *col);

/* Where the last lookups ended, so that finding inputs[0], inputs[1], ... and their lines
 * in turn costs one pass over the text, not one pass per element. */
typedef struct fe_pos_cache {
  bool valid;
  char array[FE_PATH_MAX]; /* the path up to its first index: "inputs" */
  int64_t index;           /* the element of that array found last */
  size_t offset;           /* where it starts */
  bool lc_valid;
  size_t lc_offset;        /* the offset whose line and column were computed last */
  int lc_line, lc_col;
} fe_pos_cache;

/* fe_json_find (value, not key) and fe_linecol, resuming from the cache when the request
 * lies at or after the previous one. */
bool fe_json_find_cached(const char *text, const char *path, fe_pos_cache *cache,
                         size_t *offset);
void fe_linecol_cached(const char *text, size_t offset, fe_pos_cache *cache, int *line,
                       int *col);

/* The path of the innermost value open at byte offset end, for parse errors ("b[2]"). */
void fe_json_path_at(const char *text, size_t end, xy_buf *out);

/* Appends ".key" (or "key" at the root) or "[i]" to a path in a FE_PATH_MAX buffer. */
void fe_path_key(char *out, const char *parent, const char *key);
void fe_path_index(char *out, const char *parent, int64_t index);

/* Byte offset of the value at key (any text, '.' and '[' included) in the object that
 * starts at byte obj of text (or of the key itself when at_key); false when not found. */
bool fe_json_find_member(const char *text, size_t obj, const char *key, bool at_key,
                         size_t *offset);

/* One change made to a spec's JSON before it is read: a --set override, or an entry of the
 * stage chosen with --stage. */
typedef struct fe_change {
  char *text;    /* as shown: "PATH=VALUE" for an override, PATH for a stage entry */
  char *path;    /* PATH in canonical form */
  size_t at;     /* a stage entry: byte offset of its value in the spec; else FE_NOT_IN_TEXT */
} fe_change;

#define FE_NOT_IN_TEXT SIZE_MAX

/* The changes in the order applied, a later one winning where they overlap: the stage's
 * entries first, then the overrides. */
typedef struct fe_changes {
  fe_change *v;
  size_t n, cap;
  const char *stage;           /* the stage applied (for messages), or NULL */
} fe_changes;

void fe_changes_free(fe_changes *ch);

/* A JSON text errors point into, with changes applied on top of it. */
typedef struct fe_src {
  const char *file;            /* as shown in messages */
  const char *text;            /* NUL-terminated */
  const fe_changes *changes;   /* NULL: none */
  fe_pos_cache *cache;         /* for fe_src_pos; NULL: none */
} fe_src;

/* Fills err with "FILE:LINE:COL: PATH: cause", the source line and a caret under the
 * column, and returns code. A path the text lacks is shown at its closest enclosing value;
 * a value an override set is named as such instead of getting a line, and one a stage set
 * is shown at the stage's entry. */
int fe_fail_at(xy_error *err, int code, const fe_src *src, const char *path,
               const char *fmt, ...) XY_PRINTF(5, 6);
/* The same with the caret under the key of the last step (unknown keys). */
int fe_fail_key(xy_error *err, int code, const fe_src *src, const char *path,
                const char *fmt, ...) XY_PRINTF(5, 6);

/* The same at a byte offset of src's text, with path only shown. */
int fe_fail_at_offset(xy_error *err, int code, const fe_src *src, size_t offset,
                      const char *path, const char *fmt, ...) XY_PRINTF(6, 7);

/* Where path points in src: line and column (a stage entry's, when a stage set it), or
 * 0, 0 when unknown or overridden. */
void fe_src_pos(const fe_src *src, const char *path, int *line, int *col);

/* Parses JSON text (duplicate keys rejected); errors name file, line, column and path. */
int fe_parse_json(const char *file, const char *text, size_t len, json_t **out, xy_error *err);

/* Whether s is an identifier: [A-Za-z_][A-Za-z0-9_]* (names in specs). */
bool fe_is_ident(const char *s);

/* "an integer", "a string", ... for messages. */
const char *fe_json_kind(const json_t *v);

/* Fails with code on the first key of obj not in allowed[0..n). */
int fe_check_keys(xy_error *err, int code, const fe_src *src, const json_t *obj,
                  const char *path, const char *const *allowed, size_t n);

/* Sets the value at path (keys and [index]) in root, taking value's reference either way.
 * *canon gets path's canonical form. Fails with XY_E_USAGE (bad path, or one through a
 * missing key or element) or XY_E_NOMEM; why (why_len bytes) gets the cause. */
int fe_set_path(json_t *root, const char *path, json_t *value, char **canon, char *why,
                size_t why_len);

/* Appends a change (copies text, takes canon); false when memory runs out (canon freed). */
bool fe_changes_add(fe_changes *ch, const char *text, char *canon, size_t at);

/* Applies "PATH=VALUE" overrides to root, appending them to ch. Errors are XY_E_USAGE and
 * name file and override. */
int fe_apply_overrides(json_t *root, const char *file, const char *const *ov, size_t n,
                       fe_changes *ch, xy_error *err);

/* The spec's "stages" (stages.c): an object of stages, each an object of override paths
 * -> JSON values. fe_check_stages checks that form (the paths' syntax included);
 * fe_apply_stage applies stage name's entries to root, appending them to ch. An unknown
 * stage is XY_E_USAGE listing those the spec defines; an entry that cannot be applied is
 * XY_E_SPEC at the entry. */
int fe_check_stages(const fe_src *src, const json_t *root, xy_error *err);
int fe_apply_stage(json_t *root, const fe_src *src, const char *name, fe_changes *ch,
                   xy_error *err);

/* Builds and validates a DAG from a graph file's text (file names it in messages). */
int fe_dag_from_text(const char *file, const char *text, size_t len, const xy_limits *limits,
                     ir_dag *dag, xy_error *err);

/* The same, dagify saying whether directed graphs are oriented by node id as the
 * reference's dagify does (undirected ones always are). The DAG comes with its slots,
 * networkx edge order and features; .npy feature files are relative to file. */
int fe_dag_read(const char *file, const char *text, size_t len, const xy_limits *limits,
                bool dagify, ir_dag *dag, xy_error *err);

/* The graph file's node_features and edge_features (dag_features.c) into d, whose counts
 * are read: root is the file's JSON, graphs its "graphs" list (NULL: root is the graph). */
int fe_dag_read_features(const fe_src *src, const json_t *root, const json_t *graphs,
                         const xy_limits *limits, ir_dag *d, xy_error *err);

/* Fills d's out_slot and in_slot from its networkx orders (dag_variant.c); d is the
 * reversed DAG when reversed. file names it in messages. */
int fe_dag_slots(ir_dag *d, bool reversed, const char *file, xy_error *err);

/* The DAG base (reversed when base_reversed) reversed again when reverse, with its line
 * graph pruned to a multitree when multitree, into *out: same ids, features and edge
 * order, new orientation, arcs and slots (dag_variant.c). Listed arcs cannot be pruned
 * (an XY_E_GRAPH error); reversed, they run the other way in their order. */
int fe_dag_derive(const ir_dag *base, bool base_reversed, bool reverse, bool multitree,
                  const char *file, ir_dag *out, xy_error *err);

/* The module graph that is DAG graph base reversed (relative to base's orientation) and/or
 * pruned to a multitree line graph (base's own pruning stays), added to m->graphs the
 * first time it is asked for; *graph_out gets its index, the same for the same request. */
int fe_dag_variant(ir_module *m, int base, bool reverse, bool multitree, int *graph_out,
                   xy_error *err);

/* The full layers (layers.c: plstm2d, plstm1d; layer_memory.c: memory): a layer object of
 * the spec expands into IR ops and weight tensors added to m. */
typedef struct fe_layer_ctx {
  const fe_src *src;
  xy_error *err;
  ir_module *m;
  ir_graph_kind kind;
} fe_layer_ctx;

bool fe_is_layer(const char *op);
int fe_expand_layer(fe_layer_ctx *fc, const json_t *l, const char *lp, const char *op,
                    const char *name);

/* What a memory module's schedule says besides the op's attributes. */
typedef enum fe_memory_role { FE_MEM_SINGLE, FE_MEM_GLOBAL, FE_MEM_LOCAL } fe_memory_role;

typedef struct fe_memory_info {
  fe_memory_role role;
  bool init_zero;   /* init 'zero': the module starts from zeros, no W_init; else 'param' */
} fe_memory_info;

/* Reads one memory module's schedule (memory_schedule.c; docs/spec-format.md,
 * "memory_scan"), the JSON value sched at path, into attrs and info, and checks the
 * schedule's own rules (spec tnt.md §5.2), each broken one an XY_E_SPEC error at the field
 * that breaks it. dk (q's last axis) sizes "expand" and the divisor "dk". fc->m and
 * fc->kind are not used. */
int fe_read_memory_schedule(const fe_layer_ctx *fc, const json_t *sched, const char *path,
                            int64_t dk, ir_memory_attrs *attrs, fe_memory_info *info);

#endif /* XY_FE_INTERNAL_H */
