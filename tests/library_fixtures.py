"""A generated library for the collection, paging and ranking tests (no ../shared needed).

`judgments(n)` makes n short judgment-like texts, each about one TOPIC (its facts and its
holding use that topic's words) over common legal filler, so a question about a topic has
a right answer: the documents of that topic. One in ten is a Chinese judgment about one of
ZH_TOPICS. Names say the topic ("0042 limitation - Alder v Birch.txt") so tests can check
ranking without reading the texts. The same n and seed always give the same documents.
"""

from __future__ import annotations

import functools
import random

TOPICS = {
    "limitation": ("The limitation period expired before the claim was filed, so the limitation defence was upheld.",
                   "Time ran from the accrual of the cause of action; the statute of limitations barred the claim."),
    "negligence": ("The defendant owed a duty of care and breached it through negligence.",
                   "Negligence requires duty, breach, causation and damage; the driver was careless."),
    "lease": ("The lessee failed to pay rent and the lessor terminated the lease.",
              "Under the lease the tenant must repair the roof and pay rent monthly."),
    "trademark": ("The mark was confusingly similar and the trademark was infringed.",
                  "Consumers were likely to confuse the two brands; the registered trademark prevails."),
    "water": ("The interstate compact apportions water rights between the states.",
              "Each state may divert an equal share of the river water under the compact."),
    "arbitration": ("The arbitration clause covers the dispute, so the court stayed the action.",
                    "An arbitral award may be set aside only on narrow grounds."),
}
ZH_TOPICS = {
    "租赁": ("承租人未按约定支付租金，出租人有权解除租赁合同。", "租赁期间，承租人应当妥善保管租赁物。"),
    "借贷": ("借款人未按期归还借款，应当支付逾期利息。", "民间借贷的利率不得超过法定上限。"),
    "继承": ("被继承人死亡后，遗产按照法定继承办理。", "继承人对遗产的分配发生争议。"),
}
FILLER = (
    "The parties appeared through counsel and the matter was heard in open court.",
    "The court has considered the pleadings, the evidence and the submissions of both sides.",
    "Costs follow the event unless the court orders otherwise.",
    "The judgment of the lower court is affirmed in part and reversed in part.",
    "Both parties filed written submissions before the hearing.",
    "The appeal raises questions of law that the court reviews de novo.",
)
ZH_FILLER = ("本院经审理查明，双方当事人均到庭参加诉讼。", "案件受理费由被告负担。", "本判决为终审判决。")
PARTIES = ("Alder", "Birch", "Cedar", "Dunmore", "Ellery", "Fairbanks", "Garrison", "Hollis", "Ingram", "Jarvis")


def topic_of(name: str) -> str:
    """The topic a generated document's name carries."""
    return name.split(" ", 2)[1]


def _english(number: int, rng: random.Random) -> tuple[str, str]:
    topic = rng.choice(sorted(TOPICS))
    a, b = rng.sample(PARTIES, 2)
    paragraphs = [f"{a} v {b}. Judgment number {number}."]
    for _ in range(rng.randint(4, 9)):
        paragraphs.append(" ".join(rng.choice(FILLER) for _ in range(rng.randint(2, 4))))
    for sentence in TOPICS[topic]:
        paragraphs.insert(rng.randint(1, len(paragraphs)), sentence + " " + rng.choice(FILLER))
    return f"{number:04d} {topic} - {a} v {b}.txt", "\n\n".join(paragraphs) + "\n"


def _chinese(number: int, rng: random.Random) -> tuple[str, str]:
    topic = rng.choice(sorted(ZH_TOPICS))
    paragraphs = [f"民事判决书 第{number}号。"]
    paragraphs += ["".join(rng.choice(ZH_FILLER) for _ in range(rng.randint(2, 3))) for _ in range(rng.randint(3, 6))]
    for sentence in ZH_TOPICS[topic]:
        paragraphs.insert(rng.randint(1, len(paragraphs)), sentence + rng.choice(ZH_FILLER))
    return f"{number:04d} {topic} - 判决.md", "\n\n".join(paragraphs) + "\n"


@functools.cache
def judgments(count: int = 300, seed: int = 11) -> tuple[tuple[str, bytes], ...]:
    """(file name, bytes) of `count` generated judgments, one in ten Chinese."""
    out = []
    for number in range(count):
        rng = random.Random(f"{seed}-{number}")
        name, text = (_chinese if number % 10 == 9 else _english)(number, rng)
        out.append((name, text.encode("utf-8")))
    return tuple(out)


@functools.cache
def documents(count: int = 300, seed: int = 11) -> tuple:
    """The generated judgments read by Folio (Documents with passages and exact counts)."""
    from lib.reading.ingest import ingest_bytes

    return tuple((ingest_bytes(data, name), data) for name, data in judgments(count, seed))
