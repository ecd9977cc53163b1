"""How a call ended, read from the conversation: resolved, escalated, abandoned or transferred.

Offline and rule-based: phrase cues (regular expressions over *folded* text: lower case, no
accents, no punctuation; see :func:`callpipe.analysis.spoken.fold`) written for call-center
Spanish from Spain and Latin America (usted, tú and vos forms). Each cue votes for one outcome
with a weight; a vote counts more the nearer the end of the call it is (the last turns carry the
outcome: a transfer announced, a ticket or technician visit opened for later, the line dropping or
the customer hanging up, the problem confirmed fixed). A short call that ends with nothing settled
counts as abandoned. No cue at all gives ``unknown`` with confidence 0.

The cues were written from general knowledge of how such calls end, never from an evaluation set;
they were checked on ``callpipe/data/outcome_dev.jsonl`` (40 calls written for development).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from callpipe import schema
from callpipe.analysis.spoken import fold

Label = schema.Outcome

_V = r"(?:le|te|la|lo|los|las|les)"
"""Object pronouns of usted, tú and vos (``le paso``, ``te paso``, ``la paso``)."""

_CUES: dict[Label, list[tuple[str, float, str]]] = {
    Label.TRANSFERRED: [
        (
            rf"\b{_V} (?:paso|transfiero|comunico|derivo|pongo|redirijo|traslado|enlazo|conecto) "
            r"(?:ahora |ahora mismo |ya |enseguida |en este momento |ahorita )?(?:con|a|al|la llamada)\b",
            3.0,
            "handing over",
        ),
        (
            rf"\b(?:voy|vamos) a (?:pasar{_V}|transferir{_V}?|comunicar{_V}|derivar{_V}?|redirigir{_V}?|"
            rf"trasladar{_V}?|poner{_V} con)\b",
            3.0,
            "going to hand over",
        ),
        (
            rf"\b(?:{_V} )?(?:paso|pasamos|transfiero|derivo|derivamos) (?:su|tu) llamada\b",
            3.0,
            "call handed over",
        ),
        (
            r"\b(?:transfiero|transferimos|derivo|derivamos|paso|pasamos) "
            r"(?:la|su|tu) (?:llamada|consulta)\b",
            3.0,
            "call handed over",
        ),
        (r"\btransfer(?:encia de llamada|ido|ida|ir|imos)\b", 1.5, "transfer"),
        (
            rf"\b{_V} (?:paso|transfiero|derivo|enlazo|conecto)(?: ahora| ahora mismo| enseguida| ya)?"
            r"(?: no (?:cuelgue|cuelgues|cortes|corte|se desconecte|te desconectes|se retire)|$)",
            2.5,
            "handing over now",
        ),
        (
            r"\b(?:no (?:cuelgue|cuelgues|colgues|se retire|te retires|cortes|se desconecte|te desconectes)|"
            r"permanezca en linea|aguarde en linea)\b",
            1.0,
            "stay on the line",
        ),
        (
            r"\b(?:un|una|mi) (?:companero|companera|colega|especialista|agente)s? (?:de|del) "
            r"(?:departamento|area|servicio|equipo)\b",
            1.5,
            "colleague of another department",
        ),
        (
            r"\b(?:eso|ese tema|esa consulta|esto) (?:lo|la) (?:lleva|llevan|gestiona|gestionan|ve|ven|"
            r"atiende|atienden) (?:otro|otra|el|la)\b",
            2.0,
            "another team handles it",
        ),
        (r"\b(?:ahora|ya) (?:le|te|la|lo) atiende\b", 2.0, "someone else takes the call"),
        (r"\bextension\b", 1.0, "extension"),
    ],
    Label.ESCALATED: [
        (
            r"\b(?:abro|abrimos|he abierto|hemos abierto|dejo abiert[oa]|le abro|te abro|"
            r"genero|generamos|he generado|registro|he registrado|tramito|he tramitado|levanto|levantamos|"
            r"he levantado|creo|he creado|le genero|te genero|radico|le radico|te cargo|le cargo|cargo|"
            r"voy a (?:levantar|abrir|generar|registrar|radicar|tramitar|cargar)(?: le| te)?|le tomo|tomo) "
            r"(?:un|una|el|la|su|tu) (?:incidencia|ticket|reclamacion|solicitud|caso|parte|aviso|reporte|"
            r"queja|orden|expediente|aclaracion|reclamo|averia|investigacion)\b",
            3.0,
            "ticket opened",
        ),
        (
            r"\b(?:numero|codigo) de (?:incidencia|ticket|reclamacion|caso|parte|aviso|reporte|seguimiento|"
            r"expediente|solicitud|radicado|orden|gestion|reclamo)\b",
            2.5,
            "ticket number",
        ),
        (r"\b(?:su|el|tu) (?:numero de )?(?:folio|radicado)\b", 2.5, "ticket number"),
        (
            r"\b(?:abro|abrimos|tomo nota de) (?:una|la|su) (?:investigacion|queja|reclamacion|incidencia)\b",
            2.5,
            "case opened",
        ),
        (
            r"\b(?:lo|la) (?:mandamos|enviamos|remitimos) (?:a|al) (?:la |el )?"
            r"(?:brigada|departamento|area|equipo|servicio|seccion)\b",
            2.0,
            "sent to another team",
        ),
        (
            r"\b(?:lo|la) tiene(?:n)? que (?:aprobar|revisar|autorizar|valorar|evaluar|estudiar)\b",
            2.0,
            "another team must approve",
        ),
        (r"\b(?:respuesta por escrito|le dara respuesta|le daran respuesta)\b", 2.0, "answer later"),
        (
            r"\bqueda (?:registrad[oa]|abiert[oa]|tramitad[oa]|pendiente|en revision|escalad[oa])\b",
            2.0,
            "left pending",
        ),
        (r"\b(?:un|el|una|la|nuestro|nuestra) tecnic[oa]s?\b", 2.0, "technician"),
        (r"\bvisita (?:tecnica|de un tecnico|del tecnico)\b", 2.5, "technician visit"),
        (r"\bescal(?:o|amos|ar|arlo|arla|ado|ada|aremos)\b", 3.0, "escalated"),
        (r"\b(?:se pondran?|se va a poner|se van a poner) en contacto\b", 2.5, "will contact you"),
        (
            r"\b(?:le|te) (?:llamaran|llamara|van a llamar|va a llamar|contactaran|contactara|"
            r"devolveran la llamada|devolvemos la llamada|llamamos|llamaremos|"
            r"daran respuesta|daremos respuesta|"
            r"respondera|responderan|informaran|informaremos|avisaremos|avisaran|enviaremos la respuesta|"
            r"notifican|notificaran|notificaremos|escribiremos|escribiran)\b",
            2.0,
            "callback later",
        ),
        (
            r"\ben (?:un plazo de |un maximo de |unas |menos de |hasta |un plazo de hasta )?(?:\d+|una o dos|"
            r"veinticuatro|cuarenta y ocho|cuarenta y cinco|setenta y dos|dos|tres|cinco|siete|ocho|"
            r"diez|quince|treinta) (?:horas|dias|dias habiles|dias laborables|semanas)\b",
            1.5,
            "deadline",
        ),
        (
            r"\b(?:lo|la) (?:revisaran|estudiaran|analizaran|valoraran|revisara|estudiara|analizara)\b",
            2.0,
            "another team will review",
        ),
        (
            r"\b(?:supervisor|supervisora|responsable|segundo nivel|backoffice|back office)\b",
            1.5,
            "supervisor",
        ),
        (
            r"\b(?:pendiente de|a la espera de) (?:revision|respuesta|resolucion|valoracion|aprobacion)\b",
            2.0,
            "awaiting review",
        ),
        (
            r"\bno (?:lo|la|se lo|te lo|se la) (?:puedo|podemos) (?:resolver|solucionar|arreglar|hacer) "
            r"(?:desde aqui|por telefono|ahora)\b",
            1.5,
            "cannot fix now",
        ),
    ],
    Label.ABANDONED: [
        (
            r"\b(?:se|me|nos) (?:ha |a )?(?:corta|corto|cortado|cayo|caido|cae|va|fue) "
            r"(?:la )?(?:llamada|linea|"
            r"comunicacion|senal)\b",
            3.0,
            "line dropped",
        ),
        (r"\bse (?:corta|corto|ha cortado|cae|cayo)\b", 2.5, "line dropped"),
        (r"\bno (?:le|te|lo|la|se) (?:oigo|escucho|entiendo nada)\b", 2.5, "cannot hear"),
        (
            r"\bno (?:consigo|logro|puedo) (?:oir|entender|escuchar)(?:le|te|lo|la)\b|\bno oigo nada\b",
            2.5,
            "cannot hear",
        ),
        (r"\b(?:me|nos) (?:oye|escucha|oyes|escuchas|oís|ois)\b", 1.0, "can you hear me"),
        (r"\b(?:sigue|sigues|esta|estas) (?:ahi|en linea|alli)\b", 2.0, "still there?"),
        (r"\b(?:hola|alo|alo) (?:hola|alo)\b", 1.5, "hello hello"),
        (r"\b(?:voy a|tengo que|me toca) colgar\b", 3.0, "customer hangs up"),
        (
            r"\b(?:cuelgo|te cuelgo|le cuelgo|colgo|ha colgado|han colgado|colgaron|cortaron|me cortaron)\b",
            3.0,
            "hung up",
        ),
        (
            r"\b(?:ya )?(?:llamare|llamo|vuelvo a llamar|volvere a llamar|marco|vuelvo a marcar)"
            r"(?: \w+){0,3}? (?:otro dia|en otro (?:momento|rato)|mas tarde|luego|manana|despues|"
            r"cuando (?:pueda|lo tenga|la tenga|los tenga|este))\b",
            2.5,
            "will call back",
        ),
        (
            r"\b(?:no tengo tiempo|no puedo esperar|no puedo seguir esperando|ahora no puedo|"
            r"dejalo|dejelo|dejalo asi|olvidelo|olvidalo|da igual|ya vere|no importa ya|me tengo que ir|"
            r"tengo que irme|(?:le|te|lo|la) tengo que dejar|"
            r"no tengo (?:toda la manana|todo el dia|toda la tarde)|"
            r"(?:mire|mira|oiga|bueno) paso|me voy(?! (?:a|al|de|fuera|en|con|para|unos|unas)\b))\b",
            2.0,
            "customer gives up",
        ),
        (r"\b(?:tanto tiempo|tanta espera|media hora) (?:esperando|en espera)\b", 1.0, "long wait"),
        (r"\bllevo \w+ (?:minutos|horas) (?:esperando|en espera|aqui)\b", 1.0, "long wait"),
        (
            r"\b(?:llamenos|llamanos|vuelva a llamar|vuelve a llamar|volve a llamar) "
            r"(?:cuando|mas tarde|luego|de nuevo|por favor)\b|"
            r"\b(?:le|les) (?:digo|dire|aviso) que (?:llame|llamen|vuelva a llamar)\b",
            2.0,
            "call again later",
        ),
        (
            r"\b(?:mala cobertura|sin cobertura|poca cobertura|se entrecorta|te entrecortas|se escucha mal|"
            r"se oye mal|entrecortad[oa]|mala senal|que senal)\b",
            2.0,
            "bad line",
        ),
        (
            r"\b(?:llamada finalizada|fin de la llamada|tono de colgado|pitido|se corta la llamada)\b",
            3.0,
            "call ended",
        ),
    ],
    Label.RESOLVED: [
        (
            r"\b(?:ya|ahora (?:si )?ya|ahora si) "
            r"(?:funciona|anda|va|me va|me funciona|me anda|me sale|me aparece|"
            r"me llega|lo veo|la veo|me deja|me entra|tengo|esta|carga|conecta|sale)\b",
            3.0,
            "works now",
        ),
        (
            r"\b(?:ya )?(?:esta|queda|quedo|ha quedado) (?:solucionad[oa]|resuelt[oa]|arreglad[oa]|"
            r"hech[oa]|listo|lista|activad[oa]|actualizad[oa]|cambiad[oa]|bloquead[oa]|desbloquead[oa]|"
            r"anulad[oa]|cancelad[oa]|programad[oa]|aplicad[oa]|realizad[oa]|confirmad[oa]|restablecid[oa]|"
            r"reactivad[oa]|modificad[oa]|pagad[oa]|abonad[oa]|devuelt[oa]|corregid[oa]|enviad[oa])\b",
            2.5,
            "done",
        ),
        (
            r"\b(?:solucionado|resuelto|arreglado|perfecto|genial|estupendo|fenomenal|excelente|buenisimo|"
            r"barbaro|chevere|listo|de lujo|joya|dale)\b",
            1.0,
            "satisfied",
        ),
        (r"\b(?:me ha|me has|me han) (?:ayudado|resuelto|solucionado|servido)\b", 2.0, "helped"),
        (
            r"\b(?:he|hemos|ya (?:se )?(?:lo|la|los|las|le|te)?) ?(?:rectificado|corregido|quitado|activado|"
            r"desactivado|anulado|habilitado|desbloqueado|actualizado|reactivado|mandado la confirmacion|"
            r"enviado la confirmacion|quite|di de baja|active|habilite|corregi|cambie)\b",
            2.0,
            "fixed by the agent",
        ),
        (r"\b(?:menos mal|me apano|es todo|todo bien|era eso|bacan|ya estoy dentro)\b", 1.0, "satisfied"),
        (
            r"\b(?:ya le|ya te|le|te) (?:aparece|aparecera|figura|llega|llegara|devolvemos|he devuelto|"
            r"hemos devuelto|abonamos|he abonado|he aplicado|hemos aplicado|confirmo que)\b",
            1.5,
            "applied",
        ),
        (
            r"\b(?:algo mas|alguna otra (?:consulta|cosa|gestion)|otra consulta) (?:en (?:lo )?que|que) "
            r"(?:pueda|podamos|le pueda|te pueda)\b",
            1.0,
            "anything else?",
        ),
        (r"\bno (?:eso es todo|nada mas|era eso|era solo eso)\b", 1.0, "that was all"),
        (r"\b(?:muchas|mil) gracias\b", 0.5, "thanks"),
        (r"\b(?:hecho|listo)\b", 0.5, "done"),
    ],
}

_AGAINST: list[tuple[str, Label, float, str]] = [
    (
        r"\b(?:sigue|sigo|siguen) (?:sin|igual|esperando|con el (?:mismo )?problema)\b",
        Label.RESOLVED,
        2.5,
        "still not fixed",
    ),
    (
        r"\bno (?:me )?(?:funciona|anda|va|sirve|vale|llega|aparece|sale)\b",
        Label.RESOLVED,
        1.5,
        "does not work",
    ),
    (r"\bno (?:se ha|ha|han|hemos) (?:solucionado|resuelto|arreglado)\b", Label.RESOLVED, 2.5, "not fixed"),
    (
        r"\bno (?:lo|la|se lo|te lo|se la) (?:puedo|podemos) (?:resolver|solucionar|arreglar|hacer)\b",
        Label.RESOLVED,
        1.5,
        "cannot fix",
    ),
]

_COMPILED = {
    label: [(re.compile(pattern), weight, name) for pattern, weight, name in cues]
    for label, cues in _CUES.items()
}
_COMPILED_AGAINST = [(re.compile(p), label, w, name) for p, label, w, name in _AGAINST]

SHORT_CALL_WORDS = 35
"""A call of at most this many words that settles nothing counts as abandoned."""
_WINDOW_WORDS = 14


@dataclass(frozen=True)
class _Vote:
    label: Label
    weight: float
    cue: str


def _position_weight(index: int, count: int) -> float:
    """0.35 for the first turn, rising to 1.0 for the last turns (the last three weigh most)."""
    if count <= 1:
        return 1.0
    from_end = count - 1 - index
    if from_end <= 2:
        return 1.0 - 0.1 * from_end
    return 0.35 + 0.45 * (index / max(1, count - 4))


def _segments(text: str, turns: Sequence[schema.Turn]) -> list[str]:
    """Turns' texts, or ``text`` cut into sentences (or word windows when unpunctuated)."""
    if turns:
        return [t.text for t in turns if t.text.strip()]
    sentences = [s for s in re.split(r"(?<=[.!?…])\s+", text) if s.strip()]
    if len(sentences) > 1:
        return sentences
    words = text.split()
    return [" ".join(words[i : i + _WINDOW_WORDS]) for i in range(0, len(words), _WINDOW_WORDS)]


