"""Hand-written Spanish call transcripts (lower-case, unpunctuated, as ASR gives them) for the
analysis tests: (speaker, text) turns per call."""

from __future__ import annotations

from callpipe import schema

CARD_BLOCK = [
    ("agent", "buenas tardes le atiende laura en qué puedo ayudarle"),
    (
        "customer",
        "hola buenas mire es que me han robado el bolso esta mañana en el metro "
        "y llevaba la tarjeta de crédito dentro",
    ),
    ("agent", "vaya lo siento mucho vamos a bloquear la tarjeta ahora mismo me confirma su dni por favor"),
    ("customer", "sí claro es el cuatro cinco seis siete ocho nueve uno dos"),
    ("agent", "perfecto ya la tengo localizada la tarjeta terminada en cuatro tres dos uno verdad"),
    ("customer", "sí esa es la única tarjeta que tengo con ustedes"),
    ("agent", "ya está bloqueada y no se podrá usar ni en cajeros ni en comercios ni por internet"),
    ("customer", "vale y cómo hago para tener una tarjeta nueva con otro pin"),
    (
        "agent",
        "le enviamos una tarjeta nueva a su domicilio en cinco días y el pin llega en una carta aparte",
    ),
    ("customer", "perfecto muchas gracias me quedo mucho más tranquila"),
]

INTERNET_OUTAGE = [
    ("agent", "servicio técnico buenos días le atiende carlos dígame"),
    ("customer", "llevo tres días sin internet en casa y es la tercera vez que llamo por lo mismo"),
    ("agent", "disculpe las molestias vamos a revisar la línea de fibra me dice qué luces tiene el router"),
    ("customer", "la luz de la fibra está en rojo y la del wifi parpadea todo el rato"),
    ("agent", "he lanzado una prueba y veo una incidencia en la conexión de su zona"),
    ("customer", "pues ya me dijeron lo mismo el lunes y el router sigue igual sin conexión"),
    ("agent", "le abro una avería para que un técnico revise la fibra en su domicilio mañana"),
    ("customer", "estoy harto de esperar trabajo desde casa y sin internet no puedo hacer nada"),
    ("agent", "lo entiendo le marco la avería como urgente y el técnico irá mañana por la mañana"),
    ("customer", "vale a ver si es verdad y mañana por fin tengo conexión"),
]

BILLING = [
    ("agent", "atención al cliente le atiende marta en qué le puedo ayudar"),
    ("customer", "mire me ha llegado la factura de la luz de este mes y es el doble que la anterior"),
    ("agent", "vamos a revisarla me da el número de contrato o el dni del titular"),
    ("customer", "el contrato está a mi nombre el dni es el doce treinta y cuatro cincuenta y seis"),
    ("agent", "veo que la factura incluye una regularización del consumo de los dos meses anteriores"),
    ("customer", "y eso por qué la lectura del contador la envié yo el mes pasado"),
    ("agent", "la lectura llegó tarde y se facturó un consumo estimado que ahora se regulariza"),
    ("customer", "entonces el importe de la factura está bien o me han cobrado de más"),
    ("agent", "el importe es correcto pero si quiere puedo fraccionar el pago del recibo en tres meses"),
    ("customer", "vale sí prefiero fraccionar el recibo gracias por explicármelo"),
]

MORTGAGE_INFO = [
    ("agent", "banca personal buenos días le atiende jorge"),
    ("customer", "buenos días quería información sobre las hipotecas a tipo fijo para comprar un piso"),
    (
        "agent",
        "claro ahora mismo la hipoteca a tipo fijo tiene un interés del tres por ciento a veinticinco años",
    ),
    ("customer", "y qué porcentaje del precio de la vivienda financian"),
    ("agent", "financiamos hasta el ochenta por ciento del valor de tasación de la vivienda habitual"),
    ("customer", "qué documentación necesito para pedir el estudio de la hipoteca"),
    ("agent", "las tres últimas nóminas la declaración de la renta y la nota simple del piso"),
    ("customer", "y hay comisión de apertura o de amortización anticipada"),
    ("agent", "no hay comisión de apertura y la amortización anticipada tiene un coste del dos por ciento"),
    ("customer", "de acuerdo pediré cita con el gestor para la hipoteca gracias"),
]

CALLS = {
    "card_block": CARD_BLOCK,
    "internet_outage": INTERNET_OUTAGE,
    "billing": BILLING,
    "mortgage": MORTGAGE_INFO,
}


def turns(call: list[tuple[str, str]], seconds_per_turn: float = 5.0) -> list[schema.Turn]:
    """Turns with consecutive timings for ``call``."""
    return [
        schema.Turn(speaker=speaker, start=i * seconds_per_turn, end=(i + 1) * seconds_per_turn, text=text)
        for i, (speaker, text) in enumerate(call)
    ]


def text(call: list[tuple[str, str]]) -> str:
    """The call as one unpunctuated transcript."""
    return " ".join(t for _, t in call)


def shuffled_mixture(calls: list[list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """Interleave the turns of unrelated calls (turn i of call 0, turn i of call 1, ...)."""
    mixed = []
    for i in range(max(len(c) for c in calls)):
        for c in calls:
            if i < len(c):
                mixed.append(c[i])
    return mixed
