#!/usr/bin/env python3
"""Writes prune_cases.json: what the reference's graph preparation (ml-jku/plstm,
src/plstm/graph.py) makes of random trees and DAGs, computed with the real networkx, for
tests/unit/frontend/test_dag_prepare.c. The test suite only reads the JSON; rerun this
after changing the cases (the output is committed):

    python3 tests/data/graphs/make_prune_cases.py

The reference's steps are written out below (dagify, revert_dag, line_graph,
prune_dag_to_multitree, the incidence edge maps), restated from its code so that the
expected results come from networkx's own node and edge orders, not from xylem's model of
them. Graphs come in four groups, one per (dagify, reverse) option pair of a spec; each
group is one graph file of many graphs, mixing directed and undirected ones. A graph's
results are given in its file edge ids:

  kept      the arcs [p, e] of the pruned line graph (D mode), sorted
  out_slot  out_slot[e]: e's position among its tail's successors in the prepared DiGraph
  in_slot   in_slot[e]: e's position among its head's predecessors
  arcs      the size of the full line graph
"""
import json
import os
import random
from collections import defaultdict

import networkx as nx

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20250611


# ---------------------------------------------------------------- the reference's steps

def dagify(g):
    dag = nx.DiGraph()
    pos = {n: i for i, n in enumerate(g.nodes())}
    dag.add_nodes_from(g.nodes())
    for u, v in g.edges():
        if pos[u] < pos[v]:
            dag.add_edge(u, v)
        else:
            dag.add_edge(v, u)
    return dag


def revert_dag(dag):
    rev = nx.DiGraph()
    rev.add_nodes_from(reversed(list(dag.nodes())))
    for u, v in reversed(list(dag.edges())):
        rev.add_edge(v, u)
    return rev


def reinsert(dag):
    """create()'s dagify of a reversed DAG without its reorientation: the same nodes, the
    edges re-added in the order the edge view lists them. For a DAG oriented by node
    position (every dagified one) this is exactly dagify; xylem reverses a directed graph
    that was not dagified the same way, keeping its orientation."""
    out = nx.DiGraph()
    out.add_nodes_from(dag.nodes())
    for u, v in dag.edges():
        out.add_edge(u, v)
    return out


def prune_dag_to_multitree(dag):
    topo = list(nx.topological_sort(dag))
    index = {x: i for i, x in enumerate(topo)}
    tree = nx.DiGraph()
    tree.add_nodes_from(dag.nodes)
    ancestors = defaultdict(set)
    descendants = defaultdict(set)
    for current in topo:
        preds = sorted(dag.predecessors(current), key=lambda x: index[x])
        for pred in preds:
            prior = ancestors[pred]
            if any(current in descendants[a] for a in prior):
                continue
            tree.add_edge(pred, current)
            ancestors[current].add(pred)
            descendants[pred].add(current)
            for a in prior:
                ancestors[current].add(a)
                descendants[a].add(current)
    return tree


def same(a, b):
    """Two DiGraphs with the same node order and the same successor and predecessor lists."""
    return (list(a.nodes) == list(b.nodes) and
            all(list(a.successors(x)) == list(b.successors(x)) and
                list(a.predecessors(x)) == list(b.predecessors(x)) for x in a.nodes))


def prepare(n, edges, directed, do_dagify, reverse):
    """The prepared DiGraph and its pruned line graph, as PreparedGraph.create (and
    PreparedGraph.reverse) make them. A directed graph that is not dagified is taken as it
    is (xylem's "dagify": false); the reference always dagifies."""
    g = nx.DiGraph() if directed else nx.Graph()
    g.add_nodes_from(range(n))
    for t, h in edges:
        g.add_edge(t, h)
    dagified = do_dagify or not directed
    dag = dagify(g) if dagified else g
    if reverse:
        rev = revert_dag(dag)
        dag = reinsert(rev)
        if dagified:  # PreparedGraph.reverse: create() dagifies the reversed DAG
            assert same(dag, dagify(rev))
    line = nx.line_graph(dag)
    return dag, line, prune_dag_to_multitree(line)


# ---------------------------------------------------------------- random graphs

def random_graph(rng, n, extra, directed):
    """A random tree (node i > 0 hangs under one of 0..i-1) plus up to `extra` more edges
    per node to earlier nodes, with nodes relabelled at random so that edges run both ways
    between ids, edge pairs in random order when undirected, and the list shuffled."""
    pairs, seen = [], set()
    for i in range(1, n):
        for j in [rng.randrange(i)] + [rng.randrange(i) for _ in range(rng.randint(0, extra))]:
            if (j, i) not in seen:
                seen.add((j, i))
                pairs.append((j, i))
    label = list(range(n))
    rng.shuffle(label)
    edges = []
    for a, b in pairs:
        a, b = label[a], label[b]
        if not directed and rng.random() < 0.5:
            a, b = b, a
        edges.append([a, b])
    rng.shuffle(edges)
    return edges


def edge_id(ids, dag_edge):
    """File edge id of a DiGraph edge (u, v): the file lists it as [u, v] or [v, u]."""
    u, v = dag_edge
    return ids.get((u, v), ids.get((v, u)))


def case(rng, n, extra, directed, do_dagify, reverse):
    edges = random_graph(rng, n, extra, directed)
    dag, line, tree = prepare(n, edges, directed, do_dagify, reverse)
    ids = {(t, h): e for e, (t, h) in enumerate(edges)}
    out_slot, in_slot = [None] * len(edges), [None] * len(edges)
    for x in dag.nodes:
        for i, y in enumerate(dag.successors(x)):
            out_slot[edge_id(ids, (x, y))] = i
        for i, y in enumerate(dag.predecessors(x)):
            in_slot[edge_id(ids, (y, x))] = i
    kept = sorted([edge_id(ids, p), edge_id(ids, e)] for p, e in tree.edges)
    return {"nodes": n, "directed": directed, "edges": edges, "arcs": line.number_of_edges(),
            "kept": kept, "out_slot": out_slot, "in_slot": in_slot}


def main():
    rng = random.Random(SEED)
    groups = []
    for do_dagify in (False, True):
        for reverse in (False, True):
            graphs = []
            for k in range(14):
                # Mostly small graphs, a few up to 300 nodes; trees (extra 0) and DAGs.
                n = rng.choice([1, 2, 3, 5, 8, 12, 20, 40, 60]) if k < 11 else rng.randint(100, 300)
                extra = 0 if k % 3 == 0 else rng.randint(1, 3 if k < 11 else 5)
                graphs.append(case(rng, n, extra, k % 2 == 0, do_dagify, reverse))
            groups.append({"dagify": do_dagify, "reverse": reverse, "graphs": graphs})
    doc = {"about": "expected results of the reference's graph preparation; written by "
                    "make_prune_cases.py with networkx " + nx.__version__,
           "groups": groups}
    with open(os.path.join(HERE, "prune_cases.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
