"""Executable runbooks: a procedure an operator would follow, as data.

A runbook (one module in `runbooks/`, exporting RUNBOOK) is a list of steps. A
step says in words what it does, shows the exact command or call it will make
(`show` and `--dry-run` print these and change nothing), may require a condition
checked just before it acts (a resumed run acts hours later, in another world),
acts, verifies, and, where one makes sense, knows its undo. A step that only looks (a probe) is never
confirmed; one that changes something is, unless --yes. The runbook ends by
running the checks of the property it repairs: it succeeded only if they pass.

    RUNBOOK = Runbook("etcd-backup", "Take a verified etcd snapshot", params=[...], steps=[...],
                      checks=["ETCD-008"])
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hakit.runbooks
from hakit import paths
from hakit.cluster import Cluster
from hakit.errors import ConfigError
from hakit.inventory import Inventory

RUNBOOKS_DIR = Path(hakit.runbooks.__file__).resolve().parent   # runbooks/ in the repository


@dataclass
class Context:
    """What a step sees: the cluster, the run's parameters, and values earlier steps
    kept (saved in the journal, so a resumed run has them too)."""

    inventory: Inventory
    params: dict[str, str]
    state: dict[str, Any] = field(default_factory=dict)
    _control: Cluster | None = None

    @property
    def control(self) -> Cluster:
        if self._control is None:
            self._control = Cluster(self.inventory)
        return self._control

    def on_each_host(self, command: str) -> str:
        """How show and --dry-run print a command run on every control-plane host, the
        first host's paths resolved."""
        names = [h.name for h in self.inventory.control_plane]
        return f"on {names[0]}: {command}  (and likewise on {', '.join(names[1:])})"

    def tool(self, name: str) -> str:
        """A program on PATH, else from hakit's binary cache (etcdctl, etcdutl, kubectl)."""
        return paths.program(name)


Do = Callable[[Context], str | None]       # acts (or looks); returns output worth journaling
Say = Callable[[Context], str]             # the resolved command or call, in words, for show/dry-run


@dataclass(frozen=True)
class Step:
    id: str
    text: str                        # what the operator reads
    show: Say                        # what exactly it will run, resolved against the context
    do: Do
    changes: bool = True             # False: a probe, which looks and is never confirmed
    require: Do | None = None        # raises when it is not safe to act now; checked just before, also on resume
    require_text: str | None = None
    verify: Do | None = None         # raises when the step did not have its effect
    undo: Do | None = None
    undo_text: str | None = None


@dataclass(frozen=True)
class Param:
    name: str
    help: str
    default: str | None = None       # None: required
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Runbook:
    name: str
    title: str
    summary: str
    steps: list[Step]
    params: list[Param] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)   # check ids that must pass at the end
    # Why the closing checks cannot apply to this run (e.g. a load balancer set up before
    # the cluster exists), or None: said in the output and the journal, never silent.
    checks_skipped: Callable[[Context], str | None] | None = None
    installs_cluster: bool = False   # runs before the cluster exists: the kubeconfig may not, yet
    source: str = ""                                   # set by load(): the module's text

    @property
    def fingerprint(self) -> str:
        """Changes whenever the procedure does: a run is only resumed by the same procedure."""
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]

    def resolve(self, given: dict[str, str]) -> dict[str, str]:
        unknown = set(given) - {p.name for p in self.params}
        if unknown:
            raise ConfigError(f"runbook {self.name}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                              f"it takes {', '.join(p.name for p in self.params) or 'none'}")
        out = {}
        for p in self.params:
            value = given.get(p.name, p.default)
            if value is None:
                raise ConfigError(f"runbook {self.name}: parameter {p.name} is required ({p.help})")
            if p.choices and value not in p.choices:
                raise ConfigError(f"runbook {self.name}: {p.name}={value!r}; expected one of {', '.join(p.choices)}")
            out[p.name] = value
        return out


def load_all(directory: Path = RUNBOOKS_DIR) -> dict[str, Runbook]:
    """Every runbook module in the directory, by name."""
    books = {}
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"hakit_runbooks.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        rb: Runbook = module.RUNBOOK
        object.__setattr__(rb, "source", inspect.getsource(module))
        books[rb.name] = rb
    return books


def get(name: str) -> Runbook:
    books = load_all()
    if name not in books:
        raise ConfigError(f"no runbook {name!r}; there are: {', '.join(books) or 'none'} (`hakit runbook list`)")
    return books[name]
