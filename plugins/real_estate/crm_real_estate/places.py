"""Projects, buildings, units, the people linked to units, and maintenance teams.

Units are named by path ``PROJECT/BUILDING/UNIT`` (e.g. ``JD/A1/1201``) or by
number; buildings by ``PROJECT/BUILDING``; projects and teams by code.

Longer than most modules: the places form one hierarchy with shared checks.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from crmcore import Conflict, NotFound, ValidationError
from crmcore.parse import clean_text
from crmcore.present import show_phone
from crmcore.schema import relationships, staff

from . import NAME
from .settings import settings
from .tables import buildings, projects, team_coverage, teams, unit_owners, units

ROLES = ("owner", "co-owner", "tenant")
BUYER_ROLES = ("owner", "co-owner")
_CODE = re.compile(r"^[^/\s]{1,32}$")


def _code(value: str, what: str) -> str:
    text = clean_text(value, field=what, max_len=32) or ""
    if not _CODE.match(text):
        raise ValidationError(f"{what} {value!r}: 1-32 characters without '/' or spaces")
    return text


def _name(value: str | None, what: str, *, required: bool = True) -> str | None:
    return clean_text(value, field=what, max_len=200, required=required)


def _is_id(ref: Any) -> bool:
    """An id, not a code: an int, or ASCII digits (``'²'`` is a code)."""
    return isinstance(ref, int) or (
        isinstance(ref, str) and ref.strip().isascii() and ref.strip().isdigit()
    )


# -- lookups ------------------------------------------------------------------------
def project_row(crm: Any, ref: Any) -> Any:
    cond = projects.c.id == int(ref) if _is_id(ref) else projects.c.code == str(ref).strip()
    row = crm.db.execute(select(projects).where(cond)).first()
    if row is None:
        raise NotFound(f"project {ref!r} not found")
    return row


def building_row(crm: Any, ref: Any) -> Any:
    if _is_id(ref):
        row = crm.db.execute(select(buildings).where(buildings.c.id == int(ref))).first()
    else:
        parts = str(ref).strip().split("/")
        if len(parts) != 2:
            raise NotFound(f"building {ref!r}: expected PROJECT/BUILDING, e.g. JD/A1")
        stmt = (
            select(buildings)
            .join(projects, projects.c.id == buildings.c.project_id)
            .where(projects.c.code == parts[0], buildings.c.code == parts[1])
        )
        row = crm.db.execute(stmt).first()
    if row is None:
        raise NotFound(f"building {ref!r} not found")
    return row


def unit_row(crm: Any, ref: Any) -> Any:
    if _is_id(ref):
        row = crm.db.execute(select(units).where(units.c.id == int(ref))).first()
    else:
        parts = str(ref).strip().split("/")
        if len(parts) != 3:
            raise NotFound(f"unit {ref!r}: expected PROJECT/BUILDING/UNIT, e.g. JD/A1/1201")
        stmt = (
            select(units)
            .join(buildings, buildings.c.id == units.c.building_id)
            .join(projects, projects.c.id == buildings.c.project_id)
            .where(
                projects.c.code == parts[0], buildings.c.code == parts[1], units.c.code == parts[2]
            )
        )
        row = crm.db.execute(stmt).first()
    if row is None:
        raise NotFound(f"unit {ref!r} not found")
    return row


def building_path(crm: Any, building_id: int) -> str:
    row = crm.db.execute(
        select(projects.c.code, buildings.c.code.label("b"))
        .join(buildings, buildings.c.project_id == projects.c.id)
        .where(buildings.c.id == building_id)
    ).one()
    return f"{row.code}/{row.b}"


def unit_path(crm: Any, unit_id: int) -> str:
    row = crm.db.execute(
        select(units.c.building_id, units.c.code).where(units.c.id == unit_id)
    ).one()
    return f"{building_path(crm, row.building_id)}/{row.code}"


def team_row(crm: Any, ref: Any) -> Any:
    cond = teams.c.id == int(ref) if _is_id(ref) else teams.c.code == str(ref).strip()
    row = crm.db.execute(select(teams).where(cond)).first()
    if row is None:
        raise NotFound(f"maintenance team {ref!r} not found")
    return row


# -- projects, buildings, units ------------------------------------------------------------
def add_project(
    crm: Any, code: str, name: str, *, city: str | None = None, design_life_years: int | None = None
) -> dict[str, Any]:
    with crm.transaction(command="real-estate project add"):
        code = _code(code, "project code")
        if design_life_years is not None and design_life_years < 1:
            raise ValidationError(f"design life {design_life_years}: at least 1 year")
        if crm.db.execute(select(projects.c.id).where(projects.c.code == code)).first():
            raise Conflict(f"project {code!r} already exists")
        res = crm.db.execute(
            projects.insert().values(
                code=code,
                name=_name(name, "project name"),
                city=_name(city, "city", required=False),
                design_life_years=design_life_years,
                created_at=crm.now(),
            )
        )
        return project_dict(
            crm.db.execute(
                select(projects).where(projects.c.id == res.inserted_primary_key[0])
            ).one()
        )


def project_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "code": row.code,
        "name": row.name,
        "city": row.city,
        "design_life_years": row.design_life_years,
    }


def list_projects(crm: Any) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        n_b = (
            select(buildings.c.project_id, func.count().label("n"))
            .group_by(buildings.c.project_id)
            .subquery()
        )
        n_u = (
            select(buildings.c.project_id, func.count().label("n"))
            .join(units, units.c.building_id == buildings.c.id)
            .group_by(buildings.c.project_id)
            .subquery()
        )
        stmt = (
            select(projects, n_b.c.n.label("buildings"), n_u.c.n.label("units"))
            .outerjoin(n_b, n_b.c.project_id == projects.c.id)
            .outerjoin(n_u, n_u.c.project_id == projects.c.id)
            .order_by(projects.c.code)
        )
        return [
            project_dict(r) | {"buildings": r.buildings or 0, "units": r.units or 0}
            for r in crm.db.execute(stmt)
        ]


def add_building(
    crm: Any,
    project: Any,
    code: str,
    *,
    name: str | None = None,
    handover_at: dt.datetime | None = None,
) -> dict[str, Any]:
    with crm.transaction(command="real-estate building add"):
        p = project_row(crm, project)
        code = _code(code, "building code")
        clash = select(buildings.c.id).where(
            buildings.c.project_id == p.id, buildings.c.code == code
        )
        if crm.db.execute(clash).first():
            raise Conflict(f"building {p.code}/{code} already exists")
        res = crm.db.execute(
            buildings.insert().values(
                project_id=p.id,
                code=code,
                name=_name(name, "building name", required=False),
                handover_at=handover_at,
            )
        )
        return {
            "id": res.inserted_primary_key[0],
            "path": f"{p.code}/{code}",
            "project": p.code,
            "code": code,
            "name": name,
            "handover_at": handover_at,
        }


def list_buildings(crm: Any, project: Any = None) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        n_u = (
            select(units.c.building_id, func.count().label("n"))
            .group_by(units.c.building_id)
            .subquery()
        )
        stmt = (
            select(buildings, projects.c.code.label("project"), n_u.c.n.label("units"))
            .join(projects, projects.c.id == buildings.c.project_id)
            .outerjoin(n_u, n_u.c.building_id == buildings.c.id)
            .order_by(projects.c.code, buildings.c.code)
        )
        if project is not None:
            stmt = stmt.where(buildings.c.project_id == project_row(crm, project).id)
        return [
            {
                "id": r.id,
                "path": f"{r.project}/{r.code}",
                "project": r.project,
                "code": r.code,
                "name": r.name,
                "handover_at": r.handover_at,
                "units": r.units or 0,
            }
            for r in crm.db.execute(stmt)
        ]


def add_unit(
    crm: Any, building: Any, code: str, *, handover_at: dt.datetime | None = None
) -> dict[str, Any]:
    with crm.transaction(command="real-estate unit add"):
        b = building_row(crm, building)
        code = _code(code, "unit code")
        clash = select(units.c.id).where(units.c.building_id == b.id, units.c.code == code)
        if crm.db.execute(clash).first():
            raise Conflict(f"unit {building_path(crm, b.id)}/{code} already exists")
        res = crm.db.execute(
            units.insert().values(building_id=b.id, code=code, handover_at=handover_at)
        )
        return unit_dict(crm, res.inserted_primary_key[0])


def unit_dict(crm: Any, unit_id: int) -> dict[str, Any]:
    u = crm.db.execute(select(units).where(units.c.id == unit_id)).one()
    return {
        "id": u.id,
        "path": unit_path(crm, u.id),
        "code": u.code,
        "building_id": u.building_id,
        "handover_at": u.handover_at,
    }


def list_units(crm: Any, building: Any = None) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        stmt = (
            select(units, buildings.c.code.label("b"), projects.c.code.label("p"))
            .join(buildings, buildings.c.id == units.c.building_id)
            .join(projects, projects.c.id == buildings.c.project_id)
            .order_by(projects.c.code, buildings.c.code, units.c.code)
        )
        if building is not None:
            stmt = stmt.where(units.c.building_id == building_row(crm, building).id)
        return [
            {"id": r.id, "path": f"{r.p}/{r.b}/{r.code}", "handover_at": r.handover_at}
            for r in crm.db.execute(stmt)
        ]


def set_handover(crm: Any, unit: Any, at: dt.datetime) -> dict[str, Any]:
    """Record the unit's handover; its current owners and tenants see it on their timeline."""
    with crm.transaction(command="real-estate unit handover"):
        u = unit_row(crm, unit)
        crm.db.execute(update(units).where(units.c.id == u.id).values(handover_at=at))
        path = unit_path(crm, u.id)
        for link in crm.db.execute(
            select(unit_owners).where(unit_owners.c.unit_id == u.id, unit_owners.c.until.is_(None))
        ).all():
            crm.records.add_timeline_entry(
                link.customer_id,
                "real_estate.handover",
                f"unit {path} handed over on {at:%Y-%m-%d}",
                at=min(at, crm.now()),
                data={"unit_id": u.id},
                source=NAME,
            )
        return unit_dict(crm, u.id)


