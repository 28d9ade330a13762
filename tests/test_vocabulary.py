"""A state or a move is named in one place: the machine that defines it.

Every module outside the machine definitions names a case's or a claim's state or move through
the machine's names (``S.closed``, ``Act.dispatch``, ``ClaimAct.pay``, the groups in
``lib.cases.states``), never as a string. A string would survive a renamed state and silently
stop matching; a name fails at import. A few strings coincide with a state or a move without
meaning one (a page is called "report", a figure "closed"): they are listed below with the
reason, per module.
"""

from __future__ import annotations

import ast
from pathlib import Path

from lib.cases.machine import CASES
from lib.cases.models import CaseState, WorkOrderState
from lib.rewards.machine import CLAIMS
from lib.rewards.models import ClaimState

ROOT = Path(__file__).resolve().parent.parent
# The machine definitions: the only modules that spell the vocabulary out.
DEFINITIONS = {"lib/cases/states.py", "lib/cases/machine.py", "lib/rewards/machine.py",
               "lib/cases/models.py", "lib/rewards/models.py"}
VOCABULARY = ({s.value for s in CaseState} | {s.value for s in ClaimState}
              | {s.value for s in WorkOrderState} | set(CASES.moves) | set(CLAIMS.moves))

PAGE = "a page's name (pages/<name>.py)"
FIGURE = "an assessment figure's key"
# module → {string: why it is not a state or a move there}
ALLOWED: dict[str, dict[str, str]] = {
    "app.py": {"report": PAGE},
    "pages/report.py": {"report": PAGE},
    "lib/ui/menu.py": {"report": PAGE, "claim": "the tracking page's claim section's anchor"},
    "lib/ui/report_form.py": {"report": "the report form's widget key prefix"},
    "lib/tools/bench.py": {"report": "the KPI report page's name in the timings"},
    "lib/cases/tracking.py": {"claim": "the purpose of a code that proves a claim (the claim "
                                       "machine lives in a package above this one)"},
    "lib/cases/queue.py": {"verify": "the queue tab of cases back for the check"},
    "pages/rewards.py": {"claim": "the claim page's query parameter (?claim=<id>)"},
    "pages/reward_ledger.py": {"claim": "the claim page's query parameter, for a row's link"},
    "pages/queue.py": {"hurry": "the queue's column of the reporter's hurries (催办)"},
    "lib/kpi/figures.py": {"rate": "a figure's kind (a percentage)", "reported": FIGURE,
                           "closed": FIGURE},
    "lib/kpi/report.py": {"rate": "a figure's kind (a percentage)", "reported": FIGURE,
                          "closed": FIGURE},
    "lib/kpi/views.py": {"reported": FIGURE},
    "lib/kpi/behind.py": {name: "a roll-up counter's name (a column of kpi_day)"
                          for name in ("reported", "closed", "dispatched", "returned", "handled")}
    | {"rate": "a figure's kind (a percentage)"},
    "lib/ui/kpi.py": {"rate": "a figure's kind (a percentage)"},
    "lib/kpi/rollup.py": {"open": "an outcome of the flow chart"},
    "lib/kpi/periods.py": {"start": "a period's first day (a column of the quantile rows)"},
    "lib/cases/deadlines.py": {"handle": "the handling limit's kind (deadline_rule.handle_*)"},
    "lib/org/refdata.py": {"handle": "the handling deadline's kind in data/deadlines.json"},
    "pages/kpi_map.py": {"reported": FIGURE, "closed": FIGURE},
    "pages/kpi_flow.py": {"closed": "an outcome of the flow chart"},
}


def _sources() -> list[Path]:
    return sorted([*ROOT.joinpath("lib").rglob("*.py"), *ROOT.joinpath("pages").glob("*.py"),
                   ROOT / "app.py"])


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            ids.add(id(body[0].value))
    return ids


def _enum_members(tree: ast.Module) -> set[int]:
    """String constants that define an enum's members (a vocabulary of its own)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(
                getattr(base, "id", getattr(base, "attr", "")).endswith("Enum") for base in node.bases):
            ids |= {id(n) for n in ast.walk(node) if isinstance(n, ast.Constant)}
    return ids


def literals(path: Path) -> list[tuple[int, str]]:
    """(line, string) of each state or move named as a string in the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree) | _enum_members(tree)
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and node.value in VOCABULARY and id(node) not in skip)


def test_no_module_spells_out_a_state_or_a_move():
    found = []
    for path in _sources():
        name = path.relative_to(ROOT).as_posix()
        if name in DEFINITIONS:
            continue
        allowed = ALLOWED.get(name, {})
        found += [f"{name}:{line}: {value!r}" for line, value in literals(path)
                  if value not in allowed]
    assert not found, "name these through the machine (lib.cases.states, lib.rewards.machine):\n" \
        + "\n".join(found)


def test_the_allowances_are_still_needed(tmp_path):
    """An allowance nobody needs any more goes, so the list stays short and true."""
    stale = []
    for name, allowed in ALLOWED.items():
        path = ROOT / name
        used = {value for _, value in literals(path)} if path.exists() else set()
        stale += [f"{name}: {value!r}" for value in allowed if value not in used]
    assert not stale, stale


def test_the_check_finds_a_state_written_out(tmp_path):
    module = tmp_path / "sample.py"
    module.write_text('"""A docstring may say closed."""\n\n\ndef f(case):\n'
                      '    return case.state == "closed"\n', encoding="utf-8")
    assert literals(module) == [(5, "closed")]


def test_every_move_and_group_of_the_machines_is_named():
    from lib.cases.states import GROUPS, Act
    from lib.rewards.machine import ClaimAct
    assert {a.value for a in Act} == set(CASES.moves)
    assert {a.value for a in ClaimAct} == set(CLAIMS.moves)
    for machine, states in ((CASES, CaseState), (CLAIMS, ClaimState)):
        assert machine.groups, machine.name
        for name, group in machine.groups.items():
            assert group and group <= {s.value for s in states}, (machine.name, name)
    assert GROUPS["open"] | GROUPS["final"] == {s.value for s in CaseState}
    assert not GROUPS["open"] & GROUPS["final"]
