"""Seeded English sentence generator for the synthetic demo corpus.

Why a grammar of our own instead of text from an existing corpus: the demo
corpus is committed to this repository, so every byte of it has to be ours to
license.  The word list below was written for this project (plain, common
English words) and the templates are a handful of simple clause shapes.  That
is enough to give varied transcripts (and so a varied phone sequence) for a
tokeniser / alignment demo, while staying fully reproducible: the only source
of randomness is the ``random.Random`` instance passed in.
"""

from __future__ import annotations

import random

# --- word list (written for this project) -----------------------------------
# Nouns: "singular plural" when the plural is irregular, else just singular.
_NOUNS = """
apple arm baby bag ball bank bed bell bird boat book bottle box boy bread
bridge brother bus cake camera car card cat chair child:children city clock
cloud coat coffee corner cup desk doctor dog door dream egg engine farmer
field finger fish:fish floor flower foot:feet forest friend garden gate girl
glass:glasses hand hat hill horse house island jacket key kitchen knife:knives
lake lamp leaf:leaves letter light lion market man:men map milk minute moon
morning mountain mouse:mice neighbour night note ocean office orange painter
paper park pencil phone picture pilot plate pocket question radio river road
roof room rope sailor school sea shadow sheep:sheep shirt shoe shop singer
sister song spoon square star station stone story street student sun table
teacher tent ticket tower town train tree truck valley village wall watch:watches
water whale window winter woman:women word worker
"""

_ADJECTIVES = """
old young small big little tall short long bright dark quiet loud warm cold
happy tired busy empty full green red blue yellow white black brown heavy light
clean wet dry soft hard quick slow strange simple careful gentle brave angry
friendly hungry sleepy lucky narrow wide deep shiny rusty wooden golden silver
broken new famous lonely noisy early late patient clever
"""

# Transitive verbs: "base third-person past".
_VERBS_T = """
carry:carries:carried find:finds:found open:opens:opened close:closes:closed
paint:paints:painted watch:watches:watched follow:follows:followed
build:builds:built clean:cleans:cleaned bring:brings:brought
fix:fixes:fixed hold:holds:held push:pushes:pushed pull:pulls:pulled
read:reads:read sell:sells:sold buy:buys:bought lose:loses:lost
catch:catches:caught draw:draws:drew visit:visits:visited
help:helps:helped call:calls:called see:sees:saw hear:hears:heard
wash:washes:washed throw:throws:threw count:counts:counted
fill:fills:filled move:moves:moved keep:keeps:kept leave:leaves:left
remember:remembers:remembered describe:describes:described
check:checks:checked answer:answers:answered cook:cooks:cooked
share:shares:shared borrow:borrows:borrowed hide:hides:hid
"""

_VERBS_I = """
sleep:sleeps:slept wait:waits:waited laugh:laughs:laughed sing:sings:sang
run:runs:ran walk:walks:walked swim:swims:swam smile:smiles:smiled
work:works:worked dance:dances:danced rest:rests:rested listen:listens:listened
arrive:arrives:arrived travel:travels:travelled shout:shouts:shouted
climb:climbs:climbed return:returns:returned wander:wanders:wandered
whisper:whispers:whispered hurry:hurries:hurried stay:stays:stayed
"""

_ADVERBS = """
slowly quickly quietly loudly carefully happily early today again often never
always sometimes together outside inside yesterday gently suddenly soon
"""

_PREPOSITIONS = "in on under near behind beside across through over inside past along"

_NAMES = """
Anna Ben Clara David Emma Frank Grace Henry Iris Jack Kate Leo Maria Nina
Oscar Paula Ruth Sam Tom Vera Walter Yusuf Zoe Hugo Lena Omar
"""

_NUMBERS = "two three four five six seven eight nine ten twelve twenty"
_TIMES = """
this morning|last night|on Sunday|after lunch|before dinner|every day|in the
evening|at noon|next week|in the spring|after the storm|during the summer
"""
_DET_SG = "the the the a this that every my our your their his her one"
_DET_PL = "the the some these those many few my our their"


def _split_forms(block: str) -> list[list[str]]:
    return [w.split(":") for w in block.split()]


def _regular_plural(noun: str) -> str:
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


NOUNS = [(f[0], f[1] if len(f) > 1 else _regular_plural(f[0])) for f in _split_forms(_NOUNS)]
ADJECTIVES = _ADJECTIVES.split()
VERBS_T = [tuple(f) for f in _split_forms(_VERBS_T)]
VERBS_I = [tuple(f) for f in _split_forms(_VERBS_I)]
ADVERBS = _ADVERBS.split()
PREPOSITIONS = _PREPOSITIONS.split()
NAMES = _NAMES.split()
NUMBERS = _NUMBERS.split()
TIMES = [t.strip().replace("\n", " ") for t in " ".join(_TIMES.split()).split("|")]
DET_SG = _DET_SG.split()
DET_PL = _DET_PL.split()


def vocabulary() -> set[str]:
    """All distinct lower-cased words the grammar can emit (for the README)."""
    words: set[str] = set()
    for sg, pl in NOUNS:
        words |= {sg, pl}
    for forms in VERBS_T + VERBS_I:
        words |= set(forms)
    for group in (ADJECTIVES, ADVERBS, PREPOSITIONS, NUMBERS, DET_SG, DET_PL):
        words |= set(group)
    words |= {n.lower() for n in NAMES}
    for t in TIMES:
        words |= set(t.lower().split())
    return words


