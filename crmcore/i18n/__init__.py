"""Languages: gettext catalogues for the core and each plugin, the locale in use,
and numbers, money and dates formatted for it.

Source strings are English (``en``); each translation is a gettext catalogue
(``locale/<LOCALE>/LC_MESSAGES/<domain>.po``, compiled to ``.mo`` beside it by
``python -m crmcore.i18n.compile``). The core's domain is ``crmcore``; a plugin
names its catalogue directory in ``PluginInfo(translations=...)`` and its
domain is the plugin's name. zh_CN and en are complete for the core and the
bundled plugins (a test checks every marked string).

The locale of a piece of work is a context variable: ``with i18n.use("zh_CN"):``
sets it for the CLI command, the HTTP request or the job; outside one it is
``[crm] locale`` of the deployment, else English. Mark text with :func:`gettext`
(or ``_``) where it is shown and with :func:`N_` where it is declared and
translated later (message templates).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext as gettext_mod
from collections.abc import Iterator
from pathlib import Path

SOURCE_LOCALE = "en"
LOCALES = ("en", "zh_CN")
CORE_DOMAIN = "crmcore"
CORE_CATALOGUES = Path(__file__).parent / "locale"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("crm_locale", default="en")
_domains: dict[str, Path] = {CORE_DOMAIN: CORE_CATALOGUES}

# how people write the locales crmcore has (lower case, "-" or "_")
_ALIASES = {
    "en": "en",
    "zh": "zh_CN",
    "zh_cn": "zh_CN",
    "zh_hans": "zh_CN",
    "zh_hans_cn": "zh_CN",
    "zh_sg": "zh_CN",
}


def normalise(tag: str | None) -> str | None:
    """The crmcore locale a language tag means (``zh-CN``, ``zh_Hans``, ``zh`` ->
    ``zh_CN``; ``en-GB`` -> ``en``), or None when crmcore has no such language."""
    if not tag:
        return None
    key = tag.strip().replace("-", "_").lower()
    if key in _ALIASES:
        return _ALIASES[key]
    base = key.split("_", 1)[0]
    return "en" if base == "en" else None


def negotiate(accept_language: str | None, default: str = SOURCE_LOCALE) -> str:
    """The best of crmcore's locales for an HTTP ``Accept-Language`` header
    (quality values honoured, unknown languages skipped), else ``default``."""
    offers: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        locale = normalise(tag)
        if locale is not None and quality > 0:
            offers.append((-quality, position, locale))
    return sorted(offers)[0][2] if offers else default


def current() -> str:
    """The locale of the work in hand."""
    return _current.get()


@contextlib.contextmanager
def use(locale: str | None) -> Iterator[str]:
    """Run the block in ``locale`` (any tag :func:`normalise` knows; unknown or
    None keeps the current one)."""
    chosen = normalise(locale) or current()
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


def set_default(locale: str | None) -> None:
    """Make ``locale`` the locale of this context from now on (a process's
    configured ``[crm] locale``)."""
    chosen = normalise(locale)
    if chosen is not None:
        _current.set(chosen)


def register_domain(domain: str, directory: str | Path) -> None:
    """Where the catalogues of ``domain`` (a plugin's name) live:
    ``directory/<LOCALE>/LC_MESSAGES/<domain>.mo``."""
    _domains[domain] = Path(directory)
    catalogue.cache_clear()


@functools.lru_cache(maxsize=256)
def catalogue(domain: str, locale: str) -> gettext_mod.NullTranslations:
    """The compiled catalogue of ``domain`` in ``locale`` (the source strings
    themselves for English, or where no catalogue is installed)."""
    directory = _domains.get(domain)
    if locale == SOURCE_LOCALE or directory is None:
        return gettext_mod.NullTranslations()
    try:
        return gettext_mod.translation(domain, localedir=str(directory), languages=[locale])
    except OSError:
        return gettext_mod.NullTranslations()


def gettext(message: str, *, domain: str = CORE_DOMAIN, locale: str | None = None) -> str:
    """``message`` in ``locale`` (default: the current one)."""
    return catalogue(domain, locale or current()).gettext(message)


def ngettext(
    singular: str,
    plural: str,
    n: int,
    *,
    domain: str = CORE_DOMAIN,
    locale: str | None = None,
) -> str:
    """The singular or plural form for ``n`` in ``locale`` (Chinese has one form)."""
    return catalogue(domain, locale or current()).ngettext(singular, plural, n)


def N_(message: str) -> str:  # noqa: N802  (the gettext convention)
    """Mark ``message`` for translation where it is declared; translate it where
    it is shown (``gettext(text, domain=...)``)."""
    return message


_ = gettext


def format_money(cents: int, locale: str | None = None) -> str:
    """An amount in yuan with two decimals, written for ``locale``
    (``¥1,234.50`` in both crmcore locales; the symbol is the currency's)."""
    from babel.numbers import format_currency

    return format_currency(cents / 100, "CNY", locale=_babel(locale))


def format_number(value: float, locale: str | None = None) -> str:
    """A number with the locale's grouping and decimal signs."""
    from babel.numbers import format_decimal

    return format_decimal(value, locale=_babel(locale))


def format_date(value: object, locale: str | None = None) -> str:
    """A date (or date-time's date) in the locale's medium form
    (``Jun 15, 2026`` / ``2026年6月15日``)."""
    from babel.dates import format_date as babel_date

    return babel_date(value, format="medium", locale=_babel(locale))  # type: ignore[arg-type]


def format_datetime(value: object, locale: str | None = None) -> str:
    """A date-time in the locale's medium form, in the zone it is given in."""
    from babel.dates import format_datetime as babel_datetime

    return babel_datetime(value, format="medium", locale=_babel(locale))  # type: ignore[arg-type]


def _babel(locale: str | None) -> str:
    return {"en": "en_US", "zh_CN": "zh_Hans_CN"}[locale or current()]


__all__ = [
    "LOCALES",
    "N_",
    "SOURCE_LOCALE",
    "catalogue",
    "current",
    "format_date",
    "format_datetime",
    "format_money",
    "format_number",
    "gettext",
    "negotiate",
    "ngettext",
    "normalise",
    "register_domain",
    "set_default",
    "use",
]