def _votes(segment: str, weight: float) -> list[_Vote]:
    folded = fold(segment)
    votes = []
    for label, cues in _COMPILED.items():
        for pattern, cue_weight, name in cues:
            if pattern.search(folded):
                votes.append(_Vote(label, cue_weight * weight, name))
    for pattern, label, cue_weight, name in _COMPILED_AGAINST:
        if pattern.search(folded):
            votes.append(_Vote(label, -cue_weight * weight, name))
    return votes


def infer_outcome(text: str, turns: Sequence[schema.Turn] = ()) -> schema.CallOutcome:
    """The outcome of one call from its transcript (``turns`` when speaker-attributed, else ``text``).

    Returns a :class:`schema.CallOutcome` with ``source="inferred"``: the winning label, a
    confidence in [0, 1] (its share of the positive votes, damped when the votes are few) and the
    names of the cues that voted for it. Empty text or no cue gives ``unknown`` with confidence 0.
    """
    segments = _segments(text, turns)
    count = len(segments)
    scores = dict.fromkeys(_CUES, 0.0)
    cues: dict[Label, list[str]] = {label: [] for label in _CUES}
    for index, segment in enumerate(segments):
        for vote in _votes(segment, _position_weight(index, count)):
            scores[vote.label] += vote.weight
            if vote.weight > 0 and vote.cue not in cues[vote.label]:
                cues[vote.label].append(vote.cue)
    words = sum(len(s.split()) for s in segments)
    settled = max(scores[Label.RESOLVED], scores[Label.TRANSFERRED], scores[Label.ESCALATED])
    if 0 < words <= SHORT_CALL_WORDS and settled < 2.0:
        scores[Label.ABANDONED] += 1.5
        cues[Label.ABANDONED].append("short call, nothing settled")
    positive = {label: max(0.0, score) for label, score in scores.items()}
    best = max(positive, key=lambda label: positive[label])
    total = sum(positive.values())
    if positive[best] <= 0.0:
        return schema.CallOutcome(label=Label.UNKNOWN, confidence=0.0, source="inferred")
    share = positive[best] / total
    strength = 1.0 - math.exp(-positive[best] / 2.0)
    return schema.CallOutcome(
        label=best,
        confidence=round(min(1.0, share * strength), 4),
        source="inferred",
        cues=cues[best][:6],
    )


def call_outcome(
    recorded: schema.Outcome, previous: schema.CallOutcome | None, text: str, turns: Sequence[schema.Turn]
) -> schema.CallOutcome:
    """The outcome to store: the recorder's when it gave one, else the one inferred from the call.

    ``recorded`` is the document's ``outcome``; it is the recorder's value when it is not unknown
    and no earlier inference wrote it (``previous`` is None or says ``recorder``).
    """
    if recorded != Label.UNKNOWN and (previous is None or previous.source == "recorder"):
        return schema.CallOutcome(label=recorded, confidence=1.0, source="recorder", cues=[])
    return infer_outcome(text, turns)