# -- owners, co-owners, tenants, buyers ------------------------------------------------------
def add_owner(
    crm: Any,
    unit: Any,
    customer: Any,
    *,
    role: str = "owner",
    since: dt.datetime | None = None,
    sales: Any = None,
) -> dict[str, Any]:
    """Link a customer to a unit as owner, co-owner or tenant. A unit has at most
    one current owner (co-owners are added beside them). ``sales`` names the
    sales staff who follow the buyer up until handover (a core ``sales``
    relationship, which also lets them see the customer)."""
    with crm.transaction(command="real-estate owner add"):
        if role not in ROLES:
            raise ValidationError(f"role {role!r}: expected one of {', '.join(ROLES)}")
        u = unit_row(crm, unit)
        c = crm.customers.get(customer)
        path = unit_path(crm, u.id)
        # the unit's current links, whoever may see them: yes or no, never the rows
        if crm.db.exists_globally(unit_owners, unit_id=u.id, customer_id=c.id, until=None):
            raise Conflict(f"customer {c.id} is already linked to unit {path}")
        if role == "owner" and crm.db.exists_globally(
            unit_owners, unit_id=u.id, role="owner", until=None
        ):
            raise Conflict(
                f"unit {path} already has an owner; add this customer as co-owner, "
                "or end the current ownership first"
            )
        when = since or crm.now()
        res = crm.db.execute(
            unit_owners.insert().values(unit_id=u.id, customer_id=c.id, role=role, since=when)
        )
        crm.records.add_timeline_entry(
            c,
            "real_estate.unit",
            f"{role} of unit {path}",
            at=when,
            data={"unit_id": u.id, "role": role},
            source=NAME,
        )
        if sales is not None:
            assign_sales(crm, c, sales)
        return {
            "id": res.inserted_primary_key[0],
            "unit": path,
            "customer_id": c.id,
            "role": role,
            "since": when,
        }


