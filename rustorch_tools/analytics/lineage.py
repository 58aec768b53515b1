"""The lineage graph: runs linked by parent (resume / fork / finetune), by pipeline stage
(params["pipeline/upstream"]: the upstream stages' runs) and by shared config.

Parent edges go parent → child and carry the config delta (parent's config/params/seed →
child's). Runs with identical config+params form a group; each group is drawn as "same
config" edges from its earliest run to the others (a star, not all pairs).
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from ..store.layout import printable
from .configdiff import diff
from .summary import RunSummary


def _delta(a: RunSummary, b: RunSummary) -> list[dict[str, Any]]:
    return [e.to_json() for e in diff(a.settings, b.settings)]


def build_graph(runs: list[RunSummary], config_edges: bool = True) -> dict[str, Any]:
    """The `graph --format json` document."""
    by_id = {r.run_id: r for r in runs}
    nodes = [{"id": r.run_id, "name": r.name, "status": r.status, "started_at": r.started_at,
              "config_hash": r.config_hash} for r in runs]
    edges: list[dict[str, Any]] = []
    missing: list[dict[str, str]] = []
    for r in runs:
        pid = r.parent_id
        if pid is None:
            continue
        parent = by_id.get(pid)
        if parent is None:
            missing.append({"run": r.run_id, "parent": pid})
            continue
        edges.append({"from": pid, "to": r.run_id, "kind": "parent",
                      "relation": (r.parent or {}).get("relation"),
                      "checkpoint": (r.parent or {}).get("checkpoint"),
                      "config_delta": _delta(parent, r)})
    for r in runs:  # pipeline stages: upstream stage run -> this stage's run
        upstream = r.params.get("pipeline/upstream")
        for uid in upstream if isinstance(upstream, list) else []:
            if uid in by_id and uid != r.parent_id:
                edges.append({"from": uid, "to": r.run_id, "kind": "pipeline", "relation": "upstream",
                              "checkpoint": None, "config_delta": []})
    groups: dict[str, list[RunSummary]] = defaultdict(list)
    for r in runs:
        groups[r.config_hash].append(r)
    shared = []
    for h, members in groups.items():
        if len(members) < 2:
            continue
        members.sort(key=lambda r: (r.started_at or 0.0, r.run_id))
        shared.append({"config_hash": h, "runs": [m.run_id for m in members]})
        if config_edges:
            for m in members[1:]:
                edges.append({"from": members[0].run_id, "to": m.run_id, "kind": "same_config",
                              "relation": None, "checkpoint": None,
                              "config_delta": _delta(members[0], m)})
    return {"nodes": nodes, "edges": edges, "missing_parents": missing,
            "cycles": find_cycles(runs), "config_groups": shared}


def find_cycles(runs: list[RunSummary]) -> list[list[str]]:
    """Parent chains that loop (a corrupted lineage); each cycle listed once."""
    parent = {r.run_id: r.parent_id for r in runs}
    seen: set[str] = set()
    cycles = []
    for start in parent:
        path: list[str] = []
        on_path: set[str] = set()
        node: str | None = start
        while node is not None and node in parent and node not in seen:
            if node in on_path:
                cycles.append(path[path.index(node):])
                break
            on_path.add(node)
            path.append(node)
            node = parent[node]
        seen.update(path)
    return cycles


def descendants(runs: list[RunSummary], root: str) -> list[dict[str, Any]]:
    """Every run that descends from `root` through parent links, breadth-first."""
    children: dict[str, list[RunSummary]] = defaultdict(list)
    by_id = {r.run_id: r for r in runs}
    for r in runs:
        if r.parent_id is not None:
            children[r.parent_id].append(r)
    out = []
    queue = deque([(root, 0)])
    visited = {root}
    while queue:
        node, depth = queue.popleft()
        for child in sorted(children.get(node, []), key=lambda r: (r.started_at or 0.0, r.run_id)):
            if child.run_id in visited:
                continue
            visited.add(child.run_id)
            out.append({
                "run_id": child.run_id, "parent": node, "depth": depth + 1,
                "relation": (child.parent or {}).get("relation"),
                "config_delta": _delta(by_id[node], child) if node in by_id else [],
            })
            queue.append((child.run_id, depth + 1))
    return out


def _esc(text: str) -> str:
    return printable(text.replace("\n", " ")).replace("\\", "\\\\").replace('"', '\\"')


def _dot_id(text: str) -> str:
    return '"' + _esc(text) + '"'


def _delta_label(delta: list[dict[str, Any]], limit: int = 4) -> str:
    import json

    parts = []
    for e in delta[:limit]:
        if e["change"] == "removed":
            parts.append(f"-{e['key']}")
        else:
            parts.append(f"{e['key']}={json.dumps(e['b'], default=str)}")
    if len(delta) > limit:
        parts.append(f"(+{len(delta) - limit} more)")
    return "\\n".join(_esc(p) for p in parts)


_STATUS_COLOR = {"finished": "#d9f2d9", "running": "#dbe9ff", "failed": "#ffd6d6",
                 "crashed": "#ffe4c4"}


def to_dot(graph: dict[str, Any], highlight: set[str] | None = None) -> str:
    """Graphviz DOT text: solid parent edges labelled with relation and config delta,
    dashed grey same-config edges."""
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled"];']
    for n in graph["nodes"]:
        parts = [n["id"]]
        if n.get("name") and str(n["name"]) not in n["id"]:
            parts.append(str(n["name"]))
        parts.append(f"[{n.get('status') or '?'}]")
        label = "\\n".join(_esc(p) for p in parts)
        color = _STATUS_COLOR.get(n.get("status") or "", "#eeeeee")
        extra = ", penwidth=3" if highlight and n["id"] in highlight else ""
        lines.append(f'  {_dot_id(n["id"])} [label="{label}", fillcolor="{color}"{extra}];')
    for e in graph["edges"]:
        if e["kind"] == "parent":
            head = _esc(str(e.get("relation") or "parent"))
            delta = _delta_label(e["config_delta"])
            label = head + (f"\\n{delta}" if delta else "")
            lines.append(f'  {_dot_id(e["from"])} -> {_dot_id(e["to"])} [label="{label}"];')
        elif e["kind"] == "pipeline":
            lines.append(f'  {_dot_id(e["from"])} -> {_dot_id(e["to"])} [color=blue, label="stage"];')
        else:
            lines.append(f'  {_dot_id(e["from"])} -> {_dot_id(e["to"])} '
                         '[style=dashed, color=grey, arrowhead=none, label="same config"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
