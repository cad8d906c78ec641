"""The layers of docs/architecture.md ("Layers"), checked from the source.

Every module under ``sslax/`` is parsed with ``ast`` (nothing is imported) and
every import of an ``sslax`` module is collected: module-level and
function-level, absolute and relative. Each module belongs to one unit (a
package such as ``sslax.data`` or a module such as ``sslax.export``) and each
unit to a layer. A module may import its own unit and the units of lower
layers; units of the same layer are independent (data, models and losses do
not know each other) except for the few edges in ``SAME_LAYER_ALLOWED``. The
import graph has no cycles, between units or between modules, whether or not a
function-level import hides them.
"""

import ast
import collections
import os
import subprocess
import sys

import pytest

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "sslax")

# Lowest first; each layer imports only the layers before it (and itself).
LAYERS = (
    ("sslax.errors", "sslax.sharding", "sslax.config_base", "sslax.config_loading"),
    ("sslax.data", "sslax.models", "sslax.losses"),
    ("sslax.encoder",),
    ("sslax.methods",),
    ("sslax.probes",),
    ("sslax.train",),
    ("sslax.eval", "sslax.export", "sslax.logs"),
    # The package itself only re-exports sslax.export's load_encoder and
    # preprocess, lazily (PEP 562), so it stands with the entry points.
    ("sslax.cli", "sslax.__main__", "sslax"),
)

# Edges between different units of one layer, each with its reason.
SAME_LAYER_ALLOWED = {
    ("sslax.sharding", "sslax.errors"): "UserError is the base of everything",
    ("sslax.config_base", "sslax.errors"): "UserError is the base of everything",
    ("sslax.config_loading", "sslax.errors"): "UserError is the base of everything",
    ("sslax.__main__", "sslax.cli"): "`python -m sslax` is the command line",
}

Edge = collections.namedtuple("Edge", "src dst path line")


def _module_name(path):
  rel = os.path.relpath(path, ROOT)[:-len(".py")].split(os.sep)
  if rel[-1] == "__init__":
    rel = rel[:-1]
  return ".".join(rel)


def _modules():
  """{module name: path} of every module under sslax/."""
  out = {}
  for root, dirs, files in os.walk(PACKAGE):
    dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")))
    for name in sorted(files):
      if name.endswith(".py"):
        path = os.path.join(root, name)
        out[_module_name(path)] = path
  return out


def _is_package(path):
  return os.path.basename(path) == "__init__.py"


def _imports(modules):
  """Every import of an sslax module, as Edges."""
  edges = []
  for src, path in sorted(modules.items()):
    with open(path, encoding="utf-8") as f:
      tree = ast.parse(f.read(), filename=path)
    here = src if _is_package(path) else src.rpartition(".")[0]
    rel_path = os.path.relpath(path, ROOT)
    for node in ast.walk(tree):
      targets = []
      if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
      elif isinstance(node, ast.ImportFrom):
        if node.level:
          base = here.split(".")
          base = base[:len(base) - (node.level - 1)]
          parent = ".".join(base + ([node.module] if node.module else []))
        else:
          parent = node.module or ""
        for alias in node.names:
          # `from P import n` imports the module P.n when there is one.
          child = f"{parent}.{alias.name}"
          targets.append(child if child in modules else parent)
      for target in targets:
        if target == "sslax" or target.startswith("sslax."):
          # `import sslax.a.b` of something that is no module: its nearest module.
          while target not in modules and "." in target:
            target = target.rpartition(".")[0]
          if target != src:
            edges.append(Edge(src, target, rel_path, node.lineno))
  return edges


def _unit(module):
  """(layer index, unit) of a module: the longest unit prefix that names it."""
  best = None
  for index, units in enumerate(LAYERS):
    for unit in units:
      if module == unit or module.startswith(unit + "."):
        if best is None or len(unit) > len(best[1]):
          best = (index, unit)
  return best


MODULES = _modules()
EDGES = _imports(MODULES)


def _fmt(edge):
  return f"{edge.path}:{edge.line}: {edge.src} -> {edge.dst}"


def test_every_module_has_a_layer():
  missing = sorted(m for m in MODULES if _unit(m) is None)
  assert not missing, ("modules in no layer (add them to LAYERS in "
                       f"tests/test_layers.py and docs/architecture.md): {missing}")


def test_the_parser_sees_imports():
  # A guard against a checker that silently sees nothing.
  pairs = {(e.src, e.dst) for e in EDGES}
  assert ("sslax.data.sources", "sslax.errors") in pairs
  assert ("sslax.__main__", "sslax.cli") in pairs
  assert len(EDGES) > 100