def assign_sales(crm: Any, customer: Any, sales: Any) -> dict[str, Any]:
    """Make ``sales`` the buyer's sales contact (idempotent)."""
    with crm.transaction(command="real-estate buyer assign"):
        c = crm.customers.get(customer)
        s = crm.staff.get(sales)
        have = [r for r in crm.customers.relationships(c) if r.kind == "sales" and r.to_staff_id == s.id]
        rel = have[0] if have else crm.customers.add_relationship("sales", c, to_staff=s)
        return {"customer_id": c.id, "staff": s.key, "relationship_id": rel.id}


def end_owner(crm: Any, link_id: int, *, at: dt.datetime | None = None) -> dict[str, Any]:
    with crm.transaction(command="real-estate owner end"):
        row = crm.db.execute(select(unit_owners).where(unit_owners.c.id == link_id)).first()
        if row is None or row.until is not None:
            raise NotFound(f"current unit link {link_id} not found")
        when = at or crm.now()
        if when < row.since:
            raise ValidationError(
                f"unit link {link_id}: the end {when} is before its start {row.since}"
            )
        crm.db.execute(update(unit_owners).where(unit_owners.c.id == row.id).values(until=when))
        path = unit_path(crm, row.unit_id)
        crm.records.add_timeline_entry(
            row.customer_id,
            "real_estate.unit",
            f"no longer {row.role} of unit {path}",
            at=when,
            data={"unit_id": row.unit_id, "role": row.role},
            source=NAME,
        )
        return {"id": row.id, "unit": path, "customer_id": row.customer_id, "until": when}


