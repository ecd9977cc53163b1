"""Which Latin American country a transcript sounds like: for 10-digit phones, "pesos" and "$".

Spanish numbers have nine digits and Spanish money is euros, so a call from Mexico, Colombia,
Argentina, Chile or Peru is told by the words it uses: a country, a demonym, a big city, a peso
code or regional words ("celular", "plata", "lada"). :func:`text_region` names the first country
said; :func:`latam_text` tells whether the call sounds Latin American at all. Both are read once
per transcript (``Doc.region``, ``Doc.latam``).
"""

from __future__ import annotations

from collections.abc import Sequence


def words(text: str) -> frozenset[str]:
    """The space-separated words of ``text`` as a set (for word lists)."""
    return frozenset(text.split())

_REGION_WORDS = {
    "MX": words("mexico mexicano mexicana mexicanos cdmx monterrey guadalajara puebla tijuana mxn lada"),
    "CO": words("colombia colombiano colombiana colombianos bogota medellin cali barranquilla cop"),
    "AR": words("argentina argentino argentinos ars"),
    "CL": words("chile chileno chilena chilenos valparaiso clp"),
    "PE": words("peru peruano peruana peruanos lima arequipa soles pen"),
}
_REGION_PAIRS = {("buenos", "aires"): "AR", ("santiago", "chile"): "CL"}
LATAM_WORDS = words("celular pesos peso pesitos plata centavos") | frozenset().union(*_REGION_WORDS.values())
"""Words that make a call sound Latin American (countries, cities, codes, regional words)."""

PESO_CODES = {"MX": "MXN", "CO": "COP", "AR": "ARS", "CL": "CLP"}
"""The peso of each country that has one."""

DEFAULT_REGION = "MX"
"""Region of "pesos" or a 10-digit phone when no country is named."""


def text_region(norms: Sequence[str]) -> str | None:
    """The country (ISO code) of the first country word among the normalised ``norms``, or None."""
    for k, word in enumerate(norms):
        for region, names in _REGION_WORDS.items():
            if word in names:
                return region
        if k + 1 < len(norms) and (region := _REGION_PAIRS.get((word, norms[k + 1]))):
            return region
    return None


def latam_text(norms: Sequence[str]) -> bool:
    """True when a word of :data:`LATAM_WORDS` (or "buenos aires") occurs among ``norms``."""
    return not LATAM_WORDS.isdisjoint(norms) or text_region(norms) is not None
