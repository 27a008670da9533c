#!/usr/bin/env python3
"""Writes include/qmr/text/unicode_tables.hpp from Python's unicodedata (no network needed).

    python3 tools/gen_unicode_tables.py include/qmr/text/unicode_tables.hpp

The header holds sorted tables searched by binary search in include/qmr/text/unicode.hpp:
  property_ranges     [first, last] -> bit set of the properties the pre-tokenizers ask about
                      (\\p{L}, \\p{N}, \\s, \\w) plus "may change under NFC"
  ccc_ranges          [first, last] -> canonical combining class (only the non-zero ones)
  decompositions      code point -> full (recursive) canonical decomposition, Hangul excluded
                      (it is algorithmic), as an offset/length into decomposition_data
  compositions        (first, second) -> primary composite, composition exclusions, singletons
                      and non-starter decompositions already removed; Hangul excluded
The Unicode version is that of the running Python's unicodedata (e.g. 14.0.0 for Python 3.11);
re-run with a newer Python to move to a newer Unicode.
"""
import sys
import unicodedata

MAX_CP = 0x110000
SURROGATES = range(0xD800, 0xE000)
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3

# The Unicode White_Space property (PropList.txt). unicodedata does not expose it, and
# str.isspace() is not it (it adds U+001C..U+001F). It has not changed since Unicode 6.3
# (which removed U+180E). Oniguruma's \s (Unicode: 9-D, 85, Zs, Zl, Zp) and Rust regex's \s
# are exactly this set.
WHITE_SPACE = [(0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
               (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F),
               (0x3000, 0x3000)]

# Rust regex's \w is Alphabetic + M + Nd + Pc + Join_Control. Alphabetic is L + Nl +
# Other_Alphabetic, which unicodedata lacks; Other_Alphabetic is almost all Mn/Mc (already in
# M) except these So letters (circled and squared Latin letters), listed by hand.
OTHER_ALPHABETIC_SO = [(0x24B6, 0x24E9), (0x1F130, 0x1F149), (0x1F150, 0x1F169), (0x1F170, 0x1F189)]
JOIN_CONTROL = [(0x200C, 0x200D)]

LETTER, NUMBER, SPACE, WORD, NFC_UNSTABLE = 1, 2, 4, 8, 16


def in_ranges(cp, ranges):
    return any(a <= cp <= b for a, b in ranges)


def canonical_mapping(cp):
    """The raw (one-level) canonical decomposition of cp, or None."""
    d = unicodedata.decomposition(chr(cp))
    if not d or d.startswith("<"):
        return None
    return [int(x, 16) for x in d.split()]


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "include/qmr/text/unicode_tables.hpp"

    # Primary composites: a two-code-point canonical mapping that NFC recomposes to itself
    # (this drops composition exclusions, singletons and non-starter decompositions).
    compositions = []
    for cp in range(MAX_CP):
        if cp in SURROGATES or HANGUL_FIRST <= cp <= HANGUL_LAST:
            continue
        m = canonical_mapping(cp)
        if m and len(m) == 2 and unicodedata.normalize("NFC", chr(cp)) == chr(cp):
            compositions.append((m[0], m[1], cp))
    compositions.sort()
    seconds = {b for _, b, _ in compositions}
    # Hangul jamo V and T compose with a preceding L or LV algorithmically.
    seconds.update(range(0x1161, 0x1176))
    seconds.update(range(0x11A8, 0x11C3))

    decompositions = []  # (cp, [full decomposition])
    props = [0] * MAX_CP
    ccc = [0] * MAX_CP
    for cp in range(MAX_CP):
        if cp in SURROGATES:
            continue
        c = chr(cp)
        cat = unicodedata.category(c)
        p = 0
        if cat[0] == "L":
            p |= LETTER
        if cat[0] == "N":
            p |= NUMBER
        if in_ranges(cp, WHITE_SPACE):
            p |= SPACE
        if (cat[0] in "LM" or cat in ("Nd", "Nl", "Pc") or in_ranges(cp, OTHER_ALPHABETIC_SO)
                or in_ranges(cp, JOIN_CONTROL)):
            p |= WORD
        ccc[cp] = unicodedata.combining(c)
        nfc_no = unicodedata.normalize("NFC", c) != c
        if ccc[cp] != 0 or nfc_no or cp in seconds:
            p |= NFC_UNSTABLE
        props[cp] = p
        if not (HANGUL_FIRST <= cp <= HANGUL_LAST):
            nfd = unicodedata.normalize("NFD", c)
            if nfd != c:
                decompositions.append((cp, [ord(x) for x in nfd]))

    # Everything below U+0300 is stable under NFC; unicode.hpp's fast path relies on it.
    assert all(not props[cp] & NFC_UNSTABLE for cp in range(0x300)), "NFC fast path assumption broken"

    def runs(values, keep):
        out = []
        start = None
        for cp in range(MAX_CP + 1):
            v = values[cp] if cp < MAX_CP else None
            if start is not None and v != values[start]:
                if keep(values[start]):
                    out.append((start, cp - 1, values[start]))
                start = None
            if start is None and cp < MAX_CP:
                start = cp
        return out

    prop_ranges = runs(props, lambda v: v != 0)
    ccc_ranges = runs(ccc, lambda v: v != 0)

    data = []
    decomp_entries = []
    for cp, seq in decompositions:
        assert len(seq) < 256
        decomp_entries.append((cp, len(data), len(seq)))
        data.extend(seq)
    assert len(data) < 65536

    def emit(name, ctype, items, fmt, per_line):
        lines = [f"inline constexpr {ctype} {name}[] = {{"]
        for i in range(0, len(items), per_line):
            lines.append("    " + " ".join(fmt(x) + "," for x in items[i:i + per_line]))
        lines.append("};")
        return "\n".join(lines)

    h = lambda v: f"0x{v:X}"
    parts = [
        "// Unicode tables (categories, combining classes, canonical (de)composition) for unicode.hpp.",
        "// Generated by tools/gen_unicode_tables.py from Python's unicodedata; do not edit by hand.",
        "#pragma once",
        "",
        "#include <cstdint>",
        "",
        "namespace qmr::text::tables {",
        "",
        f'// The Unicode version these tables describe (Python {sys.version.split()[0]}\'s unicodedata).',
        f'inline constexpr const char* unicode_version = "{unicodedata.unidata_version}";',
        "",
        "// Property bits of property_ranges.",
        f"inline constexpr std::uint8_t prop_letter = {LETTER};        // \\p{{L}}: Lu Ll Lt Lm Lo",
        f"inline constexpr std::uint8_t prop_number = {NUMBER};        // \\p{{N}}: Nd Nl No",
        f"inline constexpr std::uint8_t prop_space = {SPACE};         // \\s: the White_Space property",
        f"inline constexpr std::uint8_t prop_word = {WORD};          // \\w (Rust regex), Other_Alphabetic approximated",
        f"inline constexpr std::uint8_t prop_nfc_unstable = {NFC_UNSTABLE};  // ccc != 0 or NFC_Quick_Check != Yes",
        "",
        "struct property_range {",
        "  char32_t first, last;",
        "  std::uint8_t props;",
        "};",
        "struct ccc_range {",
        "  char32_t first, last;",
        "  std::uint8_t ccc;",
        "};",
        "struct decomposition {",
        "  char32_t cp;",
        "  std::uint16_t offset;  // into decomposition_data",
        "  std::uint8_t length;",
        "};",
        "struct composition {",
        "  char32_t first, second, composite;",
        "};",
        "",
        f"// {len(prop_ranges)} ranges, sorted, disjoint; code points not listed have no property.",
        emit("property_ranges", "property_range", prop_ranges, lambda r: f"{{{h(r[0])},{h(r[1])},{r[2]}}}", 6),
        "",
        f"// {len(ccc_ranges)} ranges, sorted, disjoint; code points not listed have class 0.",
        emit("ccc_ranges", "ccc_range", ccc_ranges, lambda r: f"{{{h(r[0])},{h(r[1])},{r[2]}}}", 6),
        "",
        f"// {len(decomp_entries)} full canonical decompositions, sorted by code point.",
        emit("decompositions", "decomposition", decomp_entries, lambda d: f"{{{h(d[0])},{d[1]},{d[2]}}}", 6),
        "",
        emit("decomposition_data", "char32_t", data, h, 12),
        "",
        f"// {len(compositions)} primary composites, sorted by (first, second).",
        emit("compositions", "composition", compositions, lambda c: f"{{{h(c[0])},{h(c[1])},{h(c[2])}}}", 5),
        "",
        "}  // namespace qmr::text::tables",
        "",
    ]
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))


if __name__ == "__main__":
    main()