def test_imports_go_down_the_layers():
  bad = []
  for edge in EDGES:
    src, dst = _unit(edge.src), _unit(edge.dst)
    if src is None or dst is None or src[1] == dst[1]:
      continue
    if dst[0] > src[0]:
      bad.append(f"{_fmt(edge)}  (layer {src[0]} {src[1]} imports layer "
                 f"{dst[0]} {dst[1]})")
    elif dst[0] == src[0] and (src[1], dst[1]) not in SAME_LAYER_ALLOWED:
      bad.append(f"{_fmt(edge)}  (siblings in layer {src[0]}: {src[1]} "
                 f"imports {dst[1]})")
  assert not bad, "imports against the layers of docs/architecture.md:\n" + "\n".join(bad)


def _cycles(nodes, edges):
  """(component, one cycle through it as a list of Edges) for each strongly
  connected component of more than one node (Tarjan's algorithm, iteratively)."""
  graph = collections.defaultdict(dict)
  for edge in edges:
    graph[edge.src].setdefault(edge.dst, edge)
  index, low, on_stack, stack, sccs = {}, {}, set(), [], []
  for start in sorted(nodes):
    if start in index:
      continue
    work = [(start, iter(sorted(graph[start])))]
    index[start] = low[start] = len(index)
    stack.append(start)
    on_stack.add(start)
    while work:
      node, children = work[-1]
      child = next(children, None)
      if child is not None:
        if child not in index:
          index[child] = low[child] = len(index)
          stack.append(child)
          on_stack.add(child)
          work.append((child, iter(sorted(graph[child]))))
        elif child in on_stack:
          low[node] = min(low[node], index[child])
        continue
      work.pop()
      if work:
        low[work[-1][0]] = min(low[work[-1][0]], low[node])
      if low[node] == index[node]:
        scc = set()
        while True:
          top = stack.pop()
          on_stack.discard(top)
          scc.add(top)
          if top == node:
            break
        if len(scc) > 1:
          sccs.append(scc)
  cycles = []
  for scc in sccs:
    # The shortest path back to the component's first node.
    first = min(scc)
    paths, queue = {first: []}, collections.deque([first])
    cycle = None
    while queue and cycle is None:
      node = queue.popleft()
      for child in sorted(graph[node]):
        if child not in scc:
          continue
        path = paths[node] + [graph[node][child]]
        if child == first:
          cycle = path
          break
        if child not in paths:
          paths[child] = path
          queue.append(child)
    cycles.append((scc, cycle))
  return cycles


def _describe(scc_and_cycle):
  scc, cycle = scc_and_cycle
  names = " -> ".join([cycle[0].src] + [e.dst for e in cycle])
  return (names + "\n" + "\n".join("    " + _fmt(e) for e in cycle) +
          f"\n    (all of {sorted(scc)} import each other)")


def test_no_import_cycles_between_modules():
  cycles = _cycles(MODULES, EDGES)
  assert not cycles, "import cycles:\n" + "\n".join(_describe(c) for c in cycles)


def test_no_import_cycles_between_units():
  unit_edges = []
  for edge in EDGES:
    src, dst = _unit(edge.src), _unit(edge.dst)
    if src and dst and src[1] != dst[1]:
      unit_edges.append(edge._replace(src=src[1], dst=dst[1]))
  units = {u for layer in LAYERS for u in layer}
  cycles = _cycles(units, unit_edges)
  assert not cycles, ("import cycles between packages:\n" +
                      "\n".join(_describe(c) for c in cycles))


LIGHT_IMPORTS = {
    # module: modules that importing it must not load
    "sslax.errors": ("jax", "orbax", "sslax.cli", "sslax.export"),
    "sslax.losses": ("orbax", "sslax.cli", "sslax.export"),
}


@pytest.mark.parametrize("module", sorted(LIGHT_IMPORTS))
def test_light_imports(module):
  """A fresh interpreter that imports ``module`` loads none of the heavy or
  higher modules it has no use for."""
  forbidden = LIGHT_IMPORTS[module]
  code = (f"import sys, {module}\n"
          f"forbidden = {forbidden!r}\n"
          "print(sorted(m for m in sys.modules\n"
          "             if any(m == f or m.startswith(f + '.') for f in forbidden)))\n")
  proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                        text=True, timeout=120, check=False)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.strip() == "[]", f"import {module} loads {proc.stdout.strip()}"


def test_package_reexports_lazily():
  """``sslax.load_encoder`` and ``sslax.preprocess`` still work, loading
  sslax.export on first use."""
  code = ("import sys, sslax\n"
          "assert 'sslax.export' not in sys.modules\n"
          "load_encoder = sslax.load_encoder\n"
          "export = sys.modules['sslax.export']\n"
          "assert load_encoder is export.load_encoder\n"
          "assert sslax.preprocess is export.preprocess\n"
          "assert 'load_encoder' in dir(sslax)\n")
  proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                        text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr
