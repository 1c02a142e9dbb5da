"""Hypothesis strategies that build JSON *text* by structure, and tokens around it.

``st.recursive`` over Python values (what the property tests used before) never nests more
than a few levels, cannot write a duplicate name or a lone-surrogate escape, and goes
through ``json.dumps``, so it never produced what red team F1 found: one ``\\u`` escape
under 450-900 levels. These strategies write the text themselves: any depth from 0 to past
what fits in a cookie (weighted to the edges: ``MAX_DEPTH`` and the 450-1000 window where
Python's own recursion limit sits), arrays, objects or a mix at every level, duplicate
names at any level, and leaves that are ``\\uXXXX`` escapes (lone surrogates included),
numbers too large for a float or for ``int()``, and ordinary values. ``tokens`` wraps the
text into correctly shaped compact tokens (canonical base64url segments, a real ``kid``,
a real or zero signature) so it reaches the JSON layer rather than the base64 checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from authstate.crypto._json import MAX_DEPTH
from authstate.crypto.jwt import MAX_HEADER_CHARS, MAX_TOKEN_BYTES
from authstate.crypto.keys import SigningKey
from tests.crypto.forge import forge, raw_json

# Depths worth hitting on purpose: around our limit, and the window where Python's own
# recursion limit sat for F1 (450-1000 from a test's stack; 20-60 from a deep one, which
# the small uniform draw covers). Anything else comes from the uniform draw to 1400.
EDGE_DEPTHS = (MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 300, 450, 600, 750, 900, 1000)

ESCAPES = st.one_of(
    st.integers(0xD800, 0xDFFF).map(lambda cp: f"\\u{cp:04x}"),  # lone surrogate
    st.integers(0xD800, 0xDBFF).map(lambda cp: f"\\u{cp:04X}\\udc00"),  # a valid pair
    st.integers(0, 0xFFFF).map(lambda cp: f"\\u{cp:04x}"),
    st.sampled_from(["\\u0041", "\\u0000", "\\\\", '\\"', "\\/", "\\n"]),
)
HUGE_NUMBERS = st.sampled_from(
    [
        "1e400",
        "-1e400",
        "1E+999",
        "1e-400",
        "-0",
        "9" * 4300,
        "9" * 4301,
        "1" * 5000,
        "-" + "9" * 5000,
        "1" * 400 + ".5",
        "9007199254740993",
        "NaN",
        "Infinity",
    ]
)
ORDINARY = st.sampled_from(['"x"', "1", "0.5", "true", "false", "null", "[]", "{}", '""'])
LEAVES = st.one_of(
    st.lists(ESCAPES, min_size=1, max_size=3).map(lambda parts: '"' + "".join(parts) + '"'),
    HUGE_NUMBERS,
    ORDINARY,
)


@dataclass(frozen=True)
class Shape:
    """JSON text and how deep its arrays and objects nest (the top object counts)."""

    text: str
    depth: int

    @property
    def data(self) -> bytes:
        return self.text.encode("utf-8", "surrogatepass")


@st.composite
def nested_values(draw: st.DrawFn, max_bytes: int = 3000) -> Shape:
    """A JSON value: ``levels`` arrays/objects (a repeating pattern of kinds) around a leaf,
    optionally with a duplicate name (or an extra element) at one level and a sibling
    member beside the spine. Depth is capped so the text stays under ``max_bytes``."""
    levels = draw(st.integers(0, 64) | st.sampled_from(EDGE_DEPTHS) | st.integers(0, 1400))
    pattern = draw(st.lists(st.booleans(), min_size=1, max_size=4))  # True: object
    leaf = draw(LEAVES)
    duplicate_at = draw(st.none() | st.integers(0, max(levels - 1, 0)))
    sibling = draw(st.none() | LEAVES)
    room = max_bytes - 64
    if len(leaf) + len(sibling or "") > room:  # a 5000-digit leaf does not fit in a token
        leaf, sibling = "1e400", None
    per_level = 6 if any(pattern) else 2
    levels = min(levels, max(0, (room - len(leaf) - len(sibling or "")) // per_level))
    opening: list[str] = []
    closing: list[str] = []
    for level in range(levels):
        is_object = pattern[level % len(pattern)]
        if is_object:
            extra = '"a":0,' if level == duplicate_at else ""
            opening.append("{" + extra + '"a":')
            closing.append("}")
        else:
            opening.append("[0," if level == duplicate_at else "[")
            closing.append("]")
    inner = leaf if sibling is None else f"[{leaf},{sibling}]"
    depth = levels + (1 if sibling is not None else 0) + _leaf_depth(leaf)
    return Shape("".join(opening) + inner + "".join(reversed(closing)), depth)


def _leaf_depth(leaf: str) -> int:
    return 1 if leaf in ("[]", "{}") else 0


@st.composite
def json_objects(draw: st.DrawFn, max_bytes: int = 3000) -> Shape:
    """A JSON object text whose member ``x`` (or ``a``, twice when drawn) is a nested value."""
    value = draw(nested_values(max_bytes))
    name = draw(st.sampled_from(["x", "a", "\\ud800", "roles", "exp"]))
    twice = draw(st.booleans())
    members = f'"{name}":{value.text}' + (f',"{name}":1' if twice else "")
    return Shape("{" + members + "}", value.depth + 1)


@dataclass(frozen=True)
class ShapedToken:
    token: str
    shape: Shape
    where: str  # "claims" or "header"
    signed: bool


@st.composite
def tokens(draw: st.DrawFn, key: SigningKey, valid_claims: dict[str, object]) -> ShapedToken:
    """A compact token with a nested shape in the claims (as a member beside valid claims,
    or the whole claims object) or in the header (beside alg/typ/kid); signed by ``key`` or
    with a zero signature. Always under the cookie cap, so the JSON layer is reached."""
    where = draw(st.sampled_from(["claims", "claims", "header"]))
    signed = draw(st.booleans())
    head = {"alg": key.alg, "typ": "at+jwt", "kid": key.kid}
    if where == "header":
        budget = (MAX_HEADER_CHARS * 3) // 4 - len(raw_json(head)) - 8
        shape = draw(nested_values(budget))
        head_text = raw_json(head)[:-1] + b',"x":' + shape.data + b"}"
        shape = Shape(head_text.decode("utf-8", "surrogatepass"), shape.depth + 1)
        body = raw_json(valid_claims)
    else:
        budget = (MAX_TOKEN_BYTES * 3) // 4 - 200 - len(raw_json(valid_claims))
        whole = draw(st.booleans())
        if whole:
            shape = draw(json_objects(budget + len(raw_json(valid_claims))))
            body = shape.data
        else:
            inner = draw(nested_values(budget))
            body = raw_json(valid_claims)[:-1] + b',"x":' + inner.data + b"}"
            shape = Shape(body.decode("utf-8", "surrogatepass"), inner.depth + 1)
        head_text = raw_json(head)
    token = forge(head_text, body, key if signed else None, signature=None if signed else bytes(64))
    assert len(token) <= MAX_TOKEN_BYTES, len(token)
    assert len(token.split(".")[0]) <= MAX_HEADER_CHARS
    return ShapedToken(token, shape, where, signed)
