"""Languages: every marked string of the core and the bundled plugins is translated
into Chinese, the compiled catalogues are current, locales are negotiated, and
customer messages go out in the deployment's message language."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crmcore import i18n
from crmcore.i18n import compile as compile_mod

pytest.importorskip("babel", reason="Babel (in the test extra) reads the catalogues")

from babel.messages.extract import extract_from_dir  # noqa: E402
from babel.messages.pofile import read_po  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
# domain -> (source directory, catalogue directory)
DOMAINS = {
    "crmcore": (ROOT / "crmcore", ROOT / "crmcore" / "i18n" / "locale"),
    **{
        name: (
            ROOT / "plugins" / name / f"crm_{name}",
            ROOT / "plugins" / name / f"crm_{name}" / "locale",
        )
        for name in ("retail", "utility", "insurance", "real_estate")
    },
}
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def _marked(source: Path) -> set[str]:
    found: set[str] = set()
    for _, _, message, _, _ in extract_from_dir(
        str(source), method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def _catalogue(directory: Path, domain: str) -> dict[str, str]:
    po = directory / "zh_CN" / "LC_MESSAGES" / f"{domain}.po"
    if not po.exists():
        return {}
    with po.open("rb") as f:
        catalog = read_po(f)
    return {m.id: m.string for m in catalog if m.id and isinstance(m.id, str)}


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_every_marked_string_has_a_chinese_translation_and_nothing_stale(domain: str) -> None:
    source, catalogues = DOMAINS[domain]
    marked = _marked(source)
    zh = _catalogue(catalogues, domain)
    assert sorted(m for m in marked if not zh.get(m)) == [], f"untranslated in {domain}"
    assert sorted(set(zh) - marked) == [], f"translations of strings no longer in {domain}"
    for src, text in zh.items():
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(src)), src


def test_the_compiled_catalogues_are_current() -> None:
    """``python -m crmcore.i18n.compile`` was run after the last edit of a .po: the
    compiled catalogue holds exactly the .po's translations."""
    from babel.messages.mofile import read_mo

    pos = list(compile_mod.catalogues(compile_mod.default_roots()))
    assert pos
    for po in pos:
        mo = po.with_suffix(".mo")
        assert mo.exists(), f"{mo} is missing: run python -m crmcore.i18n.compile"
        with po.open("rb") as f:
            want = {m.id: m.string for m in read_po(f) if m.id}
        with mo.open("rb") as f:
            have = {m.id: m.string for m in read_mo(f) if m.id}
        assert have == want, f"{mo} is stale: run python -m crmcore.i18n.compile"


@pytest.mark.parametrize(
    ("tag", "locale"),
    [("zh-CN", "zh_CN"), ("zh_Hans", "zh_CN"), ("zh", "zh_CN"), ("en-GB", "en"), ("fr", None)],
)
def test_language_tags_map_to_the_locales_crmcore_has(tag: str, locale: str | None) -> None:
    assert i18n.normalise(tag) == locale


def test_accept_language_picks_the_best_locale_it_has() -> None:
    assert i18n.negotiate("fr-FR, zh-CN;q=0.8, en;q=0.5") == "zh_CN"
    assert i18n.negotiate("en-US,en;q=0.9,zh;q=0.1") == "en"
    assert i18n.negotiate("fr, de;q=0.5", default="zh_CN") == "zh_CN"
    assert i18n.negotiate(None) == "en"


def test_the_locale_of_the_work_in_hand_is_a_context() -> None:
    assert i18n.current() == "en"
    with i18n.use("zh-CN"):
        assert i18n.current() == "zh_CN"
        with i18n.use("nonsense"):  # unknown: unchanged
            assert i18n.current() == "zh_CN"
    assert i18n.current() == "en"


def test_money_numbers_and_dates_follow_the_locale() -> None:
    import datetime as dt

    assert i18n.format_money(123450, "zh_CN") == "¥1,234.50"
    assert i18n.format_money(5, "en").endswith("0.05")
    assert i18n.format_number(1234567.5, "en") == "1,234,567.5"
    assert i18n.format_date(dt.date(2026, 6, 15), "zh_CN") == "2026年6月15日"
    assert i18n.format_date(dt.date(2026, 6, 15), "en") == "Jun 15, 2026"
