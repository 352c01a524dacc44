"""Deterministic synthetic text shaped like what coding agents write.

Search and storage costs depend on the word distribution: a handful of words
appear in most messages, most words are rare. Uniform random words would make
every term equally (and unrealistically) selective, so words are drawn from a
Zipf–Mandelbrot law over a vocabulary whose head is real English and
programming words and whose tail is made-up identifiers. A few hundred fixed
collocations are spliced in so phrase queries have something to find.
"""

from __future__ import annotations

import numpy as np

_HEAD_TEXT = (
    "the to a of and is in it that for this we file test i you be on with not "
    "can error function the use code if are as add should now will let me check "
    "from an run need at by or but so have all it's see line return value fix "
    "was which update new change import path data when one do make what also "
    "there type class method call config build output result tests then here "
    "first into just like more need only some time way write read list name "
    "module string object case set get update missing issue version install "
    "python json request response server client database query table index "
    "session agent token cache commit branch merge review docs script command "
    "default option argument parameter variable field key async await thread "
    "process memory disk size limit timeout retry log message event handler "
    "user input model prompt context window tool call bash edit grep glob "
    "failed passed warning exception traceback stack frame debug release main "
    "src lib core util helper service api endpoint route schema migration "
    "transaction commit rollback lock queue worker job task status progress "
    "import export parse format encode decode compress snapshot backup restore "
    "upload download bucket storage archive folder directory workspace project"
)
HEAD_WORDS = tuple(_HEAD_TEXT.split())

PHRASE_COUNT = 300
_SYLLABLE_TEXT = (
    "ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo ga ge gi go ha he hi "
    "ho ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po pu "
    "ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo za ze zi zo tra tri "
    "stro pla ple pri qua que str ner lin dex mon vor zel rix pol"
)
_SYLLABLES = tuple(_SYLLABLE_TEXT.split())


def vocabulary(size: int, seed: int) -> list[str]:
    """`size` distinct words: the real head first (most frequent), then made-up ones."""
    words: list[str] = list(dict.fromkeys(HEAD_WORDS))
    seen = set(words)
    rng = np.random.default_rng(seed)
    while len(words) < size:
        parts = rng.integers(0, len(_SYLLABLES), size=int(rng.integers(2, 5)))
        word = "".join(_SYLLABLES[p] for p in parts)
        if rng.random() < 0.15:
            word += str(int(rng.integers(0, 100)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words[:size]


def zipf_cdf(size: int, s: float = 1.07, q: float = 2.7) -> np.ndarray:
    """Cumulative Zipf–Mandelbrot probabilities for ranks 1..size."""
    weights = 1.0 / np.power(np.arange(1, size + 1) + q, s)
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


class TextGen:
    """Draws message texts; the same seed gives the same texts on any machine."""

    def __init__(self, seed: int, vocab_size: int = 60_000) -> None:
        self.rng = np.random.default_rng(seed)
        self.vocab = np.array(vocabulary(vocab_size, seed), dtype=object)
        self.cdf = zipf_cdf(vocab_size)
        ids = self.draw_ids(PHRASE_COUNT * 3)
        self.phrases = [
            " ".join(self.vocab[ids[i : i + 3]][: 2 + i % 2]) for i in range(0, len(ids), 3)
        ]

    def draw_ids(self, count: int) -> np.ndarray:
        ids: np.ndarray = np.searchsorted(self.cdf, self.rng.random(count))
        return ids

    def rank_of(self, word: str) -> int:
        """0-based frequency rank of a vocabulary word."""
        return int(np.nonzero(self.vocab == word)[0][0])

    def texts(self, count: int, median_words: float = 28.0, max_words: int = 600) -> list[str]:
        """`count` texts with log-normal lengths (a long tail of long messages)."""
        lengths = np.clip(
            self.rng.lognormal(np.log(median_words), 0.8, count).astype(np.int64), 1, max_words
        )
        ids = self.draw_ids(int(lengths.sum()))
        ends = np.cumsum(lengths)
        starts = ends - lengths
        words = self.vocab[ids]
        phrase_at = self.rng.random(count) < 0.2
        phrase_ids = np.searchsorted(zipf_cdf(len(self.phrases)), self.rng.random(count))
        out = []
        for i in range(count):
            text = " ".join(words[starts[i] : ends[i]])
            if phrase_at[i]:
                text += " " + self.phrases[phrase_ids[i]]
            out.append(text)
        return out

    def code(self, lines: int) -> str:
        """Python-looking source lines, numbered like a file read by an agent."""
        ids = self.draw_ids(lines * 4)
        w = self.vocab[ids]
        body = []
        for i in range(lines):
            a, b, c, d = w[i * 4 : i * 4 + 4]
            indent = "    " * (i % 3)
            shape = i % 4
            if shape == 0:
                src = f"{indent}def {a}_{b}(self, {c}: str) -> int:"
            elif shape == 1:
                src = f"{indent}{a} = self.{b}.{c}({d!r})"
            elif shape == 2:
                src = f"{indent}if {a} is not None and {b} > {i}:"
            else:
                src = f"{indent}return {c}_{d}"
            body.append(f"{i + 1:6d}→{src}")
        return "\n".join(body)