def list_owners(
    crm: Any, *, unit: Any = None, customer: Any = None, current: bool = True
) -> list[dict[str, Any]]:
    from crmcore.schema import live_customers

    with crm.transaction(write=False):
        stmt = (
            select(unit_owners, live_customers.c.name, live_customers.c.phone, units.c.handover_at)
            .join(live_customers, live_customers.c.id == unit_owners.c.customer_id)
            .join(units, units.c.id == unit_owners.c.unit_id)
            .order_by(unit_owners.c.unit_id, unit_owners.c.id)
        )
        if unit is not None:
            stmt = stmt.where(unit_owners.c.unit_id == unit_row(crm, unit).id)
        if customer is not None:
            stmt = stmt.where(unit_owners.c.customer_id == crm.customers.get(customer).id)
        if current:
            stmt = stmt.where(unit_owners.c.until.is_(None))
        return [
            {
                "id": r.id,
                "unit": unit_path(crm, r.unit_id),
                "customer_id": r.customer_id,
                "name": r.name,
                "phone": show_phone(crm, r.phone),
                "role": r.role,
                "since": r.since,
                "until": r.until,
                "handover_at": r.handover_at,
            }
            for r in crm.db.execute(stmt)
        ]


def list_buyers(crm: Any, *, at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Current owners and co-owners of units not handed over yet, with their sales staff."""
    from crmcore.schema import live_customers

    with crm.transaction(write=False):
        when = at or crm.now()
        stmt = (
            select(unit_owners, live_customers.c.name, units.c.handover_at, staff.c.key.label("sales"))
            .join(live_customers, live_customers.c.id == unit_owners.c.customer_id)
            .join(units, units.c.id == unit_owners.c.unit_id)
            .outerjoin(
                relationships,
                and_(
                    relationships.c.from_customer_id == unit_owners.c.customer_id,
                    relationships.c.kind == "sales",
                    relationships.c.active.is_(True),
                ),
            )
            .outerjoin(staff, staff.c.id == relationships.c.to_staff_id)
            .where(
                unit_owners.c.until.is_(None),
                unit_owners.c.role.in_(BUYER_ROLES),
                or_(units.c.handover_at.is_(None), units.c.handover_at > when),
            )
            .order_by(units.c.handover_at, unit_owners.c.id)
        )
        return [
            {
                "link_id": r.id,
                "unit": unit_path(crm, r.unit_id),
                "customer_id": r.customer_id,
                "name": r.name,
                "role": r.role,
                "since": r.since,
                "handover_at": r.handover_at,
                "sales": r.sales,
            }
            for r in crm.db.execute(stmt)
        ]


# -- maintenance teams ---------------------------------------------------------------
def add_team(crm: Any, code: str, name: str, *, leader: Any) -> dict[str, Any]:
    with crm.transaction(command="real-estate team add"):
        code = _code(code, "team code")
        lead = crm.staff.get(leader)
        if not lead.active:
            raise ValidationError(f"team leader {lead.key!r} has left")
        if crm.db.execute(select(teams.c.id).where(teams.c.code == code)).first():
            raise Conflict(f"maintenance team {code!r} already exists")
        res = crm.db.execute(
            teams.insert().values(code=code, name=_name(name, "team name"), leader_id=lead.id)
        )
        return {"id": res.inserted_primary_key[0], "code": code, "name": name, "leader": lead.key}


def cover(crm: Any, team: Any, category: str, *, building: Any = None) -> dict[str, Any]:
    """Team ``team`` takes requests of ``category`` in ``building`` (or, without a
    building, in every building no other team covers for that category)."""
    with crm.transaction(command="real-estate team cover"):
        t = team_row(crm, team)
        cats = settings(crm).categories
        if category not in cats:
            raise ValidationError(f"category {category!r}: expected one of {', '.join(cats)}")
        b = building_row(crm, building) if building is not None else None
        where = "every building" if b is None else f"building {building_path(crm, b.id)}"
        same = select(team_coverage.c.team_id).where(
            team_coverage.c.category == category,
            team_coverage.c.building_id.is_(None)
            if b is None
            else team_coverage.c.building_id == b.id,
        )
        other = crm.db.execute(same).first()
        if other is not None:
            holder = crm.db.execute(select(teams.c.code).where(teams.c.id == other.team_id)).one()
            raise Conflict(f"{category} in {where} is already covered by team {holder.code!r}")
        crm.db.execute(
            team_coverage.insert().values(
                team_id=t.id, category=category, building_id=b.id if b is not None else None
            )
        )
        return {
            "team": t.code,
            "category": category,
            "building": None if b is None else building_path(crm, b.id),
        }


def team_for(crm: Any, category: str, building_id: int) -> Any:
    """The team covering ``category`` in the building: a building-specific cover
    wins over an every-building cover."""
    stmt = (
        select(teams)
        .join(team_coverage, team_coverage.c.team_id == teams.c.id)
        .where(
            team_coverage.c.category == category,
            or_(team_coverage.c.building_id == building_id, team_coverage.c.building_id.is_(None)),
        )
        .order_by(team_coverage.c.building_id.is_(None), teams.c.id)
        .limit(1)
    )
    return crm.db.execute(stmt).first()


def list_teams(crm: Any) -> list[dict[str, Any]]:
    with crm.transaction(write=False):
        out = []
        for t in crm.db.execute(
            select(teams, staff.c.key.label("leader"))
            .join(staff, staff.c.id == teams.c.leader_id)
            .order_by(teams.c.code)
        ):
            covers = [
                {
                    "category": c.category,
                    "building": None
                    if c.building_id is None
                    else building_path(crm, c.building_id),
                }
                for c in crm.db.execute(
                    select(team_coverage)
                    .where(team_coverage.c.team_id == t.id)
                    .order_by(team_coverage.c.category, team_coverage.c.id)
                )
            ]
            out.append(
                {"id": t.id, "code": t.code, "name": t.name, "leader": t.leader, "covers": covers}
            )
        return out
