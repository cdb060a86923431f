"""Satisfaction scores parsed from a customer's SMS reply.

The scale is 1..5 (5 = very satisfied, 非常满意). Words win over digits; the
longest phrase is tried first so 非常不满意 is never read as 满意:

====  ==============================================  ==========================
score Chinese                                         English
====  ==============================================  ==========================
5     非常满意, 很满意, 十分满意, 特别满意, 满分         very satisfied, excellent
4     满意, 比较满意, 还不错, 不错, 好                  satisfied, good
3     一般, 还行, 基本满意                              neutral, average, ok
2     不满意, 不太满意                                  dissatisfied, unsatisfied, poor
1     非常不满意, 很不满意, 极不满意, 差                 very dissatisfied, terrible
====  ==============================================  ==========================

Failing words, a lone digit 1..5 (not part of a longer number, e.g. "5",
"评分5", "5分") is the score. Otherwise there is no score (None).
"""

from __future__ import annotations

import re

_PHRASES: list[tuple[str, int]] = [
    ("非常不满意", 1),
    ("很不满意", 1),
    ("极不满意", 1),
    ("十分不满意", 1),
    ("very dissatisfied", 1),
    ("very unsatisfied", 1),
    ("terrible", 1),
    ("不太满意", 2),
    ("不满意", 2),
    ("dissatisfied", 2),
    ("unsatisfied", 2),
    ("poor", 2),
    ("基本满意", 3),
    ("非常满意", 5),
    ("很满意", 5),
    ("十分满意", 5),
    ("特别满意", 5),
    ("满分", 5),
    ("very satisfied", 5),
    ("excellent", 5),
    ("比较满意", 4),
    ("满意", 4),
    ("satisfied", 4),
    ("还不错", 4),
    ("不错", 4),
    ("good", 4),
    ("一般", 3),
    ("还行", 3),
    ("neutral", 3),
    ("average", 3),
]
_PHRASES.sort(key=lambda p: -len(p[0]))  # longest first
_DIGIT = re.compile(r"(?<![0-9])([1-5])(?![0-9])")
_WEAK = [("差", 1), ("好", 4), ("ok", 3)]  # single characters: only when nothing else matched

LABELS = {
    5: "very satisfied",
    4: "satisfied",
    3: "neutral",
    2: "dissatisfied",
    1: "very dissatisfied",
}


def parse_score(text: str) -> int | None:
    """The 1..5 satisfaction score in ``text``, or None."""
    low = (text or "").lower()
    for phrase, score in _PHRASES:
        if phrase in low:
            return score
    m = _DIGIT.search(low)
    if m:
        return int(m.group(1))
    for word, score in _WEAK:
        if re.search(rf"\b{word}\b", low) if word.isascii() else word in low:
            return score
    return None
