"""The access filter reads statements through SQLAlchemy's public API only, and
still refuses raw SQL text that SQLAlchemy keeps outside the statement's tree
(prefixes, suffixes, hints) on every statement kind."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmcore import AccessDenied
from crmcore.schema import audit_log, customers, interactions
from crmcore.storage import query
from crmcore.storage.scope import core_catalog

STORAGE = Path(query.__file__).resolve().parent
# underscore names SQLAlchemy and the standard library document as public
# (Row._mapping, named tuples' _asdict / _make / _fields)
PUBLIC_UNDERSCORE = {"_mapping", "_asdict", "_make", "_fields"}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _own_names(trees: list[ast.AST]) -> set[str]:
    """The underscore names the storage package defines itself."""
    own: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                own.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                own.add(node.target.id)
            elif isinstance(node, ast.alias) and node.name.startswith("crmcore"):
                own.add(node.asname or node.name)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("crmcore"):
                own.update(a.asname or a.name for a in node.names)
                own.update(node.module.split("."))  # type: ignore[union-attr]
        for node in ast.walk(tree):  # __slots__ = ("_x", ...)
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
            ):
                own.update(
                    c.value
                    for c in ast.walk(node.value)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                )
    return own


def test_the_storage_package_reads_no_private_sqlalchemy_attribute():
    files = sorted(STORAGE.glob("*.py"))
    trees = [ast.parse(p.read_text(encoding="utf-8")) for p in files]
    own = _own_names(trees) | PUBLIC_UNDERSCORE
    found = []
    for path, tree in zip(files, trees, strict=True):
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Attribute):
                names.append(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.append(node.value)  # getattr(x, "_name") and lists of such names
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                names.extend(a.name for a in node.names)
            found += [
                f"{path.name}:{node.lineno}: {n}"  # type: ignore[attr-defined]
                for n in names
                if _private(n) and n.isidentifier() and n not in own
            ]
    assert found == []


@pytest.fixture
def rep(crm):
    crm.staff.add("zhang", "Zhang", roles=["rep"])
    crm.customers.add("Mine", owner="zhang")
    crm.customers.add("Not mine")
    return crm.as_("zhang")


RAW_TEXT = {
    "select prefix": lambda: sa.select(customers.c.name).prefix_with("/* x */"),
    "select suffix": lambda: sa.select(customers.c.name).suffix_with("-- x"),
    "table hint": lambda: sa.select(customers.c.name).with_hint(customers, "INDEXED BY x"),
    "statement hint": lambda: sa.select(customers.c.name).with_statement_hint("/* x */"),
    "update prefix": lambda: sa.update(customers).values(name="x").prefix_with("OR REPLACE"),
    "delete prefix": lambda: sa.delete(interactions).prefix_with("/* x */"),
    "insert prefix": lambda: interactions.insert().prefix_with("OR REPLACE"),
    "cte prefix": lambda: sa.select(
        sa.select(customers.c.id).cte("c").prefix_with("MATERIALIZED").c.id
    ),
    "update hint": lambda: sa.update(customers).values(name="x").with_hint("x"),
}


@pytest.mark.parametrize("shape", sorted(RAW_TEXT))
def test_raw_text_outside_the_tree_is_refused_for_a_rep(rep, shape):
    with rep.transaction() as db:
        # PostgreSQL's compiler rejects an unknown DML hint itself: refused all the same
        with pytest.raises(
            AccessDenied,
            match=r"^zhang: (a statement with prefixes|the statement cannot be compiled)",
        ):
            db.execute(RAW_TEXT[shape]())


def test_a_prefix_for_one_dialect_only_is_refused_when_no_dialect_is_named(rep):
    stmt = sa.select(customers.c.name).prefix_with("/* x */", dialect="postgresql")
    with rep.transaction(write=False) as db:
        with pytest.raises(AccessDenied, match="prefixes, suffixes or hints"):
            core_catalog().check(stmt, db.principal)


def test_ordering_by_a_label_still_runs_scoped(rep):
    label = customers.c.name.label("n")
    with rep.transaction(write=False) as db:
        assert [r.n for r in db.execute(sa.select(label).order_by(label))] == ["Mine"]


def test_an_insert_with_values_is_audited_with_those_values(crm, rep):
    with rep.transaction() as db:
        mine = db.scalar(sa.select(customers.c.id))
        db.execute(
            interactions.insert().values(
                customer_id=mine, kind="note", text="called", at=rep.now(), data={}
            )
        )
    with crm.transaction(write=False) as db:
        after = db.scalar(
            sa.select(audit_log.c.after)
            .where(audit_log.c.entity == "interactions")
            .order_by(audit_log.c.id.desc())
        )
    assert after["customer_id"] == mine and after["text"] == "called" and after["kind"] == "note"
