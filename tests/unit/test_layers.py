"""Imports point down only: each module sits in a layer, and imports only from its own layer
or below (lazy imports inside functions count too). A newcomer reads the layers bottom-up:

    base       errors, paths, validate, wait, http, model, table, measure, incidents, selection, results, versions
    clients    inventory, listing, etcd, prometheus, kube, snapshot, workloads, hosts, certs, apilb, alerting, discover
    cluster    hakit.cluster: host access (SSH, kubeadm hosts) and what is read or done on a host
    faults     hakit.faults: inject, restore, journal, lock
    scenarios  hakit.scenarios: what each disruptive check breaks and watches, and its timeline
    procedures the runbook model and the runbooks; the pytest side (fixtures, checks, reports)
    pipeline   audit, catalog, a runbook's run and remediation (they run checks through pytest)
    lab        hakit.lab: the local HA labs, which install themselves with the runbooks
    cli        hakit.cli and its subcommands
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# the design card's top-level directories ship inside the hakit namespace (pyproject.toml)
PACKAGES = {"hakit": "hakit", "checks": "hakit.checks", "runbooks": "hakit.runbooks", "fixtures": "hakit.fixtures"}
LAYERS = [
    ("base", ["hakit", "hakit.errors", "hakit.paths", "hakit.validate", "hakit.wait", "hakit.http", "hakit.model",
              "hakit.table", "hakit.measure", "hakit.incidents", "hakit.selection", "hakit.results", "hakit.versions"]),
    ("clients", ["hakit.inventory", "hakit.listing", "hakit.etcd", "hakit.prometheus", "hakit.kube", "hakit.snapshot",
                 "hakit.workloads", "hakit.hosts", "hakit.certs", "hakit.apilb", "hakit.alerting", "hakit.discover"]),
    ("cluster", ["hakit.cluster"]),
    ("faults", ["hakit.faults"]),
    ("scenarios", ["hakit.scenarios"]),
    ("procedures", ["hakit.runbook", "hakit.runbooks", "hakit.fixtures", "hakit.checks", "hakit.report"]),
    ("pipeline", ["hakit.audit", "hakit.catalog", "hakit.runbook.run", "hakit.runbook.remediate"]),
    ("lab", ["hakit.lab"]),
    ("cli", ["hakit.cli", "hakit.checkcli", "hakit.labcli", "hakit.runbook.cli"]),
]
RANK = {prefix: rank for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes}


def layer(module: str) -> int:
    """The rank of the longest listed prefix of module; a module no layer lists is an error."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in RANK and (n > 1 or module == "hakit"):
            return RANK[".".join(parts[:n])]
    raise AssertionError(f"{module} is in no layer: add it to tests/unit/test_layers.py's LAYERS")


def module_of(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    parts[0] = PACKAGES[parts[0]]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    """Whether name is a module or package of the tree (not a name defined in one)."""
    top, *rest = name.split(".")[1:] or [""]
    base = REPO / top if f"hakit.{top}" in PACKAGES.values() else REPO / "hakit" / top
    target = base.joinpath(*rest) if top else REPO / "hakit"
    return target.with_suffix(".py").exists() or (target / "__init__.py").exists()


def imports(source: str) -> list[tuple[int, str]]:
    """(line, module) for every hakit module the source imports, at the top or in a function."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "hakit"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "hakit":
            for a in node.names:   # `from hakit import wait` imports the module hakit.wait
                full = f"{node.module}.{a.name}"
                found.append((node.lineno, full if is_module(full) else node.module))
    return found


def upward(module: str, source: str) -> list[str]:
    return [f"{module}:{line} imports {target} ({LAYERS[layer(target)][0]} is above {LAYERS[layer(module)][0]})"
            for line, target in imports(source) if layer(target) > layer(module)]


def sources() -> list[Path]:
    return sorted(p for top in PACKAGES for p in (REPO / top).rglob("*.py") if "__pycache__" not in p.parts)


def test_every_import_points_down() -> None:
    found = [line for p in sources() for line in upward(module_of(p), p.read_text())]
    assert not found, "imports that point up:\n" + "\n".join(found)


@pytest.mark.parametrize("module, source", [
    ("hakit.inventory", "def f():\n    from hakit.lab.paths import LabPaths\n"),   # a lazy one counts
    ("hakit.etcd", "from hakit import cluster\n"),
    ("hakit.checks.test_etcd", "import hakit.audit\n"),
])
def test_an_upward_import_is_found(module: str, source: str) -> None:
    assert len(upward(module, source)) == 1, upward(module, source)


def test_a_module_in_no_layer_is_named() -> None:
    with pytest.raises(AssertionError, match="hakit.newthing is in no layer"):
        layer("hakit.newthing")