class SentenceGenerator:
    """Draws sentences from a tiny phrase grammar.

    Each template is a small function of the RNG; ``sentence()`` retries until
    the word count falls in ``[min_words, max_words]`` so callers get a
    predictable length range without the templates having to know about it.
    """

    def __init__(self, rng: random.Random, min_words: int = 4, max_words: int = 14):
        self.rng = rng
        self.min_words = min_words
        self.max_words = max_words
        self._templates = [
            self._declarative_t,
            self._declarative_t,
            self._declarative_i,
            self._fronted_time,
            self._compound,
            self._question_yes_no,
            self._question_wh,
            self._imperative,
            self._reported,
            self._counting,
        ]

    # -- phrase builders ----------------------------------------------------
    def _np(self, plural: bool | None = None, allow_name: bool = True) -> tuple[str, bool]:
        """Noun phrase; returns (text, is_plural)."""
        r = self.rng
        if allow_name and r.random() < 0.2:
            return r.choice(NAMES), False
        plural = r.random() < 0.3 if plural is None else plural
        sg, pl = r.choice(NOUNS)
        det = r.choice(DET_PL if plural else DET_SG)
        words = [det]
        if r.random() < 0.55:
            words.append(r.choice(ADJECTIVES))
        words.append(pl if plural else sg)
        if det == "a" and words[1][0] in "aeiou":
            words[0] = "an"
        return " ".join(words), plural

    def _pp(self) -> str:
        return f"{self.rng.choice(PREPOSITIONS)} {self._np(allow_name=False)[0]}"

    def _verb(self, table, plural: bool, tense: str) -> str:
        base, third, past = self.rng.choice(table)
        if tense == "past":
            return past
        return base if plural else third

    def _tense(self) -> str:
        return "past" if self.rng.random() < 0.6 else "present"

    # -- templates ----------------------------------------------------------
    def _declarative_t(self) -> str:
        subj, pl = self._np()
        s = f"{subj} {self._verb(VERBS_T, pl, self._tense())} {self._np()[0]}"
        if self.rng.random() < 0.5:
            s += " " + self._pp()
        return s + "."

    def _declarative_i(self) -> str:
        subj, pl = self._np()
        s = f"{subj} {self._verb(VERBS_I, pl, self._tense())}"
        if self.rng.random() < 0.6:
            s += " " + self.rng.choice(ADVERBS)
        if self.rng.random() < 0.6:
            s += " " + self._pp()
        return s + "."

    def _fronted_time(self) -> str:
        body = self.rng.choice([self._declarative_t, self._declarative_i])()
        return f"{self.rng.choice(TIMES).capitalize()}, {_lower_first(body)}"

    def _compound(self) -> str:
        a = self._declarative_i()[:-1]
        b = self.rng.choice([self._declarative_t, self._declarative_i])()
        conj = self.rng.choice(["and", "but", "so", "because", "while"])
        return f"{a}, {conj} {_lower_first(b)}"

    def _question_yes_no(self) -> str:
        subj, _ = self._np()
        aux = self.rng.choice(["did", "will", "can", "should"])
        verb = self.rng.choice(VERBS_T)[0]
        q = f"{aux} {_lower_first(subj)} {verb} {self._np()[0]}"
        if self.rng.random() < 0.4:
            q += " " + self._pp()
        return q[0].upper() + q[1:] + "?"

    def _question_wh(self) -> str:
        wh = self.rng.choice(["where", "why", "when", "how"])
        subj, pl = self._np()
        aux = ("do" if pl else "does") if self.rng.random() < 0.5 else "did"
        verb = self.rng.choice(VERBS_I)[0]
        q = f"{wh} {aux} {_lower_first(subj)} {verb}"
        if self.rng.random() < 0.5:
            q += " " + self.rng.choice(ADVERBS)
        return q[0].upper() + q[1:] + "?"

    def _imperative(self) -> str:
        verb = self.rng.choice(VERBS_T)[0]
        s = f"{verb} {self._np(allow_name=False)[0]} {self._pp()}"
        if self.rng.random() < 0.4:
            s = "please " + s
        return s[0].upper() + s[1:] + "."

    def _reported(self) -> str:
        name = self.rng.choice(NAMES)
        verb = self.rng.choice(["said", "thinks", "knew", "heard", "hopes"])
        return f"{name} {verb} that {_lower_first(self._declarative_i())}"

    def _counting(self) -> str:
        n = self.rng.choice(NUMBERS)
        noun = self.rng.choice(NOUNS)[1]
        adj = self.rng.choice(ADJECTIVES)
        verb = self._verb(VERBS_I, True, self._tense())
        return f"{n.capitalize()} {adj} {noun} {verb} {self._pp()}."

    # -- public -------------------------------------------------------------
    def sentence(self) -> str:
        """One sentence with ``min_words <= len(words) <= max_words``."""
        while True:
            s = self.rng.choice(self._templates)()
            s = s[0].upper() + s[1:]
            if self.min_words <= len(s.split()) <= self.max_words:
                return s


def _lower_first(s: str) -> str:
    """Lower-case the first letter unless the sentence starts with a name."""
    first = s.split()[0].strip(",.?")
    return s if first in NAMES else s[0].lower() + s[1:]


if __name__ == "__main__":  # quick look: python datagen/sentences.py
    gen = SentenceGenerator(random.Random(0))
    for _ in range(20):
        print(gen.sentence())
    print(len(vocabulary()), "distinct words")
