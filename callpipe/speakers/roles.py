"""Which diarized voice is the agent: what each says, and who speaks first.

Cues (accent-folded, Spanish): the agent greets and names the company ("le atiende", "en qué
puedo ayudarle"), asks for the id or the account ("me indica su documento", "su DNI") and
closes ("algo más"); the customer asks for things about *their* account ("quiero", "necesito",
"mi tarjeta"). On an inbound call the agent answers first; on an outbound call the customer
answers the agent's call. The first speaker counts as one cue.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

AGENT_CUES = (
    "le atiende",
    "le habla",
    "mi nombre es",
    "puedo ayudar",
    "le puedo ayudar",
    "puedo servir",
    "gracias por llamar",
    "bienvenid",
    "digame",
    "me indica",
    "me facilita",
    "me confirma",
    "me dice",
    "su documento",
    "su dni",
    "su nie",
    "numero de cliente",
    "su numero",
    "su cuenta",
    "un momento",
    "ahora mismo lo",
    "le paso",
    "algo mas",
    "le enviamos",
    "le enviaremos",
    "le devolvemos",
    "queda",
    "lo siento",
    "disculpe las molestias",
    "por supuesto",
    "entendido",
)
CUSTOMER_CUES = (
    "quiero",
    "necesito",
    "me han",
    "mi cuenta",
    "mi tarjeta",
    "mi factura",
    "mi contrato",
    "mi correo",
    "mi linea",
    "llamo por",
    "llamaba",
    "tengo un problema",
    "no me funciona",
    "me cobran",
    "me han cobrado",
    "estoy harto",
    "sigo esperando",
)


def fold(text: str) -> str:
    """Lower case without accents or punctuation, single-spaced."""
    stripped = unicodedata.normalize("NFKD", text.lower())
    stripped = "".join(c for c in stripped if not unicodedata.combining(c))
    return " " + " ".join(re.sub(r"[^\w\s]", " ", stripped).split()) + " "


def cue_score(text: str) -> int:
    """Agent cues minus customer cues in ``text``."""
    folded = fold(text)
    agent = sum(folded.count(" " + cue) for cue in AGENT_CUES)
    customer = sum(folded.count(" " + cue) for cue in CUSTOMER_CUES)
    return agent - customer


def assign_roles(
    tokens: Sequence[str], labels: Sequence[int], direction: str | None = "inbound"
) -> tuple[dict[int, str], float]:
    """Map the voices 0 and 1 to ``agent``/``customer``; returns the mapping and its confidence.

    Voice 0 is the agent when its cues minus voice 1's (plus one for answering first on an
    inbound call, or for being answered on an outbound one) are positive; on a tie, the voice that
    spoke first is the agent of an inbound call. Confidence grows with the margin (0.5 on a tie).
    """
    texts = {0: [], 1: []}
    for token, label in zip(tokens, labels, strict=True):
        if label in texts:
            texts[label].append(token)
    margin = cue_score(" ".join(texts[0])) - cue_score(" ".join(texts[1]))
    first = next((label for label in labels if label in (0, 1)), 0)
    outbound = (direction or "inbound").lower() == "outbound"
    first_is_agent = not outbound
    margin += (1 if first == 0 else -1) * (1 if first_is_agent else -1)
    agent = 0 if margin > 0 else 1 if margin < 0 else (first if first_is_agent else 1 - first)
    confidence = round(min(0.99, 0.5 + 0.15 * abs(margin)), 3)
    return {agent: "agent", 1 - agent: "customer"}, confidence
